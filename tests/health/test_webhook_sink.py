"""The lab's webhook sink (lab only): it runs and records what is posted to it."""

from __future__ import annotations

import json

from tests.host_checks import host_http

testinfra_hosts = ["ansible://smsc_simulator"]


def test_sink_records_what_is_posted(host, role_vars):
    port = role_vars("webhook_sink")["webhook_sink_port"]
    assert host.service("govops-webhook-sink").is_running
    status, _ = host_http(host, "POST", f"http://127.0.0.1:{port}/health-check", {"probe": "health"})
    assert status in (200, 202)
    status, body = host_http(host, "GET", f"http://127.0.0.1:{port}/received?path=/health-check")
    assert status == 200
    assert any(record["body"] == {"probe": "health"} for record in json.loads(body)["records"])
