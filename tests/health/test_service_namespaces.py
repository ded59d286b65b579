"""Health of the Kubernetes objects the Pulumi program declares (make up ENV=...): each
service's namespace with its labels, quota, default limits and default-deny network policy, read
back through the API as the stack file says they should be."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from test_kubernetes_control_plane import ControlPlaneVars, api

# The program's own reading of a stack file (infra/config.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "infra"))
import config

testinfra_hosts = ["ansible://k8s_control_plane"]


@pytest.fixture
def kcp(role_vars):
    return ControlPlaneVars(role_vars("kubernetes_control_plane"))


@pytest.fixture(scope="module")
def stack(inventory):
    """The stack of the environment whose inventory is checked (stacks/<env> -> Pulumi.<env>.yaml)."""
    path = Path(inventory).resolve()
    raw = yaml.safe_load((path.parent / f"Pulumi.{path.name}.yaml").read_text())["config"]
    return config.parse({key.split(":", 1)[1]: value for key, value in raw.items() if key.startswith("govops:")})


def test_each_service_has_its_labelled_namespace(host, kcp, stack):
    for service in stack.services:
        labels = api(host, kcp, f"/api/v1/namespaces/{service.name}")["metadata"]["labels"]
        assert labels["govops.gov/environment"] == stack.environment
        assert labels["govops.gov/data-classification"] == service.data_classification
        assert labels["app.kubernetes.io/managed-by"] == "pulumi"


def test_each_namespace_has_its_quota_and_default_limits(host, kcp, stack):
    for service in stack.services:
        quota = api(host, kcp, f"/api/v1/namespaces/{service.name}/resourcequotas/quota")
        assert quota["spec"]["hard"] == {
            "limits.cpu": service.quota.cpu,
            "limits.memory": service.quota.memory,
            "pods": str(service.quota.pods),
        }
        limits = api(host, kcp, f"/api/v1/namespaces/{service.name}/limitranges/default-limits")
        container = limits["spec"]["limits"][0]
        assert container["type"] == "Container" and container["default"] and container["defaultRequest"]


def test_each_namespace_denies_all_traffic_not_allowed_explicitly(host, kcp, stack):
    for service in stack.services:
        path = f"/apis/networking.k8s.io/v1/namespaces/{service.name}/networkpolicies/default-deny"
        spec = api(host, kcp, path)["spec"]
        assert spec["podSelector"] == {} and sorted(spec["policyTypes"]) == ["Egress", "Ingress"]
        assert not spec.get("ingress") and not spec.get("egress")
