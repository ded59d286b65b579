"""The program's stack config (infra/config.py): every stack file parses, and each kind of wrong
setting is refused with a message that names the stack file and the key."""

from __future__ import annotations

import copy

import config
import pytest
from infra_mocks import REPO, stack_file_config

VALID = {
    "environment": "lab",
    "services": [
        {"name": "cfm", "dataClassification": "confidential", "quota": {"cpu": "4", "memory": "8Gi", "pods": 40}}
    ],
}


def stack_settings(env: str) -> dict:
    raw = stack_file_config(REPO / f"stacks/Pulumi.{env}.yaml")
    return {key.split(":", 1)[1]: value for key, value in raw.items() if key.startswith("govops:")}


def with_change(env: str, path: str, value) -> dict:
    """The stack's settings with one value changed; path like services.0.web.replicas."""
    settings = copy.deepcopy(stack_settings(env))
    *parents, last = path.split(".")
    target = settings
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return settings


@pytest.mark.parametrize("env", ["lab", "staging", "prod"])
def test_every_stack_config_is_valid(env):
    parsed = config.parse(stack_settings(env))
    assert parsed.environment == env
    assert {s.name for s in parsed.services} == {"cfm", "scorecard"}
    assert parsed.secret_keys() == ("cfmDatabasePassword", "scorecardDatabasePassword", "cfmSendsmsPassword")
    cfm = parsed.services[0]
    assert cfm.web and cfm.slo and cfm.access and cfm.database and cfm.sms
    assert parsed.services[1].sms is None, "the scorecards send no SMS"


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
        ({"services": [{**VALID["services"][0], "replicas": 2}]}, "govops:services[0]: unknown setting(s) replicas"),
    ],
)
def test_bad_config_is_named(change, message):
    with pytest.raises(config.ConfigError) as error:
        config.parse({**VALID, **change}, "stacks/Pulumi.lab.yaml")
    assert str(error.value).startswith("stacks/Pulumi.lab.yaml: ")
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("services.0.web.replicas", 0, "govops:services[0].web.replicas must be a whole number from 1 to 100; got 0"),
        ("services.0.web.replicas", "2", "web.replicas must be a whole number"),
        ("services.0.web.maxReplicas", 1, "web.maxReplicas must be a whole number from 2 to 200; got 1"),
        ("services.0.web.image", "", "web.image must be an image reference"),
        ("services.0.web.hostname", "CFM lab", "web.hostname must be a DNS name"),
        ("services.0.web.replica", 3, "govops:services[0].web: unknown setting(s) replica"),
        ("services.0.web.metricsPort", 8080, "web.metricsPort must differ from port"),
        ("services.0.web.serviceType", "External", "web.serviceType must be one of ClusterIP, NodePort, LoadBalancer"),
        ("services.0.web.resources.limits.cpu", "a lot", "web.resources.limits.cpu must be a Kubernetes quantity"),
        ("services.0.web.resources.requests", KeyError, "web.resources.requests must be a mapping"),
        ("services.0.web.maxReplicas", 20, "quota.cpu (4) is less than web.maxReplicas + 1"),
        ("services.0.slo.availability", 100, "slo.availability must be a number between 0 and 100"),
        ("services.0.access.deployers", [], "access.deployers must be a non-empty list of group names"),
        ("services.0.access", KeyError, "a service with web settings needs access and slo too"),
        ("services.0.database.sslMode", "disable", "database.sslMode must be one of require, verify-ca, verify-full"),
        ("services.0.database.passwordKey", "cfm-db", "database.passwordKey must be the secret config key"),
        ("services.1.database.passwordKey", "cfmDatabasePassword", "each passwordKey must name its own secret"),
        (
            "services.0.sms.callbackBaseUrl",
            "http://smsc1:8775/callbacks/",
            "sms.callbackBaseUrl must be an http(s) URL",
        ),
        ("services.0.sms.callbackBaseUrl", "smsc1:8775/callbacks", "sms.callbackBaseUrl must be an http(s) URL"),
        ("platform.databaseRouters", ["db1"], "govops:platform.databaseRouters must be a non-empty list of IPv4"),
        ("platform.smsGateways", [], "govops:platform.smsGateways must be a non-empty list"),
        ("platform", KeyError, "govops:platform is required"),
        ("exposedServices", ["web"], "govops:exposedServices must be a list of '<namespace>/<service>'"),
    ],
)
def test_a_wrong_setting_names_the_stack_file_and_the_key(path, value, message):
    with pytest.raises(config.ConfigError) as error:
        config.parse(with_change("lab", path, value), "stacks/Pulumi.lab.yaml")
    assert str(error.value).startswith("stacks/Pulumi.lab.yaml: ") and message in str(error.value), str(error.value)


def test_optional_web_settings_take_the_documented_defaults():
    web = config.parse(stack_settings("lab")).services[0].web
    assert (web.port, web.metrics_port, web.metrics_path, web.service_type) == (8080, 9090, "/metrics", "ClusterIP")
    assert (web.readiness_path, web.liveness_path, web.cpu_utilization) == ("/readyz", "/livez", 70)


@pytest.mark.parametrize(("text", "number"), [("500m", 0.5), ("2", 2.0), ("1.5", 1.5), ("512Mi", 512 * 2**20)])
def test_quantities_are_read_as_kubernetes_reads_them(text, number):
    assert config.quantity(text) == number


def test_a_secret_setting_must_be_a_pulumi_secret():
    assert config.check_secret("cfmDatabasePassword", "s3cret", True, "stacks/Pulumi.prod.yaml") == "s3cret"
    with pytest.raises(config.ConfigError) as plain:
        config.check_secret("cfmDatabasePassword", "s3cret", False, "stacks/Pulumi.prod.yaml")
    assert str(plain.value) == (
        "stacks/Pulumi.prod.yaml: govops:cfmDatabasePassword is plain text; a password must be a Pulumi secret: "
        "remove it and set it with `pulumi config set --secret govops:cfmDatabasePassword`"
    )
    with pytest.raises(config.ConfigError, match="govops:cfmSendsmsPassword is missing: set it with `pulumi config"):
        config.check_secret("cfmSendsmsPassword", None, False, "stacks/Pulumi.prod.yaml")
    assert "s3cret" not in str(plain.value), "the message never shows the value"
