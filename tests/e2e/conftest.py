"""The end-to-end tests run against the lab that `make e2e` brought up (one lab for all)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.MULTILINE)


def lab_hosts() -> set[str]:
    """Every host of the lab inventory."""
    inventory = yaml.safe_load((REPO / "stacks/lab/hosts.yml").read_text())
    return {name for group in inventory["all"]["children"].values() for name in group["hosts"]}


def run(*args: str, env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run a command from the repository root, as the Makefile would, and capture its output.
    A variable given as None in `env` is removed from the environment."""
    environment = {**os.environ, "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1", "PY_COLORS": "0", **(env or {})}
    return subprocess.run(
        args,
        cwd=REPO,
        env={name: value for name, value in environment.items() if value is not None},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def recap(output: str) -> dict[str, dict[str, int]]:
    """The PLAY RECAP of an ansible-playbook run: host -> ok/changed/unreachable/failed."""
    return {
        host: {"ok": int(ok), "changed": int(changed), "unreachable": int(unreachable), "failed": int(failed)}
        for host, ok, changed, unreachable, failed in RECAP.findall(output)
    }


@pytest.fixture(scope="session")
def lab_running():
    ps = run("podman", "ps", "--quiet", "--filter", "label=io.govops.lab=govops-lab")
    if len(ps.stdout.split()) != len(lab_hosts()):
        pytest.fail("the e2e tests need the lab up (make e2e brings it up): " + ps.stdout + ps.stderr)
