"""Health of each service's workloads as the Pulumi program declares them (make up ENV=...), read
back through the API as the stack file says they should be: the web Deployment available with
the stack's replicas, its Service, Ingress, disruption budget and autoscaler, the database and
SMS access objects, and the required labels on every object of the service's namespace."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from test_kubernetes_control_plane import ControlPlaneVars, api

# The program's own reading of a stack file (infra/config.py) and its label keys.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "infra"))
import config
from components.labels import REQUIRED

testinfra_hosts = ["ansible://k8s_control_plane"]

# Every kind the program declares in a service's namespace, by API path.
NAMESPACED = {
    "ResourceQuota": "/api/v1/namespaces/{ns}/resourcequotas",
    "LimitRange": "/api/v1/namespaces/{ns}/limitranges",
    "NetworkPolicy": "/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies",
    "Role": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles",
    "RoleBinding": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings",
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments",
    "Service": "/api/v1/namespaces/{ns}/services",
    "PodDisruptionBudget": "/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets",
    "HorizontalPodAutoscaler": "/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers",
    "Ingress": "/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses",
    "EndpointSlice": "/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices",
    "ConfigMap": "/api/v1/namespaces/{ns}/configmaps",
    "Secret": "/api/v1/namespaces/{ns}/secrets",
    "ServiceAccount": "/api/v1/namespaces/{ns}/serviceaccounts",
}
# Made by Kubernetes itself, not by the program: in every namespace, and for a Service with a selector.
BUILT_IN = {("ConfigMap", "kube-root-ca.crt"), ("ServiceAccount", "default")}
CONTROLLER_SLICES = ("endpointslice.kubernetes.io/managed-by", "endpointslice-controller.k8s.io")


@pytest.fixture
def kcp(role_vars):
    return ControlPlaneVars(role_vars("kubernetes_control_plane"))


@pytest.fixture(scope="module")
def stack(inventory):
    """The stack of the environment whose inventory is checked (stacks/<env> -> Pulumi.<env>.yaml)."""
    path = Path(inventory).resolve()
    raw = yaml.safe_load((path.parent / f"Pulumi.{path.name}.yaml").read_text())["config"]
    return config.parse({key.split(":", 1)[1]: value for key, value in raw.items() if key.startswith("govops:")})


def web_services(stack):
    return [service for service in stack.services if service.web]


def test_each_web_deployment_is_available_with_the_stacks_replicas(host, kcp, stack):
    for service in web_services(stack):
        deployment = api(host, kcp, f"/apis/apps/v1/namespaces/{service.name}/deployments/web")
        status = deployment["status"]
        conditions = {c["type"]: c["status"] for c in status.get("conditions", [])}
        assert conditions.get("Available") == "True", f"{service.name}: {status}"
        assert status.get("availableReplicas", 0) >= service.web.replicas, f"{service.name}: {status}"
        image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        assert image == service.web.image and "@sha256:" in image


def test_each_web_tier_has_its_service_ingress_budget_and_autoscaler(host, kcp, stack):
    for service in web_services(stack):
        ns = service.name
        front = api(host, kcp, f"/api/v1/namespaces/{ns}/services/web")["spec"]
        assert front["type"] == service.web.service_type
        ingress = api(host, kcp, f"/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses/web")["spec"]
        assert ingress["rules"][0]["host"] == service.web.hostname
        assert ingress["tls"][0]["secretName"] == service.web.tls_secret
        budget = api(host, kcp, f"/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets/web")["spec"]
        assert budget["maxUnavailable"] == 1
        autoscaler = api(host, kcp, f"/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers/web")["spec"]
        assert (autoscaler["minReplicas"], autoscaler["maxReplicas"]) == (
            service.web.replicas,
            service.web.max_replicas,
        )


def test_database_and_sms_access_point_at_the_routers_and_gateways(host, kcp, stack):
    platform = stack.platform
    for service in stack.services:
        ns = service.name
        if service.database:
            for name, port in zip(("db-rw", "db-ro"), platform.router_ports, strict=True):
                assert api(host, kcp, f"/api/v1/namespaces/{ns}/services/{name}")["spec"]["ports"][0]["port"] == port
                path = f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices/{name}-routers"
                endpoints = api(host, kcp, path)["endpoints"]
                assert [e["addresses"][0] for e in endpoints] == list(platform.database_routers)
            assert api(host, kcp, f"/api/v1/namespaces/{ns}/secrets/db")["type"] == "Opaque"
        if service.sms:
            assert api(host, kcp, f"/api/v1/namespaces/{ns}/secrets/sms")["type"] == "Opaque"
            callbacks = api(host, kcp, f"/api/v1/namespaces/{ns}/configmaps/sms-callbacks")["data"]
            assert callbacks["SMS_CALLBACK_BASE_URL"] == service.sms.callback_base_url


def test_every_object_of_a_service_carries_the_required_labels(host, kcp, stack):
    for service in web_services(stack):
        unlabelled = []
        for kind, path in NAMESPACED.items():
            for item in api(host, kcp, path.format(ns=service.name))["items"]:
                metadata = item["metadata"]
                labels = metadata.get("labels") or {}
                if (kind, metadata["name"]) in BUILT_IN or labels.get(CONTROLLER_SLICES[0]) == CONTROLLER_SLICES[1]:
                    continue
                if not all(labels.get(key) for key in REQUIRED):
                    unlabelled.append(f"{kind} {metadata['name']}")
                elif labels["govops.gov/environment"] != stack.environment:
                    unlabelled.append(f"{kind} {metadata['name']}: environment {labels['govops.gov/environment']}")
        assert not unlabelled, f"{service.name}: {unlabelled}"


def test_each_namespace_allows_only_its_flows_and_binds_its_groups(host, kcp, stack):
    for service in web_services(stack):
        ns = service.name
        policies = api(host, kcp, f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies")["items"]
        names = {policy["metadata"]["name"] for policy in policies}
        expected = {"default-deny", "allow-from-ingress-controller", "allow-from-monitoring", "allow-dns"}
        expected |= {"allow-database-routers"} if service.database else set()
        expected |= {"allow-sms-gateways"} if service.sms else set()
        assert names == expected, ns
        for role, groups in (("deployer", service.access.deployers), ("auditor", service.access.auditors)):
            binding = api(host, kcp, f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings/{role}")
            assert [subject["name"] for subject in binding["subjects"]] == list(groups)
            rules = api(host, kcp, f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles/{role}")["rules"]
            assert not any("secrets" in rule.get("resources", []) for rule in rules), f"{ns}: {role} reads Secrets"
