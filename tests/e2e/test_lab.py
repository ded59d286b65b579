"""The whole lab: converged, healthy, re-runs change nothing. (Check mode on the converged lab is
the drift section of the first audit, tests/e2e/test_audit.py; drift found by the health checks
and repaired by deploy: every exercise of tests/e2e/test_exercises.py.)"""

from __future__ import annotations

from conftest import recap, run

LAB_HOSTS = {"db1", "db2", "db3", "backup1", "scratch1", "sms1", "sms2", "smsc1", "mon1", "k8s1"}


def test_second_converge_reports_zero_changes(lab_running):
    result = run("ansible-playbook", "-i", "stacks/lab", "playbooks/site.yml")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    hosts = recap(result.stdout)
    assert set(hosts) == LAB_HOSTS
    changed = {host: counts["changed"] for host, counts in hosts.items() if counts["changed"]}
    assert not changed, f"a converge with nothing to change changed: {changed}"


def test_lab_hosts_rerun_changes_nothing(lab_running):
    result = run("ansible-playbook", "-i", "stacks/lab", "playbooks/lab/up.yml")
    assert result.returncode == 0, result.stdout[-3000:]
    changed = {host: counts["changed"] for host, counts in recap(result.stdout).items() if counts["changed"]}
    assert not changed, f"re-running lab-hosts changed: {changed}\n{result.stdout[-3000:]}"


def test_hosts_reach_each_other_by_name(lab_running):
    result = run(
        "ansible",
        "-i",
        "stacks/lab",
        "db1",
        "-m",
        "ansible.builtin.command",
        "-a",
        "getent hosts mon1.lab.govops.internal",
    )
    assert result.returncode == 0 and "10.231.0.51" in result.stdout, result.stdout


def test_lab_status_lists_every_host(lab_running):
    status = run("make", "--no-print-directory", "lab-status")
    assert status.returncode == 0
    for host in LAB_HOSTS:
        assert f"govops-lab-{host}" in status.stdout
    assert "total" in status.stdout
