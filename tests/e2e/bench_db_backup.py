"""Benchmark of the backups tier: seeds a data set of --mb megabytes (1 GB by default) with the
restore drill, then times full and differential backups and their size in the repository, the
restore drill (RTO) and the archive lag (RPO: from a commit until its WAL is in the repository),
and reports medians of --runs runs each.

Usage (lab up and converged): make bench-backup   [MB=1024] [RUNS=3]"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REPORT = REPO / "reports/drill-restore.json"
STANZA_COMMAND = "pgbackrest --stanza=govops"


def ansible(host: str, command: str, user: str = "root") -> str:
    """Run a command on a lab host (as `user`) and return its output."""
    result = subprocess.run(
        ["ansible", "-i", "stacks/lab", host, "-b", "--become-user", user, "-o", "-m", "ansible.builtin.command",
         "-a", command],
        cwd=REPO, capture_output=True, text=True, check=True, timeout=1800,
    )  # fmt: skip
    return result.stdout.split("(stdout) ", 1)[1].replace("\\n", "\n") if "(stdout) " in result.stdout else ""


def restore_drill(megabytes: int) -> dict:
    REPORT.unlink(missing_ok=True)
    subprocess.run(
        ["ansible-playbook", "-i", "stacks/lab", "playbooks/drills/restore.yml", "-e", f"drill_seed_mb={megabytes}"],
        cwd=REPO, check=True, timeout=3600, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return json.loads(REPORT.read_text())


def backup(kind: str) -> dict:
    started = time.monotonic()
    ansible("backup1", f"{STANZA_COMMAND} --type={kind} backup", user="pgbackrest")
    seconds = time.monotonic() - started
    newest = json.loads(ansible("backup1", f"{STANZA_COMMAND} info --output=json", user="pgbackrest"))[0]["backup"][-1]
    assert newest["type"] == kind, newest
    return {"seconds": round(seconds, 1), "repo_bytes": newest["info"]["repository"]["delta"],
            "db_bytes": newest["info"]["size"]}  # fmt: skip


def leader() -> str:
    for host in ("db1", "db2", "db3"):
        if ansible(host, "psql -XAt -c 'SELECT pg_is_in_recovery()'", user="postgres").strip() == "f":
            return host
    raise RuntimeError("no leader among db1..db3")


def churn(percent: int) -> None:
    host = leader()
    ansible(host, f"psql -XAt -d cfm -c 'UPDATE drill_seed SET at = clock_timestamp() WHERE id % {100 // percent} = 0'",
            user="postgres")  # fmt: skip


def archive_lag(host: str) -> float:
    """Seconds from a commit until the WAL segment holding it is archived (no other load)."""
    # the segment of the transaction's own record (after a commit a WAL switch may already have
    # moved the insert position into the next, empty segment)
    sql = ("CREATE TABLE IF NOT EXISTS bench_lag (at timestamptz); BEGIN; INSERT INTO bench_lag VALUES (now());"
           " SELECT pg_walfile_name(pg_current_wal_insert_lsn()); COMMIT")  # fmt: skip
    segment = re.search(r"\b[0-9A-F]{24}\b", ansible(host, f"psql -XAtq -c '{sql}'", user="postgres")).group(0)
    committed = time.monotonic()
    while time.monotonic() - committed < 600:
        archived = ansible(host, "psql -XAt -c 'SELECT coalesce(last_archived_wal, chr(48)) FROM pg_stat_archiver'",
                           user="postgres").strip()  # fmt: skip
        if archived[:24] >= segment:
            return round(time.monotonic() - committed, 1)
        time.sleep(1)
    raise RuntimeError(f"segment {segment} not archived within 600 s")


def median(values: list[float]) -> float:
    return round(statistics.median(values), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--churn-percent", type=int, default=5)
    args = parser.parse_args()

    seeded = restore_drill(args.mb)
    seed = seeded["seeded"]
    print(f"seed: {seed['rows']} rows, {seed['table_size']} in {seed['seed_seconds']} s; restore from the older"
          f" backup + WAL replay: {seeded['restore_seconds']} s, matches={seeded['matches']}")  # fmt: skip
    fulls = [backup("full") for _ in range(args.runs)]
    diffs = []
    for _ in range(args.runs):
        churn(args.churn_percent)
        diffs.append(backup("diff"))
    for name, runs in (("full", fulls), ("diff", diffs)):
        print(f"{name} backup: median {median([r['seconds'] for r in runs])} s {[r['seconds'] for r in runs]};"
              f" repository size median {median([r['repo_bytes'] / 2**20 for r in runs])} MiB"
              f" of a {median([r['db_bytes'] / 2**20 for r in runs])} MiB database")  # fmt: skip
    restores = [restore_drill(16) for _ in range(args.runs)]
    print(f"restore (RTO, from the newest backup of the {args.mb} MB database): median "
          f"{median([float(r['restore_seconds']) for r in restores])} s {[r['restore_seconds'] for r in restores]};"
          f" all match: {all(r['matches'] for r in restores)}")  # fmt: skip
    host = leader()
    lags = [archive_lag(host) for _ in range(args.runs)]
    print(f"archive lag (RPO) on a quiet leader: median {median(lags)} s {lags}")


if __name__ == "__main__":
    main()
