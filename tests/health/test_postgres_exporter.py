"""The PostgreSQL exporter on each database member reaches its server as its pg_monitor role."""

from __future__ import annotations

from tests.host_checks import host_http

testinfra_hosts = ["ansible://db"]


def test_exporter_reaches_postgresql(host, role_vars):
    exporter = role_vars("postgres_exporter")
    assert host.service("prometheus-postgres-exporter").is_running
    status, text = host_http(host, "GET", f"http://127.0.0.1:{exporter['postgres_exporter_port']}/metrics")
    assert status == 200
    assert "\npg_up 1\n" in f"\n{text}", "pg_up is not 1: the exporter cannot log in"
    assert "pg_stat_archiver_failed_count" in text


def test_its_connection_settings_are_private(host):
    defaults = host.file("/etc/default/prometheus-postgres-exporter")
    assert defaults.user == "root" and defaults.group == "prometheus" and defaults.mode == 0o640
