"""Each component of infra/components/ under Pulumi's mocks: the objects it declares, their
names (explicit, no random suffix), labels and the settings they take from the stack file."""

from __future__ import annotations

import base64

import config
import pulumi
import pytest
from components.access_roles import AccessRoles
from components.database_access import DatabaseAccess
from components.labels import REQUIRED
from components.monitoring_hooks import MonitoringHooks
from components.network_flows import NetworkFlows
from components.service_namespace import ServiceNamespace
from components.sms_access import SmsAccess
from components.web_service import WebService
from infra_mocks import MOCKS, REPO, is_secret, meta, stack_file_config, unsecret

RAW = stack_file_config(REPO / "stacks/Pulumi.lab.yaml")
STACK = config.parse({key.split(":", 1)[1]: value for key, value in RAW.items() if key.startswith("govops:")})
CFM, SCORECARD = STACK.services
PLATFORM = STACK.platform


@pytest.fixture(autouse=True)
def fresh_mocks():
    MOCKS.resources.clear()


def kubernetes_objects() -> list:
    return [r for r in MOCKS.resources if r.typ.startswith("kubernetes:")]


def assert_named_and_labelled(environment: str = "lab") -> None:
    for resource in kubernetes_objects():
        metadata = meta(resource)
        assert metadata.get("name"), f"{resource.typ} {resource.name} has no explicit name"
        assert all(metadata["labels"].get(key) for key in REQUIRED), f"{resource.typ} {resource.name}"
        assert metadata["labels"]["govops.gov/environment"] == environment


def decoded(data: dict[str, str]) -> dict[str, str]:
    return {key: base64.b64decode(value).decode() for key, value in data.items()}


def declare(build):
    """What `build` returns, once every resource it declared has registered with the mocks."""
    built = []
    pulumi.runtime.test(lambda: built.append(build()))()
    return built[0]


def test_service_namespace_declares_labelled_quota_limits_and_default_deny():
    component = declare(lambda: ServiceNamespace(CFM, "lab", PLATFORM))

    assert isinstance(component.namespace, pulumi.Output)
    ns = MOCKS.of_type("kubernetes:core/v1:Namespace")[0]
    assert ns.inputs["metadata"]["name"] == "cfm"
    labels = ns.inputs["metadata"]["labels"]
    assert labels["govops.gov/data-classification"] == "confidential" and labels["govops.gov/owner"] == "cfm-team"
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    quota = MOCKS.named("ResourceQuota", "cfm", "quota").inputs["spec"]["hard"]
    assert quota == {"limits.cpu": "4", "limits.memory": "8Gi", "pods": "40"}
    limits = MOCKS.named("LimitRange", "cfm", "default-limits").inputs["spec"]["limits"][0]
    assert limits["default"] == {"cpu": "500m", "memory": "512Mi"}
    policy = MOCKS.named("NetworkPolicy", "cfm", "default-deny").inputs["spec"]
    assert policy["podSelector"] == {} and policy["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in policy and "egress" not in policy
    assert {r.typ for r in MOCKS.resources} >= {"govops:platform:NetworkFlows", "govops:platform:AccessRoles"}
    assert_named_and_labelled()


def test_network_flows_open_only_what_the_service_needs():
    cfm = declare(lambda: NetworkFlows(CFM, "lab", PLATFORM, "cfm"))
    scorecard = NetworkFlows(SCORECARD, "lab", PLATFORM, "scorecard")
    flows = ["allow-from-ingress-controller", "allow-from-monitoring", "allow-dns", "allow-database-routers"]
    assert cfm.policies == [*flows, "allow-sms-gateways"]
    assert scorecard.policies == flows, "no SMS for the scorecards"

    spec = {name: MOCKS.named("NetworkPolicy", "cfm", name).inputs["spec"] for name in cfm.policies}
    controller = spec["allow-from-ingress-controller"]
    assert controller["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/part-of": "cfm",
        "app.kubernetes.io/name": "web",
    }
    assert controller["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "ingress-nginx"
    }
    assert controller["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 8080}]
    monitoring = spec["allow-from-monitoring"]["ingress"][0]
    assert monitoring["from"] == [{"ipBlock": {"cidr": "10.231.0.51/32"}}]
    assert monitoring["ports"] == [{"protocol": "TCP", "port": 9090}]
    dns = spec["allow-dns"]["egress"][0]
    assert dns["to"][0]["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
    assert sorted(p["protocol"] for p in dns["ports"]) == ["TCP", "UDP"]
    routers = spec["allow-database-routers"]
    assert routers["policyTypes"] == ["Egress"] and routers["podSelector"] == {}
    assert [peer["ipBlock"]["cidr"] for peer in routers["egress"][0]["to"]] == [
        "10.231.0.11/32",
        "10.231.0.12/32",
        "10.231.0.13/32",
    ]
    assert [p["port"] for p in routers["egress"][0]["ports"]] == [5000, 5001]
    gateways = spec["allow-sms-gateways"]["egress"][0]
    assert [peer["ipBlock"]["cidr"] for peer in gateways["to"]] == ["10.231.0.31/32", "10.231.0.32/32"]
    assert gateways["ports"] == [{"protocol": "TCP", "port": 13013}]
    assert_named_and_labelled()


def test_access_roles_bind_the_stack_files_groups_and_never_grant_secrets():
    component = declare(lambda: AccessRoles(CFM, "lab", "cfm"))

    names = ["deployer", "auditor"]
    assert isinstance(component.deployer_role, pulumi.Output)
    for role in names:
        rules = MOCKS.named("Role", "cfm", role).inputs["rules"]
        assert not any("secrets" in rule["resources"] for rule in rules), f"{role} may read Secrets"
        binding = MOCKS.named("RoleBinding", "cfm", role).inputs
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role}
    auditor = MOCKS.named("Role", "cfm", "auditor").inputs["rules"]
    assert {verb for rule in auditor for verb in rule["verbs"]} == {"get", "list", "watch"}
    deployer = MOCKS.named("Role", "cfm", "deployer").inputs["rules"]
    assert not any(rule["apiGroups"] == ["rbac.authorization.k8s.io"] for rule in deployer)
    assert not any("networkpolicies" in rule["resources"] for rule in deployer)
    subjects = {r: MOCKS.named("RoleBinding", "cfm", r).inputs["subjects"] for r in names}
    assert subjects["deployer"] == [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "cfm-ci"}]
    assert [s["name"] for s in subjects["auditor"]] == ["govops-auditors"]
    assert_named_and_labelled()


def test_web_service_is_hardened_probed_sized_spread_and_pinned():
    hooks = {"prometheus.io/scrape": "true", "govops.gov/slo-window": "30d"}
    declare(lambda: WebService(CFM, "lab", PLATFORM, "cfm", [], hooks))

    deployment = MOCKS.named("Deployment", "cfm", "web").inputs
    spec, pod = deployment["spec"], deployment["spec"]["template"]["spec"]
    assert spec["replicas"] == 2 and spec["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    assert spec["selector"]["matchLabels"] == {"app.kubernetes.io/part-of": "cfm", "app.kubernetes.io/name": "web"}
    assert spec["template"]["metadata"]["annotations"] == hooks
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert container["image"] == CFM.web.image and "@sha256:" in container["image"]
    assert container["resources"] == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"cpu": "500m", "memory": "512Mi"},
    }
    context = container["securityContext"]
    assert context["allowPrivilegeEscalation"] is False and context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    (spread,) = pod["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname" and spread["maxSkew"] == 1
    service = MOCKS.named("Service", "cfm", "web").inputs
    assert service["spec"]["type"] == "ClusterIP"
    assert "prometheus.io/scrape" not in service["metadata"]["annotations"], "pods are scraped, not the Service"
    budget = MOCKS.named("PodDisruptionBudget", "cfm", "web").inputs["spec"]
    assert budget["maxUnavailable"] == 1
    autoscaler = MOCKS.named("HorizontalPodAutoscaler", "cfm", "web").inputs["spec"]
    assert (autoscaler["minReplicas"], autoscaler["maxReplicas"]) == (2, 4)
    assert autoscaler["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}
    ingress = MOCKS.named("Ingress", "cfm", "web").inputs["spec"]
    assert ingress["ingressClassName"] == "nginx"
    assert ingress["tls"] == [{"hosts": ["cfm.lab.govops.internal"], "secretName": "cfm-tls"}]
    assert ingress["rules"][0]["host"] == "cfm.lab.govops.internal"
    assert MOCKS.named("ServiceAccount", "cfm", "web").inputs["automountServiceAccountToken"] is False
    assert_named_and_labelled()


def test_database_access_points_two_services_at_the_routers_and_keeps_the_password_secret():
    declare(lambda: DatabaseAccess(CFM, "lab", PLATFORM, "cfm", pulumi.Output.secret("pa:ss/word")))

    secret = MOCKS.named("Secret", "cfm", "db").inputs
    assert "stringData" not in secret, "data: the API server never shows stringData again (a diff forever)"
    assert is_secret(secret["data"]), "the whole connection settings are a Pulumi secret"
    settings = decoded(unsecret(secret["data"]))
    assert settings["PGHOST"] == "db-rw.cfm.svc" and settings["PGPORT"] == "5000"
    assert (settings["PGUSER"], settings["PGDATABASE"], settings["PGSSLMODE"]) == ("cfm_app", "cfm", "verify-ca")
    assert settings["PGPASSWORD"] == "pa:ss/word"
    assert settings["DATABASE_URL"] == (
        "postgresql://cfm_app:pa%3Ass%2Fword@db-rw.cfm.svc:5000/cfm?sslmode=verify-ca&connect_timeout=2"
        "&keepalives_idle=2&keepalives_interval=1&keepalives_count=2&tcp_user_timeout=3000"
    )
    assert settings["PGCONNECT_TIMEOUT"] == "2", "a dead router is left after 2 s for the next"
    assert settings["DATABASE_READONLY_URL"].startswith("postgresql://cfm_app:pa%3Ass%2Fword@db-ro.cfm.svc:5001/")
    for name, port in (("db-rw", 5000), ("db-ro", 5001)):
        service = MOCKS.named("Service", "cfm", name).inputs["spec"]
        assert "selector" not in service, "selector-less: the EndpointSlices name the routers"
        assert service["ports"] == [{"name": "postgres", "port": port, "targetPort": port, "protocol": "TCP"}]
        endpoints = MOCKS.named("EndpointSlice", "cfm", f"{name}-routers").inputs
        assert endpoints["metadata"]["labels"]["kubernetes.io/service-name"] == name
        assert endpoints["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == "pulumi.govops.gov"
        assert [e["addresses"] for e in endpoints["endpoints"]] == [["10.231.0.11"], ["10.231.0.12"], ["10.231.0.13"]]
        assert endpoints["ports"] == [{"name": "postgres", "port": port, "protocol": "TCP"}]
    assert_named_and_labelled()


def test_sms_access_lists_both_gateways_and_the_callbacks():
    declare(lambda: SmsAccess(CFM, "lab", PLATFORM, "cfm", pulumi.Output.secret("sendsms-pw")))

    secret = MOCKS.named("Secret", "cfm", "sms").inputs
    assert is_secret(secret["data"])
    assert decoded(unsecret(secret["data"])) == {
        "SENDSMS_URLS": "http://10.231.0.31:13013/cgi-bin/sendsms,http://10.231.0.32:13013/cgi-bin/sendsms",
        "SENDSMS_USERNAME": "cfm",
        "SENDSMS_PASSWORD": "sendsms-pw",
    }
    assert MOCKS.named("ConfigMap", "cfm", "sms-callbacks").inputs["data"] == {
        "SMS_CALLBACK_BASE_URL": "http://smsc1:8775/callbacks",
        "SMS_DLR_URL": "http://smsc1:8775/callbacks/dlr",
        "SMS_MO_URL": "http://smsc1:8775/callbacks/mo",
    }
    assert_named_and_labelled()


def test_monitoring_hooks_give_scrape_annotations_and_the_slos_as_data():
    component = declare(lambda: MonitoringHooks(CFM, "lab", "cfm"))
    assert component.annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "9090",
        "prometheus.io/path": "/metrics",
        "govops.gov/slo-availability-target": "99.5",
        "govops.gov/slo-latency-target-ms": "800",
        "govops.gov/slo-latency-percentile": "95",
        "govops.gov/slo-window": "30d",
    }

    data = MOCKS.named("ConfigMap", "cfm", "slo").inputs["data"]
    assert data == {
        "availability-target": "99.5",
        "latency-target-ms": "800",
        "latency-percentile": "95",
        "window": "30d",
    }
    assert_named_and_labelled()
