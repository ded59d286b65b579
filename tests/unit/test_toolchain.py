"""tools/toolchain.py: the pins it reads, and the one clear message when a tool cannot be built."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("toolchain", REPO / "tools/toolchain.py")
toolchain = importlib.util.module_from_spec(spec)
sys.modules["toolchain"] = toolchain
spec.loader.exec_module(toolchain)

FAMILIES = sorted(p.parent.name for p in (REPO / "tools").glob("*/go.mod"))


def test_every_family_is_pinned_and_builds_something():
    assert FAMILIES == ["kubernetes", "kwok", "pulumi"]
    for family in FAMILIES:
        tools, requires = toolchain.parse_go_mod(REPO / "tools" / family / "go.mod")
        assert tools, family
        assert all(version.startswith("v") for version in requires.values())
        assert (REPO / "tools" / family / "go.sum").stat().st_size > 0, f"{family}: go.sum pins the module hashes"


def test_kubernetes_staging_modules_follow_the_pinned_release():
    text = (REPO / "tools/kubernetes/go.mod").read_text()
    _, requires = toolchain.parse_go_mod(REPO / "tools/kubernetes/go.mod")
    release = requires["k8s.io/kubernetes"]  # v1.34.4 -> the staging modules' v0.34.4
    replaces = [line.split() for line in text.splitlines() if "=> k8s.io/" in line]
    assert len(replaces) >= 30
    assert all(
        source == target and version == "v0." + release.removeprefix("v1.") for source, _, target, version in replaces
    )


def test_versions_are_stamped_into_the_binaries():
    _, k8s = toolchain.parse_go_mod(REPO / "tools/kubernetes/go.mod")
    assert "gitVersion=" + k8s["k8s.io/kubernetes"] in toolchain.version_ldflags("kubernetes", k8s)
    _, pulumi = toolchain.parse_go_mod(REPO / "tools/pulumi/go.mod")
    assert toolchain.version_ldflags("pulumi", pulumi).endswith(
        "version.Version=" + pulumi["github.com/pulumi/pulumi/pkg/v3"]
    )


def test_missing_go_is_named(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert toolchain.main(["--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "out"), "kwok"]) == 2
    assert "'go' is not on PATH" in capsys.readouterr().err


def test_unreachable_module_names_the_tool(tmp_path, monkeypatch, capsys):
    family = tmp_path / "tools" / "kwok"
    family.mkdir(parents=True)
    for name in ("go.mod", "go.sum"):
        shutil.copy(REPO / "tools/kwok" / name, family / name)
    monkeypatch.setattr(toolchain, "TOOLS", tmp_path / "tools")
    # an empty module cache and no proxy: the module cannot be had, as with no network
    monkeypatch.setenv("GOMODCACHE", str(tmp_path / "modcache"))
    monkeypatch.setenv("GOPROXY", "off")
    assert (
        toolchain.main(
            [
                "--cache",
                str(tmp_path / "cache"),
                "--out",
                str(tmp_path / "out"),
                "--report",
                str(tmp_path / "report.json"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "make toolchain: cannot build kwok (sigs.k8s.io/kwok/cmd/kwok, tools/kwok/go.mod)" in err
    assert "GOPROXY=off" in err
    assert not list((tmp_path / "cache").glob("kwok-*")), "a failed build leaves no cache entry"
