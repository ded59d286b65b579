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
    assert FAMILIES == ["kubernetes", "kwok", "pulumi", "pulumi-language-python"]
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


def test_the_python_language_host_is_the_last_release_inside_sdk_v3():
    tools, requires = toolchain.parse_go_mod(REPO / "tools/pulumi-language-python/go.mod")
    assert tools == ["github.com/pulumi/pulumi/sdk/v3/python/cmd/pulumi-language-python"]
    assert requires["github.com/pulumi/pulumi/sdk/v3"] == "v3.79.0", "later releases moved it to a refused module"
    assert toolchain.version_ldflags("pulumi-language-python", requires).endswith("version.Version=v3.79.0")
    # the scripts it runs beside itself come from its module, as the engine's own releases ship them
    assert toolchain.extra_files("pulumi-language-python") == [
        "python/cmd/pulumi-language-python-exec",
        "python/dist/pulumi-resource-pulumi-python",
        "python/dist/pulumi-analyzer-policy-python",
    ]
    assert toolchain.extra_files("kwok") == []


def test_kubectl_is_built_with_the_control_plane_and_stamped_the_same_way():
    tools, requires = toolchain.parse_go_mod(REPO / "tools/kubernetes/go.mod")
    assert "k8s.io/kubernetes/cmd/kubectl" in tools
    # `kubectl version --client` prints k8s.io/component-base/version's gitVersion (k8s 1.34)
    assert "-X k8s.io/component-base/version.gitVersion=v1.34.4" in toolchain.version_ldflags("kubernetes", requires)


def test_policy_packs_find_their_analyzer_on_path():
    launcher = REPO / "tools/bin/pulumi-analyzer-policy-pypolicy"
    assert launcher.stat().st_mode & 0o111, "executable"
    assert '.venv/bin/python" -u -m pulumi.policy "$1" "$2"' in launcher.read_text()


def test_launchers_are_linked_and_every_link_is_checksummed(tmp_path, monkeypatch):
    built = tmp_path / "cache/kwok-v0-key/bin"
    built.mkdir(parents=True)
    (built / "kwok").write_bytes(b"kwok binary")
    out = tmp_path / "out"
    (out / "bin").mkdir(parents=True)
    (tmp_path / "kube-apiserver").write_bytes(b"built by an earlier run")
    (out / "bin/kube-apiserver").symlink_to(tmp_path / "kube-apiserver")
    monkeypatch.setattr(toolchain, "go_version", lambda: "go1.26")
    monkeypatch.setattr(toolchain, "build_family", lambda family, cache, goversion: (built, []))
    args = ["--cache", str(tmp_path / "cache"), "--out", str(out), "--report", str(tmp_path / "r.json"), "kwok"]
    assert toolchain.main(args) == 0
    assert (out / "bin/pulumi-analyzer-policy-pypolicy").resolve() == REPO / "tools/bin/pulumi-analyzer-policy-pypolicy"
    sums = dict(reversed(line.split("  ")) for line in (out / "SHA256SUMS").read_text().splitlines())
    assert set(sums) == {"kwok", "kube-apiserver", "pulumi-analyzer-policy-pypolicy"}
    assert sums["kube-apiserver"] == toolchain.sha256(tmp_path / "kube-apiserver")


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
