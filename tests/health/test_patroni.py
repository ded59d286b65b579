"""Health of the PostgreSQL cluster run by Patroni, its router and its application databases.

Read-only: the statements that must be refused fail inside a transaction and change nothing."""

from __future__ import annotations

import json

import pytest

from tests.host_checks import host_http

testinfra_hosts = ["ansible://db"]


@pytest.fixture
def patroni(role_vars):
    return role_vars("patroni")


def ca_file(patroni) -> str:
    """The CA the members' certificates come from, where the role installed it."""
    return f"{patroni['__patroni_tls_dir']}/ca.crt"


def rest(host, patroni, path: str) -> tuple[int, str]:
    url = f"https://{host.inventory_name}:{patroni['patroni_restapi_port']}{path}"
    return host_http(host, "GET", url, cafile=ca_file(patroni))


@pytest.fixture
def psql(host, patroni):
    """Run one statement: as postgres on the local socket, or over TLS through the router."""

    def run(sql: str, port: int | None = None, user: str = "", password: str = "", database: str = "postgres"):
        if port is None:
            return host.run("runuser -u postgres -- psql -XAt -d %s -c %s", database, sql)
        dsn = (f"host={host.inventory_name} port={port} dbname={database} user={user}"
               f" sslmode=verify-full sslrootcert={ca_file(patroni)}")  # fmt: skip
        return host.run("env PGPASSWORD=%s PGCONNECT_TIMEOUT=5 psql -XAt %s -c %s", password, dsn, sql)

    return run


def test_patroni_runs_postgresql(host, patroni):
    assert host.service("patroni").is_running and host.service("patroni").is_enabled
    status, body = rest(host, patroni, "/health")
    assert status == 200, body
    assert json.loads(body)["state"] == "running"


def test_cluster_has_one_leader_and_every_member_replicates(host, patroni):
    status, body = rest(host, patroni, "/cluster")
    assert status == 200, body
    members = {m["name"]: m for m in json.loads(body)["members"]}
    assert sorted(members) == sorted(patroni["patroni_members"])
    roles = sorted(m["role"] for m in members.values())
    assert roles.count("leader") == 1, roles
    leader = next(m for m in members.values() if m["role"] == "leader")
    for member in members.values():
        if member["role"] != "leader":
            assert member["state"] in ("streaming", "running"), member
            assert member.get("lag", 0) in (0, "unknown") or int(member["lag"]) < 16 * 1024 * 1024, member
            # a member left on an old timeline (a demoted leader that could not rewind) reports none
            assert member.get("timeline") == leader["timeline"], member
    if patroni["patroni_synchronous_mode"]:
        assert "sync_standby" in roles, roles


def test_cluster_settings_match_the_variables(host, patroni):
    config = json.loads(rest(host, patroni, "/config")[1])
    assert config["synchronous_mode"] == patroni["patroni_synchronous_mode"]
    assert config["ttl"] == patroni["patroni_ttl"]
    assert config["maximum_lag_on_failover"] == patroni["patroni_maximum_lag_on_failover"]


def test_server_runs_with_tls_scram_and_pgaudit(host, psql):
    settings = psql("SELECT name || '=' || setting FROM pg_settings WHERE name IN "
                          "('ssl', 'password_encryption', 'shared_preload_libraries', 'data_checksums')")  # fmt: skip
    assert settings.rc == 0, settings.stderr
    assert set(settings.stdout.split()) == {
        "ssl=on", "password_encryption=scram-sha-256", "shared_preload_libraries=pgaudit", "data_checksums=on",
    }  # fmt: skip


def test_changes_through_the_rest_api_need_the_password(host, patroni):
    status, _ = host_http(
        host,
        "PATCH",
        f"https://{host.inventory_name}:{patroni['patroni_restapi_port']}/config",
        {"ttl": 31},
        cafile=ca_file(patroni),
    )
    assert status == 401


@pytest.mark.parametrize("database", ["cfm"])
def test_router_read_write_port_reaches_the_leader(host, patroni, database, psql):
    db = next((d for d in patroni["patroni_databases"] if d["name"] == database), None)
    assert db, f"no database {database} in patroni_databases"
    result = psql("SELECT pg_is_in_recovery()", patroni["patroni_router_rw_port"],
                  db["app_user"], db["app_password"], database)  # fmt: skip
    assert result.rc == 0 and result.stdout.strip() == "f", result.stderr


def test_router_read_only_port_reaches_replicas_only(host, patroni, psql):
    db = patroni["patroni_databases"][0]
    result = psql("SELECT pg_is_in_recovery()", patroni["patroni_router_ro_port"],
                  db["app_user"], db["app_password"], db["name"])  # fmt: skip
    if len(patroni["patroni_members"]) > 1:
        assert result.rc == 0 and result.stdout.strip() == "t", result.stderr
    else:  # no replica: reads are refused rather than sent to the leader
        assert result.rc != 0, result.stdout


def test_application_role_writes_rows_but_not_the_schema(host, patroni, psql):
    for db in patroni["patroni_databases"]:
        refused = psql("BEGIN; CREATE TABLE health_probe (id int); ROLLBACK",
                       patroni["patroni_router_rw_port"], db["app_user"], db["app_password"], db["name"])  # fmt: skip
        assert refused.rc != 0 and "permission denied" in refused.stderr, (db["name"], refused.stderr)
        elsewhere = psql("SELECT 1", patroni["patroni_router_rw_port"], db["app_user"], db["app_password"])
        assert elsewhere.rc != 0 and "no pg_hba.conf entry" in elsewhere.stderr, elsewhere.stderr


def test_wrong_password_is_refused(host, patroni, psql):
    db = patroni["patroni_databases"][0]
    result = psql("SELECT 1", patroni["patroni_router_rw_port"], db["app_user"], "not-the-password", db["name"])
    assert result.rc != 0 and "password authentication failed" in result.stderr
