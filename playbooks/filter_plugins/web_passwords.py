"""The web accounts of Prometheus and Alertmanager (basic_auth_users): their rules, and their hashes.

`web_users_problems` is the one rule both roles' preflights apply to their accounts.

A bcrypt hash has a random salt: hashing the same password again gives another hash, and the file
would change on every run. `bcrypt_keep` keeps the hash the host already has while it still
matches the password, and makes a new one only when the password changed (or none was there), so
a no-change converge reports no change and check mode shows only real password changes.

Ansible's own password_hash filter needs passlib, which the kit does not ship; bcrypt is in the
controller's requirements already.
"""

from __future__ import annotations

import re

import bcrypt
from ansible.errors import AnsibleFilterError

DOCUMENTATION = """
name: bcrypt_keep
short_description: a bcrypt hash of a password, the current one when it still matches
positional: current
options:
  _input: {description: the password, type: str, required: true}
  current: {description: the hash the host has now (empty when none), type: str, default: ""}
  rounds: {description: bcrypt's cost (2^rounds iterations), type: int, default: 10}
"""

# Prometheus's exporter-toolkit checks the hash on every request (and caches the result): cost 10
# is the toolkit's documented example and costs ~50 ms per uncached check.
DEFAULT_ROUNDS = 10
# bcrypt reads at most 72 bytes; below 16 characters a password is guessable offline from a hash.
MIN_LENGTH, MAX_LENGTH = 16, 72
NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def web_users_problems(users, kit_user: str) -> list[str]:
    """What is wrong with {name: password}: empty, no account for the kit, a name the file cannot
    hold plainly, a password too short or too long, two accounts sharing one. Names only, never
    a password."""
    if not isinstance(users, dict) or not users:
        return ["no account"]
    problems = [] if kit_user in users else [f"no account '{kit_user}' for the kit's own clients"]
    problems += [f"account name {name!r}: letters, digits and '_.-' only" for name in users
                 if not NAME.match(str(name))]  # fmt: skip
    problems += [
        f"account {name}: the password must have {MIN_LENGTH} to {MAX_LENGTH} characters"
        for name, password in users.items()
        if not MIN_LENGTH <= len(str(password)) <= MAX_LENGTH
    ]
    by_password: dict[str, list[str]] = {}
    for name, password in users.items():
        by_password.setdefault(str(password), []).append(str(name))
    problems += [f"accounts {' and '.join(sorted(names))} share one password" for names in by_password.values()
                 if len(names) > 1]  # fmt: skip
    return problems


def bcrypt_keep(password, current: str = "", rounds: int = DEFAULT_ROUNDS) -> str:
    if not isinstance(password, str) or not password:
        raise AnsibleFilterError("bcrypt_keep: the password must be a non-empty string")
    secret = password.encode()
    if len(secret) > 72:
        raise AnsibleFilterError("bcrypt_keep: bcrypt reads at most 72 bytes of a password; this one is longer")
    if current and current.startswith("$2"):
        try:
            if bcrypt.checkpw(secret, current.encode()):
                return current
        except ValueError:
            pass  # not a bcrypt hash after all: make a new one
    return bcrypt.hashpw(secret, bcrypt.gensalt(rounds=int(rounds))).decode()


class FilterModule:
    def filters(self):
        return {"bcrypt_keep": bcrypt_keep, "web_users_problems": web_users_problems}
