"""Benchmark of the database tier's failover: runs the failover drill several times and reports
the medians of the time until writes succeed again (planned switchover, unplanned failover) and
of the acknowledged transactions lost.

Usage (lab up and converged): make bench-db   [RUNS=3]"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REPORT = REPO / "reports/drill-failover.json"


def drill() -> dict:
    REPORT.unlink(missing_ok=True)
    subprocess.run(
        ["ansible-playbook", "-i", "stacks/lab", "playbooks/drills/failover.yml"], cwd=REPO, check=True, timeout=900
    )
    return json.loads(REPORT.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = [drill() for _ in range(args.runs)]
    for phase in ("planned", "unplanned"):
        gaps = [run[phase]["longest_gap_seconds"] for run in runs]
        lost = [run[phase]["lost"] for run in runs]
        acknowledged = [run[phase]["acknowledged"] for run in runs]
        print(
            f"{phase}: writes back after median {statistics.median(gaps):.1f} s {gaps}; "
            f"lost {lost} of {acknowledged} acknowledged"
        )


if __name__ == "__main__":
    main()
