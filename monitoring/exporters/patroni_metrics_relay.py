#!/usr/bin/env python3
"""Relays Patroni's /metrics to Prometheus after repairing what Patroni 3.0.2 gets wrong.

Patroni 3.0.2 (Debian 12) serves Prometheus metrics on its REST API, but on a replica it prints
``patroni_postgres_timeline{scope="..."} None``, which Prometheus (and ``promtool check metrics``) refuse: every
scrape of a replica would fail. It also always prints ``patroni_postgres_server_version {scope="..."}`` with a
space before the labels. On each scrape this relay fetches Patroni's /metrics, removes such stray spaces,
drops the samples whose value is not a number (and the HELP and TYPE lines of a metric that has no sample
left), and serves the rest together with its own metrics:

    patroni_relay_up                1 when Patroni answered HTTP 200 on this scrape
    patroni_relay_dropped_samples   sample lines dropped from Patroni's answer on this scrape

When Patroni does not answer, the relay still answers 200 with only its own metrics (patroni_relay_up 0): the
`up` of the scrape job is about the relay, patroni_relay_up about Patroni.

    patroni_metrics_relay.py --listen 0.0.0.0:9547 --patroni-url https://db1:8008/metrics \\
        --cafile /etc/patroni/ca.crt [--certfile client.crt --keyfile client.key] \\
        [--tls-certfile relay.crt --tls-keyfile relay.key]
"""

from __future__ import annotations

import argparse
import http.client
import logging
import re
import signal
import ssl
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

LOG = logging.getLogger("patroni_metrics_relay")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Patroni's answer is a few KiB; anything far bigger is not Patroni.
MAX_BODY_BYTES = 4 * 1024 * 1024

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL_VALUE = r'"(?:[^"\\\n]|\\.)*"'
LABEL = rf"[ \t]*[a-zA-Z_][a-zA-Z0-9_]*[ \t]*=[ \t]*{LABEL_VALUE}[ \t]*"
LABELS = rf"\{{(?:{LABEL}(?:,{LABEL})*,?)?[ \t]*\}}"
SAMPLE_RE = re.compile(
    rf"(?P<name>{NAME})[ \t]*(?P<labels>{LABELS})?[ \t]+(?P<value>\S+)(?:[ \t]+(?P<timestamp>-?\d+))?[ \t]*"
)
# What Prometheus reads as a sample value: a decimal number, NaN or an infinity.
VALUE_RE = re.compile(r"[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|[Ii]nf(?:inity)?)|[Nn]a[Nn]")
META_RE = re.compile(rf"#[ \t]+(?P<kind>HELP|TYPE)[ \t]+(?P<name>{NAME})(?:[ \t].*)?")
# Samples of a summary or histogram carry a suffix after the metric's name.
SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created", "_gcount", "_gsum")


class ConfigError(Exception):
    """A bad command line or TLS file, reported before anything starts."""


@dataclass(frozen=True)
class Repaired:
    text: str
    dropped: int


def family_of(sample: str, families: set[str]) -> str:
    if sample in families:
        return sample
    for suffix in SUFFIXES:
        if sample.endswith(suffix) and sample.removesuffix(suffix) in families:
            return sample.removesuffix(suffix)
    return sample


def repair(text: str) -> Repaired:
    """Patroni's exposition with stray spaces removed and unreadable samples (and their orphaned HELP/TYPE)
    dropped."""
    families = {match["name"] for match in map(META_RE.fullmatch, text.splitlines()) if match}
    # (family or None, line) in the original order; None for lines that belong to no metric.
    kept: list[tuple[str | None, str]] = []
    samples_left: dict[str, int] = {}
    lost: set[str] = set()
    dropped = 0
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            meta = META_RE.fullmatch(stripped)
            kept.append((meta["name"] if meta else None, stripped))
            continue
        sample = SAMPLE_RE.fullmatch(stripped)
        if sample is None or not VALUE_RE.fullmatch(sample["value"]):
            dropped += 1
            name = sample["name"] if sample else stripped.split("{")[0].split()[0]
            lost.add(family_of(name, families))
            LOG.debug("dropped %r", stripped[:200])
            continue
        family = family_of(sample["name"], families)
        samples_left[family] = samples_left.get(family, 0) + 1
        repaired = sample["name"] + (sample["labels"] or "") + " " + sample["value"]
        if sample["timestamp"]:
            repaired += " " + sample["timestamp"]
        kept.append((family, repaired))
    # HELP and TYPE of a metric go only when its samples were dropped and none is left.
    orphaned = {family for family in lost if not samples_left.get(family)}
    lines = [line for family, line in kept if family not in orphaned]
    return Repaired("".join(line + "\n" for line in lines), dropped)


class PatroniFetcher:
    """Reads Patroni's /metrics; raises OSError or http.client.HTTPException when Patroni does not answer 200."""

    def __init__(self, url: str, context: ssl.SSLContext | None, timeout: float) -> None:
        self.url = url
        self._timeout = timeout
        handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
        if context is not None:
            handlers.append(urllib.request.HTTPSHandler(context=context))
        self._opener = urllib.request.build_opener(*handlers)

    def __call__(self) -> str:
        with self._opener.open(self.url, timeout=self._timeout) as response:
            if response.status != HTTPStatus.OK:
                raise urllib.error.HTTPError(self.url, response.status, response.reason, response.headers, None)
            body = response.read(MAX_BODY_BYTES + 1)
        if len(body) > MAX_BODY_BYTES:
            raise OSError(f"Patroni's answer is larger than {MAX_BODY_BYTES} bytes")
        return body.decode("utf-8", errors="replace")


class _Families:
    """What generate_latest() needs: an object whose collect() yields the metric families."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> list[Metric]:
        return self._families


class Relay:
    """One scrape: Patroni's repaired metrics, then the relay's own."""

    def __init__(self, fetch: Callable[[], str], source: str = "Patroni") -> None:
        self._fetch = fetch
        self._source = source
        self._lock = threading.Lock()
        self._last_error: str | None = None

    def scrape(self) -> bytes:
        start = time.perf_counter()
        try:
            text = self._fetch()
        except urllib.error.HTTPError as exc:
            self._failed(f"Patroni answered HTTP {exc.code} {exc.reason}")
            repaired = None
        except (OSError, http.client.HTTPException) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            self._failed(f"cannot read Patroni's metrics: {reason or type(exc).__name__}")
            repaired = None
        else:
            repaired = repair(text)
            self._succeeded(repaired.dropped)
        own = [
            GaugeMetricFamily(
                "patroni_relay_up",
                "1 when Patroni's /metrics answered HTTP 200 on this scrape.",
                value=0 if repaired is None else 1,
            ),
            GaugeMetricFamily(
                "patroni_relay_dropped_samples",
                "Sample lines of Patroni's answer dropped on this scrape (a value that is not a number).",
                value=0 if repaired is None else repaired.dropped,
            ),
            GaugeMetricFamily(
                "patroni_relay_scrape_duration_seconds",
                "Time to read and repair Patroni's metrics.",
                value=time.perf_counter() - start,
            ),
        ]
        return (b"" if repaired is None else repaired.text.encode()) + generate_latest(_Families(own))

    def _failed(self, message: str) -> None:
        with self._lock:
            repeated, self._last_error = message == self._last_error, message
        LOG.log(logging.DEBUG if repeated else logging.WARNING, "%s: %s", self._source, message)

    def _succeeded(self, dropped: int) -> None:
        with self._lock:
            recovered, self._last_error = self._last_error is not None, None
        if recovered:
            LOG.info("%s answers again", self._source)
        if dropped:
            LOG.debug("dropped %d samples from %s", dropped, self._source)


class RelayHandler(BaseHTTPRequestHandler):
    server: RelayServer
    # A client that stops mid-request (or mid-handshake) must not hold a thread for ever.
    timeout = 30

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._reply(HTTPStatus.OK, self.server.relay.scrape(), CONTENT_TYPE)
        elif path == "/":
            self._reply(HTTPStatus.OK, b"Patroni metrics relay: see /metrics\n", "text/plain; charset=utf-8")
        else:
            self._reply(HTTPStatus.NOT_FOUND, b"not found: see /metrics\n", "text/plain; charset=utf-8")

    def _reply(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # scrapes are not worth a log line each
        pass


class RelayServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], relay: Relay, tls: ssl.SSLContext | None = None) -> None:
        self.relay = relay
        self.tls = tls
        super().__init__(address, RelayHandler)

    def get_request(self):
        connection, address = super().get_request()
        if self.tls is not None:
            # The handshake happens on the first read, in the request's thread: a slow or broken client must
            # not hold up the accepting loop.
            connection = self.tls.wrap_socket(connection, server_side=True, do_handshake_on_connect=False)
        return connection, address

    def handle_error(self, request, client_address) -> None:
        LOG.debug("request from %s failed: %s", client_address[0], sys.exc_info()[1])


# --- command line --------------------------------------------------------------------------------------


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--listen {value!r} is not HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


def positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = 0.0
    if not 0 < number < float("inf"):
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive number of seconds")
    return number


def readable(option: str, path: str | None) -> None:
    if path is not None and not Path(path).is_file():
        raise ConfigError(f"{option} {path} does not exist or is not a file")


def client_context(cafile: str | None, certfile: str | None, keyfile: str | None) -> ssl.SSLContext:
    """Verifies Patroni's certificate (against --cafile, else the system's CAs) and its host name."""
    readable("--cafile", cafile)
    readable("--certfile", certfile)
    readable("--keyfile", keyfile)
    if keyfile and not certfile:
        raise ConfigError("--keyfile needs --certfile")
    try:
        context = ssl.create_default_context(cafile=cafile)
    except ssl.SSLError as exc:
        raise ConfigError(f"--cafile {cafile} holds no usable CA certificate: {exc.reason or exc}") from None
    if certfile:
        try:
            context.load_cert_chain(certfile, keyfile)
        except ssl.SSLError as exc:
            raise ConfigError(
                f"--certfile/--keyfile: cannot load the client certificate: {exc.reason or exc}"
            ) from None
    return context


def server_context(certfile: str | None, keyfile: str | None) -> ssl.SSLContext | None:
    if not certfile:
        if keyfile:
            raise ConfigError("--tls-keyfile needs --tls-certfile")
        return None
    readable("--tls-certfile", certfile)
    readable("--tls-keyfile", keyfile)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(certfile, keyfile)
    except ssl.SSLError as exc:
        raise ConfigError(f"--tls-certfile/--tls-keyfile: cannot load the certificate: {exc.reason or exc}") from None
    return context


def check_patroni_url(url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--patroni-url {url!r} is not an http(s) URL")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="patroni_metrics_relay", description="Serves Patroni's /metrics, repaired, to Prometheus."
    )
    parser.add_argument("--listen", default="0.0.0.0:9547", help="HOST:PORT to serve /metrics on (%(default)s)")
    parser.add_argument("--patroni-url", required=True, help="Patroni's metrics, e.g. https://db1:8008/metrics")
    parser.add_argument("--cafile", help="CA certificate(s) to verify Patroni's certificate (else the system's)")
    parser.add_argument("--certfile", help="client certificate for Patroni's REST API (PEM)")
    parser.add_argument("--keyfile", help="its private key, when not in --certfile")
    parser.add_argument("--timeout", type=positive_float, default=5.0, help="seconds per request (%(default)s)")
    parser.add_argument("--tls-certfile", help="serve HTTPS with this certificate (PEM)")
    parser.add_argument("--tls-keyfile", help="its private key, when not in --tls-certfile")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    return parser


def build(args: argparse.Namespace) -> tuple[tuple[str, int], Relay, ssl.SSLContext | None]:
    """The listening address, the relay and the server's TLS context from the command line; ConfigError."""
    address = parse_listen(args.listen)
    check_patroni_url(args.patroni_url)
    https = args.patroni_url.lower().startswith("https:")
    if not https and (args.cafile or args.certfile or args.keyfile):
        raise ConfigError("--cafile, --certfile and --keyfile need an https:// --patroni-url")
    context = client_context(args.cafile, args.certfile, args.keyfile) if https else None
    tls = server_context(args.tls_certfile, args.tls_keyfile)
    relay = Relay(PatroniFetcher(args.patroni_url, context, args.timeout), source=args.patroni_url)
    return address, relay, tls


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        address, relay, tls = build(args)
    except ConfigError as exc:
        parser.error(str(exc))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        server = RelayServer(address, relay, tls)
    except OSError as exc:
        LOG.error("cannot listen on %s: %s", args.listen, exc.strerror or exc)
        return 1
    threading.Thread(target=server.serve_forever, daemon=True).start()
    LOG.info("serving %s on %s/metrics for %s", "HTTPS" if tls else "HTTP", args.listen, args.patroni_url)
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
