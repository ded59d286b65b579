"""The pgBackRest exporter, run as a program against a fake `pgbackrest` and a fake `systemctl`.

The fixtures are real pgBackRest 2.45 and systemd 252 output from the lab, plus constructed variants in the
same shape; see fixtures/pgbackrest/README.md.
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from programs import terminate
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "monitoring/exporters/pgbackrest_exporter.py"
spec = importlib.util.spec_from_file_location("pgbackrest_exporter", MODULE)
exporter = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = exporter  # dataclasses look their module up by name
spec.loader.exec_module(exporter)

FIXTURES = Path(__file__).resolve().parent / "fixtures/pgbackrest"
JOBS = {
    "full": "pgbackrest-backup-full.service",
    "diff": "pgbackrest-backup-diff.service",
    "check": "pgbackrest-check.service",
    "verify": "pgbackrest-verify.service",
}

# Shell scripts, not Python: the exporter runs systemctl once per job on every scrape.
FAKE_PGBACKREST = """\
#!/bin/sh
state={state}
echo "$*" >> "$state/pgbackrest.calls"
read -r mode < "$state/mode"
case $mode in
fail)
    echo "ERROR: [055]: unable to load info file '/var/lib/pgbackrest/backup/govops/backup.info'" >&2
    exit 55 ;;
garbage)
    echo "WARN: this is not JSON"
    exit 0 ;;
esac
exec cat "$state/info.json"
"""

FAKE_SYSTEMCTL = """\
#!/bin/sh
state={state}
echo "$*" >> "$state/systemctl.calls"
unit="$state/units/$2"
[ -e "$unit" ] || unit="$state/units/not-found"
read -r first < "$unit"
case $first in
FAIL*)
    echo "Failed to connect to bus: No such file or directory" >&2
    exit 1 ;;
esac
exec cat "$unit"
"""


def captured_units() -> dict[str, str]:
    """The blocks of the captured `systemctl show` by unit (five lines after each "== UNIT" line); the
    last block, without such a line, is the answer for an unknown unit: "not-found"."""
    lines = (FIXTURES / "systemctl-show.txt").read_text().splitlines()
    units, index = {}, 0
    while index < len(lines):
        if lines[index].startswith("== "):
            units[lines[index][3:]] = "\n".join(lines[index + 1 : index + 6]) + "\n"
            index += 6
        else:
            units["not-found"] = "\n".join(lines[index : index + 5]) + "\n"
            index += 5
    return units


def write_executable(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(0o755)
    return str(path)


class Fakes:
    """The state directory of the fake programs: what `pgbackrest info` prints, what each unit says."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        (directory / "units").mkdir()
        for unit, text in captured_units().items():
            self.unit(unit, text)
        self.info("info-one-full.json")
        self.mode("ok")
        self.pgbackrest = write_executable(
            directory / "pgbackrest", FAKE_PGBACKREST.format(state=shlex.quote(str(directory)))
        )
        self.systemctl = write_executable(
            directory / "systemctl", FAKE_SYSTEMCTL.format(state=shlex.quote(str(directory)))
        )

    def info(self, fixture: str) -> None:
        shutil.copy(FIXTURES / fixture, self.dir / "info.json")

    def mode(self, mode: str) -> None:
        (self.dir / "mode").write_text(mode)

    def unit(self, unit: str, text: str) -> None:
        (self.dir / "units" / unit).write_text(textwrap.dedent(text))

    def calls(self, program: str) -> list[str]:
        path = self.dir / f"{program}.calls"
        return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def fakes(tmp_path) -> Fakes:
    return Fakes(tmp_path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


Samples = dict[tuple[str, frozenset], float]


class Exporter:
    """The real program on 127.0.0.1 and a free port."""

    def __init__(self, fakes: Fakes, *args: str, jobs: bool = True) -> None:
        self.port = free_port()
        argv = [sys.executable, str(MODULE), "--listen", f"127.0.0.1:{self.port}"]
        argv += ["--pgbackrest", fakes.pgbackrest, "--systemctl", fakes.systemctl]
        if jobs:
            argv += [arg for job, unit in JOBS.items() for arg in ("--job", f"{job}={unit}")]
        self.process = subprocess.Popen([*argv, *args], stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.text()
                return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise AssertionError(f"the exporter did not start: {self.stderr}") from None
                time.sleep(0.05)

    def text(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as response:
            return response.read().decode()

    def scrape(self) -> Samples:
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(self.text())
            for sample in family.samples
        }

    def wait_for(self, condition, timeout: float = 5) -> Samples:
        deadline = time.monotonic() + timeout
        while True:
            samples = self.scrape()
            if condition(samples) or time.monotonic() > deadline:
                return samples
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.returncode is None:
            self.stderr = terminate(self.process)


@pytest.fixture
def start(fakes) -> Iterator:
    started: list[Exporter] = []

    def _start(*args: str, jobs: bool = True) -> Exporter:
        started.append(Exporter(fakes, *args, jobs=jobs))
        return started[-1]

    yield _start
    for process in started:
        process.stop()


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def series(samples: Samples, name: str) -> dict[frozenset, float]:
    return {labels: number for (sample, labels), number in samples.items() if sample == name}


# --- stanzas and backups ----------------------------------------------------------------------------------


def test_real_lab_outputs(start, fakes):
    samples = start("--max-age", "full=691200", "--max-age", "diff=93600").scrape()
    assert value(samples, "pgbackrest_info_up") == 1
    assert value(samples, "pgbackrest_info_duration_seconds") > 0
    assert value(samples, "pgbackrest_stanza_status_code", stanza="govops") == 0
    assert series(samples, "pgbackrest_stanza_info") == {frozenset({"stanza": "govops", "status": "ok"}.items()): 1}
    assert value(samples, "pgbackrest_repo_status_code", stanza="govops", repo="1") == 0
    full = {"stanza": "govops", "type": "full"}
    assert value(samples, "pgbackrest_backup_last_completed_timestamp_seconds", **full) == 1795967569
    assert value(samples, "pgbackrest_backup_last_duration_seconds", **full) == 6
    assert value(samples, "pgbackrest_backup_last_size_bytes", **full) == 38460472
    assert value(samples, "pgbackrest_backup_last_repo_size_bytes", **full) == 7634336
    assert value(samples, "pgbackrest_repo_backups_size_bytes", stanza="govops") == 7634336
    counts = {dict(labels)["type"]: number for labels, number in series(samples, "pgbackrest_backups").items()}
    assert counts == {"full": 1, "diff": 0, "incr": 0}
    # Only the types that have a backup have a "last" backup.
    assert len(series(samples, "pgbackrest_backup_last_completed_timestamp_seconds")) == 1
    assert value(samples, "pgbackrest_backup_max_age_seconds", type="full") == 691200
    assert value(samples, "pgbackrest_backup_max_age_seconds", type="diff") == 93600
    assert fakes.calls("pgbackrest") == ["--output=json info"]
    # The captured units: only the check has run since boot.
    assert value(samples, "pgbackrest_job_last_exit_timestamp_seconds", task="check") == 1795968962
    for job in JOBS:
        assert value(samples, "pgbackrest_job_last_success", task=job) == 1
        assert value(samples, "pgbackrest_job_running", task=job) == 0
        assert value(samples, "pgbackrest_job_unit_loaded", task=job) == 1
    # Never ran since boot: no exit time, and no failure on record.
    assert value(samples, "pgbackrest_job_last_exit_timestamp_seconds", task="full") == 0
    # The job's name is the `task` label: a `job` label would clash with the scrape job's.
    assert all("job" not in dict(labels) for labels in series(samples, "pgbackrest_job_last_success"))
    calls = fakes.calls("systemctl")
    assert f"show {JOBS['check']} --timestamp=unix -p {exporter.SYSTEMCTL_PROPERTIES}" in calls


def test_newest_backup_of_each_type(start, fakes):
    fakes.info("info-full-diff-incr.json")
    samples = start("--stanza", "govops", jobs=False).scrape()
    assert fakes.calls("pgbackrest") == ["--output=json --stanza=govops info"]
    expected = {
        # type: (stop, duration, size, repository size)
        "full": (1795309860, 660, 38400000, 7600000),
        "diff": (1795482090, 90, 38600000, 7800000),
        "incr": (1795525230, 30, 38700000, 7900000),
    }
    for backup_type, (stop, duration, size, repo_size) in expected.items():
        labels = {"stanza": "govops", "type": backup_type}
        actual = (
            value(samples, "pgbackrest_backup_last_completed_timestamp_seconds", **labels),
            value(samples, "pgbackrest_backup_last_duration_seconds", **labels),
            value(samples, "pgbackrest_backup_last_size_bytes", **labels),
            value(samples, "pgbackrest_backup_last_repo_size_bytes", **labels),
        )
        assert actual == (stop, duration, size, repo_size), backup_type
    counts = {dict(labels)["type"]: number for labels, number in series(samples, "pgbackrest_backups").items()}
    assert counts == {"full": 2, "diff": 2, "incr": 1}
    # What the backups take: the repository delta of each (7.5 MB + 7.6 MB + 0.3 + 0.45 + 0.12).
    assert value(samples, "pgbackrest_repo_backups_size_bytes", stanza="govops") == 15970000


def test_stanza_without_backups(start, fakes):
    fakes.info("info-no-backups.json")
    samples = start(jobs=False).scrape()
    assert value(samples, "pgbackrest_info_up") == 1
    assert value(samples, "pgbackrest_stanza_status_code", stanza="govops") == 2
    assert value(samples, "pgbackrest_stanza_info", stanza="govops", status="no valid backups") == 1
    assert value(samples, "pgbackrest_backups", stanza="govops", type="full") == 0
    assert value(samples, "pgbackrest_repo_backups_size_bytes", stanza="govops") == 0
    assert series(samples, "pgbackrest_backup_last_completed_timestamp_seconds") == {}
    assert series(samples, "pgbackrest_backup_last_size_bytes") == {}


def test_repository_error_in_one_stanza(start, fakes):
    fakes.info("info-error.json")
    samples = start(jobs=False).scrape()
    assert value(samples, "pgbackrest_info_up") == 1
    assert value(samples, "pgbackrest_stanza_status_code", stanza="govops") == 99
    assert value(samples, "pgbackrest_stanza_info", stanza="govops", status="other") == 1
    assert value(samples, "pgbackrest_repo_status_code", stanza="govops", repo="1") == 99
    assert value(samples, "pgbackrest_stanza_status_code", stanza="scorecard") == 0
    assert value(samples, "pgbackrest_repo_status_code", stanza="scorecard", repo="1") == 0
    assert value(samples, "pgbackrest_backups", stanza="scorecard", type="full") == 1
    assert value(samples, "pgbackrest_backups", stanza="govops", type="full") == 0


# --- caching and failures -------------------------------------------------------------------------------------


def test_scrapes_read_the_cached_info(start, fakes):
    exporter_process = start("--interval", "60")
    for _ in range(3):
        assert value(exporter_process.scrape(), "pgbackrest_info_up") == 1
    assert len(fakes.calls("pgbackrest")) == 1
    # systemd is asked on every scrape: 3 scrapes (and the start-up probe) x 4 jobs.
    assert len(fakes.calls("systemctl")) == 4 * len(JOBS)


def test_info_is_run_again_after_the_interval(start, fakes):
    exporter_process = start("--interval", "0.2")
    assert value(exporter_process.scrape(), "pgbackrest_backups", stanza="govops", type="diff") == 0
    fakes.info("info-full-diff-incr.json")
    samples = exporter_process.wait_for(
        lambda samples: value(samples, "pgbackrest_backups", stanza="govops", type="diff") == 2
    )
    assert value(samples, "pgbackrest_backups", stanza="govops", type="diff") == 2
    assert 2 <= len(fakes.calls("pgbackrest")) <= 60


def test_failures_mean_down_without_stale_numbers_until_pgbackrest_works_again(start, fakes):
    fakes.mode("fail")
    exporter_process = start("--interval", "0.1")
    samples = exporter_process.scrape()
    assert value(samples, "pgbackrest_info_up") == 0
    assert series(samples, "pgbackrest_stanza_status_code") == {}
    assert series(samples, "pgbackrest_backups") == {}
    # The jobs do not depend on pgbackrest.
    assert value(samples, "pgbackrest_job_unit_loaded", task="check") == 1
    for mode, info in (("garbage", "info-one-full.json"), ("ok", "systemctl-show.txt")):
        fakes.mode(mode)
        fakes.info(info)
        runs = len(fakes.calls("pgbackrest"))
        samples = exporter_process.wait_for(lambda samples, runs=runs: len(fakes.calls("pgbackrest")) >= runs + 2)
        assert value(samples, "pgbackrest_info_up") == 0, mode
        assert series(samples, "pgbackrest_stanza_status_code") == {}, mode
    fakes.info("info-one-full.json")
    samples = exporter_process.wait_for(lambda samples: value(samples, "pgbackrest_info_up") == 1)
    assert value(samples, "pgbackrest_stanza_status_code", stanza="govops") == 0
    exporter_process.stop()
    for message in (
        "pgbackrest info exited with status 55: ERROR: [055]: unable to load info file",
        "pgbackrest's output is not JSON",
        "pgbackrest info works again",
    ):
        assert message in exporter_process.stderr
    # Each problem is logged once, however many runs it lasts.
    assert exporter_process.stderr.count("exited with status 55") == 1


def test_hung_pgbackrest_is_killed_with_its_children(start, fakes, tmp_path):
    children = tmp_path / "children"
    hung = write_executable(tmp_path / "hung-pgbackrest", f"#!/bin/sh\nsleep 30 &\necho $! >> {children}\nwait\n")
    began = time.monotonic()
    exporter_process = start("--pgbackrest", hung, "--timeout", "1", "--interval", "0.1", jobs=False)
    samples = exporter_process.scrape()
    assert time.monotonic() - began < 6
    assert value(samples, "pgbackrest_info_up") == 0
    first_child = int(children.read_text().split()[0])
    assert wait_until_dead(first_child), "the sleep started by the hung pgbackrest is still running"
    # The next run hangs now; a scrape does not wait for it.
    began = time.monotonic()
    assert value(exporter_process.scrape(), "pgbackrest_info_up") == 0
    assert time.monotonic() - began < 0.8
    exporter_process.stop()
    assert "did not finish within 1 s and was killed" in exporter_process.stderr


def test_stopping_kills_a_run_in_progress(start, fakes, tmp_path):
    children = tmp_path / "children"
    # The first run answers, the next ones hang (much longer than it takes to stop).
    script = f"""#!/bin/sh
if [ -e {tmp_path}/answered ]; then sleep 30 & echo $! >> {children}; wait; fi
touch {tmp_path}/answered
exec cat {fakes.dir}/info.json
"""
    hanging = write_executable(tmp_path / "hanging-pgbackrest", script)
    exporter_process = start("--pgbackrest", hanging, "--timeout", "20", "--interval", "0.1", jobs=False)
    assert value(exporter_process.scrape(), "pgbackrest_info_up") == 1
    deadline = time.monotonic() + 5
    while not children.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    began = time.monotonic()
    exporter_process.stop()
    assert exporter_process.process.returncode == 0
    assert time.monotonic() - began < 3
    child = int(children.read_text().split()[0])
    assert wait_until_dead(child), f"process {child} outlived the exporter"


def wait_until_dead(pid: int) -> bool:
    deadline = time.monotonic() + 5
    while process_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def process_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


# --- systemd jobs ------------------------------------------------------------------------------------------


def test_failed_running_and_missing_units(start, fakes):
    fakes.unit(
        JOBS["full"],
        """\
        Result=exit-code
        ExecMainExitTimestamp=@1795970000
        ExecMainStatus=1
        LoadState=loaded
        ActiveState=failed
        """,
    )
    fakes.unit(
        JOBS["diff"],
        """\
        Result=signal
        ExecMainExitTimestamp=@1795971000
        ExecMainStatus=9
        LoadState=loaded
        ActiveState=failed
        """,
    )
    fakes.unit(
        JOBS["verify"],
        """\
        Result=success
        ExecMainExitTimestamp=
        ExecMainStatus=0
        LoadState=loaded
        ActiveState=activating
        """,
    )
    (fakes.dir / "units" / JOBS["check"]).unlink()  # answered like a unit systemd does not know
    samples = start().scrape()
    assert value(samples, "pgbackrest_job_last_success", task="full") == 0
    assert value(samples, "pgbackrest_job_last_exit_timestamp_seconds", task="full") == 1795970000
    assert value(samples, "pgbackrest_job_last_success", task="diff") == 0
    assert value(samples, "pgbackrest_job_running", task="verify") == 1
    assert value(samples, "pgbackrest_job_last_success", task="verify") == 1
    assert value(samples, "pgbackrest_job_unit_loaded", task="check") == 0
    assert value(samples, "pgbackrest_job_last_success", task="check") == 1


def test_jobs_are_read_on_every_scrape_and_systemctl_failure_is_not_loaded(start, fakes):
    exporter_process = start()
    assert value(exporter_process.scrape(), "pgbackrest_job_running", task="full") == 0
    fakes.unit(JOBS["full"], captured_units()[JOBS["full"]].replace("ActiveState=inactive", "ActiveState=active"))
    fakes.unit(JOBS["diff"], "FAIL")
    samples = exporter_process.scrape()
    assert value(samples, "pgbackrest_job_running", task="full") == 1
    assert value(samples, "pgbackrest_job_unit_loaded", task="diff") == 0
    assert value(samples, "pgbackrest_job_last_success", task="diff") is None
    assert len(fakes.calls("pgbackrest")) == 1
    exporter_process.stop()
    assert "job diff: systemctl show pgbackrest-backup-diff.service exited with status 1" in exporter_process.stderr


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        ({"ExecMainExitTimestamp": "@1795968962"}, (1795968962, True, False, True)),
        ({"ExecMainExitTimestamp": "@1795968962", "ExecMainStatus": "3"}, (1795968962, False, False, True)),
        ({"Result": "timeout", "ExecMainExitTimestamp": "@5"}, (5, False, False, True)),
        ({"ActiveState": "reloading"}, (0, True, False, True)),
        ({"LoadState": "masked"}, (0, True, False, False)),
    ],
)
def test_unit_properties(properties, expected):
    base = {
        "Result": "success",
        "ExecMainStatus": "0",
        "ExecMainExitTimestamp": "",
        "ActiveState": "inactive",
        "LoadState": "loaded",
    }
    state = exporter.parse_unit({**base, **properties})
    assert (state.exit_timestamp, state.success, state.running, state.loaded) == expected


def test_a_timestamp_that_is_not_unix_is_an_error():
    with pytest.raises(ValueError, match="--timestamp=unix"):
        exporter.parse_unix_timestamp("Sun 2026-11-29 23:16:02 UTC")


# --- the parser and the command line -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"name": "govops"}, "not a list of stanzas"),
        ([{"status": {"code": 0}}], "stanza 0: no name"),
        ([{"name": "govops", "repo": [], "backup": [], "status": {"code": "0", "message": "ok"}}], "status.code"),
        ([{"name": "govops", "repo": [], "backup": [], "status": {"code": True, "message": "ok"}}], "status.code"),
        ([{"name": "govops", "repo": [], "backup": [{"type": "full"}], "status": {}}], "backup 0: no timestamp"),
    ],
)
def test_unexpected_json_is_refused(document, message):
    with pytest.raises(exporter.InfoError, match=message):
        exporter.parse_info(json.dumps(document).encode())


def run_main(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        exporter.main(list(argv))
    assert exit_info.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--job", "full"], "is not NAME=UNIT"),
        (["--job", "full=a.service", "--job", "full=b.service"], "--job full is given twice"),
        (["--job", "full=--all"], "is not a systemd unit name"),
        (["--max-age", "weekly=3600"], "TYPE one of full, diff, incr"),
        (["--max-age", "full=-1"], "not a positive number"),
        (["--interval", "0"], "not a positive number"),
        (["--listen", "9854"], "is not HOST:PORT"),
    ],
)
def test_bad_command_line_is_refused(capsys, fakes, argv, message):
    assert message in run_main(capsys, "--pgbackrest", fakes.pgbackrest, *argv)


def test_missing_pgbackrest_is_refused(capsys, tmp_path):
    missing = tmp_path / "pgbackrest"
    assert f"--pgbackrest {missing} is not an executable program" in run_main(capsys, "--pgbackrest", str(missing))
