"""bcrypt_keep, the filter behind the web accounts of Prometheus and Alertmanager: a hash that still
matches its password is kept (a no-change converge changes nothing), any other gets a new one."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import bcrypt
import pytest
from ansible.errors import AnsibleFilterError

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("web_passwords", ROOT / "playbooks/filter_plugins/web_passwords.py")
web_passwords = importlib.util.module_from_spec(spec)
spec.loader.exec_module(web_passwords)
bcrypt_keep = web_passwords.bcrypt_keep


def test_a_new_hash_is_bcrypt_at_the_toolkits_cost_and_checks():
    hashed = bcrypt_keep("a-password-of-the-vault")
    assert hashed.startswith("$2b$10$")
    assert bcrypt.checkpw(b"a-password-of-the-vault", hashed.encode())
    assert not bcrypt.checkpw(b"another-password", hashed.encode())


def test_the_current_hash_is_kept_while_the_password_matches():
    current = bcrypt_keep("a-password-of-the-vault")
    assert bcrypt_keep("a-password-of-the-vault", current) == current


@pytest.mark.parametrize("current", ["", "not-a-hash", "$2b$10$broken", None])
def test_a_changed_password_or_an_unusable_hash_gets_a_new_hash(current):
    old = bcrypt_keep("the-old-password-here")
    for previous in (old, current or ""):
        hashed = bcrypt_keep("the-new-password-here", previous)
        assert hashed != previous
        assert bcrypt.checkpw(b"the-new-password-here", hashed.encode())


@pytest.mark.parametrize(("password", "message"), [("", "non-empty"), (None, "non-empty"), ("x" * 73, "72 bytes")])
def test_a_password_bcrypt_cannot_hash_is_refused(password, message):
    with pytest.raises(AnsibleFilterError, match=message):
        bcrypt_keep(password)


def test_ansible_finds_the_filter_through_the_kits_configuration():
    out = subprocess.run(
        [sys.executable, "-m", "ansible", "adhoc", "-i", "localhost,", "-c", "local", "localhost",
         "-m", "ansible.builtin.debug", "-a", "msg={{ 'a-password-of-the-vault' | bcrypt_keep }}"],
        cwd=ROOT, env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}, capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "$2b$10$" in out.stdout


web_users_problems = web_passwords.web_users_problems


def test_accounts_of_their_own_pass_the_rule():
    assert web_users_problems({"govops": "k" * 16, "ops": "o" * 72}, "govops") == []


@pytest.mark.parametrize(
    ("users", "found"),
    [
        ({}, "no account"),
        ({"ops": "a-long-enough-password"}, "no account 'govops' for the kit's own clients"),
        ({"govops": "short"}, "account govops: the password must have 16 to 72 characters"),
        ({"govops": "x" * 73}, "account govops: the password must have 16 to 72 characters"),
        ({"govops": "a-long-enough-password", "bad name": "another-long-password"}, "account name 'bad name'"),
        ({"govops": "one-password-for-two", "prometheus": "one-password-for-two"},
         "accounts govops and prometheus share one password"),
    ],
    ids=["empty", "no-kit-account", "too-short", "too-long", "bad-name", "shared"],
)  # fmt: skip
def test_each_broken_rule_is_named_without_the_password(users, found):
    problems = web_users_problems(users, "govops")
    assert any(found in problem for problem in problems), problems
    assert not any(str(password) in problem for password in users.values() for problem in problems), problems
