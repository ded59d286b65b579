"""The lab's Kubernetes provider against the lab's API server, through the engine, with a small
program of its own: a refused manifest fails the preview and nothing is applied; a Deployment is
awaited until available (create, rollout, replacement) and a timeout names what it waited for."""

from __future__ import annotations

import os
import textwrap

import pytest
from conftest import REPO, run
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pulumi_lab import KUBECONFIG, PREFIX, api

pytestmark = pytest.mark.usefixtures("lab_running")

PROGRAM = """
import signal

import pulumi
import pulumi_kubernetes as k8s

signal.signal(signal.SIGINT, signal.SIG_DFL)  # as infra/__main__.py: no traceback when interrupted

config = pulumi.Config()
prefix = config.require("prefix")
scenario = config.require("scenario")
labels = {"app": "web"}

if scenario == "refused":
    k8s.core.v1.Namespace("good", metadata={"name": prefix + "good"})
    k8s.core.v1.Namespace("bad", metadata={"name": prefix + "bad", "labels": {"tier": "not a label value!"}})
else:
    ns = k8s.core.v1.Namespace("apps", metadata={"name": prefix + "apps"})
    image = config.get("image") or "registry.invalid/web:1"
    selector = {"app": config.get("selector") or "web"}
    timeout = {"pulumi.com/timeoutSeconds": config.get("timeout") or "120"}
    web = k8s.apps.v1.Deployment(
        "web",
        metadata={"namespace": ns.metadata.name, "annotations": timeout},
        spec={
            "replicas": 2,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": selector},
                "spec": {
                    "containers": [{"name": "web", "image": image}],
                    "nodeSelector": {"govops.gov/nowhere": "true"} if config.get_bool("stuck") else None,
                },
            },
        },
    )
    pulumi.export("name", web.metadata.name)
    pulumi.export("available", web.status.available_replicas)
"""


@pytest.fixture
def project(tmp_path):
    """The program in its own project, state and passphrase; the stand-in provider on PATH."""
    (tmp_path / "Pulumi.yaml").write_text(
        f"name: govops-provider-e2e\nruntime:\n  name: python\n  options:\n    virtualenv: {REPO}/.venv\n"
    )
    (tmp_path / "__main__.py").write_text(textwrap.dedent(PROGRAM))
    (tmp_path / "passphrase").write_text("lab-only passphrase of this test")
    (tmp_path / "state").mkdir()
    env = {
        "PATH": os.pathsep.join(
            [str(REPO / "tools/lab-kubernetes-provider/bin"), str(REPO / ".toolchain/bin"), os.environ["PATH"]]
        ),
        "PULUMI_BACKEND_URL": f"file://{tmp_path / 'state'}",
        "PULUMI_CONFIG_PASSPHRASE_FILE": str(tmp_path / "passphrase"),
        "PULUMI_CONFIG_PASSPHRASE": None,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_PYTHON_CMD": str(REPO / ".venv/bin/python"),  # as tools/pulumi_stack.py does
    }

    def pulumi(*args: str):
        return run(str(REPO / ".toolchain/bin/pulumi"), *args, "--non-interactive", "--cwd", str(tmp_path), env=env)

    assert pulumi("stack", "init", "e2e").returncode == 0
    for key, value in {"prefix": PREFIX, "kubernetes:kubeconfig": str(KUBECONFIG)}.items():
        assert pulumi("config", "set", key, value).returncode == 0
    yield pulumi
    pulumi("destroy", "--yes")
    core = client.CoreV1Api(api())
    for name in ("good", "bad", "apps"):
        try:
            core.delete_namespace(PREFIX + name)
        except ApiException as error:
            assert error.status == 404


def state_files(pulumi) -> str:
    return pulumi("stack", "export").stdout


def test_a_refused_manifest_fails_the_preview_with_the_servers_message_and_nothing_is_applied(project):
    assert project("config", "set", "scenario", "refused").returncode == 0
    before = state_files(project)
    result = project("up", "--yes")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"Namespace {PREFIX}bad: the API server refused it" in output, output[-3000:]
    assert 'metadata.labels: Invalid value: "not a label value!"' in output
    assert "Traceback" not in output
    core = client.CoreV1Api(api())
    for name in ("good", "bad"):
        with pytest.raises(ApiException) as missing:
            core.read_namespace(PREFIX + name)
        assert missing.value.status == 404, "nothing was applied"
    assert state_files(project) == before


def test_a_deployment_is_awaited_rolled_out_and_replaced(project):
    project("config", "set", "scenario", "deployment")
    created = project("up", "--yes")
    assert created.returncode == 0, created.stdout[-3000:]
    name = project("stack", "output", "name").stdout.strip()
    assert name.startswith("web-") and len(name) == len("web-") + 8, "autonamed"
    assert project("stack", "output", "available").stdout.strip() == "2", "up returned once both were ready"

    project("config", "set", "image", "registry.invalid/web:2")
    rolled = project("up", "--yes")
    assert rolled.returncode == 0, rolled.stdout[-3000:]
    apps = client.AppsV1Api(api())
    live = apps.read_namespaced_deployment(name, PREFIX + "apps")
    assert live.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    assert live.status.updated_replicas == 2 and live.status.available_replicas == 2

    project("config", "set", "selector", "web2")
    replaced = project("up", "--yes")
    assert replaced.returncode == 0, replaced.stdout[-3000:]
    assert "replaced" in replaced.stdout
    new_name = project("stack", "output", "name").stdout.strip()
    assert new_name != name, "an autonamed object is replaced by a new name, created before the old one goes"
    with pytest.raises(ApiException):
        apps.read_namespaced_deployment(name, PREFIX + "apps")
    assert project("preview", "--expect-no-changes").returncode == 0


def test_a_timeout_names_the_object_and_what_it_waited_for(project):
    project("config", "set", "scenario", "deployment")
    project("config", "set", "timeout", "8")
    project("config", "set", "stuck", "true")
    result = project("up", "--yes")
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0
    assert f"Deployment {PREFIX}apps/web-" in output and "was not ready after 8 s" in output, output[-3000:]
    assert "Available=True" in output
    exported = state_files(project)
    assert "kubernetes:apps/v1:Deployment" in exported, "the Deployment it wrote is in the state"
