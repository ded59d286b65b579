#!/usr/bin/env python3
"""Prometheus exporter for Kannel bearerbox's status page.

Each scrape reads ``/status.xml?password=...`` from bearerbox's admin port and turns it into metrics;
nothing polls in the background, so a scrape shows Kannel as it is at that moment.

    kannel_exporter.py --listen 0.0.0.0:9390 --status-url http://127.0.0.1:13000/status.xml \\
        --password-file /etc/kannel/status-password --timeout 5

The password comes from --password-file or $KANNEL_STATUS_PASSWORD, never from the command line, and is
scrubbed from every log line and error message (Kannel wants it in the URL).

What Kannel 1.4.5 (Debian 12) serves, checked against a running bearerbox:
- a wrong or missing password still answers HTTP 200, with ``<gateway>Denied</gateway>``;
- the gateway ``<status>`` is ``<state>, uptime 0d 0h 0m 4s``, state one of running, suspended, isolated,
  filled or "going down";
- an smsc ``<status>`` is ``online 55s``, ``disconnected``, ``connecting``, ``re-connecting``, ``dead`` or
  ``unknown``; a box ``<status>`` is ``on-line 0d 0h 0m 54s`` (boxes are listed only while connected);
- an smsbox without smsbox-id has an empty ``<id>``; a wapbox has neither ``<id>`` nor ``<queue>``.
Two connections can share every label (two smsc groups for one link, two smsboxes without an id on one
host); the second one gets " #2" appended to its smsc ``name`` or box ``id`` so that series stay distinct.

With --access-log PATH it also counts the lines of bearerbox's access log, which Kannel writes with
``access-log-clean = true`` and ``access-log-format = "%l [SMSC:%i] [dlr:%d]"``, so that it holds no phone
number and no text, only lines such as:

    Sent SMS [SMSC:operator] [dlr:31]          an MT accepted by the SMSC (%d: the dlr-mask asked for)
    FAILED Send SMS [SMSC:operator] [dlr:31]   an MT the SMSC refused for good
    Receive DLR [SMSC:operator] [dlr:1]        a delivery report (%d: its type, 1 delivered ... 16 rejected)
    Receive SMS [SMSC:operator] [dlr:-1]       an MO message (a citizen's reply)
    2026-11-29 23:59:03 Log begins             (and "Log ends") when Kannel opens or closes the log

Each scrape reads what was appended since the last one. History is not counted: at start the exporter
begins at the end of the file. When the file is replaced (another inode: logrotate's create) the rest of the
old file is read and the new one is read from its start; when it shrinks (copytruncate) it is read again
from its start. A missing or unreadable file is not an error: the counters keep their values and
kannel_access_log_readable is 0. A line that is not yet complete waits for its end. Other lines Kannel may
write there (DISCARDED SMS, EXPIRED SMS, REJECTED ..., DROPPED ..., Sent DLR, a line with a date prefix
when access-log-clean is off) count in kannel_access_log_unparsed_lines_total.
"""

from __future__ import annotations

import argparse
import http.client
import logging
import os
import re
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

LOG = logging.getLogger("kannel_exporter")

PASSWORD_ENV = "KANNEL_STATUS_PASSWORD"
# A status page with hundreds of links is a few hundred KiB; anything far bigger is not Kannel.
MAX_BODY_BYTES = 4 * 1024 * 1024
ERROR_REASONS = ("connection", "http", "denied", "parse", "other")

GATEWAY_STATUS_RE = re.compile(r"(?P<state>[^,]+), uptime (?P<d>\d+)d (?P<h>\d+)h (?P<m>\d+)m (?P<s>\d+)s")
BOX_ONLINE_RE = re.compile(r"on-?line (?P<d>\d+)d (?P<h>\d+)h (?P<m>\d+)m (?P<s>\d+)s")
SMSC_ONLINE_RE = re.compile(r"online (?P<s>\d+)s")
VERSION_RE = re.compile(r"version `(?P<version>[^']+)'")
PASSWORD_PARAM_RE = re.compile(r"(?i)(password=)[^&\s'\"]*")

SMSC_LABELS = ("smsc_id", "name")
BOX_LABELS = ("type", "id", "ip")

# (metric, help, counter?, element path under <smsc>); a path missing from the page is skipped.
SMSC_VALUES = (
    ("kannel_smsc_failed_total", "Messages this SMSC link failed to send.", True, "failed"),
    ("kannel_smsc_queued", "Messages queued for this SMSC link.", False, "queued"),
    ("kannel_smsc_sms_received_total", "SMS received from this SMSC link.", True, "sms/received"),
    ("kannel_smsc_sms_sent_total", "SMS sent through this SMSC link.", True, "sms/sent"),
    ("kannel_smsc_dlr_received_total", "Delivery reports received from this SMSC link.", True, "dlr/received"),
    ("kannel_smsc_dlr_sent_total", "Delivery reports sent through this SMSC link.", True, "dlr/sent"),
)

# (metric, help, counter?, element path under <gateway>); these are always on the page.
GATEWAY_VALUES = (
    ("kannel_sms_received_total", "SMS received by bearerbox from SMSCs.", True, "sms/received/total"),
    ("kannel_sms_received_queued", "Received SMS waiting for an smsbox.", False, "sms/received/queued"),
    ("kannel_sms_sent_total", "SMS sent by bearerbox to SMSCs.", True, "sms/sent/total"),
    ("kannel_sms_sent_queued", "SMS waiting to be sent to an SMSC.", False, "sms/sent/queued"),
    ("kannel_sms_store_size", "Messages in bearerbox's store (store-type).", False, "sms/storesize"),
    ("kannel_dlr_received_total", "Delivery reports received from SMSCs.", True, "dlr/received/total"),
    ("kannel_dlr_sent_total", "Delivery reports sent.", True, "dlr/sent/total"),
    ("kannel_dlr_queued", "Delivery reports waiting in DLR storage.", False, "dlr/queued"),
)


class ScrapeError(Exception):
    """A failed scrape; ``reason`` is one of ERROR_REASONS."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class ConfigError(Exception):
    """A bad command line or password source, reported before anything starts."""


def scrub(text: str, password: str) -> str:
    """Remove the password from text, in every spelling a URL or an error message may carry."""
    spellings = {password, urllib.parse.quote(password, safe=""), urllib.parse.quote_plus(password)}
    for spelling in sorted(filter(None, spellings), key=len, reverse=True):
        text = text.replace(spelling, "***")
    return PASSWORD_PARAM_RE.sub(r"\1***", text)


def read_password(password_file: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """The status password from the file if given, else from the environment."""
    if not password_file:
        password = environ.get(PASSWORD_ENV, "")
        if not password:
            raise ConfigError(f"no status password: give --password-file or set {PASSWORD_ENV}")
        return password
    try:
        text = Path(password_file).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"password file {password_file} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read password file {password_file}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"password file {password_file} is not UTF-8 text") from None
    # Editors add a final newline; Kannel's status-password never ends with one.
    password = text.rstrip("\r\n")
    if not password:
        raise ConfigError(f"password file {password_file} is empty")
    return password


def check_status_url(status_url: str) -> None:
    parts = urllib.parse.urlsplit(status_url)
    # Checked first, so that no message below can echo a password given in the URL.
    if "password" in urllib.parse.parse_qs(parts.query, keep_blank_values=True):
        raise ConfigError(f"--status-url must not carry the password; use --password-file or {PASSWORD_ENV}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--status-url {status_url!r} is not an http(s) URL")


def with_password(status_url: str, password: str) -> str:
    parts = urllib.parse.urlsplit(status_url)
    query = "&".join(filter(None, [parts.query, "password=" + urllib.parse.quote(password, safe="")]))
    return urllib.parse.urlunsplit(parts._replace(query=query))


class StatusFetcher:
    """Reads the status page; errors it raises never contain the password."""

    def __init__(self, status_url: str, password: str, timeout: float) -> None:
        self._url = with_password(status_url, password)
        self._password = password
        self._timeout = timeout
        # No proxy handler: an http_proxy in the environment must not receive the password.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def __call__(self) -> bytes:
        try:
            with self._opener.open(self._url, timeout=self._timeout) as response:
                body = response.read(MAX_BODY_BYTES + 1)
        except urllib.error.HTTPError as exc:
            raise self._error("http", f"Kannel answered HTTP {exc.code} {exc.reason}") from None
        except urllib.error.URLError as exc:
            raise self._error("connection", f"cannot reach Kannel: {exc.reason}") from None
        except (OSError, http.client.HTTPException) as exc:
            raise self._error("connection", f"cannot read from Kannel: {exc or type(exc).__name__}") from None
        if len(body) > MAX_BODY_BYTES:
            raise self._error("http", f"Kannel's answer is larger than {MAX_BODY_BYTES} bytes")
        return body

    def _error(self, reason: str, message: str) -> ScrapeError:
        return ScrapeError(reason, scrub(message, self._password))


def parse_xml(body: bytes) -> ET.Element:
    # Kannel never sends a DTD; refusing one keeps entity expansion out of the picture.
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise ScrapeError("parse", "the status page has a DOCTYPE, which Kannel never sends")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise ScrapeError("parse", f"malformed XML on the status page: {exc}") from None
    if root.tag != "gateway":
        raise ScrapeError("parse", f"not a Kannel status page: root element is <{root.tag}>")
    if root.find("status") is None:
        text = " ".join((root.text or "").split())
        if text == "Denied":
            raise ScrapeError("denied", "Kannel denied the status password (compare it with status-password)")
        raise ScrapeError("parse", f"not a Kannel status page (check the URL ends in status.xml): {text[:100]!r}")
    return root


def text_of(parent: ET.Element, path: str) -> str:
    node = parent.find(path)
    if node is None:
        raise ScrapeError("parse", f"the status page has no <{path}> under <{parent.tag}>")
    return (node.text or "").strip()


def int_of(parent: ET.Element, path: str) -> int:
    text = text_of(parent, path)
    try:
        return int(text)
    except ValueError:
        raise ScrapeError("parse", f"<{path}> under <{parent.tag}> is not a number: {text[:40]!r}") from None


def seconds(match: re.Match[str]) -> int:
    parts = {unit: int(match.groupdict().get(unit) or 0) for unit in "dhms"}
    return ((parts["d"] * 24 + parts["h"]) * 60 + parts["m"]) * 60 + parts["s"]


def family(name: str, documentation: str, is_counter: bool, labels: tuple[str, ...] = ()) -> Metric:
    # CounterMetricFamily needs the name without _total; it adds the suffix to the sample itself.
    if is_counter:
        return CounterMetricFamily(name.removesuffix("_total"), documentation, labels=labels)
    return GaugeMetricFamily(name, documentation, labels=labels)


def gateway_metrics(root: ET.Element) -> list[Metric]:
    status = text_of(root, "status")
    match = GATEWAY_STATUS_RE.fullmatch(status)
    if not match:
        raise ScrapeError("parse", f"unexpected gateway status {status[:60]!r}")
    version = VERSION_RE.search(text_of(root, "version"))
    build = InfoMetricFamily("kannel_build", "Kannel bearerbox version.", labels=("version",))
    build.add_metric([version["version"] if version else "unknown"], {})
    state = GaugeMetricFamily("kannel_gateway_status", "Bearerbox state, as a label; always 1.", labels=("state",))
    state.add_metric([match["state"].strip()], 1)
    uptime = GaugeMetricFamily("kannel_uptime_seconds", "Time since bearerbox started.", value=seconds(match))
    metrics = [build, state, uptime]
    for name, documentation, is_counter, path in GATEWAY_VALUES:
        metric = family(name, documentation, is_counter)
        metric.add_metric([], int_of(root, path))
        metrics.append(metric)
    return metrics


def unique_labels(label_sets: list[list[str]], position: int) -> list[list[str]]:
    """Append " #N" to the label at position in repeated label sets so no two series collide."""
    seen: dict[tuple[str, ...], int] = {}
    result = []
    for labels in label_sets:
        count = seen[tuple(labels)] = seen.get(tuple(labels), 0) + 1
        if count > 1:
            labels = [*labels]
            labels[position] = f"{labels[position]} #{count}".lstrip()
        result.append(labels)
    return result


def smsc_metrics(root: ET.Element) -> list[Metric]:
    smscs = root.findall("smscs/smsc")
    label_sets = unique_labels([[text_of(smsc, "id"), text_of(smsc, "name")] for smsc in smscs], 1)
    online = family("kannel_smsc_online", "1 when the SMSC link is online.", False, SMSC_LABELS)
    status = family("kannel_smsc_status", "SMSC link state, as a label; always 1.", False, (*SMSC_LABELS, "state"))
    online_for = family(
        "kannel_smsc_online_seconds", "Time the SMSC link has been online; 0 when not.", False, SMSC_LABELS
    )
    values = [(family(name, doc, is_counter, SMSC_LABELS), path) for name, doc, is_counter, path in SMSC_VALUES]
    for smsc, labels in zip(smscs, label_sets, strict=True):
        raw = text_of(smsc, "status")
        # "online 55s" -> online; the other states are single words such as re-connecting.
        state = raw.split()[0] if raw else "unknown"
        match = SMSC_ONLINE_RE.fullmatch(raw)
        online.add_metric(labels, 1 if state == "online" else 0)
        status.add_metric([*labels, state], 1)
        online_for.add_metric(labels, seconds(match) if match else 0)
        for metric, path in values:
            if smsc.find(path) is not None:
                metric.add_metric(labels, int_of(smsc, path))
    return [online, status, online_for, *(metric for metric, _ in values)]


def box_metrics(root: ET.Element) -> list[Metric]:
    boxes = root.findall("boxes/box")
    # A wapbox has no <id>; an smsbox without smsbox-id has an empty one.
    label_sets = [[text_of(box, "type"), (box.findtext("id") or "").strip(), text_of(box, "IP")] for box in boxes]
    label_sets = unique_labels(label_sets, 1)
    connected = family("kannel_box_connected", "1 when the box is connected to bearerbox.", False, BOX_LABELS)
    online_for = family("kannel_box_online_seconds", "Time the box has been connected.", False, BOX_LABELS)
    queued = family("kannel_box_queued", "Messages queued for this box.", False, BOX_LABELS)
    for box, labels in zip(boxes, label_sets, strict=True):
        match = BOX_ONLINE_RE.fullmatch(text_of(box, "status"))
        connected.add_metric(labels, 1 if match else 0)
        online_for.add_metric(labels, seconds(match) if match else 0)
        if box.find("queue") is not None:
            queued.add_metric(labels, int_of(box, "queue"))
    return [connected, online_for, queued]


def parse_status(body: bytes) -> list[Metric]:
    """All Kannel metrics from one status page; raises ScrapeError and yields nothing partial."""
    root = parse_xml(body)
    return gateway_metrics(root) + smsc_metrics(root) + box_metrics(root)


class KannelCollector(Collector):
    """Scrapes Kannel once per collect(); a failure is kannel_up 0 and a counted error, never an exception."""

    def __init__(self, fetch: Callable[[], bytes], secret: str = "", source: str = "Kannel") -> None:
        self._fetch = fetch
        self._secret = secret
        self._source = scrub(source, secret)
        self._lock = threading.Lock()
        self._errors = dict.fromkeys(ERROR_REASONS, 0)
        self._last_error: str | None = None

    def describe(self) -> list[Metric]:
        # Without this the registry would call collect(), i.e. scrape Kannel, when the collector is registered.
        return []

    def collect(self) -> Iterator[Metric]:
        start = time.perf_counter()
        metrics: list[Metric] = []
        up = 0
        try:
            metrics = parse_status(self._fetch())
        except ScrapeError as exc:
            self._failed(exc.reason, str(exc))
        except Exception as exc:  # a scrape must answer; no traceback, as it could quote the URL
            self._failed("other", f"{type(exc).__name__}: {exc}")
        else:
            up = 1
            self._succeeded()
        duration = time.perf_counter() - start
        yield from metrics
        yield GaugeMetricFamily("kannel_up", "1 when Kannel's status page was read and parsed.", value=up)
        yield GaugeMetricFamily(
            "kannel_exporter_scrape_duration_seconds", "Time to read Kannel's status.", value=duration
        )
        yield self._errors_metric()

    @property
    def last_error(self) -> str | None:
        return self._last_error

    def _failed(self, reason: str, message: str) -> None:
        message = scrub(message, self._secret)
        with self._lock:
            self._errors[reason] += 1
            repeated, self._last_error = message == self._last_error, message
        # Log a new problem once at warning level; the counter shows it persists.
        LOG.log(logging.DEBUG if repeated else logging.WARNING, "scrape of %s failed: %s", self._source, message)

    def _succeeded(self) -> None:
        with self._lock:
            recovered, self._last_error = self._last_error is not None, None
        if recovered:
            LOG.info("scrape of %s works again", self._source)

    def _errors_metric(self) -> Metric:
        metric = CounterMetricFamily(
            "kannel_exporter_scrape_errors", "Failed scrapes of Kannel's status page.", labels=("reason",)
        )
        with self._lock:
            for reason, count in self._errors.items():
                metric.add_metric([reason], count)
        return metric


# --- bearerbox's access log -------------------------------------------------------------------------------

ACCESS_LINE_RE = re.compile(r"(?P<event>[A-Za-z][A-Za-z -]*?) \[SMSC:(?P<smsc>[^\]]*)\] \[dlr:(?P<dlr>-?\d+)\]")
LOG_MARK_RE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d Log (?:begins|ends)")
DLR_TYPES = {1: "delivered", 2: "undelivered", 4: "queued_at_smsc", 8: "accepted_by_smsc", 16: "rejected_by_smsc"}
# Per scrape: what a busy gateway writes in hours; the rest is read on the next scrape.
MAX_READ_BYTES = 16 * 1024 * 1024
# A "line" this long without a newline is not Kannel's: it is counted as unparsed and dropped.
MAX_LINE_BYTES = 64 * 1024


class AccessLogCollector(Collector):
    """Counts the lines appended to bearerbox's access log since the last collect()."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._file = None
        self._identity: tuple[int, int] | None = None
        self._pending = b""
        self._skip_first_line = False
        self._readable = False
        self._problem: str | None = None
        self.sent: dict[tuple[str, str], int] = {}
        self.failed: dict[str, int] = {}
        self.dlr: dict[tuple[str, str], int] = {}
        self.mo: dict[str, int] = {}
        self.unparsed = 0
        # The file as it was at start: its history is not counted, even if it can only be opened later.
        self._at_start = self._stat_identity()
        with self._lock:
            self._open()

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            try:
                self._read()
            except OSError as exc:  # an I/O error on a file that is open: try again on the next scrape
                self._readable = False
                self._report(f"cannot read the access log {self._path}: {exc.strerror or exc}")
            metrics = list(self._metrics())
        yield from metrics

    # Reading ---------------------------------------------------------------------------------------------

    def _stat_identity(self) -> tuple[int, int] | None:
        try:
            stat = os.stat(self._path)
        except OSError:
            return None
        return stat.st_dev, stat.st_ino

    def _open(self) -> None:
        try:
            handle = open(self._path, "rb")  # noqa: SIM115 - kept open between scrapes, closed on rotation
        except FileNotFoundError:
            self._readable = False
            return
        except OSError as exc:
            self._readable = False
            self._report(f"cannot read the access log {self._path}: {exc.strerror or exc}")
            return
        stat = os.fstat(handle.fileno())
        self._file, self._identity, self._pending = handle, (stat.st_dev, stat.st_ino), b""
        self._skip_first_line = False
        if self._identity == self._at_start and stat.st_size:
            # History is not counted; a line being written at this moment is not counted either.
            handle.seek(stat.st_size - 1)
            self._skip_first_line = handle.read(1) != b"\n"
        self._at_start = None
        self._readable = True

    def _read(self) -> None:
        try:
            stat = os.stat(self._path)
        except OSError:
            stat = None
        if self._file is not None:
            same = stat is not None and (stat.st_dev, stat.st_ino) == self._identity
            if same and stat.st_size < self._file.tell():
                LOG.info("the access log %s was truncated: reading it from the start", self._path)
                self._file.seek(0)
                self._pending, self._skip_first_line = b"", False
            elif not same:
                # Rotated or removed: what was written to it before that still counts.
                self._drain()
                if self._pending:
                    self._line(self._pending)
                self._file.close()
                self._file, self._identity, self._pending = None, None, b""
        if self._file is None and stat is not None:
            self._open()
        if self._file is not None:
            self._drain()
        if stat is None:
            self._readable = False
        if self._readable:
            self._report(None)

    def _drain(self) -> None:
        budget = MAX_READ_BYTES
        while budget > 0:
            chunk = self._file.read(min(budget, 1024 * 1024))
            if not chunk:
                return
            budget -= len(chunk)
            *lines, self._pending = (self._pending + chunk).split(b"\n")
            for line in lines:
                if self._skip_first_line:
                    self._skip_first_line = False
                    continue
                self._line(line)
            if len(self._pending) > MAX_LINE_BYTES:
                self.unparsed += 1
                self._pending = b""
                self._skip_first_line = True  # the rest of that line, up to its newline

    def _line(self, raw: bytes) -> None:
        line = raw.decode("utf-8", errors="replace").strip()
        if not line or LOG_MARK_RE.fullmatch(line):
            return
        match = ACCESS_LINE_RE.fullmatch(line)
        event = match["event"] if match else None
        if event in ("Sent SMS", "FAILED Send SMS", "Receive DLR", "Receive SMS"):
            self._seen(match["smsc"])
        if event == "Sent SMS":
            dlr = int(match["dlr"])
            # -1 (no mask, or a later part of a long message) and 0 ask for nothing; bit 1 is "delivered".
            requested = "true" if dlr > 0 and dlr & 1 else "false"
            key = (match["smsc"], requested)
            self.sent[key] = self.sent.get(key, 0) + 1
        elif event == "FAILED Send SMS":
            self.failed[match["smsc"]] = self.failed.get(match["smsc"], 0) + 1
        elif event == "Receive DLR":
            key = (match["smsc"], DLR_TYPES.get(int(match["dlr"]), "other"))
            self.dlr[key] = self.dlr.get(key, 0) + 1
        elif event == "Receive SMS":
            self.mo[match["smsc"]] = self.mo.get(match["smsc"], 0) + 1
        else:
            self.unparsed += 1
            LOG.debug("unparsed access log line: %r", line[:200])

    def _seen(self, smsc: str) -> None:
        """Series of a link start at 0 when it first shows up, so that rate() sees their first increase."""
        if smsc in self.failed:
            return
        self.failed[smsc] = self.mo[smsc] = 0
        for requested in ("true", "false"):
            self.sent[(smsc, requested)] = 0
        for dlr_type in DLR_TYPES.values():
            self.dlr[(smsc, dlr_type)] = 0

    def _report(self, problem: str | None) -> None:
        if problem == self._problem:
            return
        if problem:
            LOG.warning("%s", problem)
        elif self._problem:
            LOG.info("the access log %s is readable again", self._path)
        self._problem = problem

    # Metrics -----------------------------------------------------------------------------------------------

    def _metrics(self) -> Iterator[Metric]:
        sent = CounterMetricFamily(
            "kannel_access_log_sent",
            'MT messages the SMSC accepted ("Sent SMS" in the access log), by whether a delivery report was asked.',
            labels=("smsc_id", "dlr_requested"),
        )
        for labels, count in sorted(self.sent.items()):
            sent.add_metric(list(labels), count)
        failed = CounterMetricFamily(
            "kannel_access_log_failed", 'MT messages the SMSC refused ("FAILED Send SMS").', labels=("smsc_id",)
        )
        for smsc, count in sorted(self.failed.items()):
            failed.add_metric([smsc], count)
        dlr = CounterMetricFamily(
            "kannel_access_log_dlr", 'Delivery reports received ("Receive DLR"), by type.', labels=("smsc_id", "type")
        )
        for labels, count in sorted(self.dlr.items()):
            dlr.add_metric(list(labels), count)
        mo = CounterMetricFamily(
            "kannel_access_log_mo", 'MO messages received ("Receive SMS": citizens\' replies).', labels=("smsc_id",)
        )
        for smsc, count in sorted(self.mo.items()):
            mo.add_metric([smsc], count)
        yield from (sent, failed, dlr, mo)
        yield GaugeMetricFamily(
            "kannel_access_log_readable",
            "1 when the access log could be read on this scrape.",
            value=int(self._readable),
        )
        yield CounterMetricFamily(
            "kannel_access_log_unparsed_lines",
            "Access log lines that are none of the counted kinds.",
            value=self.unparsed,
        )


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
    if not number > 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive number of seconds")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kannel_exporter",
        description="Prometheus exporter for Kannel's status page.",
        # "--password secret" must fail, not be taken for --password-file and echoed in its error.
        allow_abbrev=False,
    )
    parser.add_argument("--listen", default="0.0.0.0:9390", help="HOST:PORT to serve /metrics on (%(default)s)")
    parser.add_argument(
        "--status-url",
        default="http://127.0.0.1:13000/status.xml",
        help="bearerbox's status page, without the password (%(default)s)",
    )
    parser.add_argument("--password-file", help=f"file holding Kannel's status-password (else ${PASSWORD_ENV})")
    parser.add_argument("--timeout", type=positive_float, default=5.0, help="seconds per scrape (%(default)s)")
    parser.add_argument(
        "--access-log", help='bearerbox\'s access log (access-log-clean, "%%l [SMSC:%%i] [dlr:%%d]") to count'
    )
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    return parser


def wait_for_signal() -> None:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    # A timed wait: the kernel may hand the signal to another thread, and Python runs the handler only when
    # the main thread runs Python code again; an endless wait could then last for ever.
    while not stop.wait(1.0):
        pass


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args) -> None:  # scrapes are not worth a log line each
        pass


def serve(host: str, port: int, registry: CollectorRegistry) -> WSGIServer:
    """Serve /metrics in a thread. Built from the WSGI app rather than start_http_server, whose
    return value changed between prometheus-client releases (Debian 12 ships 0.16)."""
    server = make_server(host, port, make_wsgi_app(registry), _ThreadingWSGIServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        host, port = parse_listen(args.listen)
        check_status_url(args.status_url)
        password = read_password(args.password_file)
    except ConfigError as exc:
        parser.error(str(exc))
    registry = CollectorRegistry()
    for standard in (ProcessCollector, PlatformCollector, GCCollector):
        standard(registry=registry)
    fetch = StatusFetcher(args.status_url, password, args.timeout)
    registry.register(KannelCollector(fetch, secret=password, source=args.status_url))
    if args.access_log:
        registry.register(AccessLogCollector(args.access_log))
    try:
        server = serve(host, port, registry)
    except OSError as exc:
        LOG.error("cannot listen on %s: %s", args.listen, exc.strerror or exc)
        return 1
    LOG.info("serving /metrics on %s for %s", args.listen, scrub(args.status_url, password))
    wait_for_signal()
    LOG.info("stopping")
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
