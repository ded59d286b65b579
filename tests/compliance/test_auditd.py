"""CIS Debian 12 section 6.2 (auditd) and the kit's audited configuration, read from the running
host: the package, the service and the rules the kernel has loaded (auditctl -l), not the files."""

from __future__ import annotations

import pytest

from tests.compliance.controls import control

testinfra_hosts = ["ansible://all"]

# The kit's services' configuration (roles/baseline/defaults/main.yml, baseline_auditd_watched_paths).
KIT_CONFIG = ["/etc/ssh/sshd_config", "/etc/nftables.conf", "/etc/patroni", "/etc/postgresql", "/etc/pgbackrest",
              "/etc/kannel", "/etc/prometheus", "/etc/alertmanager", "/etc/kubernetes"]  # fmt: skip


@pytest.fixture(scope="module")
def loaded_rules(host) -> list[str]:
    """The rules in force; empty when auditd or the kernel's audit is not there."""
    with host.sudo():
        result = host.run("auditctl -l")
    return result.stdout.splitlines() if result.rc == 0 else []


def watched(rules: list[str], path: str, perms: str = "wa") -> bool:
    """A watch on `path` for at least `perms`, in auditctl -l's form (-w path -p wa -k key, or the
    dir/path field form the kernel may list it in)."""
    for rule in rules:
        fields = rule.split()
        target = fields[fields.index("-w") + 1] if "-w" in fields else None
        for field in fields:
            if field.startswith(("dir=", "path=")):
                target = field.split("=", 1)[1]
        perm = next((f.split("=", 1)[1] for f in fields if f.startswith("perm=")), None)
        perm = fields[fields.index("-p") + 1] if "-p" in fields else perm
        if target == path and perm and set(perms) <= set(perm):
            return True
    return False


def show_rules(evidence, rules: list[str], *words: str) -> None:
    picked = [rule for rule in rules if any(word in rule for word in words)]
    evidence.note(f"sudo auditctl -l (the rules mentioning {', '.join(words)})", "\n".join(picked) or "none loaded")


@control(
    "CIS-DEB12-6.2.1.1",
    title="auditd packages are installed",
    rationale="The kernel's audit records need auditd to be written to disk.",
    severity="medium",
    source="CIS Debian 12",
)
def test_auditd_installed(host, evidence):
    assert evidence.installed("auditd"), "auditd is not installed"


@control(
    "CIS-DEB12-6.2.1.2",
    title="auditd service is enabled and active",
    rationale="Audit records are lost while auditd is not running.",
    severity="medium",
    source="CIS Debian 12",
)
def test_auditd_running(host, evidence):
    enabled = evidence.unit("auditd.service", "is-enabled")
    active = evidence.unit("auditd.service", "is-active")
    assert (enabled, active) == ("enabled", "active"), f"auditd.service is {enabled} and {active}"


@control(
    "CIS-DEB12-6.2.3.1",
    title="Changes to system administration scope (sudoers) are collected",
    rationale="Who may act as root must not change without a record.",
    severity="medium",
    source="CIS Debian 12",
)
def test_sudoers_changes_collected(host, evidence, loaded_rules):
    show_rules(evidence, loaded_rules, "sudoers")
    missing = [p for p in ("/etc/sudoers", "/etc/sudoers.d") if not watched(loaded_rules, p)]
    assert not missing, f"no write watch on {missing}"


@control(
    "CIS-DEB12-6.2.3.4",
    title="Events that modify date and time information are collected",
    rationale="A changed clock can hide the order of events in every log.",
    severity="medium",
    source="CIS Debian 12",
)
def test_time_changes_collected(host, evidence, loaded_rules):
    show_rules(evidence, loaded_rules, "adjtimex", "settimeofday", "clock_settime", "/etc/localtime")
    syscalls = " ".join(rule for rule in loaded_rules if "arch=b64" in rule)
    missing = [call for call in ("adjtimex", "settimeofday", "clock_settime") if call not in syscalls]
    assert not missing, f"64-bit calls not audited: {missing}"
    assert watched(loaded_rules, "/etc/localtime"), "no write watch on /etc/localtime"


@control(
    "CIS-DEB12-6.2.3.8",
    title="Events that modify user/group information are collected",
    rationale="An account or group added or changed must leave a record.",
    severity="medium",
    source="CIS Debian 12",
)
def test_identity_changes_collected(host, evidence, loaded_rules):
    paths = ["/etc/group", "/etc/passwd", "/etc/gshadow", "/etc/shadow", "/etc/security/opasswd"]
    show_rules(evidence, loaded_rules, *paths)
    missing = [p for p in paths if not watched(loaded_rules, p)]
    assert not missing, f"no write watch on {missing}"


@control(
    "KIT-AUDIT-01",
    title="Changes to the kit's configuration files are collected",
    rationale="A change made by hand to a service's configuration (outside make deploy) leaves a record of "
    "who made it and when; make audit's drift section shows what differs.",
    severity="medium",
    source="kit",
)
def test_kit_configuration_changes_collected(host, evidence, loaded_rules):
    show_rules(evidence, loaded_rules, "govops-config")
    missing = [p for p in KIT_CONFIG if not watched(loaded_rules, p)]
    assert not missing, f"no write watch on {missing}"
