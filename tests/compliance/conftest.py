"""The compliance controls' plumbing: each test is one control, declared with @control(...).

The control's id, title, rationale, severity and source, the host and the evidence (each command
run and an excerpt of its output) go into the test's JUnit properties, which tools/audit_report.py
turns into the auditors' report. A test in this directory without exactly one control is refused
at collection, before any host is touched.

WIP (branch audit-wip): the host fixtures still come from tests/health/conftest.py (to be shared).
"""

from __future__ import annotations

import json

import pytest

SEVERITIES = ("critical", "high", "medium", "low")
SOURCES = ("CIS Debian 12", "CIS PostgreSQL 15", "CIS Kubernetes", "dev-sec", "kit")
EXCERPT_LINES = 20


def control(control_id: str, *, title: str, rationale: str, severity: str, source: str):
    """Declare a test as the control `control_id` (a CIS id where one applies, else KIT-...)."""
    return pytest.mark.control(id=control_id, title=title, rationale=rationale, severity=severity, source=source)


def control_problems(item) -> list[str]:
    marks = list(item.iter_markers("control"))
    if len(marks) != 1:
        return [f"{item.nodeid}: expected exactly one @control(...), found {len(marks)}"]
    found = marks[0].kwargs
    problems = [
        f"{item.nodeid}: control {found.get('id')!r} has no {key}"
        for key in ("id", "title", "rationale")
        if not found.get(key)
    ]
    if found.get("severity") not in SEVERITIES:
        problems.append(
            f"{item.nodeid}: severity must be one of {', '.join(SEVERITIES)}, found {found.get('severity')!r}"
        )
    if found.get("source") not in SOURCES:
        problems.append(f"{item.nodeid}: source must be one of {', '.join(SOURCES)}, found {found.get('source')!r}")
    return problems


def pytest_configure(config):
    config.addinivalue_line("markers", "control(id, title, rationale, severity, source): a compliance control")


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
        result = self._host.run(command, *args)
        output = (result.stdout + result.stderr).strip().splitlines()
        excerpt = "\n".join(
            output[:EXCERPT_LINES]
            + ([f"... ({len(output) - EXCERPT_LINES} more lines)"] if len(output) > EXCERPT_LINES else [])
        )
        self._items.append(
            {"command": result.command if hasattr(result, "command") else command, "rc": result.rc, "excerpt": excerpt}
        )
        return result

    def note(self, what: str, found: str) -> None:
        """Evidence that is not a command: what was read (a file, an API) and what was found."""
        self._items.append({"command": what, "rc": None, "excerpt": found})

    def flush(self) -> None:
        self._node.user_properties.append(("evidence", json.dumps(self._items)))


@pytest.fixture
def evidence(host, request):
    log = EvidenceLog(host, request.node)
    yield log
    log.flush()
