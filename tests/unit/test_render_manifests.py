"""`make render` for every stack: the engine with the lab's stand-in provider in render mode (no
cluster, no state, placeholder secrets), the policy pack, then every manifest checked against
the Kubernetes 1.34 OpenAPI schema (tools/validate_manifests.py)."""

from __future__ import annotations

import base64
import importlib.util
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("validate_manifests", REPO / "tools/validate_manifests.py")
validate_manifests = importlib.util.module_from_spec(spec)
sys.modules["validate_manifests"] = validate_manifests
spec.loader.exec_module(validate_manifests)

ENVS = ("lab", "staging", "prod")
CONFIG_MAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "slo", "namespace": "cfm"}, "data": {}}


def test_a_valid_manifest_passes_the_schema():
    assert validate_manifests.problems(CONFIG_MAP) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"data": {"a": 1}}, "data.a: 1 is not of type 'string'"),
        ({"datas": {}}, "Additional properties are not allowed ('datas' was unexpected)"),
        ({"kind": "ConfigMapp"}, "Couldn't find schema for kind ConfigMapp with api version v1"),
    ],
)
def test_a_manifest_that_the_api_server_would_refuse_is_named(change, message):
    (problem,) = validate_manifests.problems({**CONFIG_MAP, **change})
    assert message in problem


def test_the_schema_is_the_clusters_version():
    assert validate_manifests.KUBERNETES_VERSION == "1.34"
    go_mod = (REPO / "tools/kubernetes/go.mod").read_text()
    assert "k8s.io/kubernetes v1.34." in go_mod


def render(env: str) -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    result = subprocess.run(
        [str(REPO / ".venv/bin/python"), "tools/pulumi_stack.py", "render", "--env", env],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return result, time.monotonic() - start


@pytest.mark.skipif(not (REPO / ".toolchain/bin/pulumi").exists(), reason="needs the Pulumi CLI: make toolchain")
def test_every_stack_renders_manifests_that_match_the_schema():
    with ThreadPoolExecutor(len(ENVS)) as pool:
        results = dict(zip(ENVS, pool.map(render, ENVS), strict=True))
    for env, (result, seconds) in results.items():
        assert result.returncode == 0, f"{env} ({seconds:.0f} s): " + result.stdout[-3000:] + result.stderr[-2000:]
        assert f"render {env}: 51 manifests match the Kubernetes 1.34 schema" in result.stdout
        out = REPO / "reports/render" / env / "1-manifest"
        secret = yaml.safe_load((out / "v1-secret-cfm-db.yaml").read_text())
        password = base64.b64decode(secret["data"]["PGPASSWORD"]).decode()
        assert password == "render-placeholder-not-a-secret", "never a real secret"
        deployment = yaml.safe_load((out / "apps_v1-deployment-cfm-web.yaml").read_text())
        assert deployment["metadata"]["labels"]["govops.gov/environment"] == env
