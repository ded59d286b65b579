"""The Pulumi CLI built by `make toolchain`: the pinned version, and a stack is never created
without the passphrase that encrypts its secrets."""

from __future__ import annotations

import re

from conftest import REPO, run

PULUMI = str(REPO / ".toolchain/bin/pulumi")


def offline(tmp_path, **extra: str) -> dict[str, str | None]:
    """An offline engine with its own home and a file:// state backend in tmp_path, no passphrase
    (unset: an empty PULUMI_CONFIG_PASSPHRASE is a valid, empty passphrase to the engine)."""
    return {
        "PULUMI_HOME": str(tmp_path / "home"),
        "PULUMI_BACKEND_URL": f"file://{tmp_path / 'state'}",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_CONFIG_PASSPHRASE": None,
        "PULUMI_CONFIG_PASSPHRASE_FILE": None,
        **extra,
    }


def test_cli_prints_the_pinned_version():
    pinned = re.search(r"github.com/pulumi/pulumi/pkg/v3 (v\S+)", (REPO / "tools/pulumi/go.mod").read_text())[1]
    assert run(PULUMI, "version").stdout.strip() == pinned


def stack_init(tmp_path, **extra: str):
    """`pulumi stack init lab` with the passphrase secrets provider, in a project of tmp_path."""
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    (project / "Pulumi.yaml").write_text("name: govops-cli-test\nruntime: python\n")
    init = ("stack", "init", "lab", "--secrets-provider", "passphrase", "--non-interactive", "--cwd", str(project))
    return run(PULUMI, *init, env=offline(tmp_path, **extra))


def test_stack_without_passphrase_is_refused_and_writes_no_state(tmp_path):
    (tmp_path / "state").mkdir()
    result = stack_init(tmp_path)
    assert result.returncode != 0
    assert "passphrase must be set with PULUMI_CONFIG_PASSPHRASE" in result.stderr + result.stdout
    assert not list((tmp_path / "state").rglob("*.json")), "a stack was written"
    assert not (tmp_path / "project/Pulumi.lab.yaml").exists()

    (tmp_path / "passphrase").write_text("lab-only passphrase of this test\n")
    result = stack_init(tmp_path, PULUMI_CONFIG_PASSPHRASE_FILE=str(tmp_path / "passphrase"))
    assert result.returncode == 0, result.stderr
    assert list((tmp_path / "state").rglob("lab.json"))
