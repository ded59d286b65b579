#!/usr/bin/python3
"""A steady write load against the cluster, through the router, for the failover drill.

Each transaction inserts one row numbered by this client; a number is written to the
acknowledged log only after COMMIT returned. Afterwards `--check` counts the acknowledged
numbers missing from the table (transactions lost) and the longest time without a commit.

    pg_write_load.py --dsn DSN --seconds 90 --log /tmp/acks.log      # write
    pg_write_load.py --dsn DSN --check --log /tmp/acks.log           # report as JSON
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time

import psycopg2

TABLE = "drill_writes"


def connect(dsn: str):
    connection = psycopg2.connect(dsn)  # timeouts come with the DSN
    connection.autocommit = False
    return connection


def write(dsn: str, seconds: float, log_path: str, interval: float) -> None:
    deadline = time.monotonic() + seconds
    sequence = 0
    connection = None
    created = False
    with open(log_path, "w", encoding="utf-8") as log:
        while time.monotonic() < deadline:
            try:
                if connection is None:
                    connection = connect(dsn)
                if not created:  # a fresh table per run: sequence numbers start at 1
                    with connection.cursor() as cursor:
                        cursor.execute(f"DROP TABLE IF EXISTS {TABLE}")
                        cursor.execute(f"CREATE TABLE {TABLE} (seq bigint PRIMARY KEY, at timestamptz)")
                    connection.commit()
                    created = True
                sequence += 1
                with connection.cursor() as cursor:
                    cursor.execute(f"INSERT INTO {TABLE} VALUES (%s, now())", (sequence,))
                connection.commit()
                log.write(f"{sequence} {time.time():.3f}\n")
                log.flush()
            except psycopg2.Error:
                # not acknowledged: the row may or may not exist, it is never counted as lost
                if connection is not None:
                    connection.close()
                connection = None
                time.sleep(0.2)
            time.sleep(interval)
    if connection is not None:
        connection.close()


def check(dsn: str, log_path: str) -> dict:
    acknowledged = []
    with open(log_path, encoding="utf-8") as log:
        for line in log:
            sequence, at = line.split()
            acknowledged.append((int(sequence), float(at)))
    connection = connect(dsn)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT seq FROM {TABLE}")
        stored = {row[0] for row in cursor.fetchall()}
    connection.close()
    times = [at for _, at in acknowledged]
    gaps = [(later - earlier, earlier) for earlier, later in itertools.pairwise(times)]
    longest, started = max(gaps, default=(0.0, 0.0))
    return {
        "acknowledged": len(acknowledged),
        "lost": sum(1 for sequence, _ in acknowledged if sequence not in stored),
        "longest_gap_seconds": round(longest, 3),
        "longest_gap_started": started,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", required=True, help="libpq connection string (the router's read-write port)")
    parser.add_argument("--log", required=True, help="file of acknowledged sequence numbers")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to write")
    parser.add_argument("--interval", type=float, default=0.05, help="pause between transactions")
    parser.add_argument("--check", action="store_true", help="count lost transactions instead of writing")
    args = parser.parse_args()
    if args.check:
        print(json.dumps(check(args.dsn, args.log)))
    else:
        write(args.dsn, args.seconds, args.log, args.interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
