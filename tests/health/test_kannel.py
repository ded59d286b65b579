"""Health of an SMS gateway node (read-only: safe against production)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from tests.host_checks import host_http

testinfra_hosts = ["ansible://sms_gateway"]


@pytest.fixture
def kannel(role_vars):
    return role_vars("kannel")


def test_bearerbox_and_smsbox_run_as_kannel(host):
    for unit in ("kannel-bearerbox", "kannel-smsbox"):
        service = host.service(unit)
        assert service.is_running and service.is_enabled, unit
    assert host.process.get(comm="bearerbox").user == "kannel"
    assert host.process.get(comm="smsbox").user == "kannel"
    # Debian's all-in-one init script would start a second bearerbox on the same ports
    assert host.file("/etc/systemd/system/kannel.service").linked_to == "/dev/null"


def test_ports(host, kannel):
    assert host.socket(f"tcp://0.0.0.0:{kannel['kannel_admin_port']}").is_listening
    # applications reach smsbox only through the guard
    assert host.socket(f"tcp://0.0.0.0:{kannel['kannel_sendsms_port']}").is_listening
    assert host.service("haproxy").is_running
    assert host.socket(f"tcp://127.0.0.1:{kannel['kannel_smsbox_sendsms_port']}").is_listening
    assert not host.socket(f"tcp://0.0.0.0:{kannel['kannel_smsbox_sendsms_port']}").is_listening
    smsbox_port = kannel["kannel_smsbox_port"]
    assert host.socket(f"tcp://127.0.0.1:{smsbox_port}").is_listening
    assert not host.socket(f"tcp://0.0.0.0:{smsbox_port}").is_listening


def test_config_is_private_and_the_store_persistent(host, kannel):
    config = host.file("/etc/kannel/kannel.conf")
    assert config.user == "kannel" and config.mode == 0o640
    assert "store-type = spool" in config.content_string
    store = host.file(kannel["kannel_store_location"])
    assert store.is_directory and store.user == "kannel"


def test_every_smpp_link_is_online(host, kannel):
    status, body = host_http(
        host,
        "GET",
        f"http://127.0.0.1:{kannel['kannel_admin_port']}/status.xml?password={kannel['kannel_status_password']}",
    )
    assert status == 200
    # a transmitter + receiver link shows as two entries with the same id
    states: dict[str, list[str]] = {}
    for smsc in ET.fromstring(body).iter("smsc"):
        states.setdefault(smsc.findtext("id"), []).append(smsc.findtext("status"))
    for link in kannel["kannel_smsc_links"]:
        assert link["id"] in states, f"link {link['id']} missing from status.xml: {states}"
        assert all(state.startswith("online") for state in states[link["id"]]), (
            f"link {link['id']}: {states[link['id']]}"
        )


def test_status_page_refuses_a_wrong_password(host, kannel):
    status, body = host_http(
        host, "GET", f"http://127.0.0.1:{kannel['kannel_admin_port']}/status.xml?password=wrong-password"
    )
    assert status == 401 or "Denied" in body


def test_exporter_reports_the_links(host, kannel):
    if not kannel["kannel_exporter_enabled"]:
        pytest.skip("exporter disabled for this host by kannel_exporter_enabled")
    assert host.service("kannel-exporter").is_running
    status, metrics = host_http(host, "GET", f"http://127.0.0.1:{kannel['kannel_exporter_port']}/metrics")
    assert status == 200
    assert "kannel_up 1.0" in metrics
    for link in kannel["kannel_smsc_links"]:
        label = f'smsc_id="{link["id"]}"'
        online = [line for line in metrics.splitlines() if line.startswith("kannel_smsc_online{") and label in line]
        assert online and all(line.endswith(" 1.0") for line in online), online
    password = host.file("/etc/kannel/status-password")
    assert password.mode == 0o640 and password.group == "kannel-exporter"
