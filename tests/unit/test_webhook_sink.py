"""The lab webhook sink records what is posted to it and gives it back, filtered, newest N kept."""

from __future__ import annotations

import http.client
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from programs import terminate

MODULE = Path(__file__).resolve().parents[2] / "roles/webhook_sink/files/webhook_sink.py"
spec = importlib.util.spec_from_file_location("webhook_sink", MODULE)
sink = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sink)

ALERTMANAGER_PAYLOAD = {
    "version": "4",
    "status": "firing",
    "receiver": "incident-webhook",
    "groupKey": '{}:{alertname="HostDown"}',
    "alerts": [{"status": "firing", "labels": {"alertname": "HostDown", "instance": "db1:9100"}}],
}


class Client:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        request = urllib.request.Request(self.base + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def post_json(self, path: str, document: object):
        return self.request("POST", path, json.dumps(document).encode(), {"Content-Type": "application/json"})

    def received(self, **query: str) -> dict:
        status, document = self.request("GET", "/received?" + urllib.parse.urlencode(query))
        assert status == 200
        assert document["count"] == len(document["records"])
        return document


def start(max_records: int = 5000) -> sink.SinkServer:
    server = sink.SinkServer(("127.0.0.1", 0), max_records)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


@pytest.fixture
def client() -> Iterator[Client]:
    server = start()
    yield Client(server.server_address[1])
    server.shutdown()
    server.server_close()


def test_says_it_is_lab_only():
    assert "lab only" in sink.__doc__.lower()


def test_json_post_is_recorded_with_its_path_and_time(client):
    before = datetime.now(UTC)
    status, answer = client.post_json("/alertmanager", ALERTMANAGER_PAYLOAD)
    after = datetime.now(UTC)
    assert status == 200
    assert answer["recorded"] is True
    records = client.received()["records"]
    assert len(records) == 1
    record = records[0]
    assert record["path"] == "/alertmanager"
    assert record["body"] == ALERTMANAGER_PAYLOAD
    received_at = datetime.fromisoformat(record["received_at"])
    assert received_at.utcoffset() == timedelta(0)
    assert before <= received_at <= after


def test_text_and_broken_bodies_are_kept_as_text(client):
    client.request("POST", "/deadman", b"ping")
    client.request("POST", "/deadman", b'{"not": json')
    client.request("POST", "/deadman", b"caf\xe9")
    client.request("POST", "/deadman")
    bodies = [record["body"] for record in client.received(path="/deadman")["records"]]
    assert bodies == ["ping", '{"not": json', "caf\ufffd", ""]


def test_path_filter_and_query_string(client):
    client.post_json("/a?token=1", {"n": 1})
    client.post_json("/b", {"n": 2})
    client.post_json("/a", {"n": 3})
    assert [record["body"]["n"] for record in client.received(path="/a")["records"]] == [1, 3]
    assert client.received(path="/b")["count"] == 1
    assert client.received(path="/c") == {"count": 0, "records": []}
    assert client.received()["count"] == 3


def test_since_keeps_the_records_received_at_or_after_it(client):
    client.post_json("/x", {"n": 1})
    time.sleep(0.01)
    middle = datetime.now(UTC)
    time.sleep(0.01)
    client.post_json("/x", {"n": 2})
    for spelling in (
        middle.isoformat(),
        middle.isoformat().replace("+00:00", "Z"),
        middle.replace(tzinfo=None).isoformat(),
    ):
        records = client.received(path="/x", since=spelling)["records"]
        assert [record["body"]["n"] for record in records] == [2], spelling
    second = client.received(path="/x")["records"][1]["received_at"]
    assert client.received(since=second)["count"] == 1  # "at or after": the record itself is included
    future = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    assert client.received(since=future)["count"] == 0


def test_bad_since_is_a_400(client):
    status, answer = client.request("GET", "/received?since=yesterday")
    assert status == 400
    assert "yesterday" in answer["error"]


def test_only_the_newest_records_are_kept():
    server = start(max_records=3)
    try:
        client = Client(server.server_address[1])
        for n in range(5):
            client.post_json("/x", {"n": n})
        assert [record["body"]["n"] for record in client.received()["records"]] == [2, 3, 4]
    finally:
        server.shutdown()
        server.server_close()


def test_reset_forgets_everything_and_is_not_recorded(client):
    client.post_json("/x", {})
    client.post_json("/y", {})
    assert client.request("POST", "/reset") == (200, {"cleared": 2})
    assert client.received()["count"] == 0
    assert client.request("GET", "/health") == (200, {"status": "ok", "records": 0})


def test_health_counts_records_and_unknown_get_is_404(client):
    client.post_json("/x", {})
    assert client.request("GET", "/health") == (200, {"status": "ok", "records": 1})
    status, _ = client.request("GET", "/nothing-here")
    assert status == 404


def test_oversized_body_is_refused_and_not_recorded(client):
    connection = http.client.HTTPConnection("127.0.0.1", int(client.base.rsplit(":", 1)[1]), timeout=5)
    # Only the headers: the sink must refuse by Content-Length, without reading a MiB it will not keep.
    connection.putrequest("POST", "/x")
    connection.putheader("Content-Length", str(sink.MAX_BODY_BYTES + 1))
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413
    connection.close()
    assert client.received()["count"] == 0


def test_concurrent_posts_are_all_recorded(client):
    threads = [threading.Thread(target=client.post_json, args=("/c", {"n": n})) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(record["body"]["n"] for record in client.received(path="/c")["records"]) == list(range(10))


# --- the program ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_program_serves_and_stops_on_sigterm():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(MODULE), "--listen", f"127.0.0.1:{port}", "--max-records", "2"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        client = Client(port)
        for _ in range(100):
            try:
                if client.request("GET", "/health")[0] == 200:
                    break
            except OSError:
                time.sleep(0.05)
        for n in range(3):
            client.post_json("/watchdog", {"n": n})
        assert [record["body"]["n"] for record in client.received()["records"]] == [1, 2]
    finally:
        err = terminate(process)
    assert process.returncode == 0, err
    assert "POST /watchdog" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--max-records", "0"], "not a positive whole number"),
        (["--listen", "9096"], "is not HOST:PORT"),
    ],
)
def test_bad_command_line_is_refused(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        sink.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
