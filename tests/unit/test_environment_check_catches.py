"""The environment check fails, and says where, when an environment lacks what a role needs.

Each case runs the check against a temporary copy (of the test vault, or of the roles), limited
to one host to stay quick; the fixtures and roles themselves are never edited.
"""

from __future__ import annotations

import shutil

import pytest
import yaml
from environment_check import ROLES, InputCheck, fixture_vault, inventory_copy, roles_by_host, template_failures

# tests/host_checks.py sets up Ansible's plugin loader once per inventory it opens
pytestmark = pytest.mark.filterwarnings("ignore:AnsibleCollectionFinder has already been configured")


def test_a_vault_key_missing_fails_the_role_that_reads_it(tmp_path):
    vault = fixture_vault("prod")
    del vault["vault_tls_ca_cert"]
    inventory = inventory_copy("prod", tmp_path, vault)
    # backup1: common (which reads no certificate) and pgbackrest (which does)
    failures = InputCheck(inventory, roles_by_host(inventory), limit="backup1").failures()["backup1"]
    assert set(failures) == {"pgbackrest"}, failures
    assert "vault_tls_ca_cert" in failures["pgbackrest"]


def test_a_vault_key_missing_fails_the_template_that_reads_it(tmp_path):
    vault = fixture_vault("prod")
    del vault["vault_pgbackrest_cipher_pass"]
    inventory = inventory_copy("prod", tmp_path, vault)
    failures = template_failures(inventory, "backup1", "pgbackrest")
    assert failures, "backup1's pgbackrest.conf rendered without its passphrase"
    assert all("vault_pgbackrest_cipher_pass" in failure for failure in failures), failures
    assert any(failure.startswith("pgbackrest.conf.j2") for failure in failures), failures


def test_a_required_variable_prod_does_not_give_fails(tmp_path):
    roles = tmp_path / "roles"
    shutil.copytree(ROLES, roles, ignore=shutil.ignore_patterns("molecule"))
    spec_file = roles / "kannel/meta/argument_specs.yml"
    spec = yaml.safe_load(spec_file.read_text())
    spec["argument_specs"]["main"]["options"]["kannel_short_code"] = {
        "type": "str",
        "required": True,
        "description": "A setting the role gained, which prod does not give yet.",
    }
    spec_file.write_text(yaml.safe_dump(spec))
    inventory = inventory_copy("prod", tmp_path)
    check = InputCheck(inventory, roles_by_host(inventory), roles_dir=roles, limit="sms1")
    failure = check.failures()["sms1"].get("kannel")
    assert failure and "kannel_short_code" in failure, failure


def test_a_short_web_password_fails_the_role_before_anything_changes(tmp_path):
    vault = fixture_vault("prod")
    vault["vault_prometheus_web_passwords"]["ops"] = "short"
    inventory = inventory_copy("prod", tmp_path, vault)
    failures = InputCheck(inventory, roles_by_host(inventory), limit="mon1").failures()["mon1"]
    assert set(failures) == {"prometheus"}, failures
    assert "prometheus_web_users must name at least" in failures["prometheus"]
