"""Each stack file through the whole program (infra/__main__.py under Pulumi's mocks): what it
declares, the policy pack's verdict on those inputs, secrets refused as plain text; and the
settings the stack shares with the Ansible side agree with it (hosts, ports, database and SMS
accounts, the callback URL the Kannel role posts to, the lab's secret files)."""

from __future__ import annotations

import collections
import sys
from functools import cache

import config
import pulumi
import pytest
import yaml
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader
from ansible.template import Templar
from ansible.vars.manager import VariableManager
from components.sms_access import DLR_PATH, MO_PATH
from infra_mocks import INFRA, REPO, meta, run_program, stack_file_config

sys.path.insert(0, str(INFRA / "policy"))
import rules
import secret_marks

ENVS = ["lab", "staging", "prod"]
SECRETS = {"govops:cfmDatabasePassword": "db-pw", "govops:cfmSendsmsPassword": "sms-pw"}
SECRETS["govops:scorecardDatabasePassword"] = "db-pw-2"
# Per service: the namespace baseline (4) and its flows, the roles (4), the web tier (6), database
# access (5), the SLO ConfigMap (1); CFM adds a flow and SMS access (2).
PER_KIND = {
    "Namespace": 2,
    "ResourceQuota": 2,
    "LimitRange": 2,
    "NetworkPolicy": 11,
    "Role": 4,
    "RoleBinding": 4,
    "ServiceAccount": 2,
    "Deployment": 2,
    "Service": 6,
    "PodDisruptionBudget": 2,
    "HorizontalPodAutoscaler": 2,
    "Ingress": 2,
    "Secret": 3,
    "EndpointSlice": 4,
    "ConfigMap": 3,
}
COMPONENTS = {
    "ServiceNamespace": 2,
    "NetworkFlows": 2,
    "AccessRoles": 2,
    "DatabaseAccess": 2,
    "SmsAccess": 1,
    "MonitoringHooks": 2,
    "WebService": 2,
}


def settings(env: str) -> dict:
    return {key: value for key, value in stack_file_config(REPO / f"stacks/Pulumi.{env}.yaml").items()}


def parsed(env: str) -> config.StackConfig:
    return config.parse({k.split(":", 1)[1]: v for k, v in settings(env).items() if k.startswith("govops:")})


@cache
def declared(env: str) -> tuple:
    return tuple(run_program(env, settings(env), SECRETS).resources)


def kubernetes(env: str) -> list:
    return [r for r in declared(env) if r.typ.startswith("kubernetes:")]


@pytest.mark.parametrize("env", ENVS)
def test_each_stack_declares_both_services_in_full(env):
    kinds = collections.Counter(r.typ.rsplit(":", 1)[-1] for r in kubernetes(env))
    assert kinds == PER_KIND
    components = collections.Counter(r.typ.rsplit(":", 1)[-1] for r in declared(env) if r.typ.startswith("govops:"))
    assert components == COMPONENTS
    assert len(kubernetes(env)) == 51 and len(declared(env)) == 64
    names = {(r.typ.rsplit(":", 1)[-1], meta(r).get("namespace"), meta(r)["name"]) for r in kubernetes(env)}
    for namespace in ("cfm", "scorecard"):
        for kind, name in [
            ("Deployment", "web"),
            ("Service", "web"),
            ("Ingress", "web"),
            ("Service", "db-rw"),
            ("Service", "db-ro"),
            ("EndpointSlice", "db-rw-routers"),
            ("Secret", "db"),
            ("ConfigMap", "slo"),
            ("Role", "deployer"),
            ("Role", "auditor"),
            ("NetworkPolicy", "default-deny"),
        ]:
            assert (kind, namespace, name) in names
    assert ("Secret", "cfm", "sms") in names and ("Secret", "scorecard", "sms") not in names


@pytest.mark.parametrize("env", ENVS)
def test_the_policy_pack_passes_every_input_of_each_stack(env):
    allowances = rules.Allowances(frozenset(parsed(env).exposed_services))
    for resource in declared(env):
        props = secret_marks.mark(resource.inputs)  # the secret markers, as the engine sends them
        for name, (_, rule) in rules.RULES.items():
            assert rule(resource.typ, props, allowances) == [], f"{env}: {name} on {resource.typ} {resource.name}"


@pytest.mark.parametrize("env", ENVS)
def test_replicas_images_and_hostnames_come_from_the_stack_file(env):
    stack = parsed(env)
    for service in stack.services:
        (deployment,) = [
            r for r in kubernetes(env) if r.typ.endswith(":Deployment") and meta(r)["namespace"] == service.name
        ]
        assert deployment.inputs["spec"]["replicas"] == service.web.replicas
        assert deployment.inputs["spec"]["template"]["spec"]["containers"][0]["image"] == service.web.image
        (ingress,) = [r for r in kubernetes(env) if r.typ.endswith(":Ingress") and meta(r)["namespace"] == service.name]
        assert (
            ingress.inputs["spec"]["rules"][0]["host"]
            == service.web.hostname
            == f"{service.name}.{env}.govops.internal"
        )


def test_a_password_in_plain_config_stops_the_program_naming_the_key():
    plain = {"govops:cfmSendsmsPassword": "hunter2"}
    secrets = {k: v for k, v in SECRETS.items() if k not in plain}
    with pytest.raises(
        pulumi.RunError, match=r"stacks/Pulumi.prod.yaml: govops:cfmSendsmsPassword is plain text"
    ) as error:
        run_program("prod", settings("prod"), secrets, plain)
    assert "hunter2" not in str(error.value)


def test_a_missing_secret_stops_the_program_naming_the_key_and_the_command():
    secrets = {k: v for k, v in SECRETS.items() if k != "govops:scorecardDatabasePassword"}
    with pytest.raises(
        pulumi.RunError, match=r"govops:scorecardDatabasePassword is missing: set it with `pulumi config"
    ):
        run_program("staging", settings("staging"), secrets)


def test_a_wrong_setting_stops_the_program_naming_the_stack_file(monkeypatch):
    monkeypatch.setenv("GOVOPS_STACK_SOURCE", "/tmp/scratch/Pulumi.lab.yaml")
    wrong = {**settings("lab"), "govops:environment": "qa"}
    with pytest.raises(pulumi.RunError, match=r"^/tmp/scratch/Pulumi.lab.yaml: govops:environment must be one of"):
        run_program("lab", wrong, SECRETS)


@cache
def plugins_ready() -> None:
    init_plugin_loader()  # once: templates find ansible.builtin's lookups


@cache
def ansible_vars(env: str, host: str) -> tuple[Templar, dict]:
    """A host's variables as Ansible sees them (inventory and group_vars), and their templar."""
    plugins_ready()
    loader = DataLoader()
    inventory = InventoryManager(loader=loader, sources=[str(REPO / f"stacks/{env}")])
    variables = VariableManager(loader=loader, inventory=inventory).get_vars(host=inventory.get_host(host))
    return Templar(loader=loader, variables=variables), variables


def group_addresses(env: str, group: str) -> tuple[str, ...]:
    hosts = yaml.safe_load((REPO / f"stacks/{env}/hosts.yml").read_text())["all"]["children"][group]["hosts"]
    return tuple(host["private_address"] for host in hosts.values())


@pytest.mark.parametrize("env", ENVS)
def test_the_platform_addresses_are_the_inventorys(env):
    platform = parsed(env).platform
    assert platform.database_routers == group_addresses(env, "db")
    assert platform.sms_gateways == group_addresses(env, "sms_gateway")
    assert platform.monitoring_servers == group_addresses(env, "monitoring")


def test_the_default_ports_are_the_roles_defaults():
    patroni = yaml.safe_load((REPO / "roles/patroni/defaults/main.yml").read_text())
    kannel = yaml.safe_load((REPO / "roles/kannel/defaults/main.yml").read_text())
    assert (patroni["patroni_router_rw_port"], patroni["patroni_router_ro_port"]) == config.ROUTER_PORTS
    assert kannel["kannel_sendsms_port"] == config.SENDSMS_PORT


@pytest.mark.parametrize("env", ENVS)
def test_the_kannel_callbacks_start_with_the_stacks_callback_base_url(env):
    """The one setting both sides must agree on: kannel_dlr_url is <callbackBaseUrl>/dlr?...,
    kannel_mo_url <callbackBaseUrl>/mo?... (as templated for a gateway of the environment)."""
    (cfm,) = [s for s in parsed(env).services if s.sms]
    templar, variables = ansible_vars(env, "sms1")
    base = cfm.sms.callback_base_url
    assert templar.template(variables["kannel_dlr_url"]).startswith(f"{base}{DLR_PATH}?")
    assert templar.template(variables["kannel_mo_url"]).startswith(f"{base}{MO_PATH}?")
    if env != "lab":  # in the lab the SMSC simulator records the callbacks (kwok runs no pods)
        assert base.startswith(f"https://{cfm.web.hostname}/"), "through the service's own Ingress"


@pytest.mark.parametrize("env", ENVS)
def test_the_database_and_sendsms_accounts_are_the_roles(env):
    _, variables = ansible_vars(env, "db1")
    databases = {db["name"]: db["app_user"] for db in variables["patroni_databases"]}
    for service in parsed(env).services:
        assert databases[service.database.name] == service.database.user
    _, variables = ansible_vars(env, "sms1")
    accounts = [user["username"] for user in variables["kannel_sendsms_users"]]
    assert [s.sms.username for s in parsed(env).services if s.sms] == ["cfm"] and "cfm" in accounts


def test_the_lab_secret_files_are_the_ones_the_roles_generate():
    files = settings("lab")["govops:labSecretFiles"]
    assert set(files) == set(parsed("lab").secret_keys())
    _, variables = ansible_vars("lab", "db1")
    by_user = {db["app_user"]: db["app_password"] for db in variables["patroni_databases"]}
    for service in parsed("lab").services:
        assert f"/secrets/{files[service.database.password_key]}'" in by_user[service.database.user]
    _, variables = ansible_vars("lab", "sms1")
    assert f"/secrets/{files['cfmSendsmsPassword']}'" in variables["lab_sendsms_password"]
