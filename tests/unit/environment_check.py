"""Staging and prod checked the way a deploy first checks them, without reaching any host.

For an environment (stacks/<env>) and a vault: a copy of the inventory with that vault as its
group_vars/all/vault.yml; the roles playbooks/site.yml gives each host; their argument specs and
preflight checks, run on the controller by playbooks/validate.yml; their templates, rendered with
the host's variables. tests/unit/test_environments.py runs it with the test vaults of
tests/fixtures/vault/.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml
from ansible.errors import AnsibleError
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.parsing.vault import VaultLib, VaultSecret
from ansible.template import generate_ansible_template_vars, trust_as_template

from tests.host_checks import RoleVars, ansible_for

REPO = Path(__file__).resolve().parents[2]
STACKS = REPO / "stacks"
ROLES = REPO / "roles"
TEST_VAULTS = REPO / "tests/fixtures/vault"
TEST_VAULT_PASSWORD_FILE = TEST_VAULTS / "password.txt"
VALIDATE_PLAYBOOK = REPO / "playbooks/validate.yml"
# Tasks that read the controller's copy of the Kubernetes binaries: the internal artifact mirror
# syncs them only when the environment is deployed. The pinned checksums' form is still checked.
SKIPPED_TAGS = ["kubernetes_control_plane_artifacts"]

# What a role's tasks register on the host before a template is written, which no inventory holds.
# The administrator's kubeconfig embeds the CA, certificate and key slurped from the host (pki.yml).
# Prometheus's rules read the host's UTC offset in the environment's time zone (`date +%z`).
REGISTERED_ON_HOST = {
    "__kubernetes_control_plane_admin_files": {"results": [{"content": "VEVTVA=="}] * 3},
    "__prometheus_utc_offset": {"stdout": "+0700"},
}


def _module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# site.yml's plays (imports followed) as `make lab-summary` reads them; the health checks' view
# of a role's variables (inventory over role defaults, role vars/ on top) is tests/host_checks.py's.
_site = _module("lab_summary", REPO / "playbooks/lab/summary.py")


def deployed_environments() -> list[str]:
    """Every environment but the lab: the ones deployed only for real."""
    return sorted(path.parent.name for path in STACKS.glob("*/hosts.yml") if path.parent.name != "lab")


def _test_secret() -> VaultSecret:
    return VaultSecret(TEST_VAULT_PASSWORD_FILE.read_bytes().strip())


def fixture_vault(env: str) -> dict:
    """The environment's test vault, decrypted."""
    return yaml.safe_load(VaultLib([("default", _test_secret())]).decrypt((TEST_VAULTS / f"{env}.yml").read_bytes()))


def encrypt_as_fixture(data: dict) -> bytes:
    """`data` as an ansible-vault file encrypted with the test password."""
    return VaultLib([("default", _test_secret())]).encrypt(yaml.safe_dump(data, sort_keys=False))


def inventory_copy(env: str, dest: Path, vault: dict | None = None) -> Path:
    """stacks/<env> copied into dest, with `vault` (default: its test vault) as group_vars/all/vault.yml.

    An operator's real vault in the working tree is never read.
    """
    inventory = dest / env
    shutil.copytree(STACKS / env, inventory, ignore=shutil.ignore_patterns("vault.yml", "vault.example.yml"))
    vault_file = inventory / "group_vars/all/vault.yml"
    vault_file.parent.mkdir(parents=True, exist_ok=True)
    if vault is None:
        shutil.copyfile(TEST_VAULTS / f"{env}.yml", vault_file)
    else:
        vault_file.write_bytes(encrypt_as_fixture(vault))
    return inventory


@cache
def roles_by_host(inventory: Path) -> dict[str, list[str]]:
    """The roles site.yml applies to each host: each play's roles, on the hosts its `hosts:` matches
    (Ansible's own pattern matching; the groups are all in hosts.yml)."""
    hosts = InventoryManager(loader=DataLoader(), sources=[str(inventory / "hosts.yml")])
    roles: dict[str, list[str]] = {host.name: [] for host in hosts.get_hosts()}
    for play in _site.site_plays(REPO / "playbooks/site.yml"):
        names = [role["role"] if isinstance(role, dict) else role for role in play.get("roles", [])]
        for host in hosts.get_hosts(play["hosts"]):
            roles[host.name] += [name for name in names if name not in roles[host.name]]
    return roles


class InputCheck:
    """playbooks/validate.yml over one inventory, on the controller: started at once, read with failures()."""

    def __init__(self, inventory: Path, roles: dict[str, list[str]], roles_dir: Path = ROLES, limit: str = "") -> None:
        extra_vars = inventory.parent / f"{inventory.name}-validate-vars.json"
        extra_vars.write_text(json.dumps({"validate_roles": roles, "validate_roles_dir": str(roles_dir)}))
        command = [
            str(Path(sys.executable).parent / "ansible-playbook"),
            *("-i", str(inventory), str(VALIDATE_PLAYBOOK)),
            *("--vault-password-file", str(TEST_VAULT_PASSWORD_FILE)),
            *("-e", f"@{extra_vars}"),
            # every host is the controller: nothing is reached, and nothing needs privileges
            *("-e", "ansible_connection=local", "-e", "ansible_become=false"),
            *("-e", f"ansible_python_interpreter={sys.executable}"),
            *("--skip-tags", ",".join(SKIPPED_TAGS)),
            *(("--limit", limit) if limit else ()),
        ]
        environment = {
            **os.environ,
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_ROLES_PATH": str(roles_dir),
            "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
            "ANSIBLE_PIPELINING": "true",
            "ANSIBLE_NOCOLOR": "1",
        }
        # files, not pipes: the report is larger than a pipe holds while nobody reads it yet
        self._report = inventory.parent / f"{inventory.name}-validate.json"
        self._log = inventory.parent / f"{inventory.name}-validate.log"
        with self._report.open("w") as report, self._log.open("w") as log:
            self._process = subprocess.Popen(command, cwd=REPO, env=environment, stdout=report, stderr=log)
        self._failures: dict[str, dict[str, str]] | None = None

    def failures(self) -> dict[str, dict[str, str]]:
        """{host: {role: what failed}}, for every host the run reached (limited, or all)."""
        if self._failures is None:
            self._failures = self._read(self._process.wait())
        return self._failures

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def _read(self, exit_code: int) -> dict[str, dict[str, str]]:
        try:
            report = json.loads(self._report.read_text())
        except json.JSONDecodeError:
            raise RuntimeError(
                f"validate.yml did not run (exit {exit_code}):\n{self._log.read_text()[-3000:]}"
            ) from None
        if exit_code != 0:
            raise RuntimeError(f"validate.yml stopped (exit {exit_code}): {_unexpected(report)}")
        # every host the run reached, with what each "record the failure" task recorded for it
        failures: dict[str, dict[str, str]] = {}
        for play in report["plays"]:
            for task in play["tasks"]:
                for host, result in task["hosts"].items():
                    recorded = result.get("ansible_facts", {}).get("validate_failure")
                    failures.setdefault(host, {}).update({recorded["role"]: _describe(recorded)} if recorded else {})
        return failures


def _describe(failure: dict) -> str:
    items = [str(item) for item in failure.get("items", []) if item]
    return f"task '{failure['task']}': " + (" | ".join(items) if items else str(failure["msg"]))


def _unexpected(report: dict) -> str:
    return "; ".join(
        f"{host}: {task['task']['name']}: {result.get('msg')}"
        for play in report.get("plays", [])
        for task in play["tasks"]
        for host, result in task["hosts"].items()
        if result.get("failed") or result.get("unreachable")
    )


@dataclass(frozen=True)
class TemplateTask:
    """A role task that writes a template: what it renders, and the loop and vars it renders with."""

    name: str
    src: str
    loop: object
    vars: dict


@dataclass(frozen=True)
class FilesTask:
    """A role task that writes several files in one kit_files call, some of them rendered from a
    template (an entry's `template`, with the entry's template_vars): its entries are rendered with
    the task's vars, then each entry's template as the kit_files action renders it."""

    name: str
    files: object
    vars: dict

    def templates(self) -> set[str]:
        """The role templates the task names literally (an entry's template: x.j2)."""
        return set(re.findall(r"'template': '([^']+[.]j2)'", str(self.files)))


@cache
def template_tasks(role_dir: Path) -> list[TemplateTask | FilesTask]:
    loader = DataLoader()
    found: list[TemplateTask | FilesTask] = []

    def walk(tasks: list | None, scope: dict) -> None:
        for task in tasks or []:
            task_scope = {**scope, **(task.get("vars") or {})}
            for key in ("block", "rescue", "always"):
                walk(task.get(key), task_scope)
            arguments = task.get("ansible.builtin.template") or task.get("template")
            if arguments:
                found.append(TemplateTask(task.get("name", ""), arguments["src"], task.get("loop"), task_scope))
            if task.get("kit_files"):
                found.append(FilesTask(task.get("name", ""), task["kit_files"]["files"], task_scope))

    for path in sorted((role_dir / "tasks").glob("*.yml")):
        walk(loader.load_from_file(str(path), trusted_as_template=True), {})
    return found


def gathered_facts(variables: dict) -> dict:
    """The facts the roles read (ansible_facts.default_ipv4 and .hostname), as the deploy's fact
    gathering would find them on the host; no template needs more. ansible.cfg does not inject
    them as top-level ansible_* variables, so neither does this."""
    facts = {"default_ipv4": {"address": variables.get("private_address")}, "hostname": variables["inventory_hostname"]}
    return {"ansible_facts": facts}


class _RoleTemplates(RoleVars):
    """The health checks' RoleVars, which also renders the role's templates as the template module does."""

    def _with(self, extra: dict) -> dict:
        return {**self._variables, **gathered_facts(self._variables), **REGISTERED_ON_HOST, **extra}

    def template(self, value, extra: dict):
        return self._templar.copy_with_new_env(available_variables=self._with(extra)).template(value)

    def render(self, template: Path, extra: dict) -> str:
        variables = {
            **self._with(extra),
            **generate_ansible_template_vars(template.name, str(template), f"/tmp/{template.stem}"),
        }
        templar = self._templar.copy_with_new_env(available_variables=variables, searchpath=[str(template.parent)])
        return templar.template(trust_as_template(template.read_text()), escape_backslashes=False)


def role_templates(inventory: Path, host: str, role: str) -> _RoleTemplates:
    """The host's view of the role, its inventory's vault opened with the test password."""
    loader, _, _ = ansible_for(str(inventory))
    loader.set_vault_secrets([("default", _test_secret())])
    templates = _RoleTemplates(str(inventory), host, role)
    templates._variables["role_path"] = str(ROLES / role)  # as Ansible defines it for a role's tasks
    return templates


def _label(item) -> str:
    return str(item.get("name", item)) if isinstance(item, dict) else str(item)


def template_failures(inventory: Path, host: str, role: str) -> list[str]:
    """Each template of the role that does not render for the host, with Ansible's reason.

    Every template is rendered, whatever its task's `when`: for each item of the task's loop, with
    the task's vars; a template no task names, with the host's variables alone.
    """
    role_vars = role_templates(inventory, host, role)
    templates_dir = ROLES / role / "templates"
    failures: list[str] = []
    tried: set[Path] = set()

    def render(label: str, src, extra: dict) -> None:
        try:
            template = templates_dir / role_vars.template(src, extra)
            tried.add(template)
            role_vars.render(template, extra)
        except AnsibleError as error:
            failures.append(f"{label}: {error.message}")

    for task in template_tasks(ROLES / role):
        if isinstance(task, FilesTask):
            tried.update(templates_dir / name for name in task.templates())
            try:
                files = role_vars.template(task.files, task.vars)
            except AnsibleError as error:
                failures.append(f"task '{task.name}': {error.message}")
                continue
            for entry in files:
                if isinstance(entry, dict) and entry.get("template"):
                    label = f"{entry['template']} (task '{task.name}', {entry.get('path')})"
                    render(label, entry["template"], {**task.vars, **(entry.get("template_vars") or {})})
            continue
        if task.loop is None:
            render(f"{task.src} (task '{task.name}')", task.src, task.vars)
            continue
        try:
            items = role_vars.template(task.loop, task.vars)
        except AnsibleError as error:
            failures.append(f"{task.src} (loop of task '{task.name}'): {error.message}")
            continue
        for item in items:
            render(f"{task.src} (task '{task.name}', item {_label(item)})", task.src, {**task.vars, "item": item})
    for template in sorted(set(templates_dir.glob("*.j2")) - tried):
        render(template.name, template.name, {})
    return failures
