"""The lab's small reporting helpers."""

from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path

import pytest

LAB = Path(__file__).resolve().parents[2] / "playbooks/lab"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, LAB / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_memory_sizes():
    memory = load("memory_total")
    assert memory.to_bytes("193.2MB") == pytest.approx(193.2e6)
    assert memory.to_bytes("1.5GiB") == 1.5 * 2**30
    with pytest.raises(ValueError):
        memory.to_bytes("lots")


def test_memory_total(monkeypatch, capsys):
    memory = load("memory_total")
    monkeypatch.setattr(sys, "stdin", io.StringIO("a 1MiB / 2GiB\nb 3MiB / 2GiB\n"))
    memory.main()
    last = capsys.readouterr().out.splitlines()[-1].split()
    assert last == ["total", "4.0", "MiB"]


def test_roles_by_host_follows_groups():
    summary = load("summary")
    plays = [{"hosts": "all", "roles": ["common"]}, {"hosts": "db", "roles": [{"role": "postgresql"}]}]
    roles = summary.roles_by_host(plays, {"all": ["db1", "mon1"], "db": ["db1"]})
    assert roles == {"db1": ["common", "postgresql"], "mon1": ["common"]}


def test_site_plays_follow_imports():
    summary = load("summary")
    plays = summary.site_plays(LAB.parent / "site.yml")
    assert any("common" in [r["role"] if isinstance(r, dict) else r for r in p.get("roles", [])] for p in plays)
