"""tools/pulumi_stack.py: where each stack's state and secrets live, the lab's passphrase, and
which Kubernetes provider runs (upstream wins wherever it is installed)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("pulumi_stack", REPO / "tools/pulumi_stack.py")
pulumi_stack = importlib.util.module_from_spec(spec)
sys.modules["pulumi_stack"] = pulumi_stack
spec.loader.exec_module(pulumi_stack)

STAND_IN = str(pulumi_stack.STAND_IN)


def test_lab_state_and_passphrase_stay_under_lab():
    stack = pulumi_stack.load_stack("lab")
    assert stack.backend == f"file://{REPO}/.lab/pulumi" and stack.passphrase
    assert pulumi_stack.LAB_PASSPHRASE.parent == REPO / ".lab/secrets"
    assert "lab_only" in pulumi_stack.LAB_PASSPHRASE.name


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_staging_and_prod_name_a_real_backend_and_secrets_provider(env):
    stack = pulumi_stack.load_stack(env)
    assert stack.backend.startswith("s3://") and env in stack.backend
    assert stack.secrets_provider.startswith("hashivault://") and not stack.passphrase
    assert "kubernetes:kubeconfig" not in stack.config, "the controller's own kubeconfig, not the lab's"


def test_an_unknown_stack_is_named_with_the_known_ones():
    with pytest.raises(pulumi_stack.StackError, match=r"unknown stack 'qa'.*Known stacks: lab, prod, staging"):
        pulumi_stack.load_stack("qa")


def test_a_state_dir_replaces_the_backend(tmp_path):
    assert pulumi_stack.load_stack("prod", state_dir=tmp_path).backend == f"file://{tmp_path}"


@pytest.mark.parametrize("verb", ["preview", "up", "refresh", "render"])
def test_the_lab_uses_the_stand_in_only_while_upstream_is_not_installed(verb):
    path, provider = pulumi_stack.provider_path("lab", verb, [], "/usr/bin")
    assert path.split(os.pathsep) == [STAND_IN, "/usr/bin"] and "stand-in" in provider
    path, provider = pulumi_stack.provider_path("lab", verb, ["4.34.2"], f"{STAND_IN}{os.pathsep}/usr/bin")
    assert path.split(os.pathsep) == ["/usr/bin"] and "upstream kubernetes plugin 4.34.2" in provider


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_staging_and_prod_never_run_the_stand_in(env):
    with pytest.raises(
        pulumi_stack.StackError, match="needs the upstream Kubernetes provider, and it is not installed"
    ):
        pulumi_stack.provider_path(env, "up", [], f"{STAND_IN}{os.pathsep}/usr/bin")
    path, _ = pulumi_stack.provider_path(env, "up", ["4.34.2"], f"{STAND_IN}{os.pathsep}/usr/bin")
    assert STAND_IN not in path.split(os.pathsep)
    # render reaches no cluster: without upstream it may use the stand-in for any environment
    assert pulumi_stack.provider_path(env, "render", [], "/usr/bin")[0].startswith(STAND_IN)


def test_another_provider_on_path_may_not_shadow_upstream(tmp_path):
    shadow = tmp_path / "pulumi-resource-kubernetes"
    shadow.write_text("#!/bin/sh\n")
    shadow.chmod(0o755)
    with pytest.raises(pulumi_stack.StackError, match="would shadow the installed upstream provider"):
        pulumi_stack.provider_path("prod", "up", ["4.34.2"], str(tmp_path))


def test_the_lab_passphrase_is_made_once_and_required_afterwards(tmp_path):
    path = tmp_path / "secrets/pulumi_passphrase_lab_only"
    with pytest.raises(pulumi_stack.StackError, match="the lab stack exists but its passphrase"):
        pulumi_stack.lab_passphrase(stack_exists=True, path=path)
    assert not path.exists()
    made = pulumi_stack.lab_passphrase(stack_exists=False, path=path)
    passphrase = made.read_text()
    assert len(passphrase) == 40 and oct(made.stat().st_mode & 0o777) == "0o600"
    assert pulumi_stack.lab_passphrase(stack_exists=True, path=path).read_text() == passphrase


def test_the_engine_writes_its_salt_into_a_copy_never_the_stack_file(tmp_path):
    stack = pulumi_stack.load_stack("lab")
    copy = pulumi_stack.own_config(stack, tmp_path)
    written = yaml.safe_load(copy.read_text())["config"]
    assert written == {**stack.config, "kubernetes:kubeconfig": str(REPO / ".lab/kubeconfig")}, "from the repo"
    copy.write_text(copy.read_text() + "encryptionsalt: v1:abc\n")  # as `pulumi stack init` leaves it
    again = yaml.safe_load(pulumi_stack.own_config(stack, tmp_path, {"kubernetes:namespace": "x"}).read_text())
    assert again["encryptionsalt"] == "v1:abc" and again["config"]["kubernetes:namespace"] == "x"
