"""Health of the Kubernetes control plane: the API, its security settings, kwok's nodes, and a
Deployment that must become available (created in its own namespace and removed afterwards)."""

from __future__ import annotations

import json
import time

import pytest

testinfra_hosts = ["ansible://k8s_control_plane"]

COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
CANARY_NAMESPACE = "govops-health"
CANARY = "health-canary"


class ControlPlaneVars:
    """The role's variables; a short name such as "bin_dir" is its private __kubernetes_control_plane_bin_dir."""

    def __init__(self, role_vars) -> None:
        self._vars = role_vars

    def __getitem__(self, name: str):
        return self._vars[
            name if name.startswith("kubernetes_control_plane_") else "__kubernetes_control_plane_" + name
        ]


@pytest.fixture
def kcp(role_vars):
    return ControlPlaneVars(role_vars("kubernetes_control_plane"))


def admin_curl(kcp) -> str:
    """curl as the cluster's administrator (the certificates the role made on the host)."""
    pki = kcp["pki_dir"]
    return f"curl --silent --show-error --fail --cacert {pki}/ca.crt --cert {pki}/admin.crt --key {pki}/admin.key"


def api(host, kcp, path: str, method: str = "GET", body: dict | None = None, content_type: str = "") -> dict:
    """A request to the API server as the administrator, from the host itself."""
    command = admin_curl(kcp) + " -X %s"
    args = [method]
    if body is not None:
        command += " -H %s --data-binary %s"
        args += [f"Content-Type: {content_type or 'application/json'}", json.dumps(body)]
    out = host.check_output(command + " %s", *args, kcp["api_url"] + path)
    return json.loads(out)


def test_components_run_and_start_at_boot(host):
    for name in COMPONENTS:
        service = host.service(name)
        assert service.is_running and service.is_enabled, name


def test_installed_binaries_are_the_pinned_ones(host, kcp):
    for name in COMPONENTS:
        assert host.file(f"{kcp['bin_dir']}/{name}").sha256sum == kcp["kubernetes_control_plane_sha256"][name]


def test_api_is_ready_and_serves_the_pinned_version(host, kcp):
    readyz = host.check_output(admin_curl(kcp) + " %s", kcp["api_url"] + "/readyz?verbose")
    assert readyz.rstrip().endswith("readyz check passed"), readyz
    assert "[+]etcd ok" in readyz
    version = api(host, kcp, "/version")
    assert version["gitVersion"] == host.check_output("%s/kube-apiserver --version", kcp["bin_dir"]).split()[-1]


def test_anonymous_requests_get_no_objects(host, kcp):
    status = host.check_output(
        "curl -s -o /dev/null -w '%%{http_code}' --cacert %s/ca.crt %s/api/v1/namespaces/kube-system/secrets",
        kcp["pki_dir"],
        kcp["api_url"],
    )
    assert status in ("401", "403"), status


def test_keys_are_private(host, kcp):
    for key in ("ca.key", "apiserver.key", "sa.key", "admin.key", "etcd-client.key"):
        f = host.file(f"{kcp['pki_dir']}/{key}")
        assert f.user == "root" and f.mode == 0o600, key


def test_requests_are_audited(host):
    audit = host.file("/var/log/kubernetes/audit.log")
    assert audit.exists and audit.size > 0 and audit.mode == 0o600


def test_every_simulated_node_is_ready(host, kcp):
    nodes = api(host, kcp, "/api/v1/nodes?labelSelector=type%3Dkwok")["items"]
    ready = {
        n["metadata"]["name"]
        for n in nodes
        if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", []))
    }
    assert ready == set(kcp["kubernetes_control_plane_kwok_nodes"])


def test_a_deployment_becomes_available(host, kcp):
    apply = "?fieldManager=govops-health&force=true"
    patch = "application/apply-patch+yaml"
    api(
        host,
        kcp,
        f"/api/v1/namespaces/{CANARY_NAMESPACE}{apply}",
        "PATCH",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": CANARY_NAMESPACE}},
        patch,
    )
    deployment = f"/apis/apps/v1/namespaces/{CANARY_NAMESPACE}/deployments/{CANARY}"
    labels = {"app.kubernetes.io/name": CANARY}
    api(
        host,
        kcp,
        deployment + apply,
        "PATCH",
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": CANARY},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "canary", "image": "registry.invalid/canary:1"}]},
                },
            },
        },
        patch,
    )
    try:
        deadline = time.monotonic() + 90
        status: dict = {}
        while time.monotonic() < deadline:
            status = api(host, kcp, deployment).get("status", {})
            if status.get("availableReplicas") == 3:
                break
            time.sleep(2)
        assert status.get("availableReplicas") == 3, status
        pods = api(
            host, kcp, f"/api/v1/namespaces/{CANARY_NAMESPACE}/pods?labelSelector=app.kubernetes.io%2Fname%3D{CANARY}"
        )
        assert {p["spec"]["nodeName"] for p in pods["items"]} <= set(kcp["kubernetes_control_plane_kwok_nodes"])
    finally:
        api(host, kcp, deployment, "DELETE")
