"""The SMS pager turns Alertmanager notifications into one SMS per on-call number, through fake sendsms gateways."""

from __future__ import annotations

import http.server
import importlib.util
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from programs import terminate
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "monitoring/alerting/sms_pager.py"
spec = importlib.util.spec_from_file_location("sms_pager", MODULE)
pager_module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = pager_module  # dataclasses look their module up by name
spec.loader.exec_module(pager_module)

PASSWORD = "pa&ss word/1"
NUMBERS = ["+85512345678", "85598765432"]


def alert(name: str, severity: str = "critical", status: str = "firing", summary: str = "", **labels: str) -> dict:
    return {
        "status": status,
        "labels": {"alertname": name, "severity": severity, **labels},
        "annotations": {"summary": summary} if summary else {},
        "startsAt": "2026-11-29T23:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-11-29T23:10:00Z",
        "fingerprint": f"{abs(hash((name, tuple(sorted(labels.items()))))):016x}",
        "generatorURL": "http://prometheus:9090/graph",
    }


def payload(*alerts: dict, status: str = "firing") -> dict:
    return {
        "version": "4",
        "receiver": "sms",
        "status": status,
        "alerts": list(alerts),
        "groupKey": '{}:{severity="critical"}',
        "groupLabels": {"severity": "critical"},
        "commonLabels": {"severity": "critical"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "truncatedAlerts": 0,
    }


HOST_DOWN = alert("HostDown", instance="db1:9100", summary="Host db1 does not answer")
NO_LEADER = alert("PatroniNoLeader", scope="govops-pg", summary="No Patroni leader")


# --- fake sendsms gateways ------------------------------------------------------------------------------


class Gateway:
    """A sendsms stand-in on 127.0.0.1: records each request's query and answers with `status` after `delay`."""

    def __init__(self, status: int = 202, delay: float = 0.0) -> None:
        self.status, self.delay = status, delay
        self.requests: list[dict[str, str]] = []
        gateway = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query, keep_blank_values=True)
                gateway.requests.append({key: values[0] for key, values in query.items()})
                time.sleep(gateway.delay)
                body = b"0: Accepted for delivery" if gateway.status == 202 else b"Temporarily failed"
                self.send_response(gateway.status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/cgi-bin/sendsms"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def texts(self) -> list[tuple[str, str]]:
        return [(request["to"], request["text"]) for request in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gateways() -> Iterator:
    made: list[Gateway] = []

    def _make(status: int = 202, delay: float = 0.0) -> Gateway:
        made.append(Gateway(status, delay))
        return made[-1]

    yield _make
    for gateway in made:
        gateway.close()


def closed_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/cgi-bin/sendsms"


# --- the pager, in this process ----------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Harness:
    def __init__(self, config: dict, tmp_path: Path) -> None:
        password_file = tmp_path / "password"
        password_file.write_text(PASSWORD + "\n")
        document = {"username": "pager", "password_file": str(password_file), "from": "1234", "numbers": NUMBERS}
        self.clock = Clock()
        self.pager = pager_module.Pager(pager_module.parse_config({**document, **config}), clock=self.clock)
        self.server = pager_module.PagerServer(("127.0.0.1", 0), self.pager)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def post(self, document: object, path: str = "/alerts") -> tuple[int, dict]:
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        request = urllib.request.Request(self.base + path, data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def get(self, path: str) -> tuple[int, str]:
        with urllib.request.urlopen(self.base + path, timeout=10) as response:
            return response.status, response.read().decode()

    def metrics(self) -> dict[tuple[str, tuple], float]:
        _, text = self.get("/metrics")
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def pager(tmp_path) -> Iterator:
    made: list[Harness] = []

    def _make(gateways: list[str], **config) -> Harness:
        made.append(Harness({"gateways": gateways, **config}, tmp_path))
        return made[-1]

    yield _make
    for harness in made:
        harness.close()


def counter(metrics: dict, name: str, **labels: str) -> float | None:
    return metrics.get((name, tuple(sorted(labels.items()))))


def test_firing_notification_pages_every_number(pager, gateways):
    gateway = gateways()
    harness = pager([gateway.url])
    status, answer = harness.post(payload(HOST_DOWN, NO_LEADER))
    assert (status, answer["sent"], answer["failed"]) == (200, 2, 0)
    text = "[FIRING:2] HostDown db1; PatroniNoLeader govops-pg - Host db1 does not answer"
    assert gateway.requests == [
        {"username": "pager", "password": PASSWORD, "from": "1234", "to": number, "text": text} for number in NUMBERS
    ]
    metrics = harness.metrics()
    assert counter(metrics, "sms_pager_notifications_total", status="firing") == 1
    assert counter(metrics, "sms_pager_notifications_total", status="resolved") == 0
    assert counter(metrics, "sms_pager_sms_sent_total") == 2
    assert counter(metrics, "sms_pager_sms_failed_total") == 0
    for reason in ("duplicate", "rate_limit", "severity"):
        assert counter(metrics, "sms_pager_suppressed_total", reason=reason) == 0
    assert counter(metrics, "sms_pager_gateway_errors_total", gateway=gateway.url) == 0


def test_next_gateway_after_a_5xx_or_no_connection(pager, gateways):
    failing, working = gateways(status=503), gateways()
    refused = closed_url()
    harness = pager([refused, failing.url, working.url])
    status, answer = harness.post(payload(HOST_DOWN))
    assert (status, answer["sent"]) == (200, 2)
    assert [request["to"] for request in failing.requests] == NUMBERS
    assert [request["to"] for request in working.requests] == NUMBERS
    metrics = harness.metrics()
    assert counter(metrics, "sms_pager_gateway_errors_total", gateway=refused) == 2
    assert counter(metrics, "sms_pager_gateway_errors_total", gateway=failing.url) == 2
    assert counter(metrics, "sms_pager_gateway_errors_total", gateway=working.url) == 0
    assert counter(metrics, "sms_pager_sms_sent_total") == 2


def test_next_gateway_after_a_timeout(pager, gateways):
    slow, working = gateways(delay=2), gateways()
    harness = pager([slow.url, working.url], numbers=NUMBERS[:1], timeout=0.3)
    began = time.monotonic()
    assert harness.post(payload(HOST_DOWN))[1]["sent"] == 1
    assert time.monotonic() - began < 1.5
    assert len(working.requests) == 1
    assert counter(harness.metrics(), "sms_pager_gateway_errors_total", gateway=slow.url) == 1


def test_a_4xx_is_final(pager, gateways):
    refusing, other = gateways(status=403), gateways()
    harness = pager([refusing.url, other.url])
    status, answer = harness.post(payload(HOST_DOWN))
    assert (status, answer["sent"], answer["failed"]) == (200, 0, 2)
    assert other.requests == []
    metrics = harness.metrics()
    assert counter(metrics, "sms_pager_sms_failed_total") == 2
    assert counter(metrics, "sms_pager_gateway_errors_total", gateway=refusing.url) == 2


def test_a_failed_sms_is_sent_when_alertmanager_repeats_it(pager, gateways):
    gateway = gateways(status=503)
    harness = pager([gateway.url])
    assert harness.post(payload(HOST_DOWN))[1]["failed"] == 2
    gateway.status = 202
    # Neither the duplicate check nor the rate limit remembers what was not sent.
    assert harness.post(payload(HOST_DOWN))[1]["sent"] == 2
    metrics = harness.metrics()
    assert (counter(metrics, "sms_pager_sms_failed_total"), counter(metrics, "sms_pager_sms_sent_total")) == (2, 2)


def test_the_same_text_is_not_sent_twice_within_the_window(pager, gateways):
    gateway = gateways()
    harness = pager([gateway.url], dedup_seconds=3600)
    harness.post(payload(HOST_DOWN))
    harness.clock.now += 3599
    status, answer = harness.post(payload(HOST_DOWN))
    assert (status, answer["sent"], answer["suppressed"]) == (200, 0, {"duplicate": 2})
    # Another text is news.
    assert harness.post(payload(HOST_DOWN, NO_LEADER))[1]["sent"] == 2
    harness.clock.now += 1
    assert harness.post(payload(HOST_DOWN))[1]["sent"] == 2
    assert len(gateway.requests) == 6
    assert counter(harness.metrics(), "sms_pager_suppressed_total", reason="duplicate") == 2


def test_the_same_alert_firing_again_after_it_resolved_pages_again(pager, gateways):
    gateway = gateways()
    harness = pager([gateway.url], dedup_seconds=3600)
    harness.post(payload(HOST_DOWN))
    harness.post(payload({**HOST_DOWN, "status": "resolved"}, status="resolved"))
    harness.clock.now += 600
    again = {**HOST_DOWN, "startsAt": "2026-11-29T23:20:00Z"}
    assert harness.post(payload(again))[1]["sent"] == 2, "a new firing of the same alert is news"
    assert harness.post(payload(again))[1]["suppressed"] == {"duplicate": 2}, "Alertmanager's repeat of it is not"
    assert len(gateway.requests) == 6


def test_identical_notifications_at_the_same_time_send_once(pager, gateways):
    gateway = gateways(delay=0.3)
    harness = pager([gateway.url])
    threads = [threading.Thread(target=harness.post, args=(payload(HOST_DOWN),)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(gateway.texts()) == sorted((number, gateway.texts()[0][1]) for number in NUMBERS)
    assert counter(harness.metrics(), "sms_pager_suppressed_total", reason="duplicate") == 4


def test_rate_limit_per_number_per_rolling_hour(pager, gateways):
    gateway = gateways()
    harness = pager([gateway.url], rate_limit=2)
    for minute, name in enumerate(("First", "Second", "Third")):
        harness.clock.now = 1000 + 60 * minute
        harness.post(payload(alert(name, instance="db1:9100")))
    sent = [text.split()[1] for _, text in gateway.texts()]
    assert sent == ["First", "First", "Second", "Second"]
    assert counter(harness.metrics(), "sms_pager_suppressed_total", reason="rate_limit") == 2
    # An hour after the first SMS, one more fits.
    harness.clock.now = 1000 + 3600
    status, answer = harness.post(payload(alert("Fourth", instance="db1:9100")))
    assert (status, answer["sent"]) == (200, 2)
    harness.clock.now = 1000 + 3601
    assert harness.post(payload(alert("Fifth", instance="db1:9100")))[1]["suppressed"] == {"rate_limit": 2}


def test_severities_that_are_not_paged(pager, gateways):
    gateway = gateways()
    harness = pager([gateway.url])
    status, answer = harness.post(payload(alert("DiskFilling", severity="warning", instance="db1:9100")))
    assert (status, answer["sent"], answer["suppressed"]) == (200, 0, {"severity": 2})
    assert gateway.requests == []
    # Mixed: only the critical alert is paged and counted.
    harness.post(payload(alert("DiskFilling", severity="warning", instance="db2:9100"), HOST_DOWN))
    assert [text for _, text in gateway.texts()] == ["[FIRING:1] HostDown db1 - Host db1 does not answer"] * 2
    metrics = harness.metrics()
    assert counter(metrics, "sms_pager_suppressed_total", reason="severity") == 2
    assert counter(metrics, "sms_pager_notifications_total", status="firing") == 2


def test_configured_severities(pager, gateways):
    gateway = gateways()
    harness = pager([gateway.url], severities=["critical", "page"], numbers=NUMBERS[:1])
    harness.post(payload(alert("SmsGatewayDown", severity="page", smsc_id="operator")))
    assert gateway.texts() == [(NUMBERS[0], "[FIRING:1] SmsGatewayDown operator")]


def test_resolved_notification(pager, gateways):
    gateway = gateways()
    harness = pager([gateway.url], numbers=NUMBERS[:1])
    resolved = alert("HostDown", status="resolved", instance="db1:9100", summary="Host db1 does not answer")
    harness.post(payload(resolved, status="resolved"))
    assert gateway.texts() == [(NUMBERS[0], "[RESOLVED] HostDown db1 - Host db1 does not answer")]
    # A firing group lists its firing alerts only.
    harness.post(payload(resolved, NO_LEADER))
    assert gateway.texts()[-1] == (NUMBERS[0], "[FIRING:1] PatroniNoLeader govops-pg - No Patroni leader")
    assert counter(harness.metrics(), "sms_pager_notifications_total", status="resolved") == 1


def test_resolved_not_sent_when_switched_off(pager, gateways):
    gateway = gateways()
    harness = pager([gateway.url], send_resolved=False)
    status, answer = harness.post(payload(alert("HostDown", status="resolved", instance="db1"), status="resolved"))
    assert (status, answer["sent"]) == (200, 0)
    assert gateway.requests == []
    assert counter(harness.metrics(), "sms_pager_notifications_total", status="resolved") == 1


def test_a_slow_gateway_does_not_block_other_requests(pager, gateways):
    gateway = gateways(delay=1.2)
    harness = pager([gateway.url], numbers=NUMBERS[:1])
    sending = threading.Thread(target=harness.post, args=(payload(HOST_DOWN),))
    sending.start()
    deadline = time.monotonic() + 5
    while not gateway.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    began = time.monotonic()
    assert harness.get("/health") == (200, "ok\n")
    assert counter(harness.metrics(), "sms_pager_notifications_total", status="firing") == 1
    assert time.monotonic() - began < 1.0
    assert sending.is_alive()  # the notification is still being sent
    sending.join(10)


@pytest.mark.parametrize(
    ("body", "path", "status", "message"),
    [
        (b"not json", "/alerts", 400, "Expecting value"),
        (b'{"status": "pending", "alerts": []}', "/alerts", 400, "neither firing nor resolved"),
        (b'{"status": "firing", "alerts": {}}', "/alerts", 400, "not a list"),
        (b"[]", "/alerts", 400, "not a JSON object"),
        (b"{}", "/other", 404, "POST Alertmanager's webhook to /alerts"),
    ],
)
def test_bad_requests(pager, gateways, body, path, status, message):
    gateway = gateways()
    harness = pager([gateway.url])
    answer = harness.post(body, path)
    assert answer[0] == status
    assert message in answer[1]["error"]
    assert gateway.requests == []


# --- the text ---------------------------------------------------------------------------------------------


def test_text_is_ascii_and_readable():
    summary = "Réplica `db2` sans leader\nsince 10 min: 5 € lost ✓"
    text = pager_module.compose("firing", [alert("PatroniNoLeader", scope="govops-pg", summary=summary)])
    assert text == "[FIRING:1] PatroniNoLeader govops-pg - Replica 'db2' sans leader since 10 min: 5 ? lost ?"


def test_text_fits_one_sms():
    alerts = [alert(f"Alert{n}", instance=f"host{n}:9100", summary="x" * 100) for n in range(20)]
    text = pager_module.compose("firing", alerts)
    assert 150 < len(text) <= 160
    assert text.startswith("[FIRING:20] Alert0 host0; Alert1 host1;")
    assert text.endswith("...")


def test_gsm_extension_characters_count_twice():
    text = pager_module.fit("[" * 100)
    assert text == "[" * 78 + "..."
    assert pager_module.septets(text) <= 160
    assert pager_module.fit("a" * 160) == "a" * 160


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"instance": "db1:9100"}, "db1"),
        ({"instance": "[fd00::1]:9100"}, "fd00::1"),
        ({"instance": "db1"}, "db1"),
        ({"host": "sms1", "instance": "sms1:9390"}, "sms1"),
        ({"job": "patroni", "scope": "govops-pg"}, "govops-pg"),
        ({"alertname": "Watchdog"}, ""),
    ],
)
def test_identity_label(labels, expected):
    assert pager_module.identity(labels) == expected


# --- configuration and the program ----------------------------------------------------------------------


def write_config(tmp_path: Path, **overrides) -> Path:
    password_file = tmp_path / "sms-pager.password"
    password_file.write_text(PASSWORD + "\n")
    document = {
        "gateways": ["http://sms1:13013/cgi-bin/sendsms"],
        "username": "pager",
        "password_file": str(password_file),
        "from": "1234",
        "numbers": NUMBERS,
        **overrides,
    }
    path = tmp_path / "sms-pager.yml"
    path.write_text(yaml.safe_dump({key: value for key, value in document.items() if value is not None}))
    return path


def refused(capsys, path: Path) -> str:
    with pytest.raises(SystemExit) as exit_info:
        pager_module.main(["--config", str(path)])
    assert exit_info.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"numbers": ["+85512345678", "12ab"]}, "numbers[1]: '12ab' is not an E.164 number"),
        ({"numbers": ["0855123456"]}, "numbers[0]: '0855123456' is not an E.164 number"),
        ({"numbers": ["+855123456789012345"]}, "numbers[0]: '+855123456789012345' is not an E.164 number"),
        ({"numbers": ["+85512345678", "85512345678"]}, "numbers[1]: '85512345678' is listed twice (also numbers[0])"),
        ({"numbers": []}, "numbers: must be a non-empty list"),
        ({"password_file": "/nonexistent/sms-pager.password"}, "password_file: /nonexistent/sms-pager.password does"),
        ({"from": 1234}, "from: 1234 is not a string"),
        ({"gateways": ["sms1:13013/cgi-bin/sendsms"]}, "gateways[0]: 'sms1:13013/cgi-bin/sendsms' is not an http(s)"),
        ({"gateways": ["http://sms1:13013/cgi-bin/sendsms?username=x"]}, "gateways[0]: "),
        ({"rate_limit": 0}, "rate_limit: 0 is not a whole number of at least 1"),
        ({"dedup_seconds": "1h"}, "dedup_seconds: '1h' is not a number"),
        ({"send_resolved": "yes please"}, "send_resolved: 'yes please' is not true or false"),
        ({"numbrs": NUMBERS}, "unknown key 'numbrs'"),
        ({"username": None}, "username: missing"),
    ],
)
def test_bad_configuration_is_refused_naming_the_entry(capsys, tmp_path, overrides, message):
    path = write_config(tmp_path, **overrides)
    err = refused(capsys, path)
    assert f"{path}: {message}" in err


def test_empty_password_file_and_missing_config(capsys, tmp_path):
    path = write_config(tmp_path)
    (tmp_path / "sms-pager.password").write_text("\n")
    assert "password_file: " in refused(capsys, path)
    assert "is empty" in refused(capsys, path)
    assert f"cannot read {tmp_path}/none.yml" in refused(capsys, tmp_path / "none.yml")


def test_defaults_and_unquoted_numbers(tmp_path):
    path = write_config(tmp_path, numbers=[85512345678, "+85598765432"])
    config = pager_module.load_config(str(path))
    assert config.numbers == ("85512345678", "+85598765432")
    assert config.password == PASSWORD
    assert (config.severities, config.send_resolved, config.dedup_seconds, config.rate_limit, config.timeout) == (
        frozenset({"critical"}), True, 3600, 10, 10,
    )  # fmt: skip


def test_the_program_pages_and_keeps_the_password_out_of_its_log(tmp_path, gateways):
    failing, working = gateways(status=500), gateways()
    path = write_config(tmp_path, gateways=[failing.url, working.url], numbers=NUMBERS[:1])
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    argv = [sys.executable, str(MODULE), "--config", str(path), "--listen", f"127.0.0.1:{port}"]
    process = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
                    assert response.status == 200
                break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None, "the pager did not start"
                time.sleep(0.05)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/alerts", data=json.dumps(payload(HOST_DOWN)).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert json.loads(response.read())["sent"] == 1
    finally:
        err = terminate(process)
    assert process.returncode == 0
    assert working.texts() == [(NUMBERS[0], "[FIRING:1] HostDown db1 - Host db1 does not answer")]
    assert "HTTP 500" in err
    assert "accepted by" in err
    assert PASSWORD not in err
    assert urllib.parse.quote(PASSWORD, safe="") not in err
    # On-call numbers appear masked.
    assert NUMBERS[0] not in err
    assert "*5678" in err
