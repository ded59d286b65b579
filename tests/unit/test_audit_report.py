"""tools/audit_report.py: waivers checked before they apply, an expired waiver fails, drift read
per host, and a report written in three formats for the hosts that were checked."""

import datetime
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import audit_report

TODAY = datetime.date(2026, 12, 1)


def junit(path: Path, cases: list[tuple[str, str, str]]) -> Path:
    """cases: (host, control id, outcome: pass / fail / error)."""
    suite = ET.Element("testsuite")
    for host, control, outcome in cases:
        case = ET.SubElement(suite, "testcase", name=f"test_{control}[{host}]")
        properties = ET.SubElement(case, "properties")
        for name, value in {
            "control_id": control,
            "control_title": f"title of {control}",
            "control_rationale": "why",
            "control_severity": "high",
            "control_source": "kit",
            "host": host,
            "evidence": json.dumps([{"command": "sshd -T", "rc": 0, "excerpt": "permitrootlogin yes"}]),
        }.items():
            ET.SubElement(properties, "property", name=name, value=value)
        if outcome == "fail":
            ET.SubElement(case, "failure", message="AssertionError: root may log in")
        elif outcome == "error":
            ET.SubElement(case, "error", message="host unreachable")
    ET.ElementTree(suite).write(path)
    return path


def test_results_are_read_with_their_control_and_evidence(tmp_path):
    results = audit_report.read_results(junit(tmp_path / "j.xml", [("db1", "KIT-1", "pass"), ("db2", "KIT-1", "fail")]))
    assert [(r.host, r.control, r.status) for r in results] == [("db1", "KIT-1", "pass"), ("db2", "KIT-1", "fail")]
    assert results[1].message == "AssertionError: root may log in"
    assert results[1].evidence[0].command == "sshd -T"


def waivers_file(tmp_path, entries) -> Path:
    path = tmp_path / "waivers.yml"
    path.write_text(json.dumps({"waivers": entries}))
    return path


GOOD = {"control": "KIT-1", "hosts": ["db2"], "justification": "lab", "approver": "CISO", "expires": "2027-01-31"}


def test_bad_waivers_are_named_and_not_applied(tmp_path):
    entries = [
        GOOD,
        {**GOOD, "control": "KIT-404"},
        {key: value for key, value in GOOD.items() if key != "expires"},
        {**GOOD, "expires": "next year"},
    ]
    waivers, problems = audit_report.read_waivers(waivers_file(tmp_path, entries), {"KIT-1"})
    assert [w.control for w in waivers] == ["KIT-1"]
    assert len(problems) == 3
    assert "waiver 2 (KIT-404): unknown control id 'KIT-404'" in problems[0]
    assert "waiver 3 (KIT-1): missing expires" in problems[1]
    assert "waiver 4 (KIT-1): expires must be a date" in problems[2]


def test_a_waiver_covers_only_its_hosts_and_an_expired_one_fails(tmp_path):
    results = audit_report.read_results(
        junit(tmp_path / "j.xml", [("db1", "KIT-1", "fail"), ("db2", "KIT-1", "fail"), ("db3", "KIT-1", "fail")])
    )
    waivers, _ = audit_report.read_waivers(
        waivers_file(tmp_path, [GOOD, {**GOOD, "hosts": ["db3"], "expires": "2026-11-30"}]), {"KIT-1"}
    )
    audit_report.apply_waivers(results, waivers, TODAY)
    assert [(r.host, r.status) for r in results] == [("db1", "fail"), ("db2", "waived"), ("db3", "fail")]
    assert results[2].message.startswith("waiver expired on 2026-11-30")


def test_drift_is_summarised_per_host(tmp_path):
    log = tmp_path / "check.log"
    log.write_text(
        "TASK [baseline : Configure the SSH server] ****\n"
        "\x1b[0;33mchanged: [sms1]\x1b[0m\n"
        "ok: [sms2]\n"
        "TASK [kannel : Write the configuration] ****\n"
        "changed: [sms1] => (item=smsbox)\n"
        "TASK [baseline : Write the kernel and network settings] ****\n"
        "skipping: [sms1]\n"
        "RUNNING HANDLER [baseline : Reload the SSH server] ****\n"
        "changed: [sms1]\n"
        "PLAY RECAP ****\n"
        "sms1                       : ok=50   changed=2    unreachable=0    failed=0\n"
        "sms2                       : ok=50   changed=0    unreachable=0    failed=1\n"
        "smsc1                      : ok=0    changed=0    unreachable=1    failed=0\n"
    )
    drift = audit_report.read_drift(log)
    assert drift["sms1"] == {
        "changed": 2,
        "failed": 0,
        "tasks": [
            "baseline : Configure the SSH server",
            "kannel : Write the configuration",
            "baseline : Reload the SSH server",
        ],
        "reached": True,
    }
    assert drift["sms2"] == {"changed": 0, "failed": 1, "tasks": [], "reached": True}
    assert drift["smsc1"]["reached"] is False


def test_the_report_is_written_in_three_formats_and_fails_on_a_problem(tmp_path):
    path = junit(tmp_path / "j.xml", [("db1", "KIT-1", "pass"), ("db2", "KIT-1", "fail")])
    metadata = tmp_path / "meta.json"
    metadata.write_text(json.dumps({"time": "2026-12-01T10:00:00Z", "commit": "abc123", "tools": {"pytest": "8"}}))
    out = tmp_path / "report"
    rc = audit_report.main(
        [
            "--env",
            "lab",
            "--junit",
            str(path),
            "--waivers",
            str(waivers_file(tmp_path, [GOOD])),
            "--metadata",
            str(metadata),
            "--unreachable",
            "k8s1",
            "--out",
            str(out),
        ]
    )
    report = json.loads((out / "report.json").read_text())
    assert rc == 1  # k8s1 could not be checked
    assert report["summary"] == {"pass": 1, "fail": 0, "error": 0, "waived": 1, "pass_rate": 50.0}
    assert report["problems"] == ["k8s1: could not be reached; none of its controls were checked"]
    assert report["metadata"]["commit"] == "abc123"
    suites = ET.parse(out / "report.xml").getroot().findall("testsuite")
    assert [(s.get("name"), s.get("skipped")) for s in suites] == [("db1", "0"), ("db2", "1")]
    page = (out / "report.html").read_text()
    assert "permitrootlogin yes" in page and "Waived until 2027-01-31 by CISO" in page


def test_a_missing_junit_file_is_said_clearly(tmp_path, capsys):
    assert audit_report.main(["--env", "lab", "--junit", str(tmp_path / "none.xml"), "--out", str(tmp_path / "r")]) == 2
    assert "the compliance tests did not run" in capsys.readouterr().err


def test_audit_stops_when_check_mode_reaches_no_host(tmp_path, monkeypatch, capsys):
    """A check-mode run refused before any host (no PLAY RECAP) is said as such, not as ten
    unreachable hosts, and the controls do not run."""
    import audit

    ran = []

    def refused(command, log):
        ran.append("pytest --collect-only" if "--collect-only" in command else command[0])
        if command[0] == "ansible-playbook":
            log.write_text("ERROR! Attempting to decrypt but no vault secrets found\n")
            return 1
        return 0  # the controls' collection

    monkeypatch.setattr(audit, "run_logged", refused)
    assert audit.main(["--env", "lab", "--limit", "db1", "--reports", str(tmp_path)]) == 2
    assert ran == ["pytest --collect-only", "ansible-playbook"]
    assert "stopped before reaching any host" in capsys.readouterr().err
