"""`make audit ENV=lab` as an auditor runs it: the converged lab passes (with the lab's waivers,
each justified), a setting changed by hand fails exactly its control and shows as drift, a deploy
repairs it (a service started by hand and not declared fails the expected-ports control until it
is stopped), and bad input (an unknown control in a waiver, a waiver without expiry, a host that
cannot be reached) is named while the other hosts are still audited.

The first audit's drift section is the lab's check-mode run: no host would change."""

from __future__ import annotations

import json

from conftest import REPO, lab_hosts, run

BROKEN_HOST = "scratch1"
SSHD_CONFIG = "/etc/ssh/sshd_config"
STRAY_UNIT = "govops-e2e-stray"
STRAY_PORT = 8999


def audit(*make_args: str) -> tuple[int, dict, str]:
    """make audit ENV=lab ...: its exit status, the report it wrote (report.json), its output."""
    result = run("make", "--no-print-directory", "audit", "ENV=lab", *make_args, timeout=1200)
    latest = REPO / "reports/audit-lab-latest"
    report = json.loads((latest / "report.json").read_text()) if (latest / "report.json").exists() else {}
    return result.returncode, report, result.stdout + result.stderr


def not_passed(report: dict) -> list[tuple[str, str, str]]:
    return sorted(
        (r["host"], r["control"], r["status"]) for r in report["results"] if r["status"] not in ("pass", "waived")
    )


def test_audit_passes_on_the_converged_lab(lab_running):
    rc, report, output = audit()
    assert rc == 0, output[-3000:]
    assert report["summary"]["fail"] == report["summary"]["error"] == 0, not_passed(report)
    assert report["problems"] == []
    assert {r["host"] for r in report["results"]} == lab_hosts()
    # check mode on every host: reached, nothing to change, nothing failed
    assert {host: (d["reached"], d["changed"], d["failed"]) for host, d in report["drift"].items()} == {
        host: (True, 0, 0) for host in lab_hosts()
    }
    for waiver in report["waivers"]:
        assert waiver["justification"].strip() and waiver["approver"].strip(), waiver
    waived = {r["control"] for r in report["results"] if r["status"] == "waived"}
    assert waived <= {w["control"] for w in report["waivers"]}
    meta = report["metadata"]
    assert meta["environment"] == "lab" and meta["commit"] and meta["tools"]["ansible-core"]
    out = REPO / "reports/audit-lab-latest"
    assert (out / "report.html").stat().st_size > 10_000 and (out / "report.xml").exists()
    # every control comes with its evidence
    assert all(r["evidence"] for r in report["results"]), [r["control"] for r in report["results"] if not r["evidence"]]


def test_root_login_and_a_stray_service_fail_their_controls_until_repaired(lab_running):
    allow_root = f"sed -i 's/^PermitRootLogin no$/PermitRootLogin yes/' {SSHD_CONFIG} && systemctl reload ssh"
    # a service nobody declared, listening beyond the loopback (the firewall drops it; KIT-PORT-01 names it)
    stray = f"systemd-run --unit {STRAY_UNIT} python3 -m http.server --bind 0.0.0.0 {STRAY_PORT}"
    for command in (allow_root, stray):
        result = run("ansible", BROKEN_HOST, "-i", "stacks/lab", "-b", "-m", "ansible.builtin.shell", "-a", command)
        assert result.returncode == 0, result.stdout + result.stderr
    try:
        rc, report, output = audit(f"LIMIT={BROKEN_HOST}")
        assert rc != 0, output[-3000:]  # make says 2 for any failed recipe
        assert not_passed(report) == [(BROKEN_HOST, "CIS-DEB12-5.1.20", "fail"), (BROKEN_HOST, "KIT-PORT-01", "fail")]
        ports = next(r for r in report["results"] if r["control"] == "KIT-PORT-01")
        assert f"tcp/{STRAY_PORT} on 0.0.0.0" in ports["message"], ports
        drift = report["drift"][BROKEN_HOST]
        assert drift["changed"] >= 1 and "baseline : Configure the SSH server" in drift["tasks"], drift
    finally:
        run("ansible", BROKEN_HOST, "-i", "stacks/lab", "-b", "-m", "ansible.builtin.command",
            "-a", f"systemctl stop {STRAY_UNIT}")  # fmt: skip
        repair = run("make", "--no-print-directory", "deploy", "ENV=lab", f"LIMIT={BROKEN_HOST}", "TAGS=baseline")
    assert repair.returncode == 0, repair.stdout[-3000:]
    rc, report, output = audit(f"LIMIT={BROKEN_HOST}")
    assert rc == 0, not_passed(report) or output[-3000:]


def test_bad_waivers_and_an_unreachable_host_are_named_and_the_rest_audited(lab_running, tmp_path):
    waivers = tmp_path / "waivers.yml"
    waivers.write_text(
        "waivers:\n"
        "  - {control: CIS-DEB12-9.9.9, hosts: [all], justification: typo, approver: someone, expires: 2030-01-01}\n"
        "  - {control: CIS-DEB12-5.1.20, hosts: [all], justification: no expiry, approver: someone}\n"
    )
    paused = "govops-lab-smsc1"
    assert run("podman", "pause", paused).returncode == 0
    try:
        rc, report, output = audit(f"LIMIT=smsc1,{BROKEN_HOST}", f"WAIVERS={waivers}")
    finally:
        assert run("podman", "unpause", paused).returncode == 0
    assert rc != 0, output[-3000:]
    problems = "\n".join(report["problems"])
    assert "unknown control id 'CIS-DEB12-9.9.9'" in problems
    assert "(CIS-DEB12-5.1.20): missing expires" in problems
    assert "smsc1: could not be reached" in problems
    assert report["waivers"] == []  # neither bad entry was applied
    assert report["drift"]["smsc1"]["reached"] is False
    assert {r["host"] for r in report["results"]} == {BROKEN_HOST}
    # without the lab's waivers, scratch1's kernel settings and kernel audit fail (a container's
    # are this machine's); everything else on it passes
    failed = {r["control"] for r in report["results"] if r["status"] == "fail"}
    kernel = ("CIS-DEB12-1.5.", "CIS-DEB12-3.3.", "CIS-DEB12-6.2.", "KIT-AUDIT-")
    assert failed and all(c.startswith(kernel) for c in failed), sorted(failed)
