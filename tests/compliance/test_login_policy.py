"""CIS Debian 12 sections 5.3 and 5.4.1 (password quality and ageing) and the kit's rule on
security updates, read from the running host: the PAM stack, pwquality's configuration, login.defs
and apt's effective configuration (apt-config dump)."""

from __future__ import annotations

import re

import pytest

from tests.compliance.controls import control

testinfra_hosts = ["ansible://all"]

PWQUALITY_FILES = "/etc/security/pwquality.conf /etc/security/pwquality.conf.d/*.conf"


@pytest.fixture(scope="module")
def pwquality(host) -> dict[str, str]:
    """pwquality's effective settings: its files, then the module's arguments in the PAM stack
    (which win). A bare flag such as enforce_for_root reads as "set"."""
    found: dict[str, str] = {}
    files = host.run(f"cat {PWQUALITY_FILES} 2>/dev/null")
    for line in files.stdout.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            key, _, value = line.partition("=")
            found[key.strip()] = value.strip() or "set"
    stack = host.run("grep -hE '^[^#]*pam_pwquality\\.so' /etc/pam.d/common-password")
    for argument in " ".join(stack.stdout.split("pam_pwquality.so")[1:]).split():
        key, _, value = argument.partition("=")
        found[key] = value or "set"
    return found


@pytest.fixture(scope="module")
def login_defs(host) -> dict[str, str]:
    """Its settings: a name and a value per line; a later line of the same name wins, as for login."""
    found: dict[str, str] = {}
    for line in host.file("/etc/login.defs").content_string.splitlines():
        fields = line.split()
        if len(fields) >= 2 and not fields[0].startswith("#"):
            found[fields[0]] = fields[1]
    return found


def number(value: str | None) -> int | None:
    return int(value) if value is not None and re.fullmatch(r"-?\d+", value) else None


@control(
    "CIS-DEB12-5.3.1.3",
    title="libpam-pwquality is installed",
    rationale="pam_pwquality is what refuses a weak password when one is set.",
    severity="medium",
    source="CIS Debian 12",
)
def test_pwquality_installed(host, evidence):
    assert evidence.installed("libpam-pwquality"), "libpam-pwquality is not installed"


@control(
    "CIS-DEB12-5.3.2.3",
    title="pam_pwquality module is enabled",
    rationale="The quality rules apply only when the module is in the password stack.",
    severity="medium",
    source="CIS Debian 12",
)
def test_pwquality_in_pam_stack(host, evidence):
    result = evidence.run("grep -nE '^[^#]*pam_pwquality\\.so' /etc/pam.d/common-password")
    assert result.rc == 0, "pam_pwquality.so is not in /etc/pam.d/common-password"


# (control id, title, setting, test of its value, what is expected)
PWQUALITY = [
    ("CIS-DEB12-5.3.3.2.1", "Password number of changed characters is configured", "difok",
     lambda v: (number(v) or 0) >= 2, "at least 2"),
    ("CIS-DEB12-5.3.3.2.2", "Minimum password length is configured", "minlen",
     lambda v: (number(v) or 0) >= 14, "at least 14"),
    ("CIS-DEB12-5.3.3.2.3", "Password complexity is configured", "minclass",
     lambda v: (number(v) or 0) >= 3, "at least 3 character classes"),
    ("CIS-DEB12-5.3.3.2.6", "Password dictionary check is enabled", "dictcheck",
     lambda v: v is None or number(v) != 0, "not 0 (the default is on)"),
    ("CIS-DEB12-5.3.3.2.8", "Password quality is enforced for the root user", "enforce_for_root",
     lambda v: v == "set", "set"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("setting", "passes", "expected"),
    [
        pytest.param(
            setting, passes, expected, id=cid,
            marks=control(cid, title=title, severity="medium", source="CIS Debian 12",
                          rationale="A password someone sets (for sudo, a console) must resist guessing."),
        )
        for cid, title, setting, passes, expected in PWQUALITY
    ],
)  # fmt: skip
def test_password_quality(host, evidence, pwquality, setting, passes, expected):
    found = evidence.settings(f"cat {PWQUALITY_FILES}; pam_pwquality arguments in common-password", pwquality, setting)
    value = pwquality.get(setting)
    assert passes(value), f"{setting} is {found[setting]}, {expected} expected"


AGEING = [
    ("CIS-DEB12-5.4.1.1", "Password expiration is configured", "PASS_MAX_DAYS", lambda v: 0 < v <= 365, "1 to 365"),
    ("CIS-DEB12-5.4.1.2", "Minimum password days is configured", "PASS_MIN_DAYS", lambda v: v >= 1, "at least 1"),
    ("CIS-DEB12-5.4.1.3", "Password expiration warning days is configured", "PASS_WARN_AGE", lambda v: v >= 7,
     "at least 7"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("setting", "passes", "expected"),
    [
        pytest.param(
            setting, passes, expected, id=cid,
            marks=control(cid, title=title, severity="low", source="CIS Debian 12",
                          rationale="A password that never changes stays valid for whoever learnt it."),
        )
        for cid, title, setting, passes, expected in AGEING
    ],
)  # fmt: skip
def test_password_ageing(host, evidence, login_defs, setting, passes, expected):
    found = evidence.settings("/etc/login.defs", login_defs, setting)
    value = number(login_defs.get(setting))
    assert value is not None and passes(value), f"{setting} is {found[setting]}, {expected} expected"


@control(
    "KIT-UPD-01",
    title="Security updates are installed automatically",
    rationale="A fixed vulnerability stays open until the fix is installed; the Debian security archive is "
    "applied daily by unattended-upgrades (the database and SMS packages are held for the operators' "
    "rolling upgrades).",
    severity="high",
    source="kit",
)
def test_security_updates_automatic(host, evidence):
    assert evidence.installed("unattended-upgrades"), "unattended-upgrades is missing"
    config = host.run("apt-config dump").stdout
    wanted = [
        line
        for line in config.splitlines()
        if line.startswith(("APT::Periodic::Unattended-Upgrade ", "APT::Periodic::Update-Package-Lists ",
                            "Unattended-Upgrade::Origins-Pattern", "Unattended-Upgrade::Automatic-Reboot"))
    ]  # fmt: skip
    evidence.note("apt-config dump (the periodic runs, the origins, the reboot policy)", "\n".join(wanted))
    assert 'APT::Periodic::Unattended-Upgrade "1";' in wanted, "the daily unattended upgrade is off"
    assert 'APT::Periodic::Update-Package-Lists "1";' in wanted, "the daily package list refresh is off"
    assert any("-security" in line for line in wanted if line.startswith("Unattended-Upgrade::Origins-Pattern")), (
        "the security archive is not among the origins"
    )
