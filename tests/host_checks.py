"""What the health checks and the compliance controls share: the hosts and their variables.

Both run with testinfra's ansible backend against an environment's inventory. The values a host
should have are read the way Ansible reads them: the inventory's variables over the role's
defaults, templated by Ansible itself, so a check never hard-codes what an environment chose.
A test module's `testinfra_hosts` names the inventory groups it runs on.
"""

from __future__ import annotations

import json
import time
from functools import cache
from pathlib import Path

import pytest
import testinfra
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader
from ansible.template import Templar
from ansible.vars.hostvars import HostVars
from ansible.vars.manager import VariableManager
from testinfra.backend.ssh import SshBackend

from tests.host_session import share_one_session

ROLES = Path(__file__).resolve().parents[1] / "roles"

# Runs on the host under test: several services answer only the host itself (or its network).
_HTTP_SCRIPT = (
    "import base64, ssl, sys, urllib.request, urllib.error\n"
    "data = sys.argv[3].encode() if sys.argv[3] else None\n"
    "tls = ssl.create_default_context(cafile=sys.argv[4]) if sys.argv[4] else None\n"
    "headers = {'Content-Type': 'application/json'}\n"
    "login = sys.stdin.read().strip()\n"
    "if login: headers['Authorization'] = 'Basic ' + base64.b64encode(login.encode()).decode()\n"
    "req = urllib.request.Request(sys.argv[2], data=data, method=sys.argv[1], headers=headers)\n"
    "try:\n"
    "    r = urllib.request.urlopen(req, timeout=10, context=tls); print(r.status); print(r.read().decode())\n"
    "except urllib.error.HTTPError as e:\n"
    "    print(e.code); print(e.read().decode())\n"
)


def host_http(
    host, method: str, url: str, body: dict | None = None, cafile: str = "", auth: tuple[str, str] | None = None
) -> tuple[int, str]:
    """An HTTP request made from the host itself: (status, body). HTTPS trusts `cafile` (a path on the
    host); `auth` (user, password) logs in with HTTP basic auth. The login reaches Python on stdin,
    not in its arguments; the shell line testinfra runs holds it while the request runs."""
    login = f"{auth[0]}:{auth[1]}" if auth else ""
    out = host.check_output(
        "printf %%s %s | python3 -c %s %s %s %s %s",
        login, _HTTP_SCRIPT, method, url, json.dumps(body) if body else "", cafile,
    )  # fmt: skip
    status, _, text = out.partition("\n")
    return int(status), text


def wait_for(what: str, probe, timeout: float = 30.0):
    """What probe() returns once it is truthy (asked again every half second), or a failure
    naming what did not happen within timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.5)
    pytest.fail(f"{what} did not happen within {timeout:.0f} s")


def kit_login(settings: dict, role: str) -> tuple[str, str]:
    """The kit's own account on Prometheus's or Alertmanager's web API (<role>_web_kit_user), from
    that role's variables."""
    user = settings[f"{role}_web_kit_user"]
    return user, settings[f"{role}_web_users"][user]


def make_control_path_dir() -> None:
    """Testinfra shares SSH connections through ansible.cfg's control_path_dir only when that
    directory exists, and only Ansible's own ssh plugin creates it (Mitogen's strategy does not):
    without it every command of every check opened a new SSH connection (0.3 s instead of 0.02 s)."""
    from ansible import constants

    Path(constants.config.get_config_value("PERSISTENT_CONTROL_PATH_DIR")).expanduser().mkdir(
        mode=0o700, parents=True, exist_ok=True
    )


@cache
def ansible_for(inventory: str) -> tuple[DataLoader, InventoryManager, VariableManager]:
    init_plugin_loader()  # so the templates find ansible.builtin and collection plugins
    loader = DataLoader()
    inventory_manager = InventoryManager(loader=loader, sources=[inventory])
    return loader, inventory_manager, VariableManager(loader=loader, inventory=inventory_manager)


class RoleVars:
    """A host's view of a role's variables: inventory over role defaults, role vars/ on top."""

    def __init__(self, inventory: str, host_name: str, role: str) -> None:
        loader, inventory_manager, variable_manager = ansible_for(inventory)
        host = inventory_manager.get_host(host_name)
        if host is None:
            raise LookupError(f"host {host_name!r} is not in inventory {inventory}")
        role_dir = ROLES / role
        defaults = loader.load_from_file(str(role_dir / "defaults/main.yml"), trusted_as_template=True) or {}
        private = role_dir / "vars/main.yml"
        variables = {**defaults, **variable_manager.get_vars(host=host)}
        variables["hostvars"] = HostVars(inventory_manager, variable_manager, loader)
        if private.exists():
            variables.update(loader.load_from_file(str(private), trusted_as_template=True) or {})
        self._templar = Templar(loader=loader, variables=variables)
        self._variables = variables

    def __getitem__(self, name: str):
        if name not in self._variables:
            raise KeyError(f"variable {name!r} is not defined for this host")
        return self._templar.template(self._variables[name])


def host_in_module_groups(item, inventory: str) -> bool:
    """Whether the test's host is in one of its module's `testinfra_hosts` groups (ansible://group)."""
    patterns = getattr(item.module, "testinfra_hosts", None)
    callspec = getattr(item, "callspec", None)
    if not patterns or callspec is None or "_testinfra_host" not in callspec.params:
        return True
    host = callspec.params["_testinfra_host"]
    if not hasattr(host, "backend"):
        return False  # no host of the inventory is in the module's groups (pytest's NOTSET parameter)
    host_name = host.backend.host
    _, inventory_manager, _ = ansible_for(inventory)
    for pattern in patterns:
        group = pattern.removeprefix("ansible://")
        if host_name in {h.name for h in inventory_manager.get_hosts(group)}:
            return True
    return False


@pytest.fixture(scope="module")
def inventory(request) -> str:
    path = request.config.getoption("ansible_inventory")
    if not path:
        raise pytest.UsageError("these checks need --ansible-inventory (make health and make audit pass it)")
    return path


@pytest.fixture(scope="module")
def host(_testinfra_host, inventory):
    """Testinfra's host, but a Podman container (molecule) is reached with `podman exec`, and an
    SSH host's commands share one shell session (tests/host_session.py).

    Testinfra otherwise sends every command of a container through an Ansible module run,
    about a second each; this keeps molecule's verify step as quick as `make health`.
    """
    name = _testinfra_host.backend.host
    _, inventory_manager, variable_manager = ansible_for(inventory)
    variables = variable_manager.get_vars(host=inventory_manager.get_host(name))
    if variables.get("ansible_connection") in ("podman", "containers.podman.podman"):
        podman_host = testinfra.get_host(f"podman://{variables.get('ansible_host', name)}")
        podman_host.inventory_name = name
        return podman_host
    backend = _testinfra_host.backend
    if not backend.force_ansible:
        ssh_host = backend.ansible_runner.get_host(
            name, ssh_config=backend.ssh_config, ssh_identity_file=backend.ssh_identity_file
        )
        if ssh_host is not None and isinstance(ssh_host.backend, SshBackend):
            share_one_session(ssh_host.backend, name)
    _testinfra_host.inventory_name = name
    return _testinfra_host


@pytest.fixture
def role_vars(host, inventory):
    """role_vars("common")["common_timezone"] for the host under test."""

    def for_role(role: str) -> RoleVars:
        return RoleVars(inventory, host.inventory_name, role)

    return for_role
