#!/usr/bin/env python3
"""Alertmanager webhook receiver that pages the on-call staff by SMS through the kit's own SMS gateways.

    sms_pager.py --config /etc/govops/sms-pager.yml --listen 0.0.0.0:9095

POST /alerts takes Alertmanager's webhook payload (version 4) and sends one SMS per on-call number through
Kannel's sendsms interface; GET /metrics serves the pager's counters; GET /health answers 200.

The configuration (YAML); every key but gateways, username, password_file, from and numbers is optional:

    gateways: [http://sms1:13013/cgi-bin/sendsms, http://sms2:13013/cgi-bin/sendsms]  # tried in order
    username: pager                       # the sendsms account
    password_file: /etc/govops/sms-pager.password   # its password, read once at start
    from: "1234"                          # the short code (a string: YAML reads 01234 as a number)
    numbers: ["+85512345678", "85598765432"]         # on-call numbers, E.164 with or without '+'
    severities: [critical]                # alerts of other severities are not paged
    send_resolved: true                   # page "[RESOLVED] ..." too
    dedup_seconds: 3600                   # the same page of the same firing to a number at most once in this window
    rate_limit: 10                        # SMS per number per rolling hour; more are dropped and counted
    timeout: 10                           # seconds per sendsms request

A bad entry stops the pager at start with a message that names it.

One notification gives one SMS per number: ``[FIRING:2] HostDown db1; PatroniNoLeader govops-pg - <summary of
the first alert>`` or ``[RESOLVED] ...``: the alerts of the notification's status whose severity is paged, each
as its alertname and the first of the labels host, instance (without the port), scope, cluster, stanza,
smsc_id, service, job that it has, then the first alert's summary annotation. The text is ASCII (accents are
taken off, anything else becomes '?') and fits one GSM 7-bit SMS: 160 septets, where each of ^{}\\[~]| takes
two; a longer text is cut and ends in "...".

A gateway is tried, in the configured order, until one answers 202 (accepted); the next one is tried after a
connection error, a timeout or a 5xx; another answer (a 4xx: a wrong account or a refused text) is final.
Alertmanager always gets 200 once the notification is handled (a failed SMS is counted, not retried: it
re-sends unresolved alerts every repeat_interval, and the second webhook receiver is the safety net).
The pager serves each request in its own thread, so a slow gateway holds up only the notification it sends.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import re
import signal
import sys
import threading
import time
import unicodedata
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

LOG = logging.getLogger("sms_pager")

E164_RE = re.compile(r"\+?[1-9][0-9]{6,14}")
IDENTITY_LABELS = ("host", "instance", "scope", "cluster", "stanza", "smsc_id", "service", "job")
# GSM 03.38: these ASCII characters are in the extension table and take two septets; '`' is not in GSM at all.
GSM_EXTENSION = set("^{}\\[~]|")
SMS_SEPTETS = 160
RATE_WINDOW = 3600.0
MAX_BODY_BYTES = 1024 * 1024
SUPPRESSION_REASONS = ("duplicate", "rate_limit", "severity")
REQUIRED_KEYS = ("gateways", "username", "password_file", "from", "numbers")
OPTIONAL_KEYS = {
    "severities": ["critical"],
    "send_resolved": True,
    "dedup_seconds": 3600,
    "rate_limit": 10,
    "timeout": 10,
}


class ConfigError(Exception):
    """A bad configuration, reported before anything starts."""


@dataclass(frozen=True)
class Config:
    gateways: tuple[str, ...]
    username: str
    password: str
    sender: str
    numbers: tuple[str, ...]
    severities: frozenset[str]
    send_resolved: bool
    dedup_seconds: float
    rate_limit: int
    timeout: float


# --- configuration ---------------------------------------------------------------------------------------


def _number(value: object, key: str, minimum: float, integer: bool = False) -> float:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not value >= minimum:
        kind = "a whole number" if integer else "a number"
        raise ConfigError(f"{key}: {value!r} is not {kind} of at least {minimum:g}")
    return value


def _text(value: object, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key}: {value!r} is not a non-empty string")
    return value.strip()


def check_gateway(value: object, key: str) -> str:
    url = _text(value, key)
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{key}: {url!r} is not an http(s) URL")
    if parts.query or parts.fragment:
        raise ConfigError(f"{key}: {url!r} must be the sendsms URL without a query (the pager adds it)")
    return url


def check_numbers(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError("numbers: must be a non-empty list of on-call numbers")
    numbers: list[str] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(value):
        # An unquoted number is an int to YAML; E.164 never starts with 0, so nothing is lost.
        number = str(item).strip() if isinstance(item, (str, int)) and not isinstance(item, bool) else None
        if number is None or not E164_RE.fullmatch(number):
            raise ConfigError(
                f"numbers[{index}]: {item!r} is not an E.164 number (an optional '+', then 7 to 15 digits, "
                "the first not 0)"
            )
        digits = number.lstrip("+")
        if digits in seen:
            raise ConfigError(f"numbers[{index}]: {item!r} is listed twice (also numbers[{seen[digits]}])")
        seen[digits] = index
        numbers.append(number)
    return tuple(numbers)


def read_password(path: str) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"password_file: {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"password_file: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"password_file: {path} is not UTF-8 text") from None
    password = text.rstrip("\r\n")
    if not password:
        raise ConfigError(f"password_file: {path} is empty")
    return password


def parse_config(document: object) -> Config:
    if not isinstance(document, dict):
        raise ConfigError("the configuration is not a YAML mapping")
    unknown = sorted(set(document) - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS), key=str)
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r} (known: {', '.join([*REQUIRED_KEYS, *OPTIONAL_KEYS])})")
    missing = [key for key in REQUIRED_KEYS if key not in document]
    if missing:
        raise ConfigError(f"{missing[0]}: missing")
    settings = {**OPTIONAL_KEYS, **document}
    gateways = settings["gateways"]
    if not isinstance(gateways, list) or not gateways:
        raise ConfigError("gateways: must be a non-empty list of sendsms URLs")
    if not isinstance(settings["from"], str):
        raise ConfigError(f"from: {settings['from']!r} is not a string (quote the short code: YAML reads 01234 as 668)")
    severities = settings["severities"]
    if not isinstance(severities, list) or not severities:
        raise ConfigError("severities: must be a non-empty list, e.g. [critical]")
    if not isinstance(settings["send_resolved"], bool):
        raise ConfigError(f"send_resolved: {settings['send_resolved']!r} is not true or false")
    return Config(
        gateways=tuple(check_gateway(url, f"gateways[{index}]") for index, url in enumerate(gateways)),
        username=_text(settings["username"], "username"),
        password=read_password(_text(settings["password_file"], "password_file")),
        sender=_text(settings["from"], "from"),
        numbers=check_numbers(settings["numbers"]),
        severities=frozenset(_text(item, f"severities[{index}]") for index, item in enumerate(severities)),
        send_resolved=settings["send_resolved"],
        dedup_seconds=_number(settings["dedup_seconds"], "dedup_seconds", 0),
        rate_limit=int(_number(settings["rate_limit"], "rate_limit", 1, integer=True)),
        timeout=_number(settings["timeout"], "timeout", 0.001),
    )


def load_config(path: str) -> Config:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    try:
        return parse_config(document)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


# --- the text ------------------------------------------------------------------------------------------


def ascii_only(text: str) -> str:
    """Accents off, '`' as "'", whitespace and control characters as one space, anything else '?'."""
    decomposed = unicodedata.normalize("NFKD", text)
    characters = []
    for character in decomposed:
        if unicodedata.combining(character):
            continue
        if character == "`":
            character = "'"
        elif character.isspace() or unicodedata.category(character).startswith("C"):
            character = " "
        elif not character.isascii():
            character = "?"
        characters.append(character)
    return " ".join("".join(characters).split())


def septets(text: str) -> int:
    return sum(2 if character in GSM_EXTENSION else 1 for character in text)


def fit(text: str, limit: int = SMS_SEPTETS) -> str:
    """The text, cut to end in "..." if it is longer than one SMS."""
    if septets(text) <= limit:
        return text
    kept, used = [], 0
    for character in text:
        cost = 2 if character in GSM_EXTENSION else 1
        if used + cost > limit - 3:
            break
        kept.append(character)
        used += cost
    return "".join(kept).rstrip() + "..."


def identity(labels: Mapping[str, str]) -> str:
    for name in IDENTITY_LABELS:
        value = str(labels.get(name) or "").strip()
        if value:
            # db1:9100 -> db1, [fd00::1]:9100 -> fd00::1
            return re.sub(r"^\[?(.*?)\]?:\d+$", r"\1", value) if name == "instance" else value
    return ""


def compose(status: str, alerts: list[dict]) -> str:
    """The SMS for a notification's alerts (already filtered), ASCII and at most one SMS long."""
    head = f"[FIRING:{len(alerts)}]" if status == "firing" else "[RESOLVED]"
    names: list[str] = []
    for alert in alerts:
        labels = alert.get("labels") or {}
        name = f"{labels.get('alertname', 'alert')} {identity(labels)}".strip()
        if name not in names:
            names.append(name)
    text = f"{head} {'; '.join(names)}"
    annotations = alerts[0].get("annotations") or {}
    summary = str(annotations.get("summary") or "").strip()
    if summary:
        text += f" - {summary}"
    return fit(ascii_only(text))


# --- sending ---------------------------------------------------------------------------------------------


def masked(number: str) -> str:
    """On-call numbers in logs: enough to tell them apart."""
    return "*" * max(len(number) - 4, 0) + number[-4:]


class Sender:
    """Sends one SMS through the first gateway that accepts it."""

    def __init__(self, config: Config, on_gateway_error: Callable[[str], None]) -> None:
        self._config = config
        self._on_gateway_error = on_gateway_error
        # No proxy: an http_proxy in the environment must not receive the password.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def send(self, number: str, text: str) -> bool:
        query = urllib.parse.urlencode(
            {
                "username": self._config.username,
                "password": self._config.password,
                "from": self._config.sender,
                "to": number,
                "text": text,
            },
            quote_via=urllib.parse.quote,
        )
        for gateway in self._config.gateways:
            outcome, detail = self._request(f"{gateway}?{query}")
            if outcome == "accepted":
                LOG.info("SMS to %s accepted by %s", masked(number), gateway)
                return True
            self._on_gateway_error(gateway)
            LOG.warning("SMS to %s: %s: %s", masked(number), gateway, self._scrub(detail))
            if outcome == "final":
                return False
        return False

    def _request(self, url: str) -> tuple[str, str]:
        """("accepted" | "next" | "final", what happened)."""
        try:
            with self._opener.open(url, timeout=self._config.timeout) as response:
                body = response.read(1000).decode("utf-8", errors="replace").strip()
                if response.status == HTTPStatus.ACCEPTED:
                    return "accepted", body
                return "final", f"HTTP {response.status} {body[:200]}"
        except urllib.error.HTTPError as exc:
            body = exc.read(1000).decode("utf-8", errors="replace").strip()
            return ("next" if exc.code >= 500 else "final"), f"HTTP {exc.code} {body[:200]}"
        except urllib.error.URLError as exc:
            return "next", f"cannot connect: {exc.reason}"
        except OSError as exc:  # a timeout while reading, a reset
            return "next", f"no answer: {exc or type(exc).__name__}"

    def _scrub(self, text: str) -> str:
        password = self._config.password
        spellings = {password, urllib.parse.quote(password, safe=""), urllib.parse.quote_plus(password)}
        for spelling in sorted(spellings, key=len, reverse=True):
            text = text.replace(spelling, "***")
        return text


# --- the pager ---------------------------------------------------------------------------------------------


class Counters(Collector):
    """The pager's counters, served at /metrics."""

    def __init__(self, gateways: tuple[str, ...]) -> None:
        self._lock = threading.Lock()
        self.notifications = dict.fromkeys(("firing", "resolved"), 0)
        self.sent = 0
        self.failed = 0
        self.suppressed = dict.fromkeys(SUPPRESSION_REASONS, 0)
        self.gateway_errors = dict.fromkeys(gateways, 0)

    def add(self, counter: str, key: str | None = None, amount: int = 1) -> None:
        with self._lock:
            if key is None:
                setattr(self, counter, getattr(self, counter) + amount)
            else:
                table = getattr(self, counter)
                table[key] = table.get(key, 0) + amount

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            notifications = CounterMetricFamily(
                "sms_pager_notifications", "Alertmanager notifications received, by status.", labels=("status",)
            )
            for status, count in self.notifications.items():
                notifications.add_metric([status], count)
            suppressed = CounterMetricFamily(
                "sms_pager_suppressed",
                "SMS not sent (one per on-call number): a duplicate within dedup_seconds, over the rate limit, "
                "or no alert of a paged severity.",
                labels=("reason",),
            )
            for reason, count in self.suppressed.items():
                suppressed.add_metric([reason], count)
            errors = CounterMetricFamily(
                "sms_pager_gateway_errors",
                "sendsms requests a gateway did not accept (connection error, timeout, or an answer other than 202).",
                labels=("gateway",),
            )
            for gateway, count in self.gateway_errors.items():
                errors.add_metric([gateway], count)
            yield notifications
            yield CounterMetricFamily("sms_pager_sms_sent", "SMS accepted by a gateway.", value=self.sent)
            yield CounterMetricFamily("sms_pager_sms_failed", "SMS that no gateway accepted.", value=self.failed)
            yield suppressed
            yield errors


class BadPayload(ValueError):
    """Not an Alertmanager webhook payload."""


class Pager:
    def __init__(self, config: Config, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.counters = Counters(config.gateways)
        self.sender = Sender(config, lambda gateway: self.counters.add("gateway_errors", gateway))
        self._clock = clock
        self._lock = threading.Lock()
        # (number, text, when the alerts started) -> when it was sent: Alertmanager's repeats of one firing
        # are duplicates; the same alert firing again after it resolved starts anew, and pages again.
        self._sent_at: dict[tuple[str, str, tuple[str, ...]], float] = {}
        self._recent: dict[str, collections.deque[float]] = {number: collections.deque() for number in config.numbers}

    def notify(self, payload: object) -> dict:
        """Handle one notification; the answer for Alertmanager says what became of it."""
        status, alerts = self._validate(payload)
        self.counters.add("notifications", status)
        result = {"status": status, "sent": 0, "failed": 0, "suppressed": {}}
        if status == "resolved" and not self.config.send_resolved:
            return result
        of_status = [alert for alert in alerts if alert.get("status", status) == status]
        paged = [alert for alert in of_status if (alert.get("labels") or {}).get("severity") in self.config.severities]
        if not paged:
            if of_status:
                self._suppress(result, "severity", len(self.config.numbers))
            return result
        text = compose(status, paged)
        firing = tuple(sorted(str(alert.get("startsAt", "")) for alert in paged))
        for number in self.config.numbers:
            reason, booked = self._reserve(number, text, firing)
            if reason:
                self._suppress(result, reason)
                LOG.info("SMS to %s not sent (%s): %s", masked(number), reason, text)
                continue
            if self.sender.send(number, text):
                self.counters.add("sent")
                result["sent"] += 1
            else:
                self._release(number, text, firing, booked)
                self.counters.add("failed")
                result["failed"] += 1
                LOG.error("SMS to %s failed on every gateway: %s", masked(number), text)
        return result

    @staticmethod
    def _validate(payload: object) -> tuple[str, list[dict]]:
        if not isinstance(payload, dict):
            raise BadPayload("the payload is not a JSON object")
        status = payload.get("status")
        if status not in ("firing", "resolved"):
            raise BadPayload(f"status {status!r} is neither firing nor resolved")
        alerts = payload.get("alerts")
        if not isinstance(alerts, list) or not all(isinstance(alert, dict) for alert in alerts):
            raise BadPayload("alerts is not a list of objects")
        if str(payload.get("version", "4")) != "4":
            LOG.warning("webhook payload version %r, expected 4", payload.get("version"))
        return status, alerts

    def _suppress(self, result: dict, reason: str, count: int = 1) -> None:
        self.counters.add("suppressed", reason, count)
        result["suppressed"][reason] = result["suppressed"].get(reason, 0) + count

    def _reserve(self, number: str, text: str, firing: tuple[str, ...]) -> tuple[str | None, float]:
        """Book an SMS before sending it, so that two requests at once cannot both send it: the reason it must
        not be sent (or None) and the booking."""
        now = self._clock()
        with self._lock:
            for key in [key for key, when in self._sent_at.items() if now - when >= self.config.dedup_seconds]:
                del self._sent_at[key]
            if (number, text, firing) in self._sent_at:
                return "duplicate", now
            recent = self._recent[number]
            while recent and now - recent[0] >= RATE_WINDOW:
                recent.popleft()
            if len(recent) >= self.config.rate_limit:
                return "rate_limit", now
            recent.append(now)
            if self.config.dedup_seconds > 0:
                self._sent_at[(number, text, firing)] = now
        return None, now

    def _release(self, number: str, text: str, firing: tuple[str, ...], booked: float) -> None:
        """Undo a booking whose SMS was not sent: it may be tried again and does not count against the limit."""
        with self._lock:
            if self._sent_at.get((number, text, firing)) == booked:
                del self._sent_at[(number, text, firing)]
            if booked in self._recent[number]:
                self._recent[number].remove(booked)


class PagerHandler(BaseHTTPRequestHandler):
    server: PagerServer
    timeout = 30

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] != "/alerts":
            self._reply(HTTPStatus.NOT_FOUND, {"error": "POST Alertmanager's webhook to /alerts"})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 < length <= MAX_BODY_BYTES:
            self._reply(HTTPStatus.BAD_REQUEST, {"error": f"need a JSON body of at most {MAX_BODY_BYTES} bytes"})
            self.close_connection = True
            return
        try:
            payload = json.loads(self.rfile.read(length))
            result = self.server.pager.notify(payload)
        except (ValueError, BadPayload) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            LOG.warning("refused a notification: %s", exc)
            self._reply(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            return
        self._reply(HTTPStatus.OK, result)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            body = generate_latest(self.server.registry)
            self._send(HTTPStatus.OK, body, CONTENT_TYPE_LATEST)
        elif path == "/health":
            self._send(HTTPStatus.OK, b"ok\n", "text/plain; charset=utf-8")
        else:
            self._reply(HTTPStatus.NOT_FOUND, {"error": "GET /metrics or /health; POST /alerts"})

    def _reply(self, status: HTTPStatus, document: dict) -> None:
        self._send(status, json.dumps(document).encode(), "application/json")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # what matters is logged by the pager itself
        pass


class PagerServer(ThreadingHTTPServer):
    """One thread per request: a slow gateway holds up only the notification it is sending."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], pager: Pager) -> None:
        self.pager = pager
        self.registry = CollectorRegistry()
        self.registry.register(pager.counters)
        super().__init__(address, PagerHandler)


# --- command line --------------------------------------------------------------------------------------


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--listen {value!r} is not HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sms_pager", description="Pages on-call staff by SMS for Alertmanager.")
    parser.add_argument("--config", default="/etc/govops/sms-pager.yml", help="configuration file (%(default)s)")
    parser.add_argument("--listen", default="0.0.0.0:9095", help="HOST:PORT to listen on (%(default)s)")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        address = parse_listen(args.listen)
        config = load_config(args.config)
    except ConfigError as exc:
        parser.error(str(exc))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        server = PagerServer(address, Pager(config))
    except OSError as exc:
        LOG.error("cannot listen on %s: %s", args.listen, exc.strerror or exc)
        return 1
    threading.Thread(target=server.serve_forever, daemon=True).start()
    LOG.info(
        "listening on %s; paging %d numbers for %s through %s",
        args.listen,
        len(config.numbers),
        ", ".join(sorted(config.severities)),
        ", ".join(config.gateways),
    )
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
