"""`make audit ENV=...`: every compliance control on every host, the drift, and the auditors' report.

0. The controls are collected (not run): a bad declaration stops here, and their catalogue is
   what a waiver may name.
1. `ansible-playbook --check --diff` of site.yml: what a deploy would change on each host (the
   drift), and which hosts answer at all.
2. `pytest tests/compliance` on the hosts that answered: one test per control and host, with its
   evidence, as JUnit XML.
3. tools/audit_report.py: the report under reports/audit-<env>-<date>/ (HTML, JSON, JUnit), with
   the environment's waivers (stacks/waivers.<env>.yml) applied and the run's metadata.

A host that cannot be reached is named in the report, and the others are still audited. The exit
status is 0 only when every control passed or is waived and nothing went wrong.

    python tools/audit.py --env lab [--limit db1,backup] [--certificate-min-days 30] [--waivers FILE]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.host_checks import ansible_for  # noqa: E402
from tools import audit_report  # noqa: E402

JOBS = 4  # pytest-xdist workers: the controls wait on SSH round trips, as the health checks do


def hosts_of(inventory: Path, pattern: str) -> list[str]:
    _, manager, _ = ansible_for(str(inventory))
    return [host.name for host in manager.get_hosts(pattern)]


def run_logged(command: list[str], log: Path) -> int:
    """Run a command with its output in `log`; say what runs and how long it took."""
    print(f"$ {' '.join(command)}  > {os.path.relpath(log, REPO)}", flush=True)
    start = time.monotonic()
    with log.open("w") as out:
        rc = subprocess.run(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT).returncode
    print(f"  exit {rc} in {time.monotonic() - start:.0f} s", flush=True)
    return rc


def git_commit() -> str:
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    return (commit or "unknown") + (" (with uncommitted changes)" if dirty else "")


def tool_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("ansible-core", "pytest", "pytest-testinfra"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", required=True)
    parser.add_argument("--limit", default="", help="hosts or groups, comma-separated (default: all)")
    parser.add_argument("--certificate-min-days", type=int, default=30)
    parser.add_argument(
        "--waivers", type=Path, help="the waivers file (default stacks/waivers.<env>.yml; absent: no waivers)"
    )
    parser.add_argument("--reports", type=Path, default=REPO / "reports")
    args = parser.parse_args(argv)

    inventory = REPO / "stacks" / args.env
    hosts = hosts_of(inventory, args.limit or "all")
    if not hosts:
        print(f"audit: LIMIT={args.limit!r} matches no host of {inventory.relative_to(REPO)}", file=sys.stderr)
        return 2
    waivers = args.waivers or REPO / "stacks" / f"waivers.{args.env}.yml"
    if args.waivers and not waivers.exists():
        print(f"audit: WAIVERS: the file {waivers} does not exist", file=sys.stderr)
        return 2
    started = datetime.datetime.now(datetime.UTC)
    out = args.reports / f"audit-{args.env}-{started:%Y-%m-%dT%H%M%SZ}"
    out.mkdir(parents=True)
    print(f"audit of {args.env}: {len(hosts)} host(s), report in {os.path.relpath(out, REPO)}/", flush=True)

    # The controls first collected only: a bad declaration stops the audit before any host is
    # touched, and the catalogue lets a waiver name any control, even one no reachable host runs.
    pytest = [sys.executable, "-m", "pytest", "tests/compliance", "-p", "no:cacheprovider", "-q",
              f"--ansible-inventory={inventory.relative_to(REPO)}"]  # fmt: skip
    every_host = ",".join(f"ansible://{host}" for host in hosts)
    catalogue = out / "controls.json"
    if run_logged([*pytest, "--collect-only", f"--hosts={every_host}", f"--controls-catalogue={catalogue}"],
                  out / "collect.log"):  # fmt: skip
        print((out / "collect.log").read_text(errors="replace")[-3000:], file=sys.stderr)
        return 2

    drift_log = out / "drift.log"
    check = ["ansible-playbook", "-i", str(inventory.relative_to(REPO)), "playbooks/site.yml", "--check", "--diff"]
    run_logged(check + (["--limit", args.limit] if args.limit else []), drift_log)
    drift = audit_report.read_drift(drift_log)
    if not drift:  # no PLAY RECAP: refused before any host (a bad variable, a vault it cannot open)
        tail = "\n  ".join(drift_log.read_text(errors="replace").strip().splitlines()[-15:])
        print(f"audit: ansible-playbook --check stopped before reaching any host:\n  {tail}", file=sys.stderr)
        return 2
    unreachable = [host for host in hosts if not drift.get(host, {}).get("reached", False)]
    reachable = [host for host in hosts if host not in unreachable]

    junit = out / "controls.xml"
    if reachable:
        targets = ",".join(f"ansible://{host}" for host in reachable)
        run_logged(
            [*pytest, "-n", str(JOBS), f"--hosts={targets}", f"--certificate-min-days={args.certificate_min_days}",
             f"--junitxml={junit}"],
            out / "controls.log",
        )  # fmt: skip
    else:
        junit.write_text('<?xml version="1.0" encoding="utf-8"?><testsuites/>\n')

    finished = datetime.datetime.now(datetime.UTC)
    (out / "metadata.json").write_text(
        json.dumps(
            {
                "time": started.isoformat(timespec="seconds"),
                "finished": finished.isoformat(timespec="seconds"),
                "duration_seconds": round((finished - started).total_seconds()),
                "environment": args.env,
                "limit": args.limit or "all",
                "hosts": hosts,
                "commit": git_commit(),
                "certificate_min_days": args.certificate_min_days,
                "tools": tool_versions(),
            },
            indent=2,
        )
    )
    report_args = ["--env", args.env, "--junit", str(junit), "--drift", str(drift_log), "--out", str(out),
                   "--metadata", str(out / "metadata.json"), "--unreachable", ",".join(unreachable),
                   "--catalogue", str(catalogue)]  # fmt: skip
    if waivers.exists():
        report_args += ["--waivers", str(waivers)]
    rc = audit_report.main(report_args)
    latest = args.reports / f"audit-{args.env}-latest"
    latest.unlink(missing_ok=True)
    latest.symlink_to(out.name)
    return rc


if __name__ == "__main__":
    sys.exit(main())
