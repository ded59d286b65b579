"""PostgreSQL's packages, TLS files, settings and pg_hba on a database host (read-only).

The running server (under Patroni) is checked in test_patroni.py."""

from __future__ import annotations

import pytest

testinfra_hosts = ["ansible://db"]


@pytest.fixture
def postgresql(role_vars):
    return role_vars("postgresql")


def test_packages_and_no_debian_default_cluster(host, postgresql):
    for package in postgresql["__postgresql_packages"]:
        assert host.package(package).is_installed, package
    # only Patroni starts the cluster: Debian's starter is off and the cluster is manual
    assert not host.service("postgresql").is_enabled
    assert host.file(f"{postgresql['__postgresql_config_dir']}/start.conf").content_string.strip().endswith("manual")


def test_key_is_readable_by_postgres_only(host, postgresql):
    key = host.file(f"{postgresql['__postgresql_tls_dir']}/server.key")
    assert key.user == "postgres" and key.mode == 0o600


def test_settings_keep_tls_scram_and_pgaudit(host, postgresql):
    settings = host.file(f"{postgresql['__postgresql_settings_dir']}/postgresql.base.conf").content_string
    assert "ssl = 'on'" in settings
    assert "password_encryption = 'scram-sha-256'" in settings
    assert "shared_preload_libraries = 'pgaudit'" in settings
    assert f"pgaudit.log = '{postgresql['postgresql_pgaudit_log']}'" in settings
    for name, value in postgresql["postgresql_parameters"].items():
        assert f"{name} = '{value}'" in settings, name


def test_pg_hba_is_the_configured_list_with_tls_and_no_trust_over_tcp(host, postgresql):
    lines = [
        line.split()
        for line in host.file(f"{postgresql['__postgresql_settings_dir']}/pg_hba.conf").content_string.splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert len(lines) == len(postgresql["postgresql_hba_entries"])
    for fields in lines:
        assert fields[0] in ("local", "hostssl"), fields
        assert fields[0] == "local" or fields[-1] != "trust", fields
