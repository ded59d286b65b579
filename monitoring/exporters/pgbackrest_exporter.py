#!/usr/bin/env python3
"""Prometheus exporter for pgBackRest, run on the backup repository host as the pgbackrest user.

A background thread runs ``pgbackrest --output=json info`` once at start and then every --interval seconds
(never more often) and keeps the result; a scrape only reads that result, so it is cheap and never waits for
pgBackRest. The backup jobs' systemd units are asked about on each scrape (``systemctl show``, one call per
unit, a few milliseconds each).

    pgbackrest_exporter.py --listen 0.0.0.0:9854 --interval 60 \\
        --job full=pgbackrest-backup-full.service --job diff=pgbackrest-backup-diff.service \\
        --job check=pgbackrest-check.service --job verify=pgbackrest-verify.service \\
        --max-age full=691200 --max-age diff=93600

When pgBackRest fails (an exit status other than 0, output that is not its JSON, or no answer within
--timeout), pgbackrest_info_up is 0 and no stanza or backup series are exported: stale numbers would hide the
failure. A hung pgbackrest is killed with its whole process group.

What pgBackRest 2.45 (Debian 12) prints, checked against a real repository: a list of stanzas, each with
``name``, ``status`` {code, message, lock}, ``repo`` [{key, cipher, status {code, message}}] and ``backup``
[{label, type (full, diff, incr), timestamp {start, stop}, info {size, delta, repository {size, delta}},
error, prior, reference, ...}], oldest first. Stanza status codes: 0 ok, 1 missing stanza path, 2 no valid
backups, 3 missing stanza data, 4 different across db, 5 database mismatch across repos, 6 requested backup
not found, 99 other.

Each --job NAME=UNIT gives pgbackrest_job_* series labelled ``task="NAME"`` (not ``job``, which Prometheus
keeps for the scrape job). ``systemctl show UNIT --timestamp=unix -p ...`` (systemd 252) prints
``ExecMainExitTimestamp=@1795968962``, or an empty value when the unit never ran since boot; a unit that does
not exist still answers, with ``LoadState=not-found``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

LOG = logging.getLogger("pgbackrest_exporter")

BACKUP_TYPES = ("full", "diff", "incr")
SYSTEMCTL_PROPERTIES = "Result,ExecMainStatus,ExecMainExitTimestamp,ActiveState,LoadState"
SYSTEMCTL_TIMEOUT = 5.0
# How long the first scrape after start waits for the first `pgbackrest info`; later scrapes never wait.
FIRST_RUN_WAIT = 5.0
JOB_NAME_RE = re.compile(r"[A-Za-z0-9_.-]+")


class ConfigError(Exception):
    """A bad command line, reported before anything starts."""


class InfoError(Exception):
    """`pgbackrest info` failed or printed something this exporter does not understand."""


# --- pgbackrest info ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backup:
    type: str
    start: int
    stop: int
    size: int
    repo_size: int
    repo_delta: int


@dataclass(frozen=True)
class Stanza:
    name: str
    status_code: int
    status_message: str
    repos: tuple[tuple[str, int], ...]
    backups: tuple[Backup, ...]


@dataclass(frozen=True)
class InfoResult:
    """One run of `pgbackrest info`: stanzas when it worked, else an error."""

    stanzas: tuple[Stanza, ...] = ()
    error: str | None = None
    duration: float = 0.0
    finished: float = field(default_factory=time.time)


def _get(document: object, *path: str | int, kind: type | tuple[type, ...] = object, where: str = "") -> object:
    value = document
    for key in path:
        try:
            value = value[key]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            raise InfoError(f"{where}: no {'.'.join(map(str, path))} in pgbackrest's output") from None
    # bool is an int in Python, but never a number in this output.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InfoError(f"{where}: {'.'.join(map(str, path))} is {value!r}, not {getattr(kind, '__name__', kind)}")
    return value


def parse_backup(document: object, where: str) -> Backup:
    backup_type = _get(document, "type", kind=str, where=where)
    return Backup(
        type=backup_type,
        start=_get(document, "timestamp", "start", kind=int, where=where),
        stop=_get(document, "timestamp", "stop", kind=int, where=where),
        size=_get(document, "info", "size", kind=int, where=where),
        repo_size=_get(document, "info", "repository", "size", kind=int, where=where),
        repo_delta=_get(document, "info", "repository", "delta", kind=int, where=where),
    )


def parse_info(output: bytes) -> tuple[Stanza, ...]:
    """The stanzas in `pgbackrest --output=json info`; InfoError when it is not that."""
    try:
        document = json.loads(output)
    except ValueError as exc:
        raise InfoError(f"pgbackrest's output is not JSON: {exc}") from None
    if not isinstance(document, list):
        raise InfoError("pgbackrest's output is not a list of stanzas")
    stanzas = []
    for index, item in enumerate(document):
        name = _get(item, "name", kind=str, where=f"stanza {index}")
        where = f"stanza {name}"
        repos = tuple(
            (str(_get(repo, "key", kind=int, where=where)), _get(repo, "status", "code", kind=int, where=where))
            for repo in _get(item, "repo", kind=list, where=where)
        )
        backups = tuple(
            parse_backup(backup, f"{where}, backup {position}")
            for position, backup in enumerate(_get(item, "backup", kind=list, where=where))
        )
        stanzas.append(
            Stanza(
                name=name,
                status_code=_get(item, "status", "code", kind=int, where=where),
                status_message=_get(item, "status", "message", kind=str, where=where),
                repos=repos,
                backups=backups,
            )
        )
    return tuple(stanzas)


def kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def run(
    argv: list[str], timeout: float, started: Callable[[subprocess.Popen | None], None] = lambda _: None
) -> tuple[int, bytes, bytes]:
    """Run a command in its own process group; on timeout kill the group, so that no child it started
    keeps the pipes open, and raise subprocess.TimeoutExpired. `started` is told the process, then None."""
    process = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    started(process)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(process)
        try:
            process.communicate(timeout=5)
        except subprocess.TimeoutExpired:  # a grandchild left the group and holds a pipe: let it be
            process.kill()
            process.wait()
        raise
    finally:
        started(None)
    return process.returncode, stdout, stderr


def first_line(data: bytes) -> str:
    lines = data.decode("utf-8", errors="replace").strip().splitlines()
    return lines[0][:300] if lines else ""


class InfoRunner:
    """Runs `pgbackrest info` and turns the answer into an InfoResult; it never raises."""

    def __init__(self, pgbackrest: str, stanza: str | None, timeout: float) -> None:
        self.argv = [pgbackrest, "--output=json", *([f"--stanza={stanza}"] if stanza else []), "info"]
        self._timeout = timeout
        self._lock = threading.Lock()
        self._running: subprocess.Popen | None = None
        self._stopping = False

    def kill(self) -> None:
        """Kill the run in progress and any run started from now on: pgbackrest runs in a session of its own,
        so it would outlive the exporter."""
        with self._lock:
            self._stopping = True
            if self._running is not None:
                kill_group(self._running)

    def _started(self, process: subprocess.Popen | None) -> None:
        with self._lock:
            self._running = process
            if process is not None and self._stopping:
                kill_group(process)

    def __call__(self) -> InfoResult:
        start = time.monotonic()
        try:
            stanzas = self._stanzas()
        except InfoError as exc:
            return InfoResult(error=str(exc), duration=time.monotonic() - start)
        return InfoResult(stanzas=stanzas, duration=time.monotonic() - start)

    def _stanzas(self) -> tuple[Stanza, ...]:
        try:
            returncode, stdout, stderr = run(self.argv, self._timeout, self._started)
        except subprocess.TimeoutExpired:
            raise InfoError(f"pgbackrest info did not finish within {self._timeout:g} s and was killed") from None
        except OSError as exc:
            raise InfoError(f"cannot run {self.argv[0]}: {exc.strerror or exc}") from None
        if returncode != 0:
            detail = first_line(stderr) or first_line(stdout) or "no message"
            raise InfoError(f"pgbackrest info exited with status {returncode}: {detail}")
        return parse_info(stdout)


class InfoCache:
    """The newest InfoResult, refreshed by a background thread every `interval` seconds."""

    def __init__(self, runner: InfoRunner, interval: float) -> None:
        self._runner = runner
        self._interval = interval
        self._result: InfoResult | None = None
        self._first = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="pgbackrest-info", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, wait: float = 5.0) -> None:
        self._stop.set()
        self._runner.kill()
        if self._thread.is_alive():
            self._thread.join(wait)

    def refresh(self) -> None:
        result = self._runner()
        if self._stop.is_set():  # killed because we are stopping: nothing to report
            return
        previous, self._result = self._result, result
        self._first.set()
        if result.error and (previous is None or previous.error != result.error):
            LOG.warning("%s", result.error)
        elif result.error:
            LOG.debug("%s", result.error)
        elif previous is not None and previous.error:
            LOG.info("pgbackrest info works again")

    def result(self, wait: float = FIRST_RUN_WAIT) -> InfoResult | None:
        """The newest result; before the first run finished, wait for it at most `wait` seconds."""
        self._first.wait(wait)
        return self._result

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
            except Exception:  # the thread must survive anything, or the numbers would freeze
                LOG.exception("refreshing pgbackrest info failed")
            self._stop.wait(self._interval)


# --- systemd units of the backup jobs --------------------------------------------------------------------


@dataclass(frozen=True)
class JobState:
    exit_timestamp: int
    success: bool
    running: bool
    loaded: bool


def parse_unix_timestamp(value: str) -> int:
    """`@1795968962` -> 1795968962; empty or n/a (never ran) -> 0."""
    value = value.strip()
    if value in ("", "n/a", "0"):
        return 0
    if value.startswith("@") and value[1:].isdigit():
        return int(value[1:])
    raise ValueError(f"ExecMainExitTimestamp={value!r} is not @SECONDS (does systemctl know --timestamp=unix?)")


def parse_unit(properties: Mapping[str, str]) -> JobState:
    missing = [name for name in SYSTEMCTL_PROPERTIES.split(",") if name not in properties]
    if missing:
        raise ValueError(f"systemctl show printed no {', '.join(missing)}")
    exit_timestamp = parse_unix_timestamp(properties["ExecMainExitTimestamp"])
    succeeded = properties["Result"] == "success" and properties["ExecMainStatus"].strip() == "0"
    return JobState(
        exit_timestamp=exit_timestamp,
        # A job that never ran has no failure on record.
        success=succeeded or exit_timestamp == 0,
        running=properties["ActiveState"] in ("activating", "active"),
        loaded=properties["LoadState"] == "loaded",
    )


def show_unit(systemctl: str, unit: str) -> JobState:
    argv = [systemctl, "show", unit, "--timestamp=unix", "-p", SYSTEMCTL_PROPERTIES]
    try:
        returncode, stdout, stderr = run(argv, SYSTEMCTL_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise ValueError(f"systemctl show {unit} did not answer within {SYSTEMCTL_TIMEOUT:g} s") from None
    except OSError as exc:
        raise ValueError(f"cannot run {systemctl}: {exc.strerror or exc}") from None
    if returncode != 0:
        raise ValueError(f"systemctl show {unit} exited with status {returncode}: {first_line(stderr)}")
    properties = {}
    for line in stdout.decode("utf-8", errors="replace").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            properties[key] = value
    return parse_unit(properties)


# --- the collector -------------------------------------------------------------------------------------


def gauge(name: str, documentation: str, labels: tuple[str, ...] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=labels)


def stanza_metrics(stanzas: tuple[Stanza, ...]) -> list[Metric]:
    status_code = gauge("pgbackrest_stanza_status_code", "pgBackRest's status code of the stanza (0 ok).", ("stanza",))
    status_info = gauge(
        "pgbackrest_stanza_info",
        "pgBackRest's status message of the stanza, as a label; always 1.",
        ("stanza", "status"),
    )
    repo_code = gauge(
        "pgbackrest_repo_status_code",
        "pgBackRest's status code of the stanza in a repository (0 ok).",
        ("stanza", "repo"),
    )
    labels = ("stanza", "type")
    completed = gauge(
        "pgbackrest_backup_last_completed_timestamp_seconds", "When the newest backup of this type finished.", labels
    )
    duration = gauge("pgbackrest_backup_last_duration_seconds", "How long the newest backup of this type took.", labels)
    size = gauge("pgbackrest_backup_last_size_bytes", "Database size in the newest backup of this type.", labels)
    repo_size = gauge(
        "pgbackrest_backup_last_repo_size_bytes",
        "Repository size of the newest backup of this type (compressed, with what it references).",
        labels,
    )
    count = gauge("pgbackrest_backups", "Backups of this type in the repository.", labels)
    repo_total = gauge(
        "pgbackrest_repo_backups_size_bytes",
        "What the stanza's backups take in the repository (sum of each backup's repository delta).",
        ("stanza",),
    )
    for stanza in stanzas:
        status_code.add_metric([stanza.name], stanza.status_code)
        status_info.add_metric([stanza.name, stanza.status_message], 1)
        for key, code in stanza.repos:
            repo_code.add_metric([stanza.name, key], code)
        types = [*BACKUP_TYPES, *sorted({backup.type for backup in stanza.backups} - set(BACKUP_TYPES))]
        for backup_type in types:
            of_type = [backup for backup in stanza.backups if backup.type == backup_type]
            count.add_metric([stanza.name, backup_type], len(of_type))
            if not of_type:
                continue
            newest = max(of_type, key=lambda backup: (backup.stop, backup.start))
            completed.add_metric([stanza.name, backup_type], newest.stop)
            duration.add_metric([stanza.name, backup_type], max(newest.stop - newest.start, 0))
            size.add_metric([stanza.name, backup_type], newest.size)
            repo_size.add_metric([stanza.name, backup_type], newest.repo_size)
        repo_total.add_metric([stanza.name], sum(backup.repo_delta for backup in stanza.backups))
    return [status_code, status_info, repo_code, completed, duration, size, repo_size, count, repo_total]


class PgBackRestCollector(Collector):
    """Reads the cached `pgbackrest info` result and asks systemd about the jobs on each collect()."""

    def __init__(
        self,
        cache: InfoCache,
        jobs: Mapping[str, str] | None = None,
        max_ages: Mapping[str, float] | None = None,
        systemctl: str = "/usr/bin/systemctl",
    ) -> None:
        self._cache = cache
        self._jobs = dict(jobs or {})
        self._max_ages = dict(max_ages or {})
        self._systemctl = systemctl
        self._job_errors: dict[str, str] = {}
        self._lock = threading.Lock()

    def describe(self) -> list[Metric]:
        # Without this the registry would call collect(), i.e. run systemctl, when the collector is registered.
        return []

    def collect(self) -> Iterator[Metric]:
        result = self._cache.result()
        up = 1 if result is not None and result.error is None else 0
        yield GaugeMetricFamily(
            "pgbackrest_info_up", "1 when `pgbackrest --output=json info` ran and its output was understood.", value=up
        )
        if result is not None:
            yield GaugeMetricFamily(
                "pgbackrest_info_duration_seconds", "How long the last `pgbackrest info` took.", value=result.duration
            )
            yield GaugeMetricFamily(
                "pgbackrest_info_last_run_timestamp_seconds",
                "When the last `pgbackrest info` finished (the stanza numbers are from then).",
                value=result.finished,
            )
            if up:
                yield from stanza_metrics(result.stanzas)
        max_age = gauge("pgbackrest_backup_max_age_seconds", "Alert threshold: oldest acceptable backup.", ("type",))
        for backup_type, seconds in self._max_ages.items():
            max_age.add_metric([backup_type], seconds)
        yield max_age
        yield from self._job_metrics()

    def _job_metrics(self) -> list[Metric]:
        # `task`, not `job`: Prometheus keeps `job` for the scrape job and would rename ours to exported_job.
        labels = ("task",)
        exit_time = gauge(
            "pgbackrest_job_last_exit_timestamp_seconds", "When the job's last run ended; 0 when it never ran.", labels
        )
        success = gauge(
            "pgbackrest_job_last_success",
            "1 when the job's last run succeeded (Result=success, exit status 0) or it never ran, else 0.",
            labels,
        )
        running = gauge("pgbackrest_job_running", "1 while the job's unit is activating or active.", labels)
        loaded = gauge(
            "pgbackrest_job_unit_loaded",
            "1 when systemd has the job's unit loaded (0 also when it cannot be asked).",
            labels,
        )
        for job, unit in self._jobs.items():
            try:
                state = show_unit(self._systemctl, unit)
            except ValueError as exc:
                self._job_failed(job, str(exc))
                loaded.add_metric([job], 0)
                continue
            self._job_worked(job)
            exit_time.add_metric([job], state.exit_timestamp)
            success.add_metric([job], 1 if state.success else 0)
            running.add_metric([job], 1 if state.running else 0)
            loaded.add_metric([job], 1 if state.loaded else 0)
        return [exit_time, success, running, loaded]

    def _job_failed(self, job: str, message: str) -> None:
        with self._lock:
            repeated = self._job_errors.get(job) == message
            self._job_errors[job] = message
        LOG.log(logging.DEBUG if repeated else logging.WARNING, "job %s: %s", job, message)

    def _job_worked(self, job: str) -> None:
        with self._lock:
            recovered = self._job_errors.pop(job, None) is not None
        if recovered:
            LOG.info("job %s: systemctl answers again", job)


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


def parse_jobs(items: list[str]) -> dict[str, str]:
    jobs: dict[str, str] = {}
    for item in items:
        name, sep, unit = item.partition("=")
        if not sep or not JOB_NAME_RE.fullmatch(name) or not unit:
            raise ConfigError(f"--job {item!r} is not NAME=UNIT (NAME of letters, digits, '_', '.', '-')")
        # A unit name is handed to systemctl as an argument: it must not be mistaken for an option.
        if unit.startswith("-") or any(character.isspace() for character in unit):
            raise ConfigError(f"--job {item!r}: {unit!r} is not a systemd unit name")
        if name in jobs:
            raise ConfigError(f"--job {name} is given twice")
        jobs[name] = unit
    return jobs


def parse_max_ages(items: list[str]) -> dict[str, float]:
    ages: dict[str, float] = {}
    for item in items:
        backup_type, sep, seconds = item.partition("=")
        if not sep or backup_type not in BACKUP_TYPES:
            raise ConfigError(f"--max-age {item!r} is not TYPE=SECONDS with TYPE one of {', '.join(BACKUP_TYPES)}")
        try:
            ages[backup_type] = positive_float(seconds)
        except argparse.ArgumentTypeError as exc:
            raise ConfigError(f"--max-age {item!r}: {exc}") from None
    return ages


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pgbackrest_exporter", description="Prometheus exporter for pgBackRest.")
    parser.add_argument("--listen", default="0.0.0.0:9854", help="HOST:PORT to serve /metrics on (%(default)s)")
    parser.add_argument("--pgbackrest", default="/usr/bin/pgbackrest", help="the pgbackrest program (%(default)s)")
    parser.add_argument("--stanza", help="only this stanza (default: every stanza in the repository)")
    parser.add_argument(
        "--interval", type=positive_float, default=60.0, help="seconds between runs of pgbackrest info (%(default)s)"
    )
    parser.add_argument(
        "--timeout", type=positive_float, default=30.0, help="seconds pgbackrest info may take (%(default)s)"
    )
    parser.add_argument(
        "--job", action="append", default=[], metavar="NAME=UNIT", help="a backup job's systemd unit (repeatable)"
    )
    parser.add_argument(
        "--max-age",
        action="append",
        default=[],
        metavar="TYPE=SECONDS",
        help="alert threshold exported as pgbackrest_backup_max_age_seconds (repeatable)",
    )
    parser.add_argument("--systemctl", default="/usr/bin/systemctl", help="the systemctl program (%(default)s)")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    return parser


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args) -> None:  # scrapes are not worth a log line each
        pass


def serve(host: str, port: int, registry: CollectorRegistry) -> WSGIServer:
    """Serve /metrics in a thread (the WSGI app, as start_http_server's return value differs in 0.16)."""
    server = make_server(host, port, make_wsgi_app(registry), _ThreadingWSGIServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        host, port = parse_listen(args.listen)
        jobs = parse_jobs(args.job)
        max_ages = parse_max_ages(args.max_age)
        if not os.access(args.pgbackrest, os.X_OK) or os.path.isdir(args.pgbackrest):
            raise ConfigError(f"--pgbackrest {args.pgbackrest} is not an executable program")
        if args.stanza is not None and not args.stanza.strip():
            raise ConfigError("--stanza is empty")
    except ConfigError as exc:
        parser.error(str(exc))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    cache = InfoCache(InfoRunner(args.pgbackrest, args.stanza, args.timeout), args.interval)
    registry = CollectorRegistry()
    for standard in (ProcessCollector, PlatformCollector, GCCollector):
        standard(registry=registry)
    registry.register(PgBackRestCollector(cache, jobs, max_ages, args.systemctl))
    try:
        server = serve(host, port, registry)
    except OSError as exc:
        LOG.error("cannot listen on %s: %s", args.listen, exc.strerror or exc)
        return 1
    cache.start()
    LOG.info(
        "serving /metrics on %s; pgbackrest info every %g s; jobs: %s",
        args.listen,
        args.interval,
        ", ".join(f"{job}={unit}" for job, unit in jobs.items()) or "none",
    )
    # A timed wait: the kernel may hand the signal to another thread, and Python runs the handler only when
    # the main thread runs Python code again; an endless wait could then last for ever.
    while not stop.wait(1.0):
        pass
    LOG.info("stopping")
    cache.stop()
    # No server.shutdown(): it waits for the serving loop's next poll; the threads end with the process.
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
