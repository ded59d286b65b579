"""CIS Debian 12 section 5.1: the SSH server, as sshd itself reads its configuration (sshd -T).

The effective settings, not the file: a drop-in or a Match block that overrides the role's file
is caught too. One `sshd -T` per host; each control quotes the lines it judged."""

from __future__ import annotations

import pytest

from tests.compliance.controls import control

testinfra_hosts = ["ansible://all"]

WEAK_CIPHERS = {"3des-cbc", "aes128-cbc", "aes192-cbc", "aes256-cbc", "arcfour", "arcfour128", "arcfour256",
                "blowfish-cbc", "cast128-cbc", "rijndael-cbc@lysator.liu.se"}  # fmt: skip
WEAK_MACS = {"hmac-md5", "hmac-md5-96", "hmac-ripemd160", "hmac-sha1", "hmac-sha1-96", "umac-64@openssh.com",
             "hmac-md5-etm@openssh.com", "hmac-md5-96-etm@openssh.com", "hmac-ripemd160-etm@openssh.com",
             "hmac-sha1-etm@openssh.com", "hmac-sha1-96-etm@openssh.com", "umac-64-etm@openssh.com"}  # fmt: skip
SSHD_T = "sudo sshd -T (effective configuration)"
WEAK_KEX = {"diffie-hellman-group1-sha1", "diffie-hellman-group14-sha1", "diffie-hellman-group-exchange-sha1"}


@pytest.fixture(scope="module")
def sshd(host) -> dict[str, str]:
    """sshd -T: every setting sshd would run with, lower-case names."""
    with host.sudo():
        out = host.check_output("sshd -T")
    return dict(line.split(" ", 1) if " " in line else (line, "") for line in out.splitlines())


@control(
    "CIS-DEB12-5.1.1",
    title="Access to /etc/ssh/sshd_config is configured",
    rationale="Only root may read or change the SSH server's configuration.",
    severity="high",
    source="CIS Debian 12",
)
def test_sshd_config_permissions(host, evidence):
    result = evidence.run("stat -c '%U %G %a' /etc/ssh/sshd_config")
    owner, group, mode = result.stdout.split()
    assert (owner, group) == ("root", "root") and int(mode, 8) & 0o077 == 0, result.stdout


@control(
    "CIS-DEB12-5.1.5",
    title="sshd Banner is configured",
    rationale="Users see the terms of use before they authenticate.",
    severity="low",
    source="CIS Debian 12",
)
def test_sshd_banner(sshd, evidence):
    assert evidence.settings(SSHD_T, sshd, "banner")["banner"] not in ("none", "(not set)")


@control(
    "CIS-DEB12-5.1.6",
    title="sshd Ciphers are configured",
    rationale="CBC and RC4 ciphers have known weaknesses; only AEAD and CTR ciphers are offered.",
    severity="high",
    source="CIS Debian 12",
)
def test_sshd_ciphers(sshd, evidence):
    offered = set(evidence.settings(SSHD_T, sshd, "ciphers")["ciphers"].split(","))
    assert not offered & WEAK_CIPHERS, sorted(offered & WEAK_CIPHERS)


@control(
    "CIS-DEB12-5.1.7",
    title="sshd ClientAliveInterval and ClientAliveCountMax are configured",
    rationale="A session whose client stopped answering is closed instead of staying open.",
    severity="medium",
    source="CIS Debian 12",
)
def test_sshd_client_alive(sshd, evidence):
    found = evidence.settings(SSHD_T, sshd, "clientaliveinterval", "clientalivecountmax")
    assert int(found["clientaliveinterval"]) > 0 and int(found["clientalivecountmax"]) > 0


@control(
    "CIS-DEB12-5.1.8",
    title="sshd DisableForwarding is enabled",
    rationale="SSH tunnels would bypass the firewall and the services' own TLS and authentication.",
    severity="medium",
    source="CIS Debian 12",
)
def test_sshd_disable_forwarding(sshd, evidence):
    assert evidence.settings(SSHD_T, sshd, "disableforwarding")["disableforwarding"] == "yes"


@control(
    "CIS-DEB12-5.1.9",
    title="sshd GSSAPIAuthentication is disabled",
    rationale="The kit authenticates with keys only; an unused mechanism is attack surface.",
    severity="low",
    source="CIS Debian 12",
)
def test_sshd_gssapi(sshd, evidence):
    assert evidence.settings(SSHD_T, sshd, "gssapiauthentication")["gssapiauthentication"] == "no"


@control(
    "CIS-DEB12-5.1.10",
    title="sshd HostbasedAuthentication is disabled",
    rationale="Trusting another host's word for a user's identity is weaker than the user's own key.",
    severity="medium",
    source="CIS Debian 12",
)
def test_sshd_hostbased(sshd, evidence):
    assert evidence.settings(SSHD_T, sshd, "hostbasedauthentication")["hostbasedauthentication"] == "no"


@control(
    "CIS-DEB12-5.1.11",
    title="sshd IgnoreRhosts is enabled",
    rationale=".rhosts files must not grant logins.",
    severity="medium",
    source="CIS Debian 12",
)
def test_sshd_ignore_rhosts(sshd, evidence):
    assert evidence.settings(SSHD_T, sshd, "ignorerhosts")["ignorerhosts"] == "yes"


@control(
    "CIS-DEB12-5.1.12",
    title="sshd KexAlgorithms is configured",
    rationale="SHA-1 and 1024-bit Diffie-Hellman key exchanges are weak.",
    severity="high",
    source="CIS Debian 12",
)
def test_sshd_kex(sshd, evidence):
    offered = set(evidence.settings(SSHD_T, sshd, "kexalgorithms")["kexalgorithms"].split(","))
    assert not offered & WEAK_KEX, sorted(offered & WEAK_KEX)


@control(
    "CIS-DEB12-5.1.13",
    title="sshd LoginGraceTime is configured",
    rationale="Unauthenticated connections are dropped after at most 60 s, so they cannot pile up.",
    severity="low",
    source="CIS Debian 12",
)
def test_sshd_login_grace_time(sshd, evidence):
    assert 0 < int(evidence.settings(SSHD_T, sshd, "logingracetime")["logingracetime"]) <= 60


@control(
    "CIS-DEB12-5.1.14",
    title="sshd LogLevel is configured",
    rationale="Logins and the key used are logged (INFO or VERBOSE) for the audit trail.",
    severity="medium",
    source="CIS Debian 12",
)
def test_sshd_log_level(sshd, evidence):
    assert evidence.settings(SSHD_T, sshd, "loglevel")["loglevel"] in ("INFO", "VERBOSE")


@control(
    "CIS-DEB12-5.1.15",
    title="sshd MACs are configured",
    rationale="MD5, SHA-1 and 64-bit tag MACs are weak.",
    severity="high",
    source="CIS Debian 12",
)
def test_sshd_macs(sshd, evidence):
    offered = set(evidence.settings(SSHD_T, sshd, "macs")["macs"].split(","))
    assert not offered & WEAK_MACS, sorted(offered & WEAK_MACS)


@control(
    "CIS-DEB12-5.1.16",
    title="sshd MaxAuthTries is configured",
    rationale="At most 4 attempts per connection slows password and key guessing.",
    severity="medium",
    source="CIS Debian 12",
)
def test_sshd_max_auth_tries(sshd, evidence):
    assert 0 < int(evidence.settings(SSHD_T, sshd, "maxauthtries")["maxauthtries"]) <= 4


@control(
    "CIS-DEB12-5.1.17",
    title="sshd MaxSessions is configured",
    rationale="At most 10 sessions per connection bounds what one connection can hold.",
    severity="low",
    source="CIS Debian 12",
)
def test_sshd_max_sessions(sshd, evidence):
    assert 0 < int(evidence.settings(SSHD_T, sshd, "maxsessions")["maxsessions"]) <= 10


@control(
    "CIS-DEB12-5.1.18",
    title="sshd MaxStartups is configured",
    rationale="Unauthenticated connections are dropped early (10:30:60 or stricter) against floods.",
    severity="medium",
    source="CIS Debian 12",
)
def test_sshd_max_startups(sshd, evidence):
    start, rate, full = (int(part) for part in evidence.settings(SSHD_T, sshd, "maxstartups")["maxstartups"].split(":"))
    assert start <= 10 and rate >= 30 and full <= 60


@control(
    "CIS-DEB12-5.1.19",
    title="sshd PermitEmptyPasswords is disabled",
    rationale="An account without a password must not be a way in.",
    severity="critical",
    source="CIS Debian 12",
)
def test_sshd_permit_empty_passwords(sshd, evidence):
    assert evidence.settings(SSHD_T, sshd, "permitemptypasswords")["permitemptypasswords"] == "no"


@control(
    "CIS-DEB12-5.1.20",
    title="sshd PermitRootLogin is disabled",
    rationale="Admins log in as themselves and use sudo, so every action is traced to a person.",
    severity="high",
    source="CIS Debian 12",
)
def test_sshd_permit_root_login(sshd, evidence):
    assert evidence.settings(SSHD_T, sshd, "permitrootlogin")["permitrootlogin"] == "no"


@control(
    "CIS-DEB12-5.1.21",
    title="sshd PermitUserEnvironment is disabled",
    rationale="Users must not set environment variables that change how sshd runs their session.",
    severity="medium",
    source="CIS Debian 12",
)
def test_sshd_permit_user_environment(sshd, evidence):
    assert evidence.settings(SSHD_T, sshd, "permituserenvironment")["permituserenvironment"] == "no"


@control(
    "CIS-DEB12-5.1.22",
    title="sshd UsePAM is enabled",
    rationale="PAM's account and session rules (locks, limits, logging) apply to SSH logins.",
    severity="medium",
    source="CIS Debian 12",
)
def test_sshd_use_pam(sshd, evidence):
    assert evidence.settings(SSHD_T, sshd, "usepam")["usepam"] == "yes"


@control(
    "KIT-SSH-01",
    title="The SSH server answers and accepts public keys only",
    rationale="Passwords can be guessed or phished; a login needs an admin's key. Asked from the host "
    "itself, the server must answer and offer nothing but publickey.",
    severity="critical",
    source="kit",
)
def test_ssh_offers_public_keys_only(sshd, evidence):
    port = sshd["port"].split()[0]
    # `|| true`: ssh exits 255 when refused, which testinfra would take for its own connection failing
    result = evidence.run(
        "ssh -n -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=5"
        " -o PreferredAuthentications=none -p %s nobody@127.0.0.1 true 2>&1 || true",
        port,
    )
    assert "Permission denied (publickey)." in result.stdout, result.stdout
