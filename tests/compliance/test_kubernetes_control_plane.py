"""CIS Kubernetes v1.9 section 1 items for the API server, controller manager and scheduler, read
from the running processes' command lines (as kube-bench does). The kit runs them as systemd
services, so the file-permission items for static pod manifests do not apply."""

from __future__ import annotations

import pytest

from tests.compliance.controls import control
from tests.compliance.process_flags import process_flags

testinfra_hosts = ["ansible://k8s_control_plane"]


def apiserver(host, evidence) -> dict[str, str]:
    return process_flags(host, evidence, "kube-apiserver")


@control(
    "CIS-K8S-1.2.1",
    title="The API server's --anonymous-auth argument is set to false",
    rationale="Requests without credentials are refused instead of being served as system:anonymous.",
    severity="medium",
    source="CIS Kubernetes",
)
def test_apiserver_anonymous_auth(host, evidence):
    assert apiserver(host, evidence).get("--anonymous-auth", "true") == "false"


@control(
    "CIS-K8S-1.2.6",
    title="The API server's --authorization-mode is not AlwaysAllow, and includes Node and RBAC (1.2.7, 1.2.8)",
    rationale="Every request is authorised: kubelets by the Node authorizer, everyone else by RBAC roles.",
    severity="critical",
    source="CIS Kubernetes",
)
def test_apiserver_authorization_mode(host, evidence):
    modes = apiserver(host, evidence).get("--authorization-mode", "AlwaysAllow").split(",")
    assert "AlwaysAllow" not in modes and "Node" in modes and "RBAC" in modes, modes


@control(
    "CIS-K8S-1.2.14",
    title="The admission control plugin NodeRestriction is set",
    rationale="A kubelet may change only its own Node and the Pods bound to it.",
    severity="high",
    source="CIS Kubernetes",
)
def test_apiserver_node_restriction(host, evidence):
    assert "NodeRestriction" in apiserver(host, evidence).get("--enable-admission-plugins", "").split(",")


@pytest.mark.parametrize(
    "process",
    [
        pytest.param(process, id=cid, marks=control(cid, title=f"{process}'s --profiling argument is set to false",
            rationale="The profiling endpoint exposes program internals and costs resources; it is for debugging only.",
            severity="low", source="CIS Kubernetes"))
        for cid, process in (("CIS-K8S-1.2.15", "kube-apiserver"), ("CIS-K8S-1.3.2", "kube-controller-manager"),
                             ("CIS-K8S-1.4.1", "kube-scheduler"))
    ],
)  # fmt: skip
def test_profiling_off(host, evidence, process):
    assert process_flags(host, evidence, process).get("--profiling", "true") == "false"


@control(
    "CIS-K8S-1.2.16",
    title="The API server keeps an audit log (--audit-log-path, maxage >= 30, maxbackup >= 10, maxsize >= 100)",
    rationale="Who did what to the cluster, and when, is on record for 30 days (1.2.16 to 1.2.19).",
    severity="high",
    source="CIS Kubernetes",
)
def test_apiserver_audit_log(host, evidence):
    flags = apiserver(host, evidence)
    assert flags.get("--audit-log-path") and flags.get("--audit-policy-file")
    assert int(flags.get("--audit-log-maxage", 0)) >= 30
    assert int(flags.get("--audit-log-maxbackup", 0)) >= 10
    assert int(flags.get("--audit-log-maxsize", 0)) >= 100


@control(
    "CIS-K8S-1.2.22",
    title="The API server verifies service account tokens (--service-account-key-file, --service-account-lookup)",
    rationale="A token is honoured only if signed by the cluster's key and its service account still exists.",
    severity="high",
    source="CIS Kubernetes",
)
def test_apiserver_service_accounts(host, evidence):
    flags = apiserver(host, evidence)
    assert flags.get("--service-account-key-file")
    assert flags.get("--service-account-lookup", "true") == "true"


@control(
    "CIS-K8S-1.2.24",
    title="The API server serves TLS 1.2 or later, verifies client certificates and talks to etcd over TLS",
    rationale="--tls-cert-file/--tls-private-key-file (1.2.24), --client-ca-file (1.2.25), "
    "--etcd-certfile/--etcd-keyfile (1.2.23) and --etcd-cafile (1.2.26) are set.",
    severity="critical",
    source="CIS Kubernetes",
)
def test_apiserver_tls(host, evidence):
    flags = apiserver(host, evidence)
    required = ("--tls-cert-file", "--tls-private-key-file", "--client-ca-file", "--etcd-certfile", "--etcd-keyfile",
                "--etcd-cafile")  # fmt: skip
    assert not [name for name in required if not flags.get(name)]
    assert flags.get("--tls-min-version") in ("VersionTLS12", "VersionTLS13")
    assert all(url.startswith("https://") for url in flags.get("--etcd-servers", "").split(","))


@control(
    "CIS-K8S-1.3.3",
    title="The controller manager uses service account credentials, its own key and the root CA (1.3.3 to 1.3.5)",
    rationale="Each controller acts with its own, least-privileged identity, and pods get the cluster's CA.",
    severity="high",
    source="CIS Kubernetes",
)
def test_controller_manager_credentials(host, evidence):
    flags = process_flags(host, evidence, "kube-controller-manager")
    assert flags.get("--use-service-account-credentials") == "true"
    assert flags.get("--service-account-private-key-file") and flags.get("--root-ca-file")


@pytest.mark.parametrize(
    "process",
    [
        pytest.param(process, id=cid, marks=control(cid, title=f"{process}'s --bind-address is 127.0.0.1",
            rationale="Its metrics and health endpoints are not reachable from other hosts.",
            severity="medium", source="CIS Kubernetes"))
        for cid, process in (("CIS-K8S-1.3.7", "kube-controller-manager"), ("CIS-K8S-1.4.2", "kube-scheduler"))
    ],
)  # fmt: skip
def test_bind_address_local(host, evidence, process):
    assert process_flags(host, evidence, process).get("--bind-address") == "127.0.0.1"
