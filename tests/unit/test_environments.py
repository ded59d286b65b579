"""Staging and prod, checked on every `make unit` as a deploy first checks them (issue 13).

Only the lab is ever deployed here; these inventories read their secrets from a vault that does not
exist. With the test vault of tests/fixtures/vault/, for every host and every role site.yml gives
it: the role's templates render with the host's variables, and its argument spec and preflight
checks pass (playbooks/validate.yml, run on the controller: no host is reached).
"""

from __future__ import annotations

import pytest
from environment_check import (
    STACKS,
    InputCheck,
    deployed_environments,
    inventory_copy,
    roles_by_host,
    template_failures,
)

# tests/host_checks.py sets up Ansible's plugin loader once per inventory it opens
pytestmark = pytest.mark.filterwarnings("ignore:AnsibleCollectionFinder has already been configured")

CASES = [
    (env, host, role)
    for env in deployed_environments()
    for host, roles in roles_by_host(STACKS / env).items()
    for role in roles
]


@pytest.fixture(scope="session")
def environments(tmp_path_factory):
    """Each environment's inventory with its test vault, and its input check, started at once for
    all of them: they run side by side while the templates are rendered."""
    base = tmp_path_factory.mktemp("environments")
    inventories = {env: inventory_copy(env, base) for env in deployed_environments()}
    checks = {
        env: (inventory, InputCheck(inventory, roles_by_host(inventory))) for env, inventory in inventories.items()
    }
    yield checks
    for _, check in checks.values():
        check.stop()


def test_every_deployed_environment_is_checked():
    assert {"staging", "prod"} <= set(deployed_environments())
    for env in deployed_environments():
        roles = roles_by_host(STACKS / env)
        assert all("common" in host_roles for host_roles in roles.values()), f"{env}: a host without the common base"


@pytest.mark.parametrize(("env", "host", "role"), CASES, ids=str)
def test_templates_render(environments, env, host, role):
    inventory, _ = environments[env]
    failures = template_failures(inventory, host, role)
    assert not failures, f"{env}: host {host}, role {role}, template " + "; ".join(failures)


@pytest.mark.parametrize(("env", "host", "role"), CASES, ids=str)
def test_argument_spec_and_preflight_pass(environments, env, host, role):
    _, check = environments[env]
    by_host = check.failures()
    assert host in by_host, f"{env}: host {host} was never validated"
    failure = by_host[host].get(role)
    assert not failure, f"{env}: host {host}, role {role}: {failure}"
