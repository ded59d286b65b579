#!/usr/bin/env python3
"""LAB ONLY: a webhook sink that stands in for the organisation's incident webhook and dead man's switch.

In the lab, Alertmanager's second receiver (and the watchdog's dead man's switch) post here instead of to the
organisation's incident service; tests and trainees read back what arrived. It forwards nothing, keeps its
records in memory only and has no authentication: it is lab only and never deployed to staging or prod.

    webhook_sink.py --listen 0.0.0.0:9096 --max-records 5000

POST <any path>      records {"path", "received_at" (UTC, ISO 8601), "body"}; the body is the parsed JSON when it
                     is JSON, else its text; only the newest --max-records records are kept
GET  /received       {"count": N, "records": [...]}, oldest first; ?path=/x keeps the records posted to /x,
                     ?since=<ISO time> those received at or after that time (a time without offset is UTC)
GET  /health         {"status": "ok", "records": N}
POST /reset          forgets every record (so /reset itself is never recorded)
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import signal
import sys
import threading
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LOG = logging.getLogger("webhook_sink")

# Alertmanager's largest notifications are tens of KiB; anything far bigger is a mistake.
MAX_BODY_BYTES = 1024 * 1024


class ConfigError(Exception):
    """A bad command line, reported before anything starts."""


class Records:
    """The newest records, safe to use from the server's threads."""

    def __init__(self, max_records: int) -> None:
        self._records: collections.deque[tuple[datetime, dict]] = collections.deque(maxlen=max_records)
        self._lock = threading.Lock()

    def add(self, path: str, body: object) -> dict:
        now = datetime.now(UTC)
        record = {"path": path, "received_at": now.isoformat(timespec="microseconds"), "body": body}
        with self._lock:
            self._records.append((now, record))
        return record

    def select(self, path: str | None = None, since: datetime | None = None) -> list[dict]:
        with self._lock:
            records = list(self._records)
        return [
            record
            for received, record in records
            if (path is None or record["path"] == path) and (since is None or received >= since)
        ]

    def clear(self) -> int:
        with self._lock:
            count = len(self._records)
            self._records.clear()
        return count

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)


def parse_body(raw: bytes) -> object:
    """The JSON document in the body, or the body as text when it is not JSON."""
    try:
        return json.loads(raw)
    except ValueError:  # also UnicodeDecodeError
        return raw.decode("utf-8", errors="replace")


def parse_since(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"since={value!r} is not an ISO 8601 time such as 2026-11-29T23:59:03Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class SinkHandler(BaseHTTPRequestHandler):
    server: SinkServer
    # A client that stops sending mid-request must not hold a thread for ever.
    timeout = 30

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._reply(HTTPStatus.LENGTH_REQUIRED, {"error": "send the body with a Content-Length"})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self._reply(HTTPStatus.BAD_REQUEST, {"error": "bad Content-Length"})
            return
        if length > MAX_BODY_BYTES:
            self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": f"body larger than {MAX_BODY_BYTES} bytes"})
            self.close_connection = True
            return
        raw = self.rfile.read(length)
        if path == "/reset":
            cleared = self.server.records.clear()
            LOG.info("reset: %d records forgotten", cleared)
            self._reply(HTTPStatus.OK, {"cleared": cleared})
            return
        record = self.server.records.add(path, parse_body(raw))
        LOG.info("POST %s: %d bytes recorded", path, len(raw))
        self._reply(HTTPStatus.OK, {"recorded": True, "received_at": record["received_at"]})

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/health":
            self._reply(HTTPStatus.OK, {"status": "ok", "records": len(self.server.records)})
        elif parts.path == "/received":
            query = parse_qs(parts.query, keep_blank_values=True)
            path = query.get("path", [None])[0]
            try:
                since = parse_since(query["since"][0]) if "since" in query else None
            except ValueError as exc:
                self._reply(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
                return
            records = self.server.records.select(path, since)
            self._reply(HTTPStatus.OK, {"count": len(records), "records": records})
        else:
            self._reply(HTTPStatus.NOT_FOUND, {"error": "GET /received or /health; POST anything to any path"})

    def _reply(self, status: HTTPStatus, document: dict) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # the POSTs are logged above, the GETs are not worth it
        pass


class SinkServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], max_records: int) -> None:
        self.records = Records(max_records)
        super().__init__(address, SinkHandler)


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--listen {value!r} is not HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


def positive_int(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive whole number")
    return int(value)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="webhook_sink", description="LAB ONLY: records webhook posts and lets tests read them back."
    )
    parser.add_argument("--listen", default="0.0.0.0:9096", help="HOST:PORT to listen on (%(default)s)")
    parser.add_argument("--max-records", type=positive_int, default=5000, help="records kept (%(default)s)")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        address = parse_listen(args.listen)
    except ConfigError as exc:
        parser.error(str(exc))
    # Handlers first: a SIGTERM right after the port opens must still stop the sink cleanly.
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        server = SinkServer(address, args.max_records)
    except OSError as exc:
        LOG.error("cannot listen on %s: %s", args.listen, exc.strerror or exc)
        return 1
    threading.Thread(target=server.serve_forever, daemon=True).start()
    LOG.info("lab webhook sink listening on %s, keeping %d records", args.listen, args.max_records)
    # A timed wait: the kernel may hand the signal to another thread, and Python runs the handler only when
    # the main thread runs Python code again; an endless wait could then last for ever.
    while not stop.wait(1.0):
        pass
    LOG.info("stopping")
    # No server.shutdown(): it waits for the serving loop's next poll; the threads end with the process.
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
