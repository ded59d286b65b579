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


@pytest.mark.parametrize(("verb", "runs_policies"), [("preview", True), ("up", True), ("refresh", False)])
def test_preview_and_up_run_the_policy_pack(verb, runs_policies):
    flags = pulumi_stack._verb_flags(verb)
    assert (["--policy-pack", str(REPO / "infra/policy")] == flags[-2:]) is runs_policies
    assert (REPO / "infra/policy/PulumiPolicy.yaml").is_file()


def lab_stack(tmp_path, files: dict[str, str]) -> tuple:
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    for name, value in files.items():
        (secrets_dir / name).write_text(value + "\n")  # as Ansible's password lookup writes them
    return pulumi_stack.load_stack("lab"), secrets_dir


def test_the_lab_secrets_come_from_the_lab_files_its_stack_names(tmp_path):
    names = {"pg_cfm_app_password": "a1", "sendsms_password": "s2", "pg_scorecard_app_password": "b3"}
    stack, directory = lab_stack(tmp_path, names)
    assert pulumi_stack.lab_secret_values(stack, directory) == {
        "govops:cfmDatabasePassword": "a1",
        "govops:cfmSendsmsPassword": "s2",
        "govops:scorecardDatabasePassword": "b3",
    }


def test_a_missing_lab_secret_file_is_named_with_what_makes_it(tmp_path):
    stack, directory = lab_stack(tmp_path, {"pg_cfm_app_password": "a1", "sendsms_password": "s2"})
    with pytest.raises(pulumi_stack.StackError) as error:
        pulumi_stack.lab_secret_values(stack, directory)
    assert f"govops:labSecretFiles.scorecardDatabasePassword is {directory}/pg_scorecard_app_password" in str(
        error.value
    )
    assert "`make deploy ENV=lab` generates the lab's secrets" in str(error.value)


def fake_pulumi(tmp_path) -> tuple[str, Path]:
    """A `pulumi` that records each call's arguments and standard input."""
    log = tmp_path / "calls"
    script = tmp_path / "pulumi"
    script.write_text(f'#!/bin/sh\necho "$@" >> {log}\necho "stdin=$(cat)" >> {log}\n')
    script.chmod(0o755)
    return str(script), log


def test_secrets_go_through_stdin_and_only_when_they_changed(tmp_path):
    pulumi, log = fake_pulumi(tmp_path)
    stack = pulumi_stack.load_stack("lab")
    copy = pulumi_stack.own_config(stack, tmp_path)
    values = {"govops:cfmDatabasePassword": "a1-value"}
    pulumi_stack.set_secrets(pulumi, stack, copy, values, {})
    calls = log.read_text()
    assert "config set --secret govops:cfmDatabasePassword --stack lab" in calls and "stdin=a1-value" in calls
    assert "a1-value" not in calls.replace("stdin=a1-value", ""), "never on a command line"
    # as the engine leaves the copy: the value encrypted; the next run with the same value sets nothing
    content = yaml.safe_load(copy.read_text())
    content["config"]["govops:cfmDatabasePassword"] = {"secure": "v1:abc"}
    copy.write_text(yaml.safe_dump(content))
    kept = pulumi_stack.own_config(stack, tmp_path, keep=tuple(values))
    assert yaml.safe_load(kept.read_text())["config"]["govops:cfmDatabasePassword"] == {"secure": "v1:abc"}
    log.unlink()
    pulumi_stack.set_secrets(pulumi, stack, kept, values, {})
    assert not log.exists()
    pulumi_stack.set_secrets(pulumi, stack, kept, {"govops:cfmDatabasePassword": "changed"}, {})
    assert "stdin=changed" in log.read_text()


def test_render_takes_the_programs_secret_settings_and_drops_encrypted_ones():
    assert pulumi_stack.secret_keys(pulumi_stack.load_stack("prod")) == (
        "cfmDatabasePassword",
        "scorecardDatabasePassword",
        "cfmSendsmsPassword",
    )
    assert pulumi_stack._encrypted({"secure": "v1:abc"}) and not pulumi_stack._encrypted("plain")
