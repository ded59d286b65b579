"""What every runbook task shares: the environment's inventory, the way to a host, the refusals,
and, for tasks that change something, the confirmation, the dry run and the audit log.

A task reaches a host exactly as `make deploy` does: the environment's Ansible inventory
(stacks/<env>) read with Ansible's own classes (the health checks' RoleVars), the same SSH
address, port, user, key and known_hosts settings, and sudo for what needs root.
"""

from __future__ import annotations

import datetime
import getpass
import io
import json
import os
import shlex
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from invoke.exceptions import Exit

REPO = Path(__file__).resolve().parents[2]
STACKS = REPO / "stacks"
AUDIT_LOG = REPO / "reports/runbook-actions.log"
FRONT_DOOR = "fab -r runbooks"

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# The health checks' reading of the inventory and of a host's role variables (the inventory over
# the role's defaults, its vars/ on top, templated by Ansible): one reading for both.
from tests.host_checks import RoleVars, ansible_for  # noqa: E402


class Refused(Exit):
    """Bad input: said plainly, nothing done, exit status 2."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code=2)


class Problem(Exit):
    """The task ran and found something wrong (or could not finish): exit status 1."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code=1)


def known_environments(stacks: Path = STACKS) -> list[str]:
    return sorted(path.parent.name for path in stacks.glob("*/hosts.yml"))


def operator() -> str:
    """Who runs the task: the user behind sudo, else the login name."""
    return os.environ.get("SUDO_USER") or getpass.getuser()


def no_fabric_hosts(c) -> None:
    """`fab -H` would hand the task a connection of its own choosing; hosts come from the inventory."""
    if type(c).__name__ == "Connection":
        raise Refused(
            "Give the host with --host NAME (an inventory name), not fab's -H: hosts come from --env's inventory"
        )


@dataclass(frozen=True)
class Host:
    """How to reach one inventory host, as Ansible would."""

    name: str
    groups: tuple[str, ...]
    address: str
    port: int
    user: str | None
    key_file: str | None
    known_hosts: str | None
    strict_host_key_checking: str
    identities_only: bool


def _ssh_options(common_args: str) -> dict[str, str]:
    """`-o Key=Value` pairs of ansible_ssh_common_args, keys lower-cased."""
    options: dict[str, str] = {}
    words = shlex.split(common_args or "")
    for index, word in enumerate(words):
        value = None
        if word == "-o" and index + 1 < len(words):
            value = words[index + 1]
        elif word.startswith("-o") and len(word) > 2:
            value = word[2:]
        if value and "=" in value:
            key, _, setting = value.partition("=")
            options[key.strip().lower()] = setting.strip()
    return options


def _repo_path(path: str | None) -> str | None:
    """Inventory paths are relative to the repository root (where the Makefile runs Ansible)."""
    if not path:
        return None
    expanded = Path(os.path.expanduser(path))
    return str(expanded if expanded.is_absolute() else REPO / expanded)


def _unreadable(environment: str, host: str, what: str, error: Exception) -> Refused:
    """A vault that cannot be opened, a broken template: said plainly, first line only (a later
    line may quote decrypted text)."""
    first_line = (str(error) or type(error).__name__).splitlines()[0]
    hint = ""
    if any(word in first_line.lower() for word in ("vault", "decrypt")) or "'vault_" in first_line:
        hint = " (give the vault password as ansible-playbook takes it: ANSIBLE_VAULT_PASSWORD_FILE=<file>)"
    return Refused(f"{environment}: cannot read {what} of {host}: {first_line}{hint}")


class HostRoleVars:
    """RoleVars whose failures (other than an undefined variable) become a plain refusal."""

    def __init__(self, environment: str, host: str, role_vars: RoleVars) -> None:
        self.environment, self.host, self.role_vars = environment, host, role_vars

    def __getitem__(self, name: str):
        try:
            return self.role_vars[name]
        except KeyError:
            raise
        except Exception as error:
            raise _unreadable(self.environment, self.host, name, error) from None


class Environment:
    """One environment's inventory (stacks/<name>), read as ansible-playbook reads it.

    An encrypted vault (group_vars/all/vault.yml) is opened with the password ansible-playbook
    would use: ANSIBLE_VAULT_PASSWORD_FILE, or ANSIBLE_ASK_VAULT_PASS=true to be asked.
    """

    def __init__(self, name: str, *, stacks: Path = STACKS, vault_password_files: Sequence[str] = ()) -> None:
        known = known_environments(stacks)
        if name not in known:
            raise Refused(
                f"Unknown environment '{name}'. Known environments: {' '.join(known)}"
                " (each is a stacks/<env>/hosts.yml)"
            )
        self.name = name
        self.dir = stacks / name
        self.inventory = str(self.dir)
        self._vault_password_files = list(vault_password_files)
        self._role_vars: dict[tuple[str, str], HostRoleVars] = {}
        loader, self.inventory_manager, self.variable_manager = ansible_for(self.inventory)
        if (self.dir / "group_vars/all/vault.yml").is_file():
            self._open_vault(loader)

    def _open_vault(self, loader) -> None:
        if getattr(loader, "_govops_vault_opened", False):
            return
        from ansible import constants
        from ansible.cli import CLI

        CLI.setup_vault_secrets(
            loader,
            vault_ids=list(constants.DEFAULT_VAULT_IDENTITY_LIST),
            vault_password_files=list(self._vault_password_files),
            ask_vault_pass=constants.DEFAULT_ASK_VAULT_PASS,
            auto_prompt=False,
            initialize_context=False,
        )
        loader._govops_vault_opened = True

    # -- hosts and groups ------------------------------------------------------------------

    @cached_property
    def host_names(self) -> list[str]:
        return sorted(host.name for host in self.inventory_manager.get_hosts("all"))

    def group(self, group: str) -> list[str]:
        """The hosts of a group, in inventory order; [] when the environment has no such group."""
        if group not in self.inventory_manager.groups:
            return []
        return [host.name for host in self.inventory_manager.get_hosts(group)]

    def groups_of(self, name: str) -> list[str]:
        host = self.inventory_manager.get_host(name)
        return sorted(group.name for group in host.get_groups() if group.name not in ("all", "ungrouped"))

    def check_host(self, name: str) -> None:
        if name not in self.host_names:
            raise Refused(f"Unknown host '{name}' in {self.name}. Known hosts: {' '.join(self.host_names)}")

    def hosts_for(self, task: str, groups: Iterable[str], host: str | None) -> list[str]:
        """The hosts a task runs on: --host if given (it must be in one of `groups`), else every
        host of the groups. Refuses an unknown host, a host of another group, an empty group."""
        groups = list(groups)
        members = [name for group in groups for name in self.group(group)]
        where = " or ".join(groups)
        if host:
            self.check_host(host)
            if host not in members:
                raise Refused(
                    f"{task} runs on the {where} group ({', '.join(members) or 'none in ' + self.name}); "
                    f"{host} is in {', '.join(self.groups_of(host)) or 'no group'}"
                )
            return [host]
        if not members:
            raise Refused(f"{task}: {self.name} has no host in the {where} group")
        return list(dict.fromkeys(members))

    # -- variables -------------------------------------------------------------------------

    def role_vars(self, host: str, role: str) -> HostRoleVars:
        """The host's view of a role's variables (tests/host_checks.py's RoleVars)."""
        self.check_host(host)
        if (host, role) not in self._role_vars:
            try:
                self._role_vars[host, role] = HostRoleVars(self.name, host, RoleVars(self.inventory, host, role))
            except Exception as error:
                raise _unreadable(self.name, host, f"the variables of role {role}", error) from None
        return self._role_vars[host, role]

    def value(self, host: str, role: str, name: str, default=None):
        """One variable of the host, templated; `default` when the host does not define it."""
        try:
            return self.role_vars(host, role)[name]
        except KeyError:
            return default

    def web_login(self, host: str, role: str) -> dict:
        """http_on_host's arguments that log in as the kit's account (<role>_web_kit_user) on the
        host's Prometheus or Alertmanager; the password never leaves the request's stdin."""
        user = self.value(host, role, f"{role}_web_kit_user")
        return {"basic_user": user, "secret": {"value": self.value(host, role, f"{role}_web_users")[user]}}

    def fields(self, host: str, role: str, name: str, field: str) -> list:
        """One field of each item of a list variable, templated alone: the other fields of the items
        (passwords) may need the vault, and are not read."""
        role_vars = self.role_vars(host, role).role_vars
        raw = role_vars._variables.get(name, [])
        if isinstance(raw, str):  # the list itself is a template
            raw = self.value(host, role, name, [])
        try:
            return [role_vars._templar.template(item[field]) for item in raw]
        except Exception as error:
            raise Refused(
                f"{self.name}: cannot read {name}[].{field} of {host}: {str(error).splitlines()[0]}"
            ) from None

    def connection_of(self, name: str) -> Host:
        self.check_host(name)
        options = _ssh_options(self.value(name, "common", "ansible_ssh_common_args", "") or "")
        return Host(
            name=name,
            groups=tuple(self.groups_of(name)),
            address=str(self.value(name, "common", "ansible_host", name) or name),
            port=int(self.value(name, "common", "ansible_port", 22) or 22),
            user=self.value(name, "common", "ansible_user", None),
            key_file=_repo_path(self.value(name, "common", "ansible_ssh_private_key_file", None)),
            known_hosts=_repo_path(options.get("userknownhostsfile")),
            strict_host_key_checking=options.get("stricthostkeychecking", "yes").lower(),
            identities_only=options.get("identitiesonly", "no").lower() == "yes",
        )

    # -- the Kubernetes cluster of the environment ---------------------------------------------

    def pulumi_stack(self) -> dict:
        import yaml

        path = STACKS / f"Pulumi.{self.name}.yaml"
        if not path.is_file():
            raise Refused(f"{self.name} has no Pulumi stack file {path.relative_to(REPO)}")
        return yaml.safe_load(path.read_text()) or {}


# -- SSH --------------------------------------------------------------------------------------


class Unreachable(Exception):
    pass


def connect(host: Host):
    """A Fabric connection to the host, with Ansible's SSH settings for it.

    Host keys are checked as Ansible's OpenSSH checks them (host_key_checking = True): keys from
    ~/.ssh/known_hosts and the inventory's UserKnownHostsFile; an unknown host is refused unless
    StrictHostKeyChecking is accept-new (or no), which records its key in that file.
    """
    from fabric import Connection
    from paramiko import AutoAddPolicy, RejectPolicy

    connect_kwargs: dict = {}
    if host.key_file:
        connect_kwargs["key_filename"] = [host.key_file]
        if host.identities_only:
            connect_kwargs |= {"look_for_keys": False, "allow_agent": False}
    conn = Connection(host.address, user=host.user, port=host.port, connect_timeout=10, connect_kwargs=connect_kwargs)
    # OpenSSH's UserKnownHostsFile replaces ~/.ssh/known_hosts, it does not add to it
    system_known_hosts = Path("~/.ssh/known_hosts").expanduser()
    if not host.known_hosts and system_known_hosts.is_file():
        conn.client.load_system_host_keys(str(system_known_hosts))
    if host.known_hosts:
        known = Path(host.known_hosts)
        if not known.exists() and host.strict_host_key_checking in ("accept-new", "no"):
            known.parent.mkdir(parents=True, exist_ok=True)
            known.touch(mode=0o600)
        if known.exists():
            conn.client.load_host_keys(str(known))
    accept = host.strict_host_key_checking in ("accept-new", "no")
    conn.client.set_missing_host_key_policy(AutoAddPolicy() if accept else RejectPolicy())
    try:
        conn.open()
    except Exception as error:
        reason = str(error) or type(error).__name__
        if type(error).__name__ == "SSHException" and "not found in known_hosts" in reason:
            reason += " (ssh to it once, as Ansible would need too, or add its key to ~/.ssh/known_hosts)"
        raise Unreachable(f"{host.name} ({host.address}:{host.port}): {reason}") from None
    return conn


def sudo_command(command: Sequence[str] | str, user: str = "root") -> str:
    """The command line that runs `command` on the host as `user` (ansible_become's sudo, never a prompt)."""
    line = command if isinstance(command, str) else shlex.join(command)
    who = "" if user == "root" else f"-u {shlex.quote(user)} "
    return f"sudo -n {who}-- {line}"


def run(conn, command: Sequence[str] | str, *, user: str = "root", stdin: str = "", timeout: int = 60):
    """Run a command on the host as `user`; the result whatever its exit status (never our stdin)."""
    from invoke.exceptions import CommandTimedOut

    try:
        return conn.run(
            sudo_command(command, user), hide=True, warn=True, pty=False, in_stream=io.StringIO(stdin), timeout=timeout
        )
    except CommandTimedOut:
        line = command if isinstance(command, str) else shlex.join(command)
        raise Problem(f"{conn.host}: no answer within {timeout} s from: {line[:120]}") from None


# Runs on the host: one HTTP request, described as JSON on stdin so that no password ever appears
# on a command line. A secret (a file, or a `key = "value"` line of a configuration file, or a
# value sent along) replaces {secret} in the URL or becomes the basic-auth password. Prints
# {"status": ..., "body": ...}; status 0 when the server could not be reached.
HTTP_SCRIPT = r"""
import base64, json, re, ssl, sys, urllib.error, urllib.parse, urllib.request
req = json.load(sys.stdin)
source, secret = req.get("secret") or {}, ""
if "file" in source:
    secret = open(source["file"]).read().strip()
elif "conf" in source:
    pattern = re.compile(r"^\s*" + re.escape(source["key"]) + r"\s*=\s*\"?([^\"\n]*)\"?\s*$")
    for line in open(source["conf"]):
        match = pattern.match(line)
        if match:
            secret = match.group(1)
            break
    else:
        print(json.dumps({"status": 0, "body": "no " + source["key"] + " in " + source["conf"]}))
        sys.exit(0)
elif "value" in source:
    secret = source["value"]
url = req["url"].replace("{secret}", urllib.parse.quote(secret, safe=""))
headers = {"Accept": req.get("accept", "*/*")}
data = None
if req.get("body") is not None:
    data, headers["Content-Type"] = json.dumps(req["body"]).encode(), "application/json"
if req.get("basic_user"):
    token = base64.b64encode((req["basic_user"] + ":" + secret).encode()).decode()
    headers["Authorization"] = "Basic " + token
tls = ssl.create_default_context(cafile=req["cafile"]) if req.get("cafile") else None
request = urllib.request.Request(url, data=data, method=req["method"], headers=headers)
try:
    with urllib.request.urlopen(request, timeout=req.get("timeout", 15), context=tls) as answer:
        status, body = answer.status, answer.read().decode("utf-8", "replace")
except urllib.error.HTTPError as error:
    status, body = error.code, error.read().decode("utf-8", "replace")
except (OSError, ValueError) as error:
    status, body = 0, type(error).__name__ + ": " + str(getattr(error, "reason", error))
print(json.dumps({"status": status, "body": body}))
"""


@dataclass(frozen=True)
class Answer:
    status: int
    body: str

    def json(self):
        return json.loads(self.body)


def http_on_host(
    conn,
    method: str,
    url: str,
    *,
    body=None,
    cafile: str | None = None,
    secret: dict | None = None,
    basic_user: str | None = None,
    accept: str = "*/*",
    user: str = "root",
    timeout: int = 15,
) -> Answer:
    """An HTTP request made on the host itself (several services answer only the host, or its
    network), as `user`. `secret`: {"file": path} | {"conf": path, "key": name} | {"value": text}."""
    request = {
        "method": method,
        "url": url,
        "body": body,
        "cafile": cafile,
        "secret": secret or {},
        "basic_user": basic_user,
        "accept": accept,
        "timeout": timeout,
    }
    result = run(conn, ["python3", "-c", HTTP_SCRIPT], user=user, stdin=json.dumps(request), timeout=timeout + 15)
    if result.exited != 0:
        raise Problem(f"{conn.host}: the request could not be made: {result.stderr.strip()[-300:]}")
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    return Answer(answer["status"], answer["body"])


# -- output ------------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    rows = [[("" if cell is None else str(cell)) for cell in row] for row in rows]
    widths = [max([len(header)] + [len(row[i]) for row in rows]) for i, header in enumerate(headers)]
    lines = ["  ".join(header.ljust(width) for header, width in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)


def verdict(problems: list[str], healthy: str) -> None:
    """The last lines of a read-only task: OK, or each PROBLEM and exit status 1."""
    if problems:
        for problem in problems:
            print(f"PROBLEM: {problem}")
        raise Problem(f"{len(problems)} problem(s) found")
    print(f"OK: {healthy}")


# -- tasks that change something -----------------------------------------------------------------


def audit(environment: str, task: str, arguments: dict, result: str) -> None:
    """One JSON line per attempt (done, dry run, refused or declined): when, who, where, what."""
    record = {
        "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "user": operator(),
        "environment": environment,
        "task": task,
        "arguments": arguments,
        "result": result,
    }
    AUDIT_LOG.parent.mkdir(parents=True, exist_ok=True)
    with AUDIT_LOG.open("a") as log:
        log.write(json.dumps(record, sort_keys=True) + "\n")


def change(
    environment: str,
    task: str,
    arguments: dict,
    plan: Sequence[str],
    action: Callable[[], str],
    *,
    yes: bool = False,
    dry_run: bool = False,
    warning: str = "",
) -> str:
    """Show what `action` will change, then: a dry run stops there; otherwise the operator confirms
    (typing the environment's name; a non-interactive shell needs --yes); then it runs. Every
    attempt goes to the audit log. `arguments` must hold no secret."""
    print(f"{task} in {environment} will:")
    for step in plan:
        print(f"  - {step}")
    if warning:
        print(f"Warning: {warning}")
    if dry_run:
        audit(environment, task, arguments, "dry run: nothing changed")
        print("Dry run: nothing changed.")
        return "dry run"
    if not yes:
        if not sys.stdin.isatty():
            audit(environment, task, arguments, "refused: no confirmation in a non-interactive shell")
            raise Refused(
                f"{task} changes {environment}: in a non-interactive shell say so with --yes (nothing changed)"
            )
        answer = input(f"Type the environment's name ({environment}) to go on, anything else to stop: ")
        if answer.strip() != environment:
            audit(environment, task, arguments, "declined by the operator")
            raise Problem("Stopped: nothing changed.")
    try:
        result = action()
    except Exit as error:
        audit(environment, task, arguments, f"failed: {error.message}")
        raise
    except Exception as error:
        audit(environment, task, arguments, f"failed: {type(error).__name__}: {error}")
        raise
    audit(environment, task, arguments, f"done: {result}")
    print(f"Done: {result}")
    return result
