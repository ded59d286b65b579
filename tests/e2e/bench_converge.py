"""Benchmark of a no-change converge of the whole lab: `playbooks/site.yml` RUNS times in a row,
each run's wall time and the controller's CPU (ansible-playbook, its workers and their SSH
clients), and the medians. Every run must report 0 changed and 0 failed on every host; one that
does not fails the benchmark, since it measured something else. Each run's output is kept in
reports/bench-converge-<run>.log.

The lab's hosts share the controller's CPUs, and a virtual machine's CPUs are not always its own:
each run also reports the CPU time the hypervisor took (steal, from /proc/stat) and, before it, the
time of a fixed Python loop, so that a slow run on a busy machine can be told from a slow converge.

Usage (lab up and converged): make bench-converge   [RUNS=5] [CHECK=1 for check mode]
A run after the kit's templates changed compiles them again (playbooks/strategy_plugins/
jinja_code_cache.py) and is slower. Only the lab's hosts are contacted; nothing on them changes."""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REPORT = REPO / "reports/bench-converge.json"
RECAP_LINE = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)")


def recap(output: str) -> dict[str, dict[str, int]]:
    """Each host's counts from the PLAY RECAP (colours off)."""
    found = {}
    for line in output.split("PLAY RECAP", 1)[-1].splitlines():
        if match := RECAP_LINE.match(line.strip()):
            host, *counts = match.groups()
            found[host] = dict(
                zip(("ok", "changed", "unreachable", "failed", "skipped"), map(int, counts), strict=True)
            )
    return found


def machine_cpu() -> tuple[int, int]:
    """The machine's CPU time so far, all of it and the part stolen by the hypervisor (ticks)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return sum(fields), fields[7]


def calibration_seconds() -> float:
    """How long this machine takes now for a fixed loop of Python (0.2-0.4 s on the 2-CPU lab machine)."""
    started, total = time.perf_counter(), 0
    for number in range(5_000_000):
        total += number
    return round(time.perf_counter() - started, 2)


def converge(check: bool, log: Path) -> dict:
    command = ["ansible-playbook", "-i", "stacks/lab", "playbooks/site.yml", *(["--check"] if check else [])]
    calibration = calibration_seconds()
    machine_before = machine_cpu()
    before, started = os.times(), time.monotonic()
    done = subprocess.run(
        command, cwd=REPO, env={**os.environ, "ANSIBLE_FORCE_COLOR": "0"}, capture_output=True, text=True,
        timeout=1800, check=False,
    )  # fmt: skip
    wall, after = time.monotonic() - started, os.times()
    total, stolen = (now - then for now, then in zip(machine_cpu(), machine_before, strict=True))
    log.write_text(done.stdout + done.stderr)
    hosts = recap(done.stdout)
    return {
        "wall_seconds": round(wall, 1),
        "user_cpu_seconds": round(after.children_user - before.children_user, 1),
        "system_cpu_seconds": round(after.children_system - before.children_system, 1),
        "exit_code": done.returncode,
        "hosts": len(hosts),
        "host_tasks": sum(counts["ok"] + counts["skipped"] for counts in hosts.values()),
        "changed": sum(counts["changed"] for counts in hosts.values()),
        "failed": sum(counts["failed"] + counts["unreachable"] for counts in hosts.values()),
        "steal_percent": round(100 * stolen / total, 1) if total else 0.0,
        "calibration_loop_seconds": calibration,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--check", action="store_true", help="converge in check mode (--check)")
    args = parser.parse_args()
    runs = []
    REPORT.parent.mkdir(exist_ok=True)
    for number in range(1, args.runs + 1):
        run = converge(args.check, REPORT.parent / f"bench-converge-{number}.log")
        runs.append(run)
        print(
            f"run {number}: {run['wall_seconds']:6.1f} s wall, CPU {run['user_cpu_seconds']:.1f} s user"
            f" + {run['system_cpu_seconds']:.1f} s system; {run['hosts']} hosts, {run['host_tasks']} host-tasks,"
            f" changed {run['changed']}, failed {run['failed']}; machine: steal {run['steal_percent']:.0f} %,"
            f" loop {run['calibration_loop_seconds']:.2f} s",
            flush=True,
        )
    walls = [run["wall_seconds"] for run in runs]
    users = [run["user_cpu_seconds"] for run in runs]
    summary = {
        "mode": "check" if args.check else "deploy",
        "runs": runs,
        "median_wall_seconds": statistics.median(walls),
        "median_user_cpu_seconds": statistics.median(users),
    }
    REPORT.write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"median of {len(runs)}: {summary['median_wall_seconds']:.1f} s wall (min {min(walls):.1f},"
        f" max {max(walls):.1f}), {summary['median_user_cpu_seconds']:.1f} s user CPU; {REPORT.relative_to(REPO)}"
    )
    unclean = [number for number, run in enumerate(runs, 1) if run["changed"] or run["failed"] or run["exit_code"]]
    if unclean or any(run["hosts"] == 0 for run in runs):
        print(
            f"runs {unclean or 'all'}: not a clean no-change converge (changes, failures or no recap);"
            " their output: reports/bench-converge-<run>.log"
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
