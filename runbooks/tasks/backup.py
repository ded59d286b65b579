"""Backups: pgBackRest's repository on the backup host, its scheduled jobs and the restore drill."""

from __future__ import annotations

import datetime
import json
import subprocess
import time

from invoke import task

from .core import REPO, Environment, Problem, Refused, change, connect, no_fabric_hosts, run, table, verdict

GROUP = "backup"
ROLE = "pgbackrest"
BACKUP_TYPES = ("full", "diff")


def _when(seconds: float | None) -> str:
    if not seconds:
        return "-"
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _age(seconds: float) -> str:
    hours = seconds / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def _mb(size: int | None) -> str:
    return "-" if size is None else f"{size / 1024 / 1024:.0f} MB"


def parse_units(text: str) -> dict[str, dict[str, str]]:
    """`systemctl show UNIT... -p Id,...`: one block of Key=Value lines per unit, by Id."""
    units: dict[str, dict[str, str]] = {}
    for block in text.strip().split("\n\n"):
        fields = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if "Id" in fields:
            units[fields["Id"]] = fields
    return units


def backup_problems(info: dict, units: dict[str, dict[str, str]], limits: dict[str, int], now: float) -> list[str]:
    """What is wrong with one stanza's `pgbackrest info` and the jobs' last runs."""
    problems = []
    status = info.get("status", {})
    if status.get("code") != 0:
        problems.append(f"stanza {info.get('name')}: status {status.get('code')} {status.get('message')}")
    backups = [b for b in info.get("backup", []) if not b.get("error")]
    fulls = [b["timestamp"]["stop"] for b in backups if b["type"] == "full"]
    full_or_diff = [b["timestamp"]["stop"] for b in backups if b["type"] in ("full", "diff")]
    if not fulls:
        problems.append("no full backup in the repository")
    elif now - max(fulls) > limits["full"]:
        problems.append(f"newest full backup is {_age(now - max(fulls))} old (limit {_age(limits['full'])})")
    if full_or_diff and now - max(full_or_diff) > limits["diff"]:
        problems.append(
            f"newest full or diff backup is {_age(now - max(full_or_diff))} old (limit {_age(limits['diff'])})"
        )
    for unit, fields in sorted(units.items()):
        if fields.get("LoadState") != "loaded":
            problems.append(f"{unit} is {fields.get('LoadState')}")
        elif fields.get("Result", "success") != "success" or fields.get("ExecMainStatus", "0") not in ("0", ""):
            problems.append(f"{unit}: last run {fields.get('Result')} (exit status {fields.get('ExecMainStatus')})")
    return problems


def print_backups(info: dict, now: float) -> None:
    status = info.get("status", {})
    print(
        f"Stanza {info.get('name')}: {status.get('message')} (code {status.get('code')}), cipher {info.get('cipher')}"
    )
    rows = []
    for b in info.get("backup", []):
        stop = b["timestamp"]["stop"]
        rows.append(
            [
                b["label"],
                b["type"],
                _when(stop),
                _age(now - stop) + " ago",
                f"{stop - b['timestamp']['start']} s",
                _mb(b.get("info", {}).get("size")),
                _mb(b.get("info", {}).get("repository", {}).get("size")),
                "ERROR" if b.get("error") else "",
            ]
        )
    print(table(["label", "type", "finished", "age", "took", "size", "in repo", ""], rows) if rows else "No backups.")
    for archive in info.get("archive", []):
        print(f"WAL archive {archive.get('id')}: {archive.get('min')} .. {archive.get('max')}")


def _job_units(pgbackrest) -> list[str]:
    return [f"pgbackrest-{job['name']}.service" for job in pgbackrest["__pgbackrest_jobs"]]


@task(
    auto_shortflags=False,
    help={"env": "environment (stacks/<env>)", "host": "the repository host (default: the backup group's)"},
)
def status(c, env="lab", host=None):
    """Read-only: backups in the repository, their age against the alert limits, the jobs' last runs."""
    no_fabric_hosts(c)
    environment = Environment(env)
    problems = []
    for name in environment.hosts_for("backup.status", [GROUP], host):
        pgbackrest = environment.role_vars(name, ROLE)
        units = [*_job_units(pgbackrest), "pgbackrest-exporter.service", "pgbackrest.service"]
        limits = {
            "full": int(pgbackrest["pgbackrest_exporter_full_max_age"]),
            "diff": int(pgbackrest["pgbackrest_exporter_diff_max_age"]),
        }
        with connect(environment.connection_of(name)) as conn:
            info = run(
                conn,
                ["pgbackrest", f"--stanza={pgbackrest['pgbackrest_stanza']}", "info", "--output=json"],
                user=pgbackrest["__pgbackrest_user"],
            )
            show = run(
                conn,
                [
                    "systemctl",
                    "show",
                    *units,
                    "--timestamp=unix",
                    "-p",
                    "Id,ActiveState,Result,ExecMainStatus,ExecMainExitTimestamp,LoadState",
                ],
            )
            timers = run(conn, ["systemctl", "list-timers", "--all", "--no-pager", "pgbackrest-*"])
        now = time.time()
        print(f"== {name}: repository of stanza {pgbackrest['pgbackrest_stanza']}")
        if info.exited != 0:
            problems.append(f"{name}: pgbackrest info failed: {info.stderr.strip()[-300:]}")
            stanzas = []
        else:
            stanzas = json.loads(info.stdout)
        for stanza in stanzas:
            print_backups(stanza, now)
        fields = parse_units(show.stdout)
        rows = [
            [
                unit,
                f.get("ActiveState"),
                f.get("Result"),
                f.get("ExecMainStatus"),
                _when(float(f["ExecMainExitTimestamp"].lstrip("@"))) if f.get("ExecMainExitTimestamp") else "-",
            ]
            for unit, f in fields.items()
        ]
        print(table(["unit", "active", "result", "exit status", "last exit"], rows))
        print(timers.stdout.rstrip())
        jobs = {unit: f for unit, f in fields.items() if unit in _job_units(pgbackrest)}
        for stanza in stanzas:
            problems += [f"{name}: {p}" for p in backup_problems(stanza, jobs, limits, now)]
        for service in ("pgbackrest-exporter.service", "pgbackrest.service"):
            if fields.get(service, {}).get("ActiveState") != "active":
                problems.append(f"{name}: {service} is {fields.get(service, {}).get('ActiveState')}")
    verdict(problems, "the repository answers, backups are within their age limits, the last jobs succeeded")


@task(
    auto_shortflags=False,
    help={
        "env": "environment (stacks/<env>)",
        "type": "full or diff",
        "yes": "do not ask for confirmation (needed in a non-interactive shell)",
        "dry_run": "print what would be done and change nothing",
    },
)
def start(c, type="diff", env="lab", yes=False, dry_run=False):
    """Changes: start a full or differential backup now (the scheduled job's unit, on the repository host)."""
    no_fabric_hosts(c)
    if type not in BACKUP_TYPES:
        raise Refused(f"--type must be one of {', '.join(BACKUP_TYPES)}, not {type!r}")
    environment = Environment(env)
    name = environment.hosts_for("backup.start", [GROUP], None)[0]
    unit = f"pgbackrest-backup-{type}.service"
    plan = [
        f"systemctl start --no-block {unit} on {name} (the job runs as the repository's user)",
        "print the unit's state; follow the backup with backup.status or journalctl -u " + unit,
    ]

    def act() -> str:
        with connect(environment.connection_of(name)) as conn:
            state = run(conn, ["systemctl", "is-active", unit]).stdout.strip()
            if state in ("active", "activating"):
                raise Problem(f"{unit} is already running on {name}: wait for it (backup.status)")
            started = run(conn, ["systemctl", "start", "--no-block", unit])
            if started.exited != 0:
                raise Problem(f"systemctl start {unit} failed on {name}: {started.stderr.strip()}")
            time.sleep(2)
            state = run(conn, ["systemctl", "is-active", unit]).stdout.strip()
        return f"{unit} on {name} is {state}"

    change(env, "backup.start", {"type": type}, plan, act, yes=yes, dry_run=dry_run)


@task(
    auto_shortflags=False,
    help={
        "env": "only lab: the drill writes to the cluster and restores onto the lab's scratch host",
        "yes": "do not ask for confirmation (needed in a non-interactive shell)",
        "dry_run": "print what would be done and change nothing",
    },
)
def restore_drill(c, env="lab", yes=False, dry_run=False):
    """Changes (lab only): the point-in-time restore drill, make drill SCENARIO=restore."""
    no_fabric_hosts(c)
    Environment(env)
    if env != "lab":
        raise Refused(
            f"backup.restore-drill runs in the lab only (it seeds a table in the cluster and restores onto the lab's"
            f" scratch host); in {env} follow runbooks/point-in-time-restore.md"
        )
    plan = [
        "make drill SCENARIO=restore: seed a known data set through the router, note a moment, write past it,"
        " restore the cluster from pgBackRest to that moment on scratch1 and compare",
        "report: reports/drill-restore.json",
    ]

    def act() -> str:
        result = subprocess.run(["make", "drill", "SCENARIO=restore"], cwd=REPO, check=False)
        if result.returncode != 0:
            raise Problem(f"the restore drill failed (exit status {result.returncode}): see its output above")
        report = json.loads((REPO / "reports/drill-restore.json").read_text())
        checksum = "matches" if report.get("matches") else "DIFFERS"
        return f"restored in {report.get('restore_seconds')} s, checksum {checksum}"

    change(env, "backup.restore-drill", {}, plan, act, yes=yes, dry_run=dry_run)
