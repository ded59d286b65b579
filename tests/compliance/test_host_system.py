"""CIS Debian 12 outside SSH: kernel and network settings, core dumps, banners, the account files,
insecure clients and the login umask. Read from the running host (sysctl, stat, dpkg)."""

from __future__ import annotations

import pytest

from tests.compliance.controls import control

testinfra_hosts = ["ansible://all"]

# (control id, title, rationale, severity, {sysctl: the values that pass})
SYSCTLS = [
    ("CIS-DEB12-1.5.1", "Address space layout randomization is enabled",
     "Randomized memory layout makes memory-corruption exploits unreliable.", "high",
     {"kernel.randomize_va_space": {"2"}}),
    ("CIS-DEB12-1.5.2", "ptrace_scope is restricted",
     "A process must not read another's memory (and its secrets) just because the same user runs it.", "medium",
     {"kernel.yama.ptrace_scope": {"1", "2", "3"}}),
    ("CIS-DEB12-3.3.1", "IP forwarding is disabled",
     "A server that is not a router must not route packets between networks.", "medium",
     {"net.ipv4.ip_forward": {"0"}}),
    ("CIS-DEB12-3.3.2", "Packet redirect sending is disabled",
     "Only a router sends ICMP redirects; a host that does can be used to reroute traffic.", "medium",
     {"net.ipv4.conf.all.send_redirects": {"0"}, "net.ipv4.conf.default.send_redirects": {"0"}}),
    ("CIS-DEB12-3.3.3", "Bogus ICMP responses are ignored",
     "Bogus error responses must not fill the logs.", "low",
     {"net.ipv4.icmp_ignore_bogus_error_responses": {"1"}}),
    ("CIS-DEB12-3.3.4", "Broadcast ICMP requests are ignored",
     "The host must not take part in smurf amplification attacks.", "low",
     {"net.ipv4.icmp_echo_ignore_broadcasts": {"1"}}),
    ("CIS-DEB12-3.3.5", "ICMP redirects are not accepted",
     "An attacker must not change the host's routes with forged redirects.", "medium",
     {"net.ipv4.conf.all.accept_redirects": {"0"}, "net.ipv4.conf.default.accept_redirects": {"0"},
      "net.ipv6.conf.all.accept_redirects": {"0"}, "net.ipv6.conf.default.accept_redirects": {"0"}}),
    ("CIS-DEB12-3.3.6", "Secure ICMP redirects are not accepted",
     "Even redirects from listed gateways can be forged.", "medium",
     {"net.ipv4.conf.all.secure_redirects": {"0"}, "net.ipv4.conf.default.secure_redirects": {"0"}}),
    ("CIS-DEB12-3.3.7", "Reverse path filtering is enabled",
     "Packets with a source address that cannot come from their interface are dropped (anti-spoofing).", "medium",
     {"net.ipv4.conf.all.rp_filter": {"1"}, "net.ipv4.conf.default.rp_filter": {"1"}}),
    ("CIS-DEB12-3.3.8", "Source routed packets are not accepted",
     "The sender must not choose the path a packet takes through the network.", "medium",
     {"net.ipv4.conf.all.accept_source_route": {"0"}, "net.ipv4.conf.default.accept_source_route": {"0"}}),
    ("CIS-DEB12-3.3.9", "Suspicious packets are logged",
     "Martian packets are a sign of spoofing or misrouting and must leave a trace.", "low",
     {"net.ipv4.conf.all.log_martians": {"1"}, "net.ipv4.conf.default.log_martians": {"1"}}),
    ("CIS-DEB12-3.3.10", "TCP SYN cookies are enabled",
     "A SYN flood must not exhaust the connection table.", "medium",
     {"net.ipv4.tcp_syncookies": {"1"}}),
    ("CIS-DEB12-3.3.11", "IPv6 router advertisements are not accepted",
     "Routes and addresses come from configuration, not from whoever sends an advertisement.", "medium",
     {"net.ipv6.conf.all.accept_ra": {"0"}, "net.ipv6.conf.default.accept_ra": {"0"}}),
]  # fmt: skip


@pytest.fixture(scope="module")
def sysctls(host) -> dict[str, str]:
    names = sorted({name for *_, wanted in SYSCTLS for name in wanted} | {"fs.suid_dumpable"})
    out = host.run("sysctl" + " %s" * len(names), *names)  # a name the kernel lacks is reported, not fatal
    return dict(line.split(" = ", 1) for line in out.stdout.splitlines() if " = " in line)


@pytest.mark.parametrize(
    "wanted",
    [
        pytest.param(
            wanted, id=cid, marks=control(cid, title=title, rationale=why, severity=sev, source="CIS Debian 12")
        )
        for cid, title, why, sev, wanted in SYSCTLS
    ],
)
def test_kernel_setting(sysctls, evidence, wanted):
    found = evidence.settings("sysctl " + " ".join(wanted), sysctls, *wanted)
    wrong = {name: value for name, value in found.items() if value not in wanted[name]}
    assert not wrong, f"expected {wanted}, found {wrong}"


@control(
    "CIS-DEB12-1.5.3",
    title="Core dumps are restricted",
    rationale="A core dump of a service holds its memory: passwords, keys, citizens' data.",
    severity="medium",
    source="CIS Debian 12",
)
def test_core_dumps_restricted(host, sysctls, evidence):
    limits = evidence.run(
        "grep -hEs '^\\s*\\*\\s+hard\\s+core\\s+0\\b' /etc/security/limits.conf /etc/security/limits.d/*"
    )
    evidence.note("sysctl fs.suid_dumpable", f"fs.suid_dumpable = {sysctls.get('fs.suid_dumpable')}")
    assert limits.rc == 0, "no '* hard core 0' in /etc/security/limits.conf or limits.d"
    assert sysctls.get("fs.suid_dumpable") == "0"


BANNERS = [
    ("CIS-DEB12-1.6.1", "CIS-DEB12-1.6.4", "/etc/motd", "Message of the day is configured properly"),
    ("CIS-DEB12-1.6.2", "CIS-DEB12-1.6.5", "/etc/issue", "Local login warning banner is configured properly"),
    ("CIS-DEB12-1.6.3", "CIS-DEB12-1.6.6", "/etc/issue.net", "Remote login warning banner is configured properly"),
]


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(
            path,
            id=cid,
            marks=control(
                cid,
                title=title,
                rationale="The banner states the terms of use and names no operating system or version "
                "(no \\m, \\r, \\s, \\v or 'Debian'), which would help an attacker.",
                severity="low",
                source="CIS Debian 12",
            ),
        )
        for cid, _, path, title in BANNERS
    ],
)
def test_banner_text(host, evidence, path):
    text = evidence.run("cat %s", path)
    assert text.rc == 0 and text.stdout.strip(), f"{path} is missing or empty"
    leaks = [token for token in ("\\m", "\\r", "\\s", "\\v", "Debian", "GNU/Linux") if token in text.stdout]
    assert not leaks, f"{path} names the system: {leaks}"


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(
            path,
            id=cid,
            marks=control(
                cid,
                title=f"Access to {path} is configured",
                rationale="Only root may change what users are told before and after they log in.",
                severity="low",
                source="CIS Debian 12",
            ),
        )
        for _, cid, path, _ in BANNERS
    ],
)
def test_banner_access(host, evidence, path):
    owner, group, mode = evidence.run("stat -c '%%U %%G %%a' %s", path).stdout.split()
    assert (owner, group) == ("root", "root") and int(mode, 8) & 0o133 == 0, f"{owner}:{group} {mode}"


# The databases and their backups (the `-` files the shadow tools keep), which hold the same data.
ACCOUNT_FILES = [
    ("CIS-DEB12-7.1.1", "/etc/passwd", 0o644, {"root"}),
    ("CIS-DEB12-7.1.2", "/etc/passwd-", 0o644, {"root"}),
    ("CIS-DEB12-7.1.3", "/etc/group", 0o644, {"root"}),
    ("CIS-DEB12-7.1.4", "/etc/group-", 0o644, {"root"}),
    ("CIS-DEB12-7.1.5", "/etc/shadow", 0o640, {"root", "shadow"}),
    ("CIS-DEB12-7.1.6", "/etc/shadow-", 0o640, {"root", "shadow"}),
    ("CIS-DEB12-7.1.7", "/etc/gshadow", 0o640, {"root", "shadow"}),
    ("CIS-DEB12-7.1.8", "/etc/gshadow-", 0o640, {"root", "shadow"}),
]


@pytest.mark.parametrize(
    ("path", "most", "groups"),
    [
        pytest.param(
            path,
            most,
            groups,
            id=cid,
            marks=control(
                cid,
                title=f"Permissions on {path} are configured",
                rationale="The account database is root's to change"
                + ("; password hashes are readable by root and the shadow group only." if most == 0o640 else "."),
                severity="high" if most == 0o640 else "medium",
                source="CIS Debian 12",
            ),
        )
        for cid, path, most, groups in ACCOUNT_FILES
    ],
)
def test_account_file(host, evidence, path, most, groups):
    result = evidence.run("stat -c '%%U %%G %%a' %s", path)
    if path.endswith("-") and result.rc != 0:
        return  # no backup file: nothing to protect (the file itself must exist)
    owner, group, mode = result.stdout.split()
    assert owner == "root" and group in groups, f"{path} is owned by {owner}:{group}"
    assert int(mode, 8) & ~most == 0, f"{path} has mode {mode}, at most {most:o} expected"


CLIENTS = [
    ("CIS-DEB12-2.2.1", "NIS client is not installed", ["nis"]),
    ("CIS-DEB12-2.2.2", "rsh client is not installed", ["rsh-client", "rsh-redone-client"]),
    ("CIS-DEB12-2.2.3", "talk client is not installed", ["talk"]),
    ("CIS-DEB12-2.2.4", "telnet client is not installed", ["telnet", "inetutils-telnet"]),
    ("CIS-DEB12-2.2.6", "ftp client is not installed", ["ftp", "tnftp", "inetutils-ftp"]),
]


@pytest.mark.parametrize(
    "packages",
    [
        pytest.param(
            packages,
            id=cid,
            marks=control(
                cid,
                title=title,
                rationale="A clear-text client invites credentials to cross the network unencrypted.",
                severity="medium",
                source="CIS Debian 12",
            ),
        )
        for cid, title, packages in CLIENTS
    ],
)
def test_insecure_client_absent(host, evidence, packages):
    result = evidence.run("dpkg-query -W -f '${db:Status-Abbrev} ${Package}\\n'" + " %s" * len(packages), *packages)
    installed = [line.split()[-1] for line in result.stdout.splitlines() if line.startswith("ii")]
    assert not installed, f"installed: {installed}"


@control(
    "CIS-DEB12-5.4.3.3",
    title="Default user umask is configured",
    rationale="Files an admin creates are not readable by other users unless made so on purpose (027).",
    severity="medium",
    source="CIS Debian 12",
)
def test_login_umask(host, evidence):
    result = evidence.run("grep -hEs '^\\s*umask\\s+[0-7]+' /etc/profile /etc/profile.d/*.sh /etc/bash.bashrc")
    masks = [int(line.split()[1], 8) for line in result.stdout.splitlines()]
    assert masks, "no umask set for login shells in /etc/profile, /etc/profile.d or /etc/bash.bashrc"
    assert masks[-1] & 0o027 == 0o027, f"the last umask set is {masks[-1]:03o}; 027 or stricter expected"


@control(
    "CIS-DEB12-6.1.1.1",
    title="journald service is enabled and active",
    rationale="The journal holds every service's log; without it there is no record to investigate.",
    severity="medium",
    source="CIS Debian 12",
)
def test_journald_active(host, evidence):
    state = evidence.unit("systemd-journald.service", "is-active")
    assert state == "active", f"systemd-journald is {state}"


@control(
    "KIT-LOG-01",
    title="The journal is persistent and size-limited",
    rationale="Logs survive a reboot (the reboot is often what is investigated), and a full journal never "
    "fills the disk the services need (common_journald_storage, common_journald_system_max_use).",
    severity="medium",
    source="kit",
)
def test_journal_persistent_and_bounded(host, evidence):
    merged = evidence.run("systemd-analyze cat-config systemd/journald.conf")
    settings = {}
    for line in merged.stdout.splitlines():  # the main file, then the drop-ins: the last one wins
        if "=" in line and not line.startswith(("#", ";")):
            name, _, value = line.partition("=")
            settings[name.strip()] = value.strip()
    found = evidence.settings("the merged journald.conf", settings, "Storage", "SystemMaxUse")
    assert found["Storage"] == "persistent", f"Storage is {found['Storage']}, persistent expected"
    assert found["SystemMaxUse"] != "(not set)", "SystemMaxUse is not set: the journal may take 10% of the disk"
    assert host.file("/var/log/journal").is_directory, "/var/log/journal is missing"
