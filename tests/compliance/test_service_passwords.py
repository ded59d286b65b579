"""No default or shared password on the services that have their own accounts: Kannel (admin,
status, sendsms users, the SMSC login) and Patroni (REST API, database superuser, replication,
rewind). Read from the services' configuration files as root; the evidence names the accounts,
never a password."""

from __future__ import annotations

import re

import yaml

from tests.compliance.controls import control
from tests.host_checks import ansible_for

testinfra_hosts = ["ansible://sms_gateway", "ansible://db"]

# Passwords the packages' samples and documentation ship (Debian's kannel.conf, Patroni's
# postgres0.yml, common defaults): a service must never run with one of them.
KNOWN_DEFAULTS = {"", "bar", "foo", "secret", "password", "admin", "changeme", "postgres", "patroni",
                  "rep-pass", "rewind_password", "zalando", "kannel", "tester", "playersecret"}  # fmt: skip
MIN_LENGTH = 16
PASSWORD_LINE = re.compile(r"\s*(admin-password|status-password|password|smsc-password)\s*=\s*\"?([^\"]*)\"?")


def kannel_passwords(host) -> dict[str, str]:
    text = host.file("/etc/kannel/kannel.conf").content_string
    passwords, group, name = {}, "", ""
    for line in text.splitlines():
        if match := re.match(r"\s*group\s*=\s*(\S+)", line):
            group, name = match[1], ""
        elif match := re.match(r"\s*(username|smsc-username)\s*=\s*\"?([^\"]*)\"?", line):
            name = match[2]
        elif match := re.match(
            r"\s*(admin-password|status-password|password|smsc-password)\s*=\s*\"?([^\"]*)\"?", line
        ):
            passwords[f"{group} {match[1]}{' of ' + name if name else ''}"] = match[2]
    return passwords


def patroni_passwords(host) -> dict[str, str]:
    """Per account: the REST API's, and each PostgreSQL user Patroni logs in as (the superuser and
    rewind entries may name the same user: one account)."""
    config = yaml.safe_load(host.file("/etc/patroni/config.yml").content_string)
    restapi = config.get("restapi", {}).get("authentication", {})
    found = {f"REST API user {restapi.get('username')}": str(restapi.get("password", ""))}
    for account in config.get("postgresql", {}).get("authentication", {}).values():
        found[f"PostgreSQL user {account.get('username')}"] = str(account.get("password", ""))
    return found


@control(
    "KIT-PASS-01",
    title="No default or shared password on Kannel or Patroni",
    rationale="A password a package or its documentation ships is the first one an attacker tries, and one "
    f"password for two accounts makes both fall together; each is at least {MIN_LENGTH} characters "
    "(the SMSC login, set by the operator, excepted from the length rule).",
    severity="critical",
    source="kit",
)
def test_no_default_or_shared_password(host, inventory, evidence):
    _, manager, _ = ansible_for(inventory)
    groups = {group.name for group in manager.get_host(host.inventory_name).get_groups()}
    with host.sudo():
        found = kannel_passwords(host) if "sms_gateway" in groups else patroni_passwords(host)
    evidence.note(
        "accounts read from " + ("/etc/kannel/kannel.conf" if "sms_gateway" in groups else "/etc/patroni/config.yml"),
        "\n".join(sorted(found)) or "none",
    )
    assert found, "no password found to judge"
    defaults = sorted(account for account, password in found.items() if password.lower() in KNOWN_DEFAULTS)
    short = sorted(account for account, password in found.items()
                   if len(password) < MIN_LENGTH and "smsc-password" not in account)  # fmt: skip
    by_password: dict[str, list[str]] = {}
    for account, password in found.items():
        by_password.setdefault(password, []).append(account)
    shared = [sorted(accounts) for accounts in by_password.values() if len(accounts) > 1]
    assert not defaults, f"default passwords: {defaults}"
    assert not short, f"shorter than {MIN_LENGTH} characters: {short}"
    assert not shared, f"accounts sharing one password: {shared}"
