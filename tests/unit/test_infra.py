"""The Pulumi program: typed stack config, and the objects a ServiceNamespace declares (mocks)."""

from __future__ import annotations

import sys
from pathlib import Path

import pulumi
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "infra"))

import config  # noqa: E402


class Mocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args):
        self.resources.append(args)
        return f"{args.name}-id", args.inputs

    def call(self, args):
        return {}


MOCKS = Mocks()
pulumi.runtime.set_mocks(MOCKS, preview=False)

from components.service_namespace import ServiceNamespace  # noqa: E402

VALID = {
    "environment": "lab",
    "services": [
        {"name": "cfm", "dataClassification": "confidential", "quota": {"cpu": "4", "memory": "8Gi", "pods": 40}}
    ],
}


def stack_settings(env: str) -> dict:
    raw = yaml.safe_load((REPO / f"stacks/Pulumi.{env}.yaml").read_text())["config"]
    return {key.split(":", 1)[1]: value for key, value in raw.items() if key.startswith("govops:")}


@pytest.mark.parametrize("env", ["lab", "staging", "prod"])
def test_every_stack_config_is_valid(env):
    parsed = config.parse(stack_settings(env))
    assert parsed.environment == env
    assert {s.name for s in parsed.services} == {"cfm", "scorecard"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"environment": "qa"}, "govops:environment must be one of lab, staging, prod; got 'qa'"),
        ({"services": []}, "govops:services must be a non-empty list"),
        ({"services": [{**VALID["services"][0], "name": "CFM_App"}]}, "govops:services[0].name must be a DNS label"),
        (
            {"services": [{**VALID["services"][0], "dataClassification": "secret"}]},
            "govops:services[0].dataClassification",
        ),
        ({"services": [{**VALID["services"][0], "quota": {"cpu": "lots", "memory": "8Gi", "pods": 4}}]}, "quota.cpu"),
        ({"services": [{**VALID["services"][0], "quota": {"cpu": "4", "memory": "8Gi", "pods": 0}}]}, "quota.pods"),
        ({"services": VALID["services"] * 2}, "names must be unique"),
    ],
)
def test_bad_config_is_named(change, message):
    with pytest.raises(config.ConfigError) as error:
        config.parse({**VALID, **change})
    assert message in str(error.value)


@pulumi.runtime.test
def test_service_namespace_declares_labelled_quota_limits_and_default_deny():
    MOCKS.resources.clear()
    service = config.parse(VALID).services[0]
    component = ServiceNamespace(service, "lab")

    def check(args):
        namespace = args[0]
        by_type = {r.typ: r for r in MOCKS.resources}
        assert namespace == "cfm"
        ns = by_type["kubernetes:core/v1:Namespace"]
        assert ns.inputs["metadata"]["name"] == "cfm"
        assert ns.inputs["metadata"]["labels"]["govops.gov/data-classification"] == "confidential"
        quota = by_type["kubernetes:core/v1:ResourceQuota"].inputs["spec"]["hard"]
        assert quota == {"limits.cpu": "4", "limits.memory": "8Gi", "pods": "40"}
        limits = by_type["kubernetes:core/v1:LimitRange"].inputs["spec"]["limits"][0]
        assert limits["default"] == {"cpu": "500m", "memory": "512Mi"}
        policy = by_type["kubernetes:networking.k8s.io/v1:NetworkPolicy"].inputs["spec"]
        assert policy["podSelector"] == {} and policy["policyTypes"] == ["Ingress", "Egress"]
        for resource in MOCKS.resources:
            if resource.typ.startswith("kubernetes:"):
                assert resource.inputs["metadata"].get("name"), f"{resource.typ} has no explicit name"
                assert resource.inputs["metadata"]["labels"]["govops.gov/environment"] == "lab"

    children = (component.quota.id, component.limit_range.id, component.default_deny.id)
    return pulumi.Output.all(component.namespace, *children).apply(check)
