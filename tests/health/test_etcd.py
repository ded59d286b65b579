"""Health of an etcd member: Patroni's DCS, or the Kubernetes API's store (read-only: safe against production)."""

from __future__ import annotations

import json

import pytest

testinfra_hosts = ["ansible://db", "ansible://k8s_control_plane"]


@pytest.fixture
def etcd(role_vars):
    return role_vars("etcd")


def etcdctl(host, etcd, *args: str) -> str:
    """The role's own etcdctl command line (its endpoint and member certificate)."""
    return host.check_output(etcd["__etcd_etcdctl"] + " " + " ".join(["%s"] * len(args)), *args)


def test_runs_as_etcd_and_listens_on_tls_ports(host, etcd):
    service = host.service("etcd")
    assert service.is_running and service.is_enabled
    assert host.process.get(comm="etcd").user == "etcd"
    for port in (etcd["etcd_client_port"], etcd["etcd_peer_port"]):
        assert host.socket(f"tcp://0.0.0.0:{port}").is_listening


def test_key_is_private(host, etcd):
    key = host.file(f"{etcd['__etcd_tls_dir']}/member.key")
    assert key.user == "root" and key.group == "etcd" and key.mode == 0o640


def test_member_is_healthy(host, etcd):
    health = json.loads(etcdctl(host, etcd, "endpoint", "health", "--write-out=json"))
    assert health[0]["health"] is True, health


def test_every_configured_member_has_joined(host, etcd):
    members = json.loads(etcdctl(host, etcd, "member", "list", "--write-out=json"))["members"]
    assert sorted(m["name"] for m in members) == sorted(etcd["etcd_members"])
    # peers talk TLS; a member on http would mean a config left from Debian's default
    assert all(url.startswith("https://") for m in members for url in m["peerURLs"] + m["clientURLs"])


def test_clients_without_a_certificate_are_refused(host, etcd):
    # Anyone who reaches the client port without a certificate signed by the CA gets nothing; the
    # same request with the member's certificate is answered, so the refusal is the certificate's
    # doing. (curl fails at once where etcdctl retried until its command timeout, 3 s a host.)
    request = "curl -sS --max-time 5 --cacert %s/ca.crt https://127.0.0.1:%s/version"
    tls_dir, port = etcd["__etcd_tls_dir"], str(etcd["etcd_client_port"])
    refused = host.run(request, tls_dir, port)
    assert refused.rc != 0 and "etcdserver" not in refused.stdout, refused
    answered = host.run(request + " --cert %s/member.crt --key %s/member.key", tls_dir, port, tls_dir, tls_dir)
    assert answered.rc == 0 and "etcdserver" in answered.stdout, answered
