"""Health of the lab's SMSC simulator (lab only: the operator's SMSC in production is not ours)."""

from __future__ import annotations

import json

from tests.host_checks import host_http

testinfra_hosts = ["ansible://smsc_simulator"]


def test_simulator_runs_and_listens(host, role_vars):
    simulator = role_vars("smsc_simulator")
    assert host.service("smsc-simulator").is_running
    assert host.service("smsc-simulator").is_enabled
    assert host.socket(f"tcp://0.0.0.0:{simulator['smsc_simulator_smpp_port']}").is_listening
    assert host.socket(f"tcp://0.0.0.0:{simulator['smsc_simulator_control_port']}").is_listening


def test_control_api_answers(host, role_vars):
    port = role_vars("smsc_simulator")["smsc_simulator_control_port"]
    status, out = host_http(host, "GET", f"http://127.0.0.1:{port}/stats")
    assert status == 200
    stats = json.loads(out)
    assert "submits_received" in stats and "duplicates" in stats


def test_accounts_file_is_private(host):
    accounts = host.file("/etc/smsc-simulator/accounts.json")
    assert accounts.user == "root" and accounts.group == "smsc-sim" and accounts.mode == 0o640
    assert host.process.get(comm="python").user == "smsc-sim"
