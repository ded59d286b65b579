"""CIS Kubernetes section 2 (etcd), applied to both etcd clusters the kit runs: the Kubernetes
datastore and Patroni's DCS on the database hosts. Read from the running etcd."""

from __future__ import annotations

from tests.compliance.controls import control
from tests.compliance.process_flags import process_flags

testinfra_hosts = ["ansible://db", "ansible://k8s_control_plane"]


def etcd(host, evidence) -> dict[str, str]:
    return process_flags(host, evidence, "etcd")


@control(
    "CIS-K8S-2.1",
    title="etcd serves clients over TLS (--cert-file and --key-file are set)",
    rationale="What etcd stores (the cluster's state, the database leader key) crosses the network encrypted.",
    severity="critical",
    source="CIS Kubernetes",
)
def test_etcd_client_tls(host, evidence):
    flags = etcd(host, evidence)
    assert flags.get("--cert-file") and flags.get("--key-file")
    assert all(url.startswith("https://") for url in flags.get("--listen-client-urls", "").split(","))


@control(
    "CIS-K8S-2.2",
    title="etcd requires client certificates (--client-cert-auth=true)",
    rationale="Only clients with a certificate from the cluster's CA may read or write etcd.",
    severity="critical",
    source="CIS Kubernetes",
)
def test_etcd_client_cert_auth(host, evidence):
    assert etcd(host, evidence).get("--client-cert-auth") == "true"


@control(
    "CIS-K8S-2.3",
    title="etcd does not use self-signed certificates for clients (--auto-tls is not true)",
    rationale="Self-signed certificates cannot be verified, so they would not stop an impostor.",
    severity="high",
    source="CIS Kubernetes",
)
def test_etcd_no_auto_tls(host, evidence):
    assert etcd(host, evidence).get("--auto-tls", "false") == "false"


@control(
    "CIS-K8S-2.4",
    title="etcd peers talk over TLS (--peer-cert-file and --peer-key-file are set)",
    rationale="Replication between members crosses the network encrypted.",
    severity="critical",
    source="CIS Kubernetes",
)
def test_etcd_peer_tls(host, evidence):
    flags = etcd(host, evidence)
    assert flags.get("--peer-cert-file") and flags.get("--peer-key-file")


@control(
    "CIS-K8S-2.5",
    title="etcd requires peer certificates (--peer-client-cert-auth=true)",
    rationale="Only members with a certificate from the cluster's CA may join.",
    severity="critical",
    source="CIS Kubernetes",
)
def test_etcd_peer_cert_auth(host, evidence):
    assert etcd(host, evidence).get("--peer-client-cert-auth") == "true"


@control(
    "CIS-K8S-2.6",
    title="etcd does not use self-signed certificates for peers (--peer-auto-tls is not true)",
    rationale="A self-signed peer certificate cannot be verified.",
    severity="high",
    source="CIS Kubernetes",
)
def test_etcd_no_peer_auto_tls(host, evidence):
    assert etcd(host, evidence).get("--peer-auto-tls", "false") == "false"
