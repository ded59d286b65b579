"""Any host: failed units, disk and memory; certificates and their expiry; restarting an allowed unit."""

from __future__ import annotations

import datetime
import re

from invoke import task

from . import db
from .core import Environment, Problem, Refused, Unreachable, change, connect, no_fabric_hosts, run, table, verdict

# The units on-call staff may restart with host.restart, per inventory group (the roles' units).
RESTARTABLE = {
    "all": ["prometheus-node-exporter", "govops-certificate-expiry"],
    "db": ["patroni", "etcd", "haproxy", "prometheus-postgres-exporter", "patroni-metrics-relay", "pgbackrest"],
    "backup": ["pgbackrest", "pgbackrest-exporter"],
    "restore_scratch": ["pgbackrest"],
    "sms_gateway": ["kannel-bearerbox", "kannel-smsbox", "kannel-exporter", "haproxy"],
    "monitoring": ["prometheus", "prometheus-alertmanager", "govops-sms-pager", "prometheus-blackbox-exporter"],
    "k8s_control_plane": ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "etcd"],
    "smsc_simulator": ["smsc-simulator", "govops-webhook-sink"],
}
# The thresholds of HostDiskAlmostFull, HostDiskFillingUp (critical) and HostMemoryLow.
DISK_ALMOST_FULL = 0.05
DISK_LOW = 0.20
MEMORY_LOW = 0.10
# CertificateExpiresSoon: warning within 21 days, critical within 7.
CERT_WARNING_DAYS = 21
CERT_CRITICAL_DAYS = 7
SKIPPED_FILESYSTEMS = {"tmpfs", "devtmpfs", "ramfs", "squashfs", "nsfs"}


def allowed_units(groups: list[str]) -> list[str]:
    return sorted({unit for group in ["all", *groups] for unit in RESTARTABLE.get(group, [])})


def parse_df(text: str) -> list[dict]:
    """`df -P -T -B1`: filesystem, type, size, used, available, use%, mount point."""
    rows = []
    for line in text.strip().splitlines()[1:]:
        parts = line.split()
        if len(parts) < 7 or parts[1] in SKIPPED_FILESYSTEMS or parts[1].startswith("fuse"):
            continue
        size, available = int(parts[2]), int(parts[4])
        if size == 0:
            continue
        rows.append({"mount": " ".join(parts[6:]), "type": parts[1], "size": size, "available": available})
    return rows


def parse_meminfo(text: str) -> dict[str, int]:
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if rest.split():
            values[key] = int(rest.split()[0]) * 1024
    return values


def _gib(size: int) -> str:
    return f"{size / 1024**3:.1f} GiB"


@task(auto_shortflags=False, help={"env": "environment (stacks/<env>)", "host": "one host (default: every host)"})
def status(c, env="lab", host=None):
    """Read-only: each host's failed units, disk space, memory, load and clock."""
    no_fabric_hosts(c)
    environment = Environment(env)
    hosts = [host] if host else environment.host_names
    if host:
        environment.check_host(host)
    problems = []
    for name in hosts:
        try:
            conn = connect(environment.connection_of(name))
        except Unreachable as error:
            problems.append(f"unreachable: {error}")
            continue
        with conn:
            failed = run(conn, ["systemctl", "list-units", "--failed", "--no-legend", "--plain"]).stdout.split("\n")
            disks = parse_df(run(conn, ["df", "-P", "-T", "-B1"]).stdout)
            memory = parse_meminfo(run(conn, ["cat", "/proc/meminfo"]).stdout)
            load = run(conn, ["cat", "/proc/loadavg"]).stdout.split()[:3]
            synced = (
                run(conn, ["timeout", "10", "timedatectl", "show", "-p", "NTPSynchronized", "--value"]).stdout.strip()
                or "?"
            )
        failed = [line.split()[0] for line in failed if line.strip()]
        available = memory.get("MemAvailable", 0) / max(memory.get("MemTotal", 1), 1)
        print(
            f"== {name} ({', '.join(environment.groups_of(name))}): load {' '.join(load)}, memory"
            f" {available:.0%} available of {_gib(memory.get('MemTotal', 0))}, clock synchronised: {synced}"
        )
        print(f"   failed units: {', '.join(failed) or 'none'}")
        print(
            table(
                ["   mount", "type", "size", "free"],
                [["   " + d["mount"], d["type"], _gib(d["size"]), f"{d['available'] / d['size']:.0%}"] for d in disks],
            )
        )
        problems += [f"{name}: {unit} failed (runbooks/HostSystemdUnitFailed.md)" for unit in failed]
        for disk in disks:
            free = disk["available"] / disk["size"]
            if free < DISK_ALMOST_FULL:
                problems.append(f"{name}: {disk['mount']} has {free:.1%} free (runbooks/HostDiskAlmostFull.md)")
            elif free < DISK_LOW:
                print(f"   note: {disk['mount']} has {free:.0%} free (HostDiskFillingUp watches it)")
        if available < MEMORY_LOW:
            problems.append(f"{name}: {available:.0%} of memory available (runbooks/HostMemoryLow.md)")
    verdict(problems, "no failed unit, no full disk, memory available on every host")


@task(
    auto_shortflags=False,
    help={
        "env": "environment (stacks/<env>)",
        "host": "the host",
        "unit": "the systemd unit (host.restart --host H --unit ? lists the allowed ones)",
        "yes": "do not ask for confirmation (needed in a non-interactive shell)",
        "dry_run": "print what would be done and change nothing",
    },
)
def restart(c, env="lab", host=None, unit=None, yes=False, dry_run=False):
    """Changes: restart one service on one host (only the units its groups allow)."""
    no_fabric_hosts(c)
    environment = Environment(env)
    if not host:
        raise Refused(f"host.restart acts on one host: say which with --host ({' '.join(environment.host_names)})")
    environment.check_host(host)
    allowed = allowed_units(environment.groups_of(host))
    unit = (unit or "").removesuffix(".service")
    if unit not in allowed:
        raise Refused(
            f"--unit {unit or '?'}: on {host} ({', '.join(environment.groups_of(host))}) host.restart may restart"
            f" {', '.join(allowed)}"
        )
    plan = [f"systemctl restart {unit}.service on {host}", "print its state and its last journal lines"]
    warning = ""
    if unit == "patroni":
        plan.insert(0, f"refuse if {host} leads the database cluster (restarting Patroni there fails over)")
        warning = "PostgreSQL on this member restarts with Patroni; its clients reconnect"
    if unit in ("kannel-bearerbox", "kannel-smsbox", "haproxy") and host in environment.group("sms_gateway"):
        warning = f"{host}'s sendsms answers 503 for a few seconds; the CFM service sends through the other gateway"

    def act() -> str:
        if unit == "patroni":
            _, cluster = db.read_cluster(environment, environment.group("db"))
            leader = [m["name"] for m in cluster.get("members", []) if m.get("role") == "leader"]
            if host in leader:
                raise Refused(f"{host} leads the cluster: run db.switchover first, then restart Patroni here")
        with connect(environment.connection_of(host)) as conn:
            restarted = run(conn, ["systemctl", "restart", f"{unit}.service"], timeout=120)
            shown = run(conn, ["systemctl", "show", f"{unit}.service", "-p", "Type,ActiveState,Result"]).stdout
            journal = run(conn, ["journalctl", "-u", f"{unit}.service", "-n", "10", "--no-pager", "-o", "short-iso"])
        print(journal.stdout.rstrip())
        fields = dict(line.split("=", 1) for line in shown.splitlines() if "=" in line)
        # a oneshot job (govops-certificate-expiry) has run when its result is success
        ok = (
            fields.get("Result") == "success"
            if fields.get("Type") == "oneshot"
            else fields.get("ActiveState") == "active"
        )
        state = f"{fields.get('ActiveState')} (result {fields.get('Result')})"
        if restarted.exited != 0 or not ok:
            raise Problem(f"{unit} on {host} is {state} after the restart: {restarted.stderr.strip()[-300:]}")
        return f"{unit} on {host} is {state}"

    change(env, "host.restart", {"host": host, "unit": unit}, plan, act, yes=yes, dry_run=dry_run, warning=warning)


# Logs logrotate has already rotated out (name.1, name.2.gz, name-20261130, name.old) anywhere
# under /var/log, other file systems included (a log directory may be a disk of its own); the
# journal is left to journalctl. Live logs (name.log) never match.
ROTATED_LOGS = r".*\.[0-9]+(\.(gz|xz|bz2|zst))?|.*-[0-9]{8}(\.(gz|xz|bz2|zst))?|.*\.(gz|xz|bz2|zst|old)"
FIND_ROTATED_LOGS = [
    "find", "/var/log", "-path", "/var/log/journal", "-prune", "-o",
    "-type", "f", "-regextype", "posix-extended", "-regex", ROTATED_LOGS, "-printf", "%s %p\\n",
]  # fmt: skip


def parse_sizes(text: str) -> list[tuple[int, str]]:
    """`find -printf '%s %p\n'`: (bytes, path) per file, the largest first."""
    files = []
    for line in text.splitlines():
        size, _, path = line.partition(" ")
        if size.isdigit() and path:
            files.append((int(size), path))
    return sorted(files, reverse=True)


@task(
    auto_shortflags=False,
    help={
        "env": "environment (stacks/<env>)",
        "host": "the host",
        "journal_mb": "the most the journal may keep, in MB (journalctl --vacuum-size)",
        "yes": "do not ask for confirmation (needed in a non-interactive shell)",
        "dry_run": "print what would be done and change nothing",
    },
)
def free_logs(c, env="lab", host=None, journal_mb=200, yes=False, dry_run=False):
    """Changes: free disk space held by logs: rotated logs under /var/log deleted, the journal vacuumed."""
    no_fabric_hosts(c)
    environment = Environment(env)
    if not host:
        raise Refused(f"host.free-logs acts on one host: say which with --host ({' '.join(environment.host_names)})")
    environment.check_host(host)
    if not str(journal_mb).isdigit() or int(journal_mb) < 50:
        raise Refused(f"--journal-mb {journal_mb}: a whole number of MB, at least 50")
    plan = [
        f"delete the logs logrotate has rotated out under /var/log on {host} (name.1, name.2.gz,"
        " name-YYYYMMDD, name.old); live logs stay",
        f"vacuum the journal on {host} to at most {journal_mb} MB",
        "print each file deleted and the free space before and after",
    ]

    def act() -> str:
        with connect(environment.connection_of(host)) as conn:
            before = parse_df(run(conn, ["df", "-P", "-T", "-B1"]).stdout)
            rotated = parse_sizes(run(conn, FIND_ROTATED_LOGS).stdout)
            if rotated:
                deleted = run(conn, ["rm", "-f", "--", *[path for _, path in rotated]])
                if deleted.exited != 0:
                    raise Problem(f"rm on {host}: {deleted.stderr.strip()[-300:]}")
            vacuum = run(conn, ["journalctl", f"--vacuum-size={int(journal_mb)}M"], timeout=120)
            after = parse_df(run(conn, ["df", "-P", "-T", "-B1"]).stdout)
        for size, path in rotated:
            print(f"  deleted {path} ({size / 1024**2:.1f} MB)")
        print(vacuum.stderr.strip().splitlines()[-1] if vacuum.stderr.strip() else "journal: nothing to vacuum")
        free_before = {d["mount"]: d["available"] / d["size"] for d in before}
        for disk in after:
            was = free_before.get(disk["mount"])
            if was is not None and disk["available"] / disk["size"] - was >= 0.005:
                print(f"  {disk['mount']}: {was:.1%} free before, {disk['available'] / disk['size']:.1%} now")
        return f"{len(rotated)} rotated log(s), {sum(size for size, _ in rotated) / 1024**2:.0f} MB, deleted on {host}"

    change(
        env,
        "host.free-logs",
        {"host": host, "journal_mb": int(journal_mb)},
        plan,
        act,
        yes=yes,
        dry_run=dry_run,
    )


CERT_SCRIPT = """
for file in {globs}; do
  [ -f "$file" ] || continue
  end=$(openssl x509 -in "$file" -noout -enddate 2>/dev/null) || {{ echo "$file|unreadable|"; continue; }}
  subject=$(openssl x509 -in "$file" -noout -subject -nameopt RFC2253 2>/dev/null)
  echo "$file|${{end#notAfter=}}|${{subject#subject=}}"
done
"""


def parse_certificates(text: str, now: datetime.datetime) -> list[dict]:
    certificates = []
    for line in text.strip().splitlines():
        path, _, rest = line.partition("|")
        end, _, subject = rest.partition("|")
        try:
            not_after = datetime.datetime.strptime(end.strip(), "%b %d %H:%M:%S %Y %Z").replace(tzinfo=datetime.UTC)
            days = (not_after - now).total_seconds() / 86400
        except ValueError:
            not_after, days = None, None
        certificates.append({"path": path, "not_after": not_after, "days": days, "subject": subject})
    return certificates


@task(auto_shortflags=False, help={"env": "environment (stacks/<env>)", "host": "one host (default: every host)"})
def certs(c, env="lab", host=None):
    """Read-only: the certificate files the kit installs on each host, and when each expires."""
    no_fabric_hosts(c)
    environment = Environment(env)
    hosts = [host] if host else environment.host_names
    if host:
        environment.check_host(host)
    problems = []
    now = datetime.datetime.now(datetime.UTC)
    for name in hosts:
        globs = environment.value(name, "node_exporter", "node_exporter_certificate_globs", [])
        if any(not re.fullmatch(r"[A-Za-z0-9_./*-]+", pattern) for pattern in globs):
            raise Refused(f"{name}: node_exporter_certificate_globs holds a pattern this task cannot pass safely")
        try:
            with connect(environment.connection_of(name)) as conn:
                found = run(conn, ["sh", "-c", CERT_SCRIPT.format(globs=" ".join(globs))])
        except Unreachable as error:
            problems.append(f"unreachable: {error}")
            continue
        certificates = parse_certificates(found.stdout, now)
        print(f"== {name}: {len(certificates)} certificate file(s)")
        if certificates:
            print(
                table(
                    ["   file", "expires (UTC)", "days left", "subject"],
                    [
                        [
                            "   " + cert["path"],
                            cert["not_after"].strftime("%Y-%m-%d") if cert["not_after"] else "unreadable",
                            f"{cert['days']:.0f}" if cert["days"] is not None else "-",
                            cert["subject"],
                        ]
                        for cert in sorted(
                            certificates, key=lambda cert: cert["days"] if cert["days"] is not None else -1
                        )
                    ],
                )
            )
        for cert in certificates:
            if cert["days"] is None:
                problems.append(f"{name}: {cert['path']} is not a readable PEM certificate (CertificateFileUnreadable)")
            elif cert["days"] < CERT_WARNING_DAYS:
                problems.append(
                    f"{name}: {cert['path']} expires in {cert['days']:.0f} days (runbooks/CertificateExpiresSoon.md)"
                )
    verdict(problems, f"no certificate expires within {CERT_WARNING_DAYS} days")
