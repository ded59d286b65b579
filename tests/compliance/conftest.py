"""The compliance controls' plumbing: each test is one control, declared with @control(...).

The control's id, title, rationale, severity and source, the host and the evidence (each command
run and an excerpt of its output) go into the test's JUnit properties, which tools/audit_report.py
turns into the auditors' report. A test in this directory without exactly one control is refused
at collection, before any host is touched. The hosts and their variables are the health checks'
(tests/host_checks.py): a module's `testinfra_hosts` names the groups its controls apply to.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from tests.compliance.controls import control_problems
from tests.host_checks import host, host_in_module_groups, inventory, make_control_path_dir, role_vars

__all__ = ["host", "inventory", "role_vars"]  # fixtures, shared with tests/health

EXCERPT_LINES = 20  # of each command's output, in the evidence


def pytest_addoption(parser):
    parser.addoption(
        "--certificate-min-days",
        type=int,
        default=30,
        help="KIT-CERT-01 fails a certificate valid for fewer days than this (default 30)",
    )
    parser.addoption(
        "--controls-catalogue",
        default="",
        help="write every control declared here (id, title, rationale, severity, source) to this JSON file",
    )


def pytest_configure(config):
    make_control_path_dir()


def pytest_collection_modifyitems(config, items):
    problems = [p for item in items for p in control_problems(item)]
    ids = {}
    for item in items:
        marks = list(item.iter_markers("control"))
        if marks:
            ids.setdefault(marks[0].kwargs.get("id"), set()).add(item.function.__qualname__)
    problems += [
        f"control id {cid!r} is declared by {len(tests)} tests: {', '.join(sorted(tests))}"
        for cid, tests in ids.items()
        if len(tests) > 1
    ]
    if problems:
        raise pytest.UsageError("bad compliance controls:\n  " + "\n  ".join(problems))
    catalogue = config.getoption("controls_catalogue")
    if catalogue:  # all of them, before the group filter: the waivers may name any
        declared = {item.get_closest_marker("control").kwargs["id"]: item.get_closest_marker("control").kwargs
                    for item in items}  # fmt: skip
        Path(catalogue).write_text(json.dumps(sorted(declared.values(), key=lambda c: c["id"]), indent=1))
    inventory_path = config.getoption("ansible_inventory")
    keep = [item for item in items if not inventory_path or host_in_module_groups(item, inventory_path)]
    config.hook.pytest_deselected(items=[item for item in items if item not in keep])
    items[:] = keep


@pytest.fixture(autouse=True)
def _control_properties(request):
    mark = request.node.get_closest_marker("control")
    for key in ("id", "title", "rationale", "severity", "source"):
        request.node.user_properties.append((f"control_{key}", mark.kwargs[key]))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item):
    """The host under test, once its fixture has run."""
    host = item.funcargs.get("host")
    item.user_properties.append(("host", getattr(host, "inventory_name", "")))


class EvidenceLog:
    """host.run(...) that keeps each command and an excerpt of its output for the report."""

    def __init__(self, host, node):
        self._host = host
        self._node = node
        self._items: list[dict] = []

    def run(self, command: str, *args):
        """Run as testinfra's host.run does; keep the command as written (arguments quoted, without
        the sudo wrapper the connection adds) and its output: stdout, and stderr when it failed
        (a connection's login banner also arrives on stderr)."""
        result = self._host.run(command, *args)
        output = (result.stdout + (result.stderr if result.rc else "")).strip().splitlines()
        excerpt = "\n".join(
            output[:EXCERPT_LINES]
            + ([f"... ({len(output) - EXCERPT_LINES} more lines)"] if len(output) > EXCERPT_LINES else [])
        )
        written = command % tuple(shlex.quote(str(arg)) for arg in args) if args else command
        self._items.append({"command": written, "rc": result.rc, "excerpt": excerpt})
        return result

    def note(self, what: str, found: str) -> None:
        """Evidence that is not a command: what was read (a file, an API) and what was found."""
        self._items.append({"command": what, "rc": None, "excerpt": found})

    def settings(self, what: str, read: dict[str, str], *names: str) -> dict[str, str]:
        """The settings a control judges, out of all that `what` read, quoted as its evidence."""
        found = {name: read.get(name, "(not set)") for name in names}
        self.note(what, "\n".join(f"{name} = {value}" for name, value in found.items()))
        return found

    def installed(self, package: str) -> bool:
        """Whether dpkg has `package` installed, quoting its status and version."""
        result = self.run("dpkg-query -W -f '${Status} ${Version}' %s", package)
        return result.rc == 0 and result.stdout.startswith("install ok installed")

    def unit(self, unit: str, query: str) -> str:
        """systemctl is-enabled / is-active of `unit`, quoted: "enabled", "active", ... or "absent"."""
        return self.run("systemctl %s %s", query, unit).stdout.strip() or "absent"

    def flush(self) -> None:
        self._node.user_properties.append(("evidence", json.dumps(self._items)))


@pytest.fixture
def evidence(host, request):
    log = EvidenceLog(host, request.node)
    yield log
    log.flush()
