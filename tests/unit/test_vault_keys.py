"""What a staging or prod vault must hold: derived once from the group_vars; the example and the
test vault hold exactly that; `make vault-check` names what a real vault lacks, never a value."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from environment_check import (
    REPO,
    STACKS,
    TEST_VAULT_PASSWORD_FILE,
    deployed_environments,
    encrypt_as_fixture,
    fixture_vault,
)

spec = importlib.util.spec_from_file_location("vault_check", REPO / "playbooks/vault_check.py")
vault_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(vault_check)

ENVS = deployed_environments()


def example(env: str) -> dict:
    return yaml.safe_load((STACKS / env / "vault.example.yml").read_text())


def write_vault(path: Path, data: dict) -> Path:
    path.write_bytes(encrypt_as_fixture(data))
    return path


@pytest.mark.parametrize("env", ENVS)
def test_example_and_test_vault_hold_exactly_the_referenced_keys(env):
    needed = vault_check.referenced_vault_keys(STACKS / env)
    assert needed, f"{env}: its group_vars read nothing from the vault"
    for name, keys in (
        (f"stacks/{env}/vault.example.yml", set(example(env))),
        (f"tests/fixtures/vault/{env}.yml", set(fixture_vault(env))),
    ):
        assert keys == needed, f"{name}: lacks {sorted(needed - keys)}, has unread {sorted(keys - needed)}"
    # the same hosts' certificates and the same database roles in both
    assert vault_check.key_paths(example(env)) == vault_check.key_paths(fixture_vault(env))


def test_keys_are_read_from_templates_not_comments(tmp_path):
    group_vars = tmp_path / "group_vars/db"
    group_vars.mkdir(parents=True)
    (group_vars / "db.yml").write_text(
        "# vault_in_a_comment is not read\n"
        'a: "{{ vault_secret }}"\n'
        'b: ["{{ vault_map[inventory_hostname] | default(\'\') }}", {c: "{{ vault_other.x }}"}]\n'
        "vault_name_only: plain\n"
    )
    assert vault_check.referenced_vault_keys(tmp_path) == {"vault_secret", "vault_map", "vault_other"}


def test_missing_keys_are_named_once_and_placeholders_found():
    example = {"vault_a": "REPLACE", "vault_certs": {"db1": "REPLACE", "db2": "REPLACE"}, "vault_b": "REPLACE"}
    needed = {"vault_a", "vault_certs", "vault_b"}
    assert vault_check.compare({}, example, needed) == (["vault_a", "vault_b", "vault_certs"], [])
    vault = {"vault_a": "s3cr3t-value", "vault_certs": {"db1": "PEM"}, "vault_b": "REPLACE"}
    assert vault_check.compare(vault, example, needed) == (["vault_certs.db2"], ["vault_b"])


def run_check(capsys, *args: str) -> tuple[int, str]:
    code = vault_check.main(["prod", *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_check_without_a_vault_lists_every_key(tmp_path, capsys):
    code, output = run_check(capsys, "--vault", str(tmp_path / "vault.yml"))
    assert code == 1
    assert "does not exist" in output
    for key in vault_check.referenced_vault_keys(STACKS / "prod"):
        assert f"missing: {key}" in output


def test_check_names_missing_keys_and_never_a_value(tmp_path, capsys):
    vault = fixture_vault("prod")
    del vault["vault_smpp_password"]
    del vault["vault_tls_keys"]["k8s1"]
    vault["vault_pg_passwords"]["cfm_app"] = example("prod")["vault_pg_passwords"]["cfm_app"]
    path = write_vault(tmp_path / "vault.yml", vault)
    code, output = run_check(capsys, "--vault", str(path), "--vault-password-file", str(TEST_VAULT_PASSWORD_FILE))
    assert code == 1
    assert "missing: vault_smpp_password" in output
    assert "missing: vault_tls_keys.k8s1" in output
    assert "still the example's placeholder: vault_pg_passwords.cfm_app" in output
    secrets = [vault["vault_kannel_admin_password"], vault["vault_tls_keys"]["db1"].splitlines()[1]]
    assert not any(secret in output for secret in secrets)


def test_check_passes_the_complete_test_vault(capsys):
    vault = str(REPO / "tests/fixtures/vault/prod.yml")
    code, output = run_check(capsys, "--vault", vault, "--vault-password-file", str(TEST_VAULT_PASSWORD_FILE))
    assert code == 0, output


def test_check_refuses_a_vault_it_cannot_open(tmp_path, capsys):
    wrong = tmp_path / "wrong-password.txt"
    wrong.write_text("not the password\n")
    vault = str(REPO / "tests/fixtures/vault/prod.yml")
    code, output = run_check(capsys, "--vault", vault, "--vault-password-file", str(wrong))
    assert code == 2
    assert "Cannot read" in output


def make(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    # -o venv: the virtualenv this test runs in is the one to use; never reinstall it from here
    return subprocess.run(
        ["make", "--no-print-directory", "-o", "venv", *args], cwd=REPO, capture_output=True, text=True, env=env
    )


def test_make_vault_check_lists_what_the_vault_lacks(tmp_path):
    vault = fixture_vault("prod")
    del vault["vault_kannel_status_password"]
    path = write_vault(tmp_path / "vault.yml", vault)
    environment = {**os.environ, "ANSIBLE_VAULT_PASSWORD_FILE": str(TEST_VAULT_PASSWORD_FILE)}
    result = make("vault-check", "ENV=prod", f"VAULT={path}", env=environment)
    assert result.returncode != 0
    assert "missing: vault_kannel_status_password" in result.stdout
    assert "missing:" not in result.stdout.replace("missing: vault_kannel_status_password", "")


def test_make_vault_check_without_a_vault(tmp_path):
    result = make("vault-check", "ENV=prod", f"VAULT={tmp_path / 'vault.yml'}")
    assert result.returncode != 0
    assert "does not exist" in result.stdout
    assert "missing: vault_tls_ca_cert" in result.stdout


def test_make_vault_check_refuses_an_unknown_environment():
    result = make("vault-check", "ENV=nowhere")
    assert result.returncode != 0
    assert "Unknown ENV 'nowhere'" in result.stderr
