"""The runbooks' Fabric tasks run as on-call staff run them, through the front door
(`fab -r runbooks <task> --env lab`), from the repository root with the kit's virtualenv."""

from __future__ import annotations

from conftest import REPO, run

FAB = (str(REPO / ".venv/bin/fab"), "-r", "runbooks")


def fab(*args: str) -> tuple[int, str]:
    """Exit status and output of one task against the lab (stdin is not a terminal: changes need --yes)."""
    result = run(*FAB, *args, "--env", "lab", timeout=300)
    return result.returncode, result.stdout + result.stderr


def healthy(task: str, *args: str) -> str:
    """The output of a read-only task that must find everything healthy (it ends with `OK: ...`)."""
    code, output = fab(task, *args)
    assert code == 0 and "\nOK: " in "\n" + output, f"{task} {' '.join(args)} (exit {code}):\n{output[-4000:]}"
    assert "unreachable" not in output
    return output


def changed(task: str, *args: str) -> str:
    """The output of a task that changes something, confirmed with --yes; it must succeed."""
    code, output = fab(task, *args, "--yes")
    assert code == 0, f"{task} {' '.join(args)} --yes (exit {code}):\n{output[-4000:]}"
    return output
