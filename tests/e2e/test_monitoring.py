"""Faults in the lab raise their alerts in Alertmanager within 90 seconds and they resolve after
the fix; the Watchdog reaches the dead man's switch. Each fault is undone in the test, whatever
happens. The faults of the runbooks' incidents (test_incidents.py) also check that a critical
alert pages on-call staff by SMS and reaches the second path."""

from __future__ import annotations

import time

import pytest
from monitoring_lab import Monitoring, ready_monitoring

ALERT_WITHIN = 90  # seconds from the fault to the alert in Alertmanager (the monitoring issue)


@pytest.fixture(scope="module")
def monitoring(lab_running) -> Monitoring:
    return ready_monitoring()


def test_a_stopped_node_exporter_is_noticed(monitoring):
    started = time.time()
    monitoring.systemctl("sms2", "stop", "prometheus-node-exporter")
    try:
        took = monitoring.wait_for_alert("NodeExporterDown", started, instance="sms2")
        print(f"\nNodeExporterDown after {took:.0f} s")
        assert took <= ALERT_WITHIN
    finally:
        monitoring.systemctl("sms2", "start", "prometheus-node-exporter")
    monitoring.wait_for_resolution("NodeExporterDown", instance="sms2")


def test_a_stopped_replica_is_noticed(monitoring):
    replica = monitoring.replica()
    started = time.time()
    monitoring.systemctl(replica, "stop", "patroni")  # Patroni stops the member's PostgreSQL
    try:
        took = monitoring.wait_for_alert("PostgresqlDown", started, instance=replica)
        print(f"\nPostgresqlDown on {replica} after {took:.0f} s")
        assert took <= ALERT_WITHIN
    finally:
        monitoring.systemctl(replica, "start", "patroni")
    monitoring.wait_for_resolution("PostgresqlDown", instance=replica)


def test_the_watchdog_reaches_the_dead_mans_switch(monitoring):
    records = monitoring.sink("/watchdog")
    watchdogs = [a for r in records for a in r["body"].get("alerts", []) if a["labels"]["alertname"] == "Watchdog"]
    assert watchdogs, "the dead man's switch never heard the Watchdog"
    assert all(a["status"] == "firing" for a in watchdogs)
