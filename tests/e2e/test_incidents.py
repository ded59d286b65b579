"""Incidents rehearsed end to end in the lab, as on-call staff meet them: the fault is injected, its
alert reaches Alertmanager, the steps of the alert's runbook are run with the runbooks' own Fabric
tasks (non-interactively, confirmed with --yes), and the alert resolves. Each test prints two
figures: fault -> alert, and first runbook step -> alert resolved. Each fault is undone whatever
happens, so the lab stays usable for the tests after these.

A disk filling up and a certificate about to expire raise alerts that wait 5 minutes (`for:`)
before they fire, and a stale backup takes 3 minutes to become one. These faults are made before
the first test of this file, so those waits pass while the other incidents are rehearsed."""

from __future__ import annotations

import datetime
import re
import time
from dataclasses import dataclass

import pytest
from conftest import REPO, run
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from monitoring_lab import Monitoring, ready_monitoring
from runbook_lab import changed, fab, healthy
from sms_lab import wait_until

ALERT_WITHIN = 90  # seconds from the fault to the alert in Alertmanager (the monitoring issue)


# The lab's small disk (stacks/lab/host_vars/sms2.yml): Kannel's logs on sms2.
DISK_HOST, DISK_PATH = "sms2", "/var/log/kannel"
DISK_FILLER = f"{DISK_PATH}/bearerbox.log.1"  # a debug-level log, rotated out uncompressed
DISK_FREE_LEFT = 0.03  # HostDiskAlmostFull fires under 5% free
DISK_FOR = 300  # HostDiskAlmostFull's for: 5m
# backup1's certificate (pgBackRest's TLS server), issued again by the lab CA to expire in 5
# days: CertificateExpiresSoon's critical form (within 7 days).
CERT_HOST, CERT_DAYS = "backup1", 5
CERT_FOR = 300  # CertificateExpiresSoon's for: 5m
PKI = REPO / ".lab/pki"


@pytest.fixture(scope="module")
def monitoring(lab_running) -> Monitoring:
    return ready_monitoring()


def on_host(host: str, script: str) -> str:
    result = run("podman", "exec", f"govops-lab-{host}", "sh", "-ec", script, timeout=120)
    assert result.returncode == 0, f"{host}: {script}: {result.stderr}"
    return result.stdout


def fill_disk() -> None:
    """DISK_FILLER takes all but DISK_FREE_LEFT of the small disk (owned by Kannel, as its log would be)."""
    size, available = map(int, on_host(DISK_HOST, f"df -B1 --output=size,avail {DISK_PATH} | tail -n 1").split())
    filler = available - int(size * DISK_FREE_LEFT)
    assert filler > 0, f"{DISK_PATH} on {DISK_HOST} has only {available} bytes free before the fault"
    on_host(DISK_HOST, f"fallocate -l {filler} {DISK_FILLER} && chown kannel: {DISK_FILLER}")


def days_left(pem: bytes) -> float:
    expires = x509.load_pem_x509_certificate(pem).not_valid_after_utc
    return (expires - datetime.datetime.now(datetime.UTC)).total_seconds() / 86400


def issue_short_certificate(host: str, days: float) -> None:
    """The lab CA signs host's certificate again (same key, names and uses) to expire in `days`."""
    ca = x509.load_pem_x509_certificate((PKI / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((PKI / "ca.key").read_bytes(), password=None)
    current = x509.load_pem_x509_certificate((PKI / f"{host}.crt").read_bytes())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(current.subject)
        .issuer_name(ca.subject)
        .public_key(current.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
    )
    for extension in current.extensions:
        builder = builder.add_extension(extension.value, extension.critical)
    short = builder.sign(ca_key, hashes.SHA256())
    (PKI / f"{host}.crt").write_bytes(short.public_bytes(serialization.Encoding.PEM))


# PgbackrestDiffBackupTooOld's limit for the stale backup: the lab cannot wait the real 26 h.
BACKUP_LIMIT = 180


def backups_playbook(*extra: str):
    result = run("ansible-playbook", "-i", "stacks/lab", "playbooks/backups.yml", "--limit", "backup1", *extra)
    assert result.returncode == 0, result.stdout[-3000:]


@dataclass
class SlowFaults:
    disk_filled_at: float
    backup_faults_at: float  # the short-lived certificate installed, the backup limit cut


@pytest.fixture(scope="module", autouse=True)
def slow_faults(monitoring):
    """The faults whose alerts wait: the small disk filled; on backup1 the short-lived
    certificate installed and the differential backup limit cut to BACKUP_LIMIT, by one run of
    the backups playbook. All undone at the end whatever happened (a renewed certificate stays:
    it is the lab's normal one)."""
    saved = (PKI / f"{CERT_HOST}.crt").read_bytes()
    assert days_left(saved) > 21, f"{CERT_HOST}'s lab certificate expires soon before the fault"
    try:
        fill_disk()
        disk_filled_at = time.time()
        issue_short_certificate(CERT_HOST, CERT_DAYS)
        # pgBackRest's TLS server restarts to serve the new certificate
        backups_playbook("-e", f"pgbackrest_exporter_diff_max_age={BACKUP_LIMIT}")
        yield SlowFaults(disk_filled_at, time.time())
    finally:
        on_host(DISK_HOST, f"rm -f {DISK_FILLER}")
        path = PKI / f"{CERT_HOST}.crt"
        if not path.exists() or days_left(path.read_bytes()) < 21:
            path.write_bytes(saved)
        backups_playbook()


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


def test_the_backup_is_stale(monitoring, slow_faults):
    """runbooks/PgbackrestDiffBackupTooOld.md: a differential backup is started by hand.

    The lab cannot wait the real limit (26 h): slow_faults cut it to 3 minutes, the newest backup
    became too old, the runbook's backup resets its age, and the limit is put back at the end."""
    started = slow_faults.backup_faults_at
    try:
        to_alert = monitoring.wait_for_alert(
            "PgbackrestDiffBackupTooOld", started, timeout=max(started + 420 - time.time(), 10)
        )
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


def test_a_disk_is_filling(monitoring, slow_faults):
    """runbooks/HostDiskAlmostFull.md: the rotated-out log that fills the disk is deleted."""
    since = slow_faults.disk_filled_at
    remaining = since + DISK_FOR + ALERT_WITHIN - time.time()
    to_alert = monitoring.wait_for_alert(
        "HostDiskAlmostFull", since, timeout=max(remaining, 10), instance=DISK_HOST, mountpoint=DISK_PATH
    )
    assert to_alert <= DISK_FOR + ALERT_WITHIN
    first_step = time.time()
    code, output = fab("host.status", "--host", DISK_HOST)  # Diagnosis step 1
    assert code != 0 and f"{DISK_HOST}: {DISK_PATH} has" in output, output[-3000:]
    freed = changed("host.free-logs", "--host", DISK_HOST)  # Mitigation step 2
    assert f"deleted {DISK_FILLER}" in freed, freed[-3000:]
    monitoring.wait_for_resolution("HostDiskAlmostFull", instance=DISK_HOST, mountpoint=DISK_PATH)
    resolved = time.time()
    healthy("host.status", "--host", DISK_HOST)  # Verification
    healthy("sms.status", "--host", DISK_HOST)
    report("HostDiskAlmostFull", to_alert, first_step, resolved)


def test_a_certificate_is_about_to_expire(monitoring, slow_faults):
    """runbooks/CertificateExpiresSoon.md, then certificate-renewal.md for the lab: the host's
    certificate is issued again by the lab CA and installed on that host alone."""
    since = slow_faults.backup_faults_at
    remaining = since + CERT_FOR + ALERT_WITHIN - time.time()
    to_alert = monitoring.wait_for_alert(
        "CertificateExpiresSoon", since, timeout=max(remaining, 10), instance=CERT_HOST, severity="critical"
    )
    assert to_alert <= CERT_FOR + ALERT_WITHIN
    first_step = time.time()
    code, output = fab("host.certs", "--host", CERT_HOST)  # Diagnosis step 1
    assert code != 0 and re.search(rf"{CERT_HOST}: /etc/pgbackrest/tls/host.crt expires in [45] days", output), output[
        -3000:
    ]
    # Mitigation (certificate-renewal.md, lab): remove it, `make lab-hosts` issues it again,
    # `make deploy ENV=lab LIMIT=<host>` installs it.
    (PKI / f"{CERT_HOST}.crt").unlink()
    for command in (["lab-hosts"], ["deploy", "ENV=lab", f"LIMIT={CERT_HOST}"]):
        result = run("make", "--no-print-directory", *command)
        assert result.returncode == 0, f"make {' '.join(command)}:\n{result.stdout[-3000:]}{result.stderr[-2000:]}"
    assert days_left((PKI / f"{CERT_HOST}.crt").read_bytes()) > 800
    healthy("host.certs", "--host", CERT_HOST)  # Verification
    monitoring.wait_for_resolution("CertificateExpiresSoon", instance=CERT_HOST)
    resolved = time.time()
    healthy("backup.status")
    report("CertificateExpiresSoon", to_alert, first_step, resolved)
