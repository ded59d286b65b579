"""The @control(...) declaration of a compliance test, and the rules a declaration must meet."""

from __future__ import annotations

import pytest

SEVERITIES = ("critical", "high", "medium", "low")
SOURCES = ("CIS Debian 12", "CIS PostgreSQL 15", "CIS Kubernetes", "dev-sec", "kit")


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
