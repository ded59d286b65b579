"""pgBackRest's repository: encrypted, holds a full backup, receives WAL, runs its jobs on schedule."""

from __future__ import annotations

import json

import pytest

testinfra_hosts = ["ansible://backup"]


@pytest.fixture
def pgbackrest(role_vars):
    return role_vars("pgbackrest")


def pgbackrest_run(host, pgbackrest, *args: str) -> str:
    """pgBackRest on the stanza, as the repository's user."""
    return host.check_output(
        "runuser -u %s -- pgbackrest --stanza=%s" + " %s" * len(args),
        pgbackrest["__pgbackrest_user"], pgbackrest["pgbackrest_stanza"], *args,
    )  # fmt: skip


def test_repository_is_encrypted_and_has_a_full_backup(host, pgbackrest):
    info = json.loads(pgbackrest_run(host, pgbackrest, "info", "--output=json"))[0]
    assert info["status"]["code"] == 0, info["status"]
    assert info["cipher"] == "aes-256-cbc"
    assert any(backup["type"] == "full" for backup in info["backup"]), info["backup"]
    assert info["archive"] and info["archive"][0]["max"], "no WAL in the repository"


def test_jobs_are_scheduled_as_configured(host, pgbackrest):
    for job in pgbackrest["__pgbackrest_jobs"]:
        timer = host.service(f"pgbackrest-{job['name']}.timer")
        assert timer.is_enabled and timer.is_running, job["name"]
        unit = host.file(f"/etc/systemd/system/pgbackrest-{job['name']}.timer").content_string
        assert f"OnCalendar={job['schedule']}\n" in unit
        service = host.file(f"/etc/systemd/system/pgbackrest-{job['name']}.service").content_string
        assert f"ExecStart=/usr/bin/{pgbackrest['__pgbackrest_command']} {job['args']}\n" in service


def test_wal_from_the_leader_reaches_the_repository(host, pgbackrest):
    """`pgbackrest check`: switches WAL on the leader and waits until the segment is archived."""
    pgbackrest_run(host, pgbackrest, "check")  # fails the test on a non-zero exit
