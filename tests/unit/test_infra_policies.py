"""The policy pack (infra/policy/): each rule with an object that breaks it and one that passes,
the messages saying what to change, and the pinned pulumi_policy's analyzer with the secret
markers kept (as the engine runs it)."""

from __future__ import annotations

import copy
import sys

import pytest
from components.labels import REQUIRED
from google.protobuf import struct_pb2
from infra_mocks import INFRA, SECRET_SIG
from pulumi.runtime.proto import analyzer_pb2
from pulumi_policy import EnforcementLevel
from pulumi_policy.policy import _PolicyAnalyzerServicer

sys.path.insert(0, str(INFRA / "policy"))
import pack
import rules
import secret_marks

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
LABELS = {key: "x" for key in REQUIRED}
GOOD_POD = {
    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
    "containers": [
        {
            "name": "web",
            "image": "registry.govops.internal/cfm/web@sha256:" + "a" * 64,
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
            "securityContext": {"allowPrivilegeEscalation": False},
        }
    ],
}
GOOD_DEPLOYMENT = {
    "metadata": {"name": "web", "namespace": "cfm", "labels": dict(LABELS)},
    "spec": {"template": {"metadata": {"labels": dict(LABELS)}, "spec": GOOD_POD}},
}
NONE = rules.Allowances()


def changed(base: dict, path: str, value) -> dict:
    """A copy of `base` with one value set (or removed: value=KeyError); path a.b.0.c."""
    result = copy.deepcopy(base)
    *parents, last = path.split(".")
    target = result
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return result


def test_the_packs_labels_are_the_programs():
    assert rules.REQUIRED_LABELS == REQUIRED


def test_a_good_deployment_passes_every_rule():
    for name, (_, rule) in rules.RULES.items():
        assert rule(DEPLOYMENT, GOOD_DEPLOYMENT, NONE) == [], name


CONTAINER = "spec.template.spec.containers.0"


@pytest.mark.parametrize(
    ("rule", "path", "value", "message"),
    [
        (
            "containers-have-requests-and-limits",
            f"{CONTAINER}.resources.limits",
            KeyError,
            "Deployment cfm/web: container 'web' has no limits.cpu, limits.memory: set resources.requests and "
            "resources.limits for cpu and memory",
        ),
        (
            "containers-have-requests-and-limits",
            f"{CONTAINER}.resources",
            KeyError,
            "has no requests.cpu, requests.memory",
        ),
        (
            "containers-run-as-non-root",
            "spec.template.spec.securityContext.runAsNonRoot",
            KeyError,
            "container 'web' may run as root: set securityContext.runAsNonRoot: true",
        ),
        ("containers-run-as-non-root", f"{CONTAINER}.securityContext.runAsUser", 0, "may run as root"),
        (
            "containers-no-privilege-escalation",
            f"{CONTAINER}.securityContext.allowPrivilegeEscalation",
            KeyError,
            "container 'web' may gain privileges: set securityContext.allowPrivilegeEscalation: false",
        ),
        ("containers-no-privilege-escalation", f"{CONTAINER}.securityContext.privileged", True, "may gain privileges"),
        (
            "images-pinned-by-digest",
            f"{CONTAINER}.image",
            "registry.govops.internal/cfm/web:1.4.2",
            "image 'registry.govops.internal/cfm/web:1.4.2' is not pinned by digest: use <repository>@sha256:",
        ),
        ("images-pinned-by-digest", f"{CONTAINER}.image", "registry.govops.internal/cfm/web:latest", "never :latest"),
        ("images-pinned-by-digest", f"{CONTAINER}.image", "registry.govops.internal/cfm/web", "not pinned by digest"),
        ("images-pinned-by-digest", f"{CONTAINER}.image", "web@sha256:abc", "not pinned by digest"),
        (
            "required-labels",
            "metadata.labels.govops.gov/owner",
            KeyError,
            "Deployment cfm/web: metadata.labels lacks govops.gov/owner: every object carries the owner, service, "
            "environment and data classification labels",
        ),
        (
            "required-labels",
            "spec.template.metadata.labels",
            {},
            "spec.template.metadata.labels lacks govops.gov/owner",
        ),
    ],
)
def test_each_rule_refuses_what_breaks_it_and_says_what_to_change(rule, path, value, message):
    if path.startswith("metadata.labels.govops.gov/"):  # a label key holds dots: remove it by hand
        bad = copy.deepcopy(GOOD_DEPLOYMENT)
        del bad["metadata"]["labels"][path.removeprefix("metadata.labels.")]
    else:
        bad = changed(GOOD_DEPLOYMENT, path, value)
    problems = rules.RULES[rule][1](DEPLOYMENT, bad, NONE)
    assert len(problems) == 1 and message in problems[0], problems


def test_pod_specs_are_found_in_every_workload_kind():
    pod = {"metadata": {"labels": LABELS}, "spec": changed(GOOD_POD, "containers.0.image", "web:1")}
    cron = {"metadata": {"labels": LABELS}, "spec": {"jobTemplate": {"spec": {"template": pod}}}}
    assert rules.images_pinned_by_digest("kubernetes:batch/v1:CronJob", cron, NONE)
    assert rules.images_pinned_by_digest("kubernetes:core/v1:Pod", pod, NONE)
    init = changed(GOOD_DEPLOYMENT, "spec.template.spec.initContainers", [{"name": "migrate", "image": "m:1"}])
    assert len(rules.images_pinned_by_digest(DEPLOYMENT, init, NONE)) == 1
    assert rules.images_pinned_by_digest("kubernetes:core/v1:ConfigMap", {"data": {}}, NONE) == []


def test_labels_are_required_on_every_kubernetes_object_but_not_on_components():
    config_map = {"metadata": {"name": "slo", "namespace": "cfm", "labels": {}}}
    assert rules.required_labels("kubernetes:core/v1:ConfigMap", config_map, NONE)
    assert (
        rules.required_labels("kubernetes:core/v1:ConfigMap", {**config_map, "metadata": {"labels": LABELS}}, NONE)
        == []
    )
    assert rules.required_labels("govops:platform:WebService", {}, NONE) == []
    assert rules.required_labels("pulumi:providers:kubernetes", {}, NONE) == []


@pytest.mark.parametrize("kind", ["NodePort", "LoadBalancer"])
def test_an_exposed_service_needs_an_allowance_in_stack_config(kind):
    service = {"metadata": {"name": "web", "namespace": "cfm"}, "spec": {"type": kind}}
    (problem,) = rules.no_unallowed_exposure("kubernetes:core/v1:Service", service, NONE)
    assert problem == (
        f"Service cfm/web is of type {kind}, which opens it outside the cluster: keep it ClusterIP behind the "
        "Ingress, or allow it in the stack file with govops:exposedServices: ['cfm/web']"
    )
    allowed = rules.Allowances(exposed_services=frozenset({"cfm/web"}))
    assert rules.no_unallowed_exposure("kubernetes:core/v1:Service", service, allowed) == []
    internal = changed(service, "spec.type", "ClusterIP")
    assert rules.no_unallowed_exposure("kubernetes:core/v1:Service", internal, NONE) == []


def test_the_allowance_is_read_from_the_stacks_config(monkeypatch):
    monkeypatch.setenv("PULUMI_CONFIG", '{"govops:exposedServices": "[\\"cfm/web\\"]"}')
    assert pack.allowances() == rules.Allowances(exposed_services=frozenset({"cfm/web"}))


def test_secret_data_must_be_a_pulumi_secret():
    secret = {"metadata": {"name": "db", "namespace": "cfm"}, "stringData": {"PGPASSWORD": "hunter2"}}
    (problem,) = rules.secret_data_is_secret("kubernetes:core/v1:Secret", secret, NONE)
    assert problem.startswith("Secret cfm/db: stringData.PGPASSWORD is not a Pulumi secret")
    assert "pulumi config set --secret" in problem and "hunter2" not in problem
    marked = {**secret, "stringData": {"PGPASSWORD": secret_marks.SecretValue("hunter2")}}
    assert rules.secret_data_is_secret("kubernetes:core/v1:Secret", marked, NONE) == []


def test_secret_marks_follow_the_engines_markers_down_to_every_string():
    raw = {"stringData": {SECRET_SIG[0]: SECRET_SIG[1], "value": {"A": "1", "B": ["2"]}}, "type": "Opaque"}
    marked = secret_marks.mark(raw)
    assert isinstance(marked["stringData"]["A"], secret_marks.SecretValue)
    assert isinstance(marked["stringData"]["B"][0], secret_marks.SecretValue)
    assert not isinstance(marked["type"], secret_marks.SecretValue)


def analyze(resource_type: str, properties: dict) -> list[str]:
    """What the pinned pulumi_policy's analyzer reports for one resource, as the engine asks it."""
    servicer = _PolicyAnalyzerServicer("govops-workloads", "1.0.0", pack.policies(), EnforcementLevel.MANDATORY)
    struct = struct_pb2.Struct()
    struct.update(properties)
    request = analyzer_pb2.AnalyzeRequest(type=resource_type, properties=struct, urn="urn:x", name="x")
    return [diagnostic.message for diagnostic in servicer.Analyze(request, None).diagnostics]


def test_the_analyzer_sees_secrets_once_the_marks_are_installed(monkeypatch):
    monkeypatch.setattr("pulumi_policy.policy.deserialize_properties", secret_marks.deserialize_keeping_secrets)
    metadata = {"name": "db", "namespace": "cfm", "labels": LABELS}
    hidden = {SECRET_SIG[0]: SECRET_SIG[1], "value": {"PGPASSWORD": "hunter2"}}
    assert analyze("kubernetes:core/v1:Secret", {"metadata": metadata, "stringData": hidden}) == []
    plain = analyze("kubernetes:core/v1:Secret", {"metadata": metadata, "stringData": {"PGPASSWORD": "hunter2"}})
    assert len(plain) == 1 and "stringData.PGPASSWORD is not a Pulumi secret" in plain[0]


def test_without_the_marks_pulumi_policy_hides_secrets():
    """Why secret_marks exists: if a pulumi_policy upgrade keeps the markers, drop it."""
    metadata = {"name": "db", "namespace": "cfm", "labels": LABELS}
    hidden = {SECRET_SIG[0]: SECRET_SIG[1], "value": {"PGPASSWORD": "hunter2"}}
    assert len(analyze("kubernetes:core/v1:Secret", {"metadata": metadata, "stringData": hidden})) == 1
