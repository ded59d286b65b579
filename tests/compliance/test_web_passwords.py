"""Prometheus and Alertmanager answer no one without a password: each runs with a web configuration
file of bcrypt hashes (HTTP basic auth), a request without a login gets 401, and no account's
password is one a package or its documentation ships, or the account's own name. The hashes are
tried on the controller; the evidence names the accounts, never a hash."""

from __future__ import annotations

import bcrypt
import yaml

from tests.compliance.controls import control
from tests.compliance.process_flags import process_flags
from tests.compliance.test_service_passwords import KNOWN_DEFAULTS
from tests.host_checks import host_http

testinfra_hosts = ["ansible://monitoring"]

# the service, and the name of its process (Debian's binaries)
SERVICES = {"Prometheus": "prometheus", "Alertmanager": "prometheus-alertmanager"}


def default_password_of(name: str, hashed: str) -> str | None:
    """The known default (or the account's name) that `hashed` is the hash of, if any."""
    for password in sorted(KNOWN_DEFAULTS | {name}):
        if bcrypt.checkpw(password.encode(), hashed.encode()):
            return password or "(empty)"
    return None


@control(
    "KIT-PASS-02",
    title="Prometheus and Alertmanager ask for a password, and no account has a default one",
    rationale="Their APIs show every host, address and alert of the platform, and Alertmanager's lets anyone "
    "silence the alerts that page on-call staff; an account whose password is shipped in documentation "
    "or equals its name is the first one an attacker tries.",
    severity="critical",
    source="kit",
)
def test_monitoring_web_asks_for_a_password(host, evidence):
    problems = []
    for service, process in SERVICES.items():
        flags = process_flags(host, evidence, process)
        config = flags.get("--web.config.file")
        if not config:
            problems.append(f"{service} runs without --web.config.file: it answers anyone")
            continue
        with host.sudo():
            users = (yaml.safe_load(host.file(config).content_string) or {}).get("basic_auth_users") or {}
        evidence.note(f"{service}'s accounts (basic_auth_users in {config})", "\n".join(sorted(users)) or "none")
        if not users:
            problems.append(f"{service}: no account in {config}: it answers anyone")
        for name, hashed in sorted(users.items()):
            if not str(hashed).startswith("$2"):
                problems.append(f"{service} account {name}: not a bcrypt hash")
            elif default_password_of(name, str(hashed)) is not None:
                problems.append(f"{service} account {name}: a default password, or its own name")
        port = flags.get("--web.listen-address", "").rpartition(":")[2]
        status, body = host_http(host, "GET", f"http://127.0.0.1:{port}/-/ready")
        evidence.note(f"GET http://127.0.0.1:{port}/-/ready without a login", f"{status} {body.strip()[:80]}")
        if status != 401:
            problems.append(f"{service} answered {status} to a request without a login, not 401")
    assert not problems, "\n".join(problems)
