"""The restore drill on the lab: a point-in-time restore from pgBackRest onto the scratch host
holds exactly the seeded rows of the chosen moment, none written after it; a live cluster member
is refused as the target before anything changes."""

from __future__ import annotations

import json

from conftest import REPO, recap, run


def test_restore_drill_restores_the_chosen_moment(lab_running):
    report_file = REPO / "reports/drill-restore.json"
    report_file.unlink(missing_ok=True)
    result = run("ansible-playbook", "-i", "stacks/lab", "playbooks/drills/restore.yml", "-e", "drill_seed_mb=32")
    assert result.returncode == 0, result.stdout[-4000:]
    report = json.loads(report_file.read_text())
    assert report["matches"] is True, report
    assert report["restored"]["rows"] == report["seeded"]["rows"] > 30_000, report
    assert report["restored"]["rows_after_target"] == 0, report
    # the newest restored row was written just before the target (the seed waits 1 s before noting it)
    assert 0 < report["newest_row_before_target_seconds"] < 5, report
    assert 0 < report["restore_seconds"] < 600, report


def test_restore_onto_a_live_member_is_refused(lab_running):
    result = run("ansible-playbook", "-i", "stacks/lab", "playbooks/drills/restore.yml", "-e", "drill_target=db1")
    assert result.returncode != 0
    assert "drill_target" in result.stdout and "must be one of pgbackrest_restore_hosts" in result.stdout, (
        result.stdout[-3000:]
    )
    assert sum(host["changed"] for host in recap(result.stdout).values()) == 0
