"""Alertmanager and the SMS pager on the monitoring host: both run with a valid configuration,
Prometheus reaches Alertmanager, and the Watchdog reaches the dead man's switch."""

from __future__ import annotations

import json
import time

import pytest

from tests.health.test_prometheus import api
from tests.host_checks import host_http, kit_login, wait_for

testinfra_hosts = ["ansible://monitoring"]


def test_alertmanager_runs_with_a_valid_configuration(host, role_vars):
    alertmanager = role_vars("alertmanager")
    assert host.service("prometheus-alertmanager").is_running
    host.run_expect([0], "amtool check-config /etc/prometheus/alertmanager.yml")
    url = f"http://127.0.0.1:{alertmanager['alertmanager_port']}/api/v2/status"
    status, body = host_http(host, "GET", url, auth=kit_login(alertmanager, "alertmanager"))
    assert status == 200, body[:300]
    assert json.loads(body)["cluster"]["status"] in ("disabled", "ready")
    status, body = host_http(host, "GET", url)
    assert status == 401, f"without a login: {status} {body[:200]}"


# A reload or restart empties Prometheus's list of Alertmanagers for a few seconds (its service
# discovery hands on target updates at most every 5 s): a check right after a converge that
# reloaded it (make exercise-reset, then make health) found none. Looked at again within this.
ALERTMANAGERS_LISTED_SECONDS = 15


def test_prometheus_sends_its_alerts_to_alertmanager(host, role_vars):
    """Alertmanager asks for a password: an active Alertmanager with no notification failing means
    Prometheus logs in."""
    wait_for(
        "Prometheus listing an Alertmanager",
        lambda: api(host, role_vars, "/api/v1/alertmanagers")["activeAlertmanagers"],
        ALERTMANAGERS_LISTED_SECONDS,
    )
    failing = api(host, role_vars, "/api/v1/query?query=rate(prometheus_notifications_errors_total%5B5m%5D)%20%3E%200")
    assert not failing["result"], f"Prometheus fails to send alerts: {failing['result']}"


def test_the_watchdog_reaches_the_dead_mans_switch(host, role_vars):
    alertmanager = role_vars("alertmanager")
    receiver = alertmanager["alertmanager_watchdog_receiver"]
    urls = [r["url"] for r in alertmanager["alertmanager_webhook_receivers"] if r["name"] == receiver]
    assert urls, "no Watchdog receiver configured"
    sink, _, path = urls[0].partition("://")[2].partition("/")
    deadline = time.monotonic() + 120
    while True:
        status, body = host_http(host, "GET", f"http://{sink}/received?path=/{path}")
        records = json.loads(body)["records"] if status == 200 else []
        if any(a["labels"]["alertname"] == "Watchdog" for r in records for a in r["body"].get("alerts", [])):
            return
        assert time.monotonic() < deadline, f"no Watchdog at {urls[0]} within 120 s: {status} {body[:200]}"
        time.sleep(5)


def test_sms_pager_runs(host, role_vars):
    alertmanager = role_vars("alertmanager")
    if not alertmanager["alertmanager_sms_pager_enabled"]:
        pytest.skip("the SMS pager is off for this host (alertmanager_sms_pager_enabled)")
    assert host.service("govops-sms-pager").is_running
    status, text = host_http(host, "GET", f"http://127.0.0.1:{alertmanager['alertmanager_sms_pager_port']}/metrics")
    assert status == 200 and "sms_pager_notifications_total" in text
    password = host.file("/etc/govops/sms-pager-password")
    assert password.mode == 0o640 and password.group == "sms-pager"
