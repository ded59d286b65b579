"""Incidents rehearsed end to end in the lab, as on-call staff meet them: the fault is injected, its
alert reaches Alertmanager, the steps of the alert's runbook are run with the runbooks' own Fabric
tasks (non-interactively, confirmed with --yes), and the alert resolves. Each test prints two
figures: fault -> alert, and first runbook step -> alert resolved. Each fault is undone whatever
happens, so the lab stays usable for the tests after these."""

from __future__ import annotations

import re
import time

import pytest
from conftest import run
from monitoring_lab import Monitoring, ready_monitoring
from runbook_lab import changed, fab, healthy
from sms_lab import wait_until

ALERT_WITHIN = 90  # seconds from the fault to the alert in Alertmanager (the monitoring issue)


@pytest.fixture(scope="module")
def monitoring(lab_running) -> Monitoring:
    return ready_monitoring()


def report(alert: str, to_alert: float, first_step: float, resolved: float) -> None:
    print(f"\n{alert}: fault -> alert {to_alert:.0f} s; first runbook step -> resolved {resolved - first_step:.0f} s")


def leader_in(output: str) -> str:
    found = re.search(r"^(db\d)\s+\S+\s+leader", output, re.MULTILINE)
    assert found, f"no leader in db.status:\n{output[-3000:]}"
    return found.group(1)


def test_the_database_primary_is_lost(monitoring):
    """runbooks/PostgresqlDown.md: Patroni fails over; the lost member comes back as a replica."""
    lost = monitoring.leader()
    started = time.time()
    # Patroni stopped on the leader (a mistaken stop, or a crash loop systemd gave up on): its
    # PostgreSQL stops with it. A SIGKILL would not do: Restart=on-failure brings it straight back.
    monitoring.systemctl(lost, "stop", "patroni")
    try:
        to_alert = monitoring.wait_for_alert("PostgresqlDown", started, instance=lost)
        assert to_alert <= ALERT_WITHIN
        # A critical alert: on-call staff are paged by SMS through the kit's own gateways (the
        # SMSC simulator receives the page), and it reaches the second path, the incident webhook.
        paged = monitoring.wait_for_page(started, "PostgresqlDown")
        assert any(
            a["labels"]["alertname"] == "PostgresqlDown"
            for record in monitoring.sink("/incident")
            for a in record["body"].get("alerts", [])
        ), "the critical alert did not reach the incident webhook"
        # Diagnosis: db.status names the new leader and the missing member (so it is not OK yet).
        first_step = time.time()
        assert wait_until(lambda: leader_in(fab("db.status")[1]) != lost, 120, 5), f"{lost} still leads"
        # Mitigation step 3: restart Patroni on the member, which is no longer the leader.
        changed("host.restart", "--host", lost, "--unit", "patroni")
    finally:
        monitoring.systemctl(lost, "start", "patroni")  # a no-op once the runbook's step ran
    monitoring.wait_for_resolution("PostgresqlDown", instance=lost)
    resolved = time.time()
    # Verification: every member back, one leader, replicas streaming; on-call staff told by SMS.
    assert wait_until(lambda: fab("db.status")[0] == 0, 120, 5), fab("db.status")[1][-3000:]
    assert wait_until(lambda: monitoring.pages(started, "[RESOLVED]"), 120, 3), "no resolved page"
    report("PostgresqlDown (primary lost)", to_alert, first_step, resolved)
    print(f"paged by SMS {paged:.0f} s after the fault")


def test_the_smsc_link_is_down(monitoring):
    """runbooks/KannelSmscLinkOffline.md: a link someone stopped is started again."""
    started = time.time()
    changed("sms.stop-link", "--host", "sms1")  # the fault: sms1's bind to the SMSC is dropped
    try:
        to_alert = monitoring.wait_for_alert("KannelSmscLinkOffline", started, instance="sms1")
        assert to_alert <= ALERT_WITHIN
        first_step = time.time()
        code, output = fab("sms.status", "--host", "sms1")  # Diagnosis: the link is `dead`
        assert code != 0 and "dead" in output, output[-3000:]
        changed("sms.start-link", "--host", "sms1")  # Mitigation step 2
    finally:
        fab("sms.start-link", "--host", "sms1", "--yes")  # refused harmlessly if already online
    monitoring.wait_for_resolution("KannelSmscLinkOffline", instance="sms1")
    resolved = time.time()
    healthy("sms.status", "--host", "sms1")
    report("KannelSmscLinkOffline", to_alert, first_step, resolved)


def backups_playbook(*extra: str):
    result = run("ansible-playbook", "-i", "stacks/lab", "playbooks/backups.yml", "--limit", "backup1", *extra)
    assert result.returncode == 0, result.stdout[-3000:]


def test_the_backup_is_stale(monitoring):
    """runbooks/PgbackrestDiffBackupTooOld.md: a differential backup is started by hand.

    The lab cannot wait the real limit (26 h), so its limit is cut to 3 minutes for the test:
    the newest backup becomes too old, the runbook's backup resets its age, and the limit is
    put back at the end."""
    started = time.time()
    backups_playbook("-e", "pgbackrest_exporter_diff_max_age=180")
    try:
        to_alert = monitoring.wait_for_alert("PgbackrestDiffBackupTooOld", started, timeout=420)
        first_step = time.time()
        # Diagnosis: the alert names the stanza; backup.status shows the newest backups' ages (it
        # judges them by the inventory's limits, so the test's cut limit does not make it fail).
        code, output = fab("alerts.list")
        assert code == 0 and "PgbackrestDiffBackupTooOld" in output, output[-3000:]
        healthy("backup.status")
        changed("backup.start", "--type", "diff")  # Mitigation step 2
        monitoring.wait_for_resolution("PgbackrestDiffBackupTooOld", timeout=300)
        resolved = time.time()
    finally:
        backups_playbook()
    healthy("backup.status")
    report("PgbackrestDiffBackupTooOld", to_alert, first_step, resolved)
