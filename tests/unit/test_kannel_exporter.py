"""The Kannel exporter turns bearerbox's status.xml into metrics and never leaks the status password.

The fixtures are status pages of a real Kannel 1.4.5 bearerbox (Debian 12), see fixtures/kannel/README.md.
"""

from __future__ import annotations

import http.server
import importlib.util
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from programs import terminate
from prometheus_client import CollectorRegistry, generate_latest

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "monitoring/exporters/kannel_exporter.py"
spec = importlib.util.spec_from_file_location("kannel_exporter", MODULE)
kannel = importlib.util.module_from_spec(spec)
spec.loader.exec_module(kannel)

FIXTURES = Path(__file__).resolve().parent / "fixtures/kannel"
STATUS_PAGES = sorted(path.name for path in FIXTURES.glob("status-*.xml") if path.name != "status-denied.xml")
PASSWORD = "s3cr3t/&pw +%"

SMPP_TRX = {"smsc_id": "operator", "name": "SMPP:127.0.0.1:23199/23199:foo:VMA"}
SMPP_TX = {"smsc_id": "operator", "name": "SMPP:127.0.0.1:23199/0:foo:VMA"}
SMPP_RX = {"smsc_id": "operator", "name": "SMPP:127.0.0.1:0/23199:foo:VMA"}
FAKE = {"smsc_id": "fake1", "name": "FAKE:23198"}
SMSBOX = {"type": "smsbox", "id": "", "ip": "127.0.0.1"}


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


class Snapshot:
    """The metrics of one scrape; reading them again does not scrape Kannel again."""

    def __init__(self, metrics):
        self.metrics = list(metrics)

    def collect(self):
        return self.metrics


def scrape(fetch, secret: str = "") -> tuple[CollectorRegistry, object]:
    collector = kannel.KannelCollector(fetch, secret=secret, source="http://127.0.0.1/status.xml")
    registry = CollectorRegistry()
    registry.register(Snapshot(collector.collect()))
    return registry, collector


def scrape_page(name: str) -> CollectorRegistry:
    body = fixture(name)
    return scrape(lambda: body)[0]


def value(registry: CollectorRegistry, name: str, labels: dict | None = None) -> float | None:
    return registry.get_sample_value(name, labels or {})


def assert_values(registry: CollectorRegistry, expected: dict, labels: dict | None = None) -> None:
    actual = {name: value(registry, name, labels) for name in expected}
    assert actual == expected


def smsc_state(registry: CollectorRegistry, link: dict) -> str:
    states = [
        state
        for state in ("online", "disconnected", "connecting", "re-connecting", "dead", "unknown")
        if value(registry, "kannel_smsc_status", {**link, "state": state}) == 1
    ]
    assert len(states) == 1, states
    return states[0]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- real status pages ---------------------------------------------------------------------------


@pytest.mark.parametrize("page", STATUS_PAGES)
def test_every_real_page_parses_with_typed_unique_series(page):
    registry = scrape_page(page)
    text = generate_latest(registry).decode()
    samples = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert value(registry, "kannel_up") == 1
    assert value(registry, "kannel_build_info", {"version": "1.4.5"}) == 1
    assert value(registry, "kannel_exporter_scrape_errors_total", {"reason": "parse"}) == 0
    # Prometheus drops a scrape with two samples of one series; duplicate links must not cause that.
    series = [line.rsplit(" ", 1)[0] for line in samples]
    assert len(series) == len(set(series))
    for name in ("sms_received", "sms_sent", "dlr_received", "dlr_sent", "smsc_failed", "exporter_scrape_errors"):
        assert f"# TYPE kannel_{name}_total counter" in text
    assert "# TYPE kannel_sms_received_queued gauge" in text


def test_links_down_page():
    registry = scrape_page("status-links-down.xml")
    assert value(registry, "kannel_gateway_status", {"state": "running"}) == 1
    assert_values(
        registry,
        {
            "kannel_uptime_seconds": 13,
            "kannel_sms_received_total": 0,
            "kannel_sms_sent_total": 0,
            "kannel_sms_store_size": 0,
            "kannel_dlr_queued": 0,
        },
    )
    assert smsc_state(registry, SMPP_TRX) == "re-connecting"
    assert smsc_state(registry, FAKE) == "connecting"
    for link in (SMPP_TRX, FAKE):
        assert_values(
            registry,
            {"kannel_smsc_online": 0, "kannel_smsc_online_seconds": 0, "kannel_smsc_sms_sent_total": 0},
            link,
        )
    assert "kannel_box_connected{" not in generate_latest(registry).decode()


def test_suspended_gateway_and_dead_smsc():
    registry = scrape_page("status-suspended-smsc-dead.xml")
    assert value(registry, "kannel_gateway_status", {"state": "suspended"}) == 1
    assert value(registry, "kannel_gateway_status", {"state": "running"}) is None
    assert value(registry, "kannel_uptime_seconds") == 30
    assert smsc_state(registry, FAKE) == "dead"
    assert value(registry, "kannel_smsc_online", FAKE) == 0


def test_messages_queued_while_no_smsbox_is_connected():
    registry = scrape_page("status-no-smsbox-queued.xml")
    assert_values(
        registry,
        {"kannel_sms_received_total": 20, "kannel_sms_received_queued": 20, "kannel_sms_store_size": 20},
    )
    # One smsc-id with a transmitter and a receiver group: two links, told apart by name.
    assert value(registry, "kannel_smsc_sms_received_total", SMPP_RX) == 20
    assert value(registry, "kannel_smsc_sms_received_total", SMPP_TX) == 0
    assert smsc_state(registry, SMPP_RX) == smsc_state(registry, SMPP_TX) == "re-connecting"


def test_sent_messages_queued_while_the_smsc_is_down():
    registry = scrape_page("status-smsc-down-sent-queued.xml")
    assert_values(
        registry,
        {
            "kannel_uptime_seconds": 131,
            "kannel_sms_received_total": 27,
            "kannel_sms_sent_total": 31,
            "kannel_sms_sent_queued": 4,
            "kannel_sms_store_size": 4,
            "kannel_dlr_received_total": 6,
            "kannel_dlr_sent_total": 0,
        },
    )
    assert smsc_state(registry, FAKE) == "re-connecting"
    assert_values(
        registry,
        {
            "kannel_smsc_sms_received_total": 7,
            "kannel_smsc_sms_sent_total": 31,
            "kannel_smsc_dlr_received_total": 6,
            "kannel_smsc_failed_total": 0,
        },
        FAKE,
    )
    assert_values(
        registry, {"kannel_box_connected": 1, "kannel_box_online_seconds": 39, "kannel_box_queued": 0}, SMSBOX
    )


def test_all_links_online_with_two_smsboxes():
    registry = scrape_page("status-online.xml")
    assert_values(
        registry,
        {"kannel_sms_received_total": 45, "kannel_sms_sent_total": 48, "kannel_dlr_received_total": 5},
    )
    for link, seconds in ((SMPP_TX, 55), (SMPP_RX, 55), (FAKE, 7)):
        assert smsc_state(registry, link) == "online"
        assert_values(registry, {"kannel_smsc_online": 1, "kannel_smsc_online_seconds": seconds}, link)
    assert_values(registry, {"kannel_smsc_sms_sent_total": 43, "kannel_smsc_dlr_received_total": 1}, SMPP_TX)
    assert value(registry, "kannel_smsc_sms_received_total", SMPP_RX) == 40
    assert_values(
        registry,
        {"kannel_smsc_sms_received_total": 5, "kannel_smsc_sms_sent_total": 5, "kannel_smsc_dlr_received_total": 4},
        FAKE,
    )
    # Two smsboxes without smsbox-id on one host: the second one's id gets "#2".
    assert value(registry, "kannel_box_online_seconds", SMSBOX) == 54
    assert value(registry, "kannel_box_online_seconds", {**SMSBOX, "id": "#2"}) == 17


def test_stalled_smsbox_shows_its_queue():
    registry = scrape_page("status-smsbox-stalled.xml")
    assert_values(registry, {"kannel_box_queued": 400, "kannel_box_connected": 1}, SMSBOX)
    assert_values(registry, {"kannel_sms_received_total": 403, "kannel_sms_store_size": 400})
    assert value(registry, "kannel_smsc_sms_received_total", FAKE) == 403


def test_throttled_smsc_shows_its_queue():
    registry = scrape_page("status-smsc-queued.xml")
    assert_values(registry, {"kannel_smsc_queued": 141, "kannel_smsc_sms_sent_total": 282}, FAKE)
    assert value(registry, "kannel_smsc_queued", SMPP_TRX) == 0
    assert_values(registry, {"kannel_sms_sent_total": 282, "kannel_sms_sent_queued": 0, "kannel_sms_store_size": 141})


def test_wapbox_without_id_and_queue():
    body = fixture("status-links-down.xml").replace(
        b"<boxes>\n\t</boxes>",
        b"<boxes>\n\t<box>\n\t\t<type>wapbox</type>\n\t\t<IP>10.0.0.5</IP>\n"
        b"\t\t<status>on-line 1d 2h 3m 4s</status>\n\t\t<ssl>no</ssl>\n\t</box></boxes>",
    )
    registry = scrape(lambda: body)[0]
    wapbox = {"type": "wapbox", "id": "", "ip": "10.0.0.5"}
    assert_values(registry, {"kannel_box_connected": 1, "kannel_box_online_seconds": 93784}, wapbox)
    assert value(registry, "kannel_box_queued", wapbox) is None


def test_identical_smsc_groups_get_distinct_names():
    page = fixture("status-links-down.xml").decode()
    first = page.index("\t<smsc>")
    end = page.index("</smsc>", first) + len("</smsc>\n")
    registry = scrape(lambda: (page[:end] + page[first:]).encode())[0]
    assert value(registry, "kannel_smsc_online", SMPP_TRX) == 0
    assert value(registry, "kannel_smsc_online", {**SMPP_TRX, "name": SMPP_TRX["name"] + " #2"}) == 0


# --- failures -------------------------------------------------------------------------------------


def assert_failed(registry: CollectorRegistry, reason: str) -> None:
    assert value(registry, "kannel_up") == 0
    assert value(registry, "kannel_exporter_scrape_errors_total", {"reason": reason}) == 1
    assert value(registry, "kannel_exporter_scrape_duration_seconds") >= 0
    # Nothing partial: a failed scrape shows no Kannel numbers at all.
    assert value(registry, "kannel_sms_received_total") is None


def test_wrong_password_page_is_denied():
    registry, collector = scrape(lambda: fixture("status-denied.xml"))
    assert_failed(registry, "denied")
    assert "denied the status password" in collector.last_error


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(fixture("status-online.xml")[:-40], id="truncated"),
        pytest.param(b"<html><body>It works</body></html>", id="not-kannel"),
        pytest.param(b'<?xml version="1.0"?>\n<gateway>\nUnknown command `/status\'.\n</gateway>', id="wrong-path"),
        pytest.param(b'<!DOCTYPE g [<!ENTITY a "aaaa">]><gateway><status>&a;</status></gateway>', id="doctype"),
        pytest.param(fixture("status-online.xml").replace(b"<sent>43</sent>", b"<sent>4x3</sent>"), id="not-a-number"),
        pytest.param(fixture("status-online.xml").replace(b", uptime", b" since"), id="odd-status"),
    ],
)
def test_malformed_pages_mean_kannel_down(body):
    registry, collector = scrape(lambda: body)
    assert_failed(registry, "parse")
    assert collector.last_error


def test_unexpected_exception_is_a_failed_scrape_not_a_crash():
    def broken():
        raise RuntimeError(f"boom http://127.0.0.1:13000/status.xml?password={PASSWORD}")

    registry, collector = scrape(broken, secret=PASSWORD)
    assert_failed(registry, "other")
    assert PASSWORD not in collector.last_error


def test_closed_port_is_kannel_down_and_never_shows_the_password(caplog):
    url = f"http://127.0.0.1:{closed_port()}/status.xml"
    fetch = kannel.StatusFetcher(url, PASSWORD, timeout=2)
    with caplog.at_level(logging.DEBUG, logger="kannel_exporter"):
        registry, collector = scrape(fetch, secret=PASSWORD)
        text = generate_latest(registry).decode()
    assert_failed(registry, "connection")
    assert "Connection refused" in collector.last_error
    for place in (collector.last_error, caplog.text, text):
        assert PASSWORD not in place
        assert urllib.parse.quote(PASSWORD, safe="") not in place


def test_a_repeated_failure_is_logged_once_and_recovery_once(caplog):
    bodies = iter([b"garbage", b"garbage", fixture("status-online.xml")])
    collector = kannel.KannelCollector(lambda: next(bodies))
    with caplog.at_level(logging.INFO, logger="kannel_exporter"):
        for _ in range(3):
            metrics = list(collector.collect())
    assert [record.levelname for record in caplog.records] == ["WARNING", "INFO"]
    registry = CollectorRegistry()
    registry.register(Snapshot(metrics))
    assert value(registry, "kannel_up") == 1
    assert value(registry, "kannel_exporter_scrape_errors_total", {"reason": "parse"}) == 2


@pytest.mark.parametrize(
    "text",
    [
        f"GET /status.xml?password={PASSWORD} failed",
        f"GET /status.xml?password={urllib.parse.quote(PASSWORD, safe='')}&x=1 failed",
        f"GET /status.xml?password={urllib.parse.quote_plus(PASSWORD)} failed",
        f"the password is {PASSWORD}",
    ],
)
def test_scrub_removes_every_spelling_of_the_password(text):
    scrubbed = kannel.scrub(text, PASSWORD)
    assert PASSWORD not in scrubbed
    assert urllib.parse.quote(PASSWORD, safe="") not in scrubbed
    assert urllib.parse.quote_plus(PASSWORD) not in scrubbed
    assert "***" in scrubbed


# --- over HTTP, against a local stand-in for bearerbox's admin port -------------------------------


class FakeBearerbox(http.server.BaseHTTPRequestHandler):
    """Answers like bearerbox's admin port; `mode` picks the answer."""

    mode: ClassVar[str] = "status"
    queries: ClassVar[list[dict]] = []

    def do_GET(self):
        type(self).queries.append(urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query))
        if self.mode == "echo-404":
            # A reason phrase quoting the request, as a proxy or a buggy server might send.
            self.send_response(404, f"no such page {self.path}")
            self.end_headers()
            return
        body = fixture("status-online.xml")
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def bearerbox() -> Iterator[str]:
    FakeBearerbox.mode, FakeBearerbox.queries = "status", []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeBearerbox)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/status.xml"
    server.shutdown()
    server.server_close()


def test_reads_the_page_over_http_with_the_password_encoded(bearerbox):
    registry, _ = scrape(kannel.StatusFetcher(bearerbox, PASSWORD, timeout=5), secret=PASSWORD)
    assert value(registry, "kannel_up") == 1
    assert value(registry, "kannel_sms_sent_total") == 48
    assert FakeBearerbox.queries == [{"password": [PASSWORD]}]


def test_every_scrape_reads_kannel_again(bearerbox):
    registry = CollectorRegistry()
    registry.register(kannel.KannelCollector(kannel.StatusFetcher(bearerbox, PASSWORD, timeout=5)))
    assert len(FakeBearerbox.queries) == 0  # registering must not scrape
    generate_latest(registry)
    generate_latest(registry)
    assert len(FakeBearerbox.queries) == 2


def test_http_error_quoting_the_url_is_scrubbed(bearerbox, caplog):
    FakeBearerbox.mode = "echo-404"
    with caplog.at_level(logging.DEBUG, logger="kannel_exporter"):
        registry, collector = scrape(kannel.StatusFetcher(bearerbox, PASSWORD, timeout=5), secret=PASSWORD)
    assert_failed(registry, "http")
    assert "HTTP 404" in collector.last_error
    assert "password=***" in collector.last_error
    for place in (collector.last_error, caplog.text):
        assert PASSWORD not in place
        assert urllib.parse.quote(PASSWORD, safe="") not in place


def test_a_silent_kannel_times_out():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/status.xml"
        registry, collector = scrape(kannel.StatusFetcher(url, PASSWORD, timeout=0.3), secret=PASSWORD)
    assert_failed(registry, "connection")
    assert "timed out" in collector.last_error


# --- command line ---------------------------------------------------------------------------------


def run_main(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        kannel.main(list(argv))
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_missing_password_file_is_a_clear_error(tmp_path, capsys):
    missing = tmp_path / "status-password"
    err = run_main(capsys, "--password-file", str(missing))
    assert f"password file {missing} does not exist" in err


def test_empty_password_file_is_refused(tmp_path, capsys):
    empty = tmp_path / "status-password"
    empty.write_text("\n")
    assert "is empty" in run_main(capsys, "--password-file", str(empty))


def test_no_password_source_is_refused(monkeypatch, capsys):
    monkeypatch.delenv(kannel.PASSWORD_ENV, raising=False)
    assert kannel.PASSWORD_ENV in run_main(capsys)


def test_password_is_never_taken_from_the_command_line(monkeypatch, capsys):
    monkeypatch.setenv(kannel.PASSWORD_ENV, PASSWORD)
    assert "must not carry the password" in run_main(
        capsys, "--status-url", "http://127.0.0.1:13000/status.xml?password=x"
    )
    err = run_main(capsys, "--status-url", "127.0.0.1:13000/status.xml?password=hunter2")
    assert "must not carry the password" in err
    assert "hunter2" not in err
    # Not even as an abbreviation of --password-file: its error would print the "file name".
    err = run_main(capsys, "--password", "hunter2")
    assert "unrecognized arguments" in err
    assert "password file" not in err


@pytest.mark.parametrize("listen", ["9390", "host:", "host:70000"])
def test_bad_listen_address_is_refused(monkeypatch, capsys, listen):
    monkeypatch.setenv(kannel.PASSWORD_ENV, PASSWORD)
    assert "is not HOST:PORT" in run_main(capsys, "--listen", listen)


def test_password_file_wins_over_the_environment_and_loses_its_newline(tmp_path):
    path = tmp_path / "status-password"
    path.write_text(PASSWORD + "\n")
    assert kannel.read_password(str(path), {kannel.PASSWORD_ENV: "other"}) == PASSWORD
    assert kannel.read_password(None, {kannel.PASSWORD_ENV: "other"}) == "other"


def test_listen_address_forms():
    assert kannel.parse_listen("0.0.0.0:9390") == ("0.0.0.0", 9390)
    assert kannel.parse_listen(":9390") == ("0.0.0.0", 9390)
    assert kannel.parse_listen("[::1]:9390") == ("::1", 9390)


# --- bearerbox's access log (--access-log) ------------------------------------------------------------------

ACCESS_LOG = fixture("access.log")
OPERATOR = {"smsc_id": "operator"}


class AccessLog:
    """A log file the tests append to, and the collector reading it."""

    def __init__(self, path: Path, start_with: bytes | None = None) -> None:
        self.path = path
        if start_with is not None:
            path.write_bytes(start_with)
        self.collector = kannel.AccessLogCollector(str(path))

    def append(self, data: bytes) -> None:
        with self.path.open("ab") as log:
            log.write(data)

    def scrape(self) -> CollectorRegistry:
        registry = CollectorRegistry()
        registry.register(Snapshot(self.collector.collect()))
        return registry


def counts(registry: CollectorRegistry) -> dict[str, float]:
    """The non-zero access log counters, keyed by name and labels, for compact comparisons."""
    result = {}
    for family in registry.collect():
        for sample in family.samples:
            if sample.name.startswith("kannel_access_log_") and sample.name.endswith("_total") and sample.value:
                labels = ",".join(f"{key}={sample.labels[key]}" for key in sorted(sample.labels))
                result[f"{sample.name.removeprefix('kannel_access_log_')}{{{labels}}}"] = sample.value
    return result


def test_access_log_history_is_not_counted_and_new_lines_are(tmp_path):
    log = AccessLog(tmp_path / "access.log", start_with=b"2026-11-29 22:00:00 Log begins\n" + ACCESS_LOG * 3)
    registry = log.scrape()
    assert counts(registry) == {}
    assert value(registry, "kannel_access_log_readable") == 1
    log.append(b"2026-11-30 00:00:01 Log begins\n" + ACCESS_LOG)
    assert counts(log.scrape()) == {
        "sent_total{dlr_requested=true,smsc_id=operator}": 1,
        "sent_total{dlr_requested=false,smsc_id=operator}": 1,
        "dlr_total{smsc_id=operator,type=accepted_by_smsc}": 1,
        "dlr_total{smsc_id=operator,type=delivered}": 1,
    }
    # Nothing new: nothing more.
    assert counts(log.scrape())["sent_total{dlr_requested=true,smsc_id=operator}"] == 1


def test_access_log_every_kind_of_line(tmp_path):
    log = AccessLog(tmp_path / "access.log", start_with=b"")
    lines = [
        "Sent SMS [SMSC:operator] [dlr:31]",
        "Sent SMS [SMSC:operator] [dlr:1]",
        "Sent SMS [SMSC:operator] [dlr:3]",
        "Sent SMS [SMSC:operator] [dlr:-1]",
        "Sent SMS [SMSC:operator] [dlr:0]",
        "Sent SMS [SMSC:operator] [dlr:2]",
        "Sent SMS [SMSC:backup] [dlr:24]",
        "FAILED Send SMS [SMSC:operator] [dlr:31]",
        "FAILED Send SMS [SMSC:backup] [dlr:-1]",
        "Receive SMS [SMSC:operator] [dlr:-1]",
        "Receive SMS [SMSC:operator] [dlr:-1]",
        *(f"Receive DLR [SMSC:operator] [dlr:{kind}]" for kind in (1, 2, 4, 8, 16, 3, 0)),
        "2026-11-29 23:59:03 Log ends",
        "",
    ]
    log.append("\n".join(lines).encode() + b"\n")
    registry = log.scrape()
    assert counts(registry) == {
        "sent_total{dlr_requested=true,smsc_id=operator}": 3,
        "sent_total{dlr_requested=false,smsc_id=operator}": 3,
        "sent_total{dlr_requested=false,smsc_id=backup}": 1,
        "failed_total{smsc_id=operator}": 1,
        "failed_total{smsc_id=backup}": 1,
        "mo_total{smsc_id=operator}": 2,
        "dlr_total{smsc_id=operator,type=delivered}": 1,
        "dlr_total{smsc_id=operator,type=undelivered}": 1,
        "dlr_total{smsc_id=operator,type=queued_at_smsc}": 1,
        "dlr_total{smsc_id=operator,type=accepted_by_smsc}": 1,
        "dlr_total{smsc_id=operator,type=rejected_by_smsc}": 1,
        "dlr_total{smsc_id=operator,type=other}": 2,
    }
    # A link's series exist from its first line on, at 0 until something happens.
    assert value(registry, "kannel_access_log_mo_total", {"smsc_id": "backup"}) == 0
    assert value(registry, "kannel_access_log_dlr_total", {"smsc_id": "backup", "type": "delivered"}) == 0
    text = generate_latest(registry).decode()
    assert "# TYPE kannel_access_log_sent_total counter" in text
    assert "# TYPE kannel_access_log_readable gauge" in text


def test_access_log_unknown_lines_are_counted(tmp_path):
    log = AccessLog(tmp_path / "access.log", start_with=b"")
    log.append(
        b"DISCARDED SMS [SMSC:operator] [dlr:31]\n"
        b"2026-11-29 23:59:03 Sent SMS [SMSC:operator] [dlr:31]\n"
        b"Sent SMS [SMSC:operator] [dlr:x]\n"
        b"Sent SMS [SMSC:operator]\n"
        b"\xff\xfe garbage\n"
        b"Sent SMS [SMSC:operator] [dlr:31]\n"
    )
    registry = log.scrape()
    assert value(registry, "kannel_access_log_unparsed_lines_total") == 5
    assert counts(registry) == {"sent_total{dlr_requested=true,smsc_id=operator}": 1, "unparsed_lines_total{}": 5}


def test_access_log_partial_line_waits_for_its_end(tmp_path):
    log = AccessLog(tmp_path / "access.log", start_with=ACCESS_LOG)
    log.append(b"Sent SMS [SMSC:oper")
    registry = log.scrape()
    assert counts(registry) == {}
    log.append(b"ator] [dlr:31]\nReceive SMS [SMSC:operator] [dl")
    assert counts(log.scrape()) == {"sent_total{dlr_requested=true,smsc_id=operator}": 1}
    log.append(b"r:-1]\n")
    assert counts(log.scrape())["mo_total{smsc_id=operator}"] == 1


def test_access_log_line_being_written_at_start_is_not_counted(tmp_path):
    log = AccessLog(tmp_path / "access.log", start_with=ACCESS_LOG + b"Sent SMS [SMSC:oper")
    log.append(b"ator] [dlr:31]\nFAILED Send SMS [SMSC:operator] [dlr:31]\n")
    assert counts(log.scrape()) == {"failed_total{smsc_id=operator}": 1}


def test_access_log_rotation_reads_the_rest_of_the_old_file_then_the_new_one(tmp_path):
    path = tmp_path / "access.log"
    log = AccessLog(path, start_with=ACCESS_LOG)
    log.append(b"Sent SMS [SMSC:operator] [dlr:31]\n")
    log.scrape()
    # Written after the last scrape, then logrotate moves the file and Kannel opens a new one.
    log.append(b"Sent SMS [SMSC:operator] [dlr:31]\nFAILED Send SMS [SMSC:operator] [dlr:31]")
    path.rename(tmp_path / "access.log.1")
    path.write_bytes(b"2026-11-30 00:00:00 Log begins\n" + ACCESS_LOG)
    assert counts(log.scrape()) == {
        "sent_total{dlr_requested=true,smsc_id=operator}": 3,
        "sent_total{dlr_requested=false,smsc_id=operator}": 1,
        "failed_total{smsc_id=operator}": 1,
        "dlr_total{smsc_id=operator,type=accepted_by_smsc}": 1,
        "dlr_total{smsc_id=operator,type=delivered}": 1,
    }
    log.append(b"Receive SMS [SMSC:operator] [dlr:-1]\n")
    assert counts(log.scrape())["mo_total{smsc_id=operator}"] == 1


def test_access_log_truncation_reads_from_the_start(tmp_path):
    path = tmp_path / "access.log"
    log = AccessLog(path, start_with=ACCESS_LOG * 5)
    log.append(b"FAILED Send SMS [SMSC:operator] [dlr:31]\n")
    assert counts(log.scrape()) == {"failed_total{smsc_id=operator}": 1}
    # copytruncate: same file, emptied, then written again.
    with path.open("r+b") as handle:
        handle.truncate(0)
    log.append(b"FAILED Send SMS [SMSC:operator] [dlr:31]\nReceive SMS [SMSC:operator] [dlr:-1]\n")
    # Counters never go down.
    assert counts(log.scrape()) == {"failed_total{smsc_id=operator}": 2, "mo_total{smsc_id=operator}": 1}


def test_access_log_missing_file_keeps_the_counters(tmp_path, caplog):
    path = tmp_path / "access.log"
    with caplog.at_level(logging.WARNING, logger="kannel_exporter"):
        log = AccessLog(path)
        registry = log.scrape()
        assert value(registry, "kannel_access_log_readable") == 0
        assert counts(registry) == {}
        # A file that appears later is new: all of it counts.
        path.write_bytes(ACCESS_LOG)
        registry = log.scrape()
        assert value(registry, "kannel_access_log_readable") == 1
        assert counts(registry)["sent_total{dlr_requested=true,smsc_id=operator}"] == 1
        path.unlink()
        registry = log.scrape()
        assert value(registry, "kannel_access_log_readable") == 0
        assert counts(registry)["sent_total{dlr_requested=true,smsc_id=operator}"] == 1
    # Not an error: nothing to warn about.
    assert caplog.records == []


def test_access_log_unreadable_file_is_reported_once(tmp_path, caplog):
    path = tmp_path / "access.log"
    path.write_bytes(ACCESS_LOG)
    with caplog.at_level(logging.INFO, logger="kannel_exporter"):
        log = AccessLog(tmp_path)  # a directory cannot be read as a log
        log.scrape()
        log.scrape()
    assert value(log.scrape(), "kannel_access_log_readable") == 0
    assert [record.levelname for record in caplog.records] == ["WARNING"]
    assert "cannot read the access log" in caplog.text


def test_access_log_over_http_with_the_program(tmp_path, bearerbox):
    path = tmp_path / "access.log"
    path.write_bytes(ACCESS_LOG)
    port = closed_port()
    argv = [sys.executable, str(MODULE), "--listen", f"127.0.0.1:{port}", "--status-url", bearerbox]
    env = {**os.environ, kannel.PASSWORD_ENV: PASSWORD}
    process = subprocess.Popen([*argv, "--access-log", str(path)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    response.read()
                break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None, "the exporter did not start"
                time.sleep(0.05)
        with path.open("ab") as log:
            log.write(b"Receive SMS [SMSC:operator] [dlr:-1]\n")
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
    finally:
        terminate(process)
    assert 'kannel_access_log_mo_total{smsc_id="operator"} 1.0' in text
    assert "kannel_access_log_readable 1.0" in text
    assert "kannel_up 1.0" in text
