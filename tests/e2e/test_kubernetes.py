"""The lab's Kubernetes control plane: reachable from the controller with the fetched
kubeconfig, and a corrupt or missing artifact is refused before anything changes."""

from __future__ import annotations

import base64
import json
import os
import shutil
import ssl
import urllib.request

import pytest
import yaml
from conftest import REPO, recap, run

PLAYBOOK = "playbooks/kubernetes.yml"
ARTIFACTS = REPO / ".toolchain/bin"


def test_fetched_kubeconfig_reaches_the_api(lab_running, tmp_path):
    config = yaml.safe_load((REPO / ".lab/kubeconfig").read_text())
    assert oct((REPO / ".lab/kubeconfig").stat().st_mode & 0o777) == "0o600"
    cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
    for name, field in (
        ("ca.crt", cluster["certificate-authority-data"]),
        ("admin.crt", user["client-certificate-data"]),
        ("admin.key", user["client-key-data"]),
    ):
        (tmp_path / name).write_bytes(base64.b64decode(field))
    tls = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
    tls.load_cert_chain(tmp_path / "admin.crt", tmp_path / "admin.key")
    with urllib.request.urlopen(cluster["server"] + "/api/v1/nodes", context=tls, timeout=10) as response:
        nodes = json.load(response)["items"]
    assert len(nodes) >= 3, nodes


@pytest.fixture
def artifacts_copy(tmp_path):
    """A copy of the lab's artifact directory to spoil (links to the real binaries but one)."""
    for binary in ARTIFACTS.iterdir():
        os.symlink(binary.resolve(), tmp_path / binary.name)
    return tmp_path


def corrupt(directory, name):
    target = directory / name
    target.unlink()
    shutil.copyfile(ARTIFACTS / name, target)
    with target.open("r+b") as handle:
        handle.seek(4096)
        byte = handle.read(1)
        handle.seek(4096)
        handle.write(bytes([byte[0] ^ 0xFF]))


@pytest.mark.parametrize(
    ("spoil", "message"),
    [(corrupt, "kwok: its sha256 is"), (lambda d, n: (d / n).unlink(), "kwok: the file does not exist")],
    ids=["corrupt", "missing"],
)
def test_bad_artifact_is_refused_before_any_change(lab_running, artifacts_copy, spoil, message):
    spoil(artifacts_copy, "kwok")
    result = run(
        "ansible-playbook",
        "-i",
        "stacks/lab",
        PLAYBOOK,
        "-e",
        json.dumps({"kubernetes_control_plane_artifacts_dir": str(artifacts_copy)}),
    )
    assert result.returncode != 0
    flat = " ".join(result.stdout.split())
    assert f"Refusing to install {artifacts_copy}/{message}" in flat, result.stdout[-3000:]
    assert "kubernetes_control_plane_sha256.kwok expects" in flat
    assert all(counts["changed"] == 0 for counts in recap(result.stdout).values())
