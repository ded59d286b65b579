"""CIS PostgreSQL 15 (v1.2.0 numbering) items that apply to the kit's clusters, from the running server.

Every database host is checked, leader and replicas alike: a replica becomes the leader at the next
failover with the settings it has now. pg_settings and pg_hba_file_rules are what the server has
loaded, not what a file says."""

from __future__ import annotations

import pytest

from tests.compliance.controls import control

testinfra_hosts = ["ansible://db"]

PG_SETTINGS = "psql: SELECT name, setting FROM pg_settings"
SETTINGS = (
    "ssl",
    "ssl_min_protocol_version",
    "password_encryption",
    "shared_preload_libraries",
    "pgaudit.log",
    "log_connections",
    "log_disconnections",
    "log_line_prefix",
)


@pytest.fixture(scope="module")
def settings(host) -> dict[str, str]:
    names = ",".join(f"'{name}'" for name in SETTINGS)
    sql = f"SELECT name || '=' || setting FROM pg_settings WHERE name IN ({names})"
    out = host.check_output("runuser -u postgres -- psql -XAt -c %s", sql)
    return dict(line.split("=", 1) for line in out.splitlines())


@control(
    "CIS-PG15-6.8",
    title="TLS is enabled and configured correctly",
    rationale="Passwords and citizens' data cross the network encrypted, with TLS 1.2 or later.",
    severity="critical",
    source="CIS PostgreSQL 15",
)
def test_tls_enabled(settings, evidence):
    found = evidence.settings(PG_SETTINGS, settings, "ssl", "ssl_min_protocol_version")
    assert found["ssl"] == "on"
    assert found["ssl_min_protocol_version"] in ("TLSv1.2", "TLSv1.3")


@control(
    "KIT-PG-01",
    title="Passwords are stored as SCRAM-SHA-256",
    rationale="MD5 password hashes can be replayed and cracked; SCRAM never sends or stores the password.",
    severity="high",
    source="kit",
)
def test_password_encryption_scram(settings, evidence):
    assert evidence.settings(PG_SETTINGS, settings, "password_encryption")["password_encryption"] == "scram-sha-256"


@control(
    "CIS-PG15-3.2",
    title="The PostgreSQL Audit Extension (pgAudit) is enabled",
    rationale="Role and schema changes are logged with who made them, for the audit trail.",
    severity="high",
    source="CIS PostgreSQL 15",
)
def test_pgaudit_enabled(settings, evidence):
    found = evidence.settings(PG_SETTINGS, settings, "shared_preload_libraries", "pgaudit.log")
    assert "pgaudit" in found["shared_preload_libraries"].split(",")
    assert found["pgaudit.log"] not in ("", "none", "(not set)")


@control(
    "CIS-PG15-3.1.20",
    title="'log_connections' is enabled",
    rationale="Every connection attempt, successful or not, leaves a trace an investigator can follow.",
    severity="medium",
    source="CIS PostgreSQL 15",
)
def test_log_connections(settings, evidence):
    assert evidence.settings(PG_SETTINGS, settings, "log_connections")["log_connections"] == "on"


@control(
    "CIS-PG15-3.1.21",
    title="'log_disconnections' is enabled",
    rationale="Each session's end and duration are logged, so a session can be followed to its end.",
    severity="medium",
    source="CIS PostgreSQL 15",
)
def test_log_disconnections(settings, evidence):
    assert evidence.settings(PG_SETTINGS, settings, "log_disconnections")["log_disconnections"] == "on"


@control(
    "CIS-PG15-3.1.24",
    title="'log_line_prefix' is set correctly",
    rationale="Each log line says when (%m), which process (%p), which user (%u) and which database (%d).",
    severity="low",
    source="CIS PostgreSQL 15",
)
def test_log_line_prefix(settings, evidence):
    prefix = evidence.settings(PG_SETTINGS, settings, "log_line_prefix")["log_line_prefix"]
    assert all(escape in prefix for escape in ("%m", "%p", "%u", "%d")), prefix


@pytest.fixture(scope="module")
def hba_rules(host) -> tuple[str, list[list[str]]]:
    """pg_hba.conf as the server loaded it: (the command, one list of fields per rule)."""
    sql = "SELECT line_number, type, database, user_name, address, auth_method, error FROM pg_hba_file_rules"
    command = f"runuser -u postgres -- psql -XAt -F ' ' -c \"{sql}\""
    out = host.check_output(command)
    return command, [line.split(" ") for line in out.splitlines()]


@control(
    "CIS-PG15-5.3",
    title='Login via "local" UNIX Domain Socket is configured correctly',
    rationale="On the local socket only the postgres system user logs in without a password (peer); "
    "no rule trusts anyone, and the server loaded every rule without error.",
    severity="high",
    source="CIS PostgreSQL 15",
)
def test_hba_local(hba_rules, evidence):
    command, rules = hba_rules
    local = [rule for rule in rules if rule[1] == "local"]
    evidence.note(command, "\n".join(" ".join(rule) for rule in local))
    wrong = [" ".join(r) for r in local if r[-2] == "trust" or (r[-2] == "peer" and r[3] != "{postgres}") or r[-1]]
    assert not wrong, f"local rules with trust, peer for another user, or errors: {wrong}"


@control(
    "CIS-PG15-5.4",
    title='Login via "host" TCP/IP Socket is configured correctly',
    rationale="No one reaches the database over the network without TLS (hostssl) and a SCRAM password; "
    "anything not listed is refused.",
    severity="critical",
    source="CIS PostgreSQL 15",
)
def test_hba_host(hba_rules, evidence):
    command, rules = hba_rules
    network = [rule for rule in rules if rule[1] != "local"]
    evidence.note(command, "\n".join(" ".join(rule) for rule in network))
    wrong = [" ".join(r) for r in network if r[1] != "hostssl" or r[-2] != "scram-sha-256" or r[-1]]
    assert not wrong, f"network rules without hostssl and scram-sha-256, or with errors: {wrong}"


@control(
    "CIS-PG15-8.2",
    title="The backup and restore tool, 'pgBackRest', is installed and configured",
    rationale="Every database host archives its WAL with pgBackRest, so the cluster can be restored to any "
    "point in time.",
    severity="high",
    source="CIS PostgreSQL 15",
)
def test_wal_archived_with_pgbackrest(host, evidence):
    result = evidence.run(
        "runuser -u postgres -- psql -XAt -c %s",
        "SELECT name || '=' || setting FROM pg_settings WHERE name IN ('archive_mode', 'archive_command')",
    )
    settings = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert settings.get("archive_mode") == "on", settings
    assert settings.get("archive_command", "").startswith("pgbackrest "), settings
