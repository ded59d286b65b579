#!/usr/bin/python3
"""A known data set for the restore drill: rows whose content and checksum are fixed by their count.

`seed` (re)creates the table, fills it to about --mb megabytes, notes the server's clock as
the moment to restore to, then writes rows past that moment which a restore to it must not
contain. `checksum` computes the same figures from a database (the restored copy). Both print
JSON; `expected` prints what a correct copy holds without touching any database.

    pg_seed.py seed --dsn DSN --mb 1024        # -> {"rows", "checksum", "target_time", ...}
    pg_seed.py checksum --dsn DSN --rows N --target T   # -> {"rows", "checksum", "rows_after_target", ...}
    pg_seed.py churn --dsn DSN --percent 5     # rewrite a share of the rows (for differential backups)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time

import psycopg2

TABLE = "drill_seed"
ROW_BYTES = 1024  # about a kilobyte of text per row
BATCH = 50_000
# Rows written after the restore target; a restore to the target must hold none of them.
ROWS_AFTER_TARGET = 1000


def payload_sql(column: str) -> str:
    """The row's text: md5s of its number and a counter, as hard to compress as hex text gets."""
    return f"(SELECT string_agg(md5({column} || ':' || k), '' ORDER BY k) FROM generate_series(1, {ROW_BYTES // 32}) k)"


def rows_for(megabytes: int) -> int:
    return max(1, megabytes * 1024 * 1024 // ROW_BYTES)


def expected_checksum(rows: int) -> str:
    """md5 over the rows' md5s in id order, as `checksum` computes it in SQL."""
    digest = hashlib.md5()
    for row_id in range(1, rows + 1):
        payload = "".join(hashlib.md5(f"{row_id}:{k}".encode()).hexdigest() for k in range(1, ROW_BYTES // 32 + 1))
        digest.update(hashlib.md5(f"{row_id}:{payload}".encode()).hexdigest().encode())
    return digest.hexdigest()


def seed(dsn: str, megabytes: int) -> dict:
    rows = rows_for(megabytes)
    connection = psycopg2.connect(dsn)
    started = time.monotonic()
    with connection, connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {TABLE}")
        cursor.execute(f"CREATE TABLE {TABLE} (id bigint PRIMARY KEY, payload text NOT NULL, at timestamptz NOT NULL)")
    for first in range(1, rows + 1, BATCH):
        last = min(rows, first + BATCH - 1)
        with connection, connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {TABLE} SELECT g, {payload_sql('g')}, clock_timestamp() FROM generate_series(%s, %s) g",
                (first, last),
            )
    seeded_seconds = time.monotonic() - started
    time.sleep(1)  # the target lies strictly between the seed's last commit and the later rows
    with connection, connection.cursor() as cursor:
        cursor.execute("SELECT to_char(clock_timestamp(), 'YYYY-MM-DD HH24:MI:SS.USOF')")
        target_time = cursor.fetchone()[0]
    time.sleep(1)
    with connection, connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} SELECT g, {payload_sql('g')}, clock_timestamp() FROM generate_series(%s, %s) g",
            (rows + 1, rows + ROWS_AFTER_TARGET),
        )
        cursor.execute("SELECT pg_size_pretty(pg_total_relation_size(%s)), pg_total_relation_size(%s)", (TABLE, TABLE))
        size_pretty, size_bytes = cursor.fetchone()
    connection.close()
    return {
        "rows": rows,
        "checksum": expected_checksum(rows),
        "target_time": target_time,
        "rows_after_target": ROWS_AFTER_TARGET,
        "table_bytes": size_bytes,
        "table_size": size_pretty,
        "seed_seconds": round(seeded_seconds, 1),
    }


def checksum(dsn: str, rows_before: int, target_time: str) -> dict:
    connection = psycopg2.connect(dsn)
    with connection, connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FILTER (WHERE id <= %s),"
            f" md5(string_agg(md5(id || ':' || payload), '' ORDER BY id) FILTER (WHERE id <= %s)),"
            f" extract(epoch FROM %s::timestamptz - max(at)), count(*) FILTER (WHERE id > %s) FROM {TABLE}",
            (rows_before, rows_before, target_time, rows_before),
        )
        rows, digest, newest_before_target, after = cursor.fetchone()
    connection.close()
    return {
        "rows": rows,
        "checksum": digest,
        "newest_row_before_target_seconds": round(float(newest_before_target), 3),
        "rows_after_target": after,
    }


def churn(dsn: str, percent: int) -> dict:
    """Rewrite every (100/percent)-th row's timestamp: changed pages for a differential backup."""
    connection = psycopg2.connect(dsn)
    with connection, connection.cursor() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET at = clock_timestamp() WHERE id %% %s = 0", (max(1, 100 // percent),))
        updated = cursor.rowcount
    connection.close()
    return {"updated": updated}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["seed", "checksum", "churn", "expected"])
    parser.add_argument("--dsn", default="")
    parser.add_argument("--mb", type=int, default=16, help="size of the data set (seed, expected)")
    parser.add_argument("--rows", type=int, default=0, help="rows seeded before the target (checksum)")
    parser.add_argument("--target", default="", help="the restore target the seed reported (checksum)")
    parser.add_argument("--percent", type=int, default=5, help="share of the rows to rewrite (churn)")
    args = parser.parse_args()
    if args.action == "seed":
        result = seed(args.dsn, args.mb)
    elif args.action == "checksum":
        result = checksum(args.dsn, args.rows, args.target)
    elif args.action == "churn":
        result = churn(args.dsn, args.percent)
    else:
        rows = rows_for(args.mb)
        result = {"rows": rows, "checksum": expected_checksum(rows)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
