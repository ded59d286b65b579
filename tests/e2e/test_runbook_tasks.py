"""The runbooks' read-only Fabric tasks against the lab, through the front door
(`fab -r runbooks <task> --env lab`): each reaches its hosts as Ansible does and reads a healthy lab
as healthy. A changing task's dry run leaves the cluster as it was. The changing tasks are rehearsed on
real incidents in test_incidents.py."""

from __future__ import annotations

import re

import pytest
from conftest import REPO, lab_hosts, run
from runbook_lab import fab, healthy


def test_db_status_shows_one_leader_and_every_member(lab_running):
    output = healthy("db.status")
    members = re.findall(r"^(db\d)\s+\S+\s+(leader|sync_standby|replica)\s+(\w+)", output, re.MULTILINE)
    assert sorted(name for name, _, _ in members) == ["db1", "db2", "db3"], output
    assert [role for _, role, _ in members].count("leader") == 1
    assert "sync_standby" in output  # synchronous replication is on in the lab


def test_db_status_reads_through_any_member(lab_running):
    assert "as member db3 reads it" in healthy("db.status", "--host", "db3")


def test_backup_status_reads_the_repository_as_its_user(lab_running):
    output = healthy("backup.status")
    assert "Stanza govops: ok (code 0), cipher aes-256-cbc" in output
    assert re.search(r"^\S+F\s+full\s", output, re.MULTILINE), output
    assert "pgbackrest-backup-full.service" in output and "pgbackrest-exporter.service" in output


def test_sms_status_reads_each_gateway(lab_running):
    output = healthy("sms.status")
    for gateway in ("sms1", "sms2"):
        assert f"== {gateway}: bearerbox running" in output
    assert len(re.findall(r"^operator\s+online \d+s", output, re.MULTILINE)) >= 2, output


def test_alerts_list_shows_the_watchdog(lab_running):
    output = healthy("alerts.list")
    assert re.search(r"^Watchdog\s+none\s", output, re.MULTILINE), output
    assert "Silences (" in output


def test_host_status_reaches_every_host(lab_running):
    output = healthy("host.status")
    for name in lab_hosts():
        assert f"== {name} (" in output, name
    assert "failed units: none" in output


def test_host_certs_lists_the_installed_certificates(lab_running):
    output = healthy("host.certs", "--host", "db1")
    assert "/etc/etcd/tls/member.crt" in output and "/etc/patroni/tls/member.crt" in output


@pytest.mark.parametrize("service", ["cfm", "scorecard"])
def test_k8s_status_reads_the_service_objects(lab_running, service):
    output = healthy("k8s.status", "--service", service)
    assert f"== namespace {service}" in output and "deployment.apps/web" in output


def test_a_switchover_dry_run_leaves_the_leader(lab_running):
    before = re.search(r"^(db\d)\s+\S+\s+leader", healthy("db.status"), re.MULTILINE).group(1)
    code, output = fab("db.switchover", "--dry-run")
    assert code == 0 and "Dry run: nothing changed." in output, output
    after = re.search(r"^(db\d)\s+\S+\s+leader", healthy("db.status"), re.MULTILINE).group(1)
    assert before == after


def test_wrong_group_and_unknown_host_are_refused(lab_running):
    code, output = fab("sms.status", "--host", "db1")
    assert code == 2 and "sms.status runs on the sms_gateway group (sms1, sms2); db1 is in db" in output
    code, output = fab("host.status", "--host", "db9")
    assert code == 2 and "Unknown host 'db9' in lab." in output


def test_the_health_table_names_every_host(lab_running):
    """make health ends with a host x component table of the report `make lab` wrote."""
    result = run(
        str(REPO / ".venv/bin/python"),
        "tools/health_table.py",
        "reports/health-lab.xml",
        "--env",
        "lab",
        "--inventory",
        "stacks/lab",
    )
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0] for line in result.stdout.splitlines()[2:] if line.strip()}
    assert rows >= lab_hosts(), result.stdout
