"""tools/exercise.py without the lab: the catalogue is sound, and bad input is refused before
anything is broken (the lab is never reached: each case stops first)."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("exercise", REPO / "tools/exercise.py")
exercise = importlib.util.module_from_spec(spec)
spec.loader.exec_module(exercise)

CATALOGUE = yaml.safe_load((REPO / "exercises/catalogue.yml").read_text())
SOLUTIONS = yaml.safe_load((REPO / "exercises/solutions.yml").read_text())["solutions"]
HOSTS = {"db1", "db2", "db3", "sms1", "sms2", "backup1", "mon1", "k8s1"}
GROUPS = {"db", "backup", "sms_gateway", "monitoring"}


@pytest.fixture
def lab_state(tmp_path, monkeypatch):
    """The running exercise and the record in a scratch directory; the catalogue is the real one."""
    monkeypatch.setattr(exercise, "STATE", tmp_path / "exercise.json")
    monkeypatch.setattr(exercise, "RECORD", tmp_path / "exercises.json")
    return tmp_path


def test_the_catalogue_and_its_fixes_are_sound():
    catalogue = exercise.load_catalogue(exercise.Environment("lab"))
    assert len(catalogue) >= 10
    levels = {level: [e for e in catalogue.values() if e["level"] == level] for level in exercise.LEVELS}
    assert all(levels.values()), {level: len(found) for level, found in levels.items()}


def test_every_alert_an_exercise_waits_for_is_a_rule_of_the_kit():
    rules = "".join(path.read_text() for path in (REPO / "monitoring/rules").glob("*.yml*"))
    alerts = set(re.findall(r"- alert: (\w+)", rules))
    for item in CATALOGUE["exercises"]:
        assert set(item["grade"]["alerts"]) <= alerts, item["name"]
        for alert in item["grade"]["alerts"]:
            assert (REPO / f"runbooks/{alert}.md").is_file(), f"{item['name']}: {alert} has no runbook"


def test_symptoms_never_name_the_fault():
    """A symptom is what a user reports: never the unit, file or setting the break changes."""
    for item in CATALOGUE["exercises"]:
        faults = " ".join(step.get("run", step.get("kubectl", "")) for step in item["break"])
        words = {word for word in re.findall(r"[a-z][a-z0-9_.-]{5,}", faults)} - {"systemctl", "lab.govops.internal"}
        named = [word for word in words if word in item["symptom"]]
        assert not named, f"{item['name']}: the symptom names {named}"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda e: e.update(level="expert"), "db-replica-stopped.level: expected one of beginner"),
        (lambda e: e.update(target="db9"), "db-replica-stopped.target: expected a lab host"),
        (lambda e: e["break"].append({"run": "true"}), "db-replica-stopped.break step 2: expected exactly one of"),
        (lambda e: e["break"].append({"host": "target"}), "db-replica-stopped.break step 2: `host` needs `run`"),
        (lambda e: e["grade"].update(hosts=["dbs"]), "db-replica-stopped: unknown host or group 'dbs'"),
        (lambda e: e.update(hints=[]), "db-replica-stopped.hints: expected a non-empty list"),
        (lambda e: e.update(reset={}), "db-replica-stopped.reset: expected `deploy"),
        (lambda e: e.update(name="sms-smsbox-stopped"), "sms-smsbox-stopped: the name is used twice"),
    ],
)
def test_a_broken_catalogue_names_the_exercise_and_the_field(change, expected):
    data = copy.deepcopy(CATALOGUE)
    change(next(e for e in data["exercises"] if e["name"] == "db-replica-stopped"))
    problems = exercise.catalogue_problems(data, HOSTS, GROUPS, SOLUTIONS)
    assert any(problem.startswith(expected) for problem in problems), problems


def test_an_exercise_without_a_documented_fix_is_refused():
    solutions = {name: steps for name, steps in SOLUTIONS.items() if name != "sms-log-disk-full"}
    problems = exercise.catalogue_problems(CATALOGUE, HOSTS, GROUPS, {**solutions, "gone": [{"local": "true"}]})
    assert "sms-log-disk-full: no documented fix in solutions.yml" in problems
    assert "solutions.yml: gone: no such exercise" in problems


def test_an_unknown_exercise_is_refused_and_nothing_starts(lab_state, capsys):
    assert exercise.main(["start", "db-replica-stoped"]) == 2
    error = capsys.readouterr().err
    assert "Unknown exercise 'db-replica-stoped'. Known exercises:" in error and "db-replica-stopped" in error
    assert not exercise.STATE.exists()


def test_grade_without_a_running_exercise_is_refused(lab_state, capsys):
    assert exercise.main(["grade"]) == 2
    assert "No exercise is running: `make exercise` lists them" in capsys.readouterr().err
    assert not exercise.RECORD.exists()


def test_a_second_exercise_is_refused_while_one_runs(lab_state, capsys):
    running = {"name": "sms-smsbox-stopped", "target": "sms1", "since": "10:40", "started": "x", "hints": []}
    exercise.STATE.write_text(json.dumps(running))
    assert exercise.main(["start", "db-replica-stopped"]) == 2
    error = capsys.readouterr().err
    assert "'sms-smsbox-stopped' is running since 10:40" in error and "make exercise-reset" in error
    assert json.loads(exercise.STATE.read_text()) == running


def test_a_hint_out_of_range_is_refused_before_grading(lab_state, capsys):
    running = {"name": "sms-smsbox-stopped", "target": "sms1", "since": "10:40", "started": "x", "hints": []}
    exercise.STATE.write_text(json.dumps(running))
    assert exercise.main(["grade", "--hint", "9"]) == 2
    assert "HINT=9: sms-smsbox-stopped has hints 1 to 3" in capsys.readouterr().err
    assert not exercise.RECORD.exists()


def test_exercises_run_on_the_lab_only(lab_state, capsys):
    assert exercise.main(["--env", "prod", "start", "db-replica-stopped"]) == 2
    assert "exercises break hosts, so they run on the lab only (ENV=lab)" in capsys.readouterr().err


def test_the_list_shows_levels_and_what_was_solved(lab_state, capsys):
    exercise.RECORD.write_text(json.dumps({"attempts": [{"exercise": "backup-timer-disabled", "result": "pass"}]}))
    assert exercise.main(["list"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^backup-timer-disabled\s+beginner\s+backups\s+yes$", out, re.MULTILINE), out
    assert re.search(r"^db-pg-hba-refuses-app\s+advanced\s+database\s*$", out, re.MULTILINE), out


def test_the_scaled_deployment_is_put_back_at_the_stacks_replicas():
    stack = yaml.safe_load((REPO / "stacks/Pulumi.lab.yaml").read_text())["config"]["govops:services"]
    replicas = next(service["web"]["replicas"] for service in stack if service["name"] == "cfm")
    item = next(e for e in CATALOGUE["exercises"] if e["name"] == "k8s-deployment-scaled-to-zero")
    scale = f"--namespace cfm scale deployment web --replicas={replicas}"
    assert item["reset"]["undo"] == [{"kubectl": scale}]
    assert SOLUTIONS["k8s-deployment-scaled-to-zero"] == [{"kubectl": scale}]


@pytest.fixture
def commands(monkeypatch):
    """The commands the reset runs, recorded instead of run (each one succeeds)."""
    ran = []

    def fake_run(command, **kwargs):
        ran.append(command)
        return exercise.subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(exercise.subprocess, "run", fake_run)
    return ran


def test_reset_deploys_the_exercises_hosts_and_roles_then_ends_it(lab_state, commands):
    state = {"name": "sms-wrong-smpp-password", "target": "sms2", "since": "10:40", "started": "x", "hints": []}
    exercise.STATE.write_text(json.dumps(state))
    assert exercise.main(["reset"]) == 0
    assert commands == [["make", "--no-print-directory", "deploy", "ENV=lab", "LIMIT=sms2", "TAGS=kannel"]]
    assert not exercise.STATE.exists()


def test_reset_without_an_exercise_converges_the_whole_lab(lab_state, commands):
    assert exercise.main(["reset"]) == 0
    assert commands == [
        ["make", "--no-print-directory", "deploy", "ENV=lab"],
        ["make", "--no-print-directory", "pulumi-up"],
    ]


def test_a_failed_reset_keeps_the_exercise(lab_state, monkeypatch, capsys):
    state = {"name": "db-pg-hba-refuses-app", "target": "db1", "since": "10:40", "started": "x", "hints": []}
    exercise.STATE.write_text(json.dumps(state))
    failed = exercise.subprocess.CompletedProcess([], 2, "", "")
    monkeypatch.setattr(exercise.subprocess, "run", lambda command, **kwargs: failed)
    assert exercise.main(["reset"]) == 1
    assert (
        "`make --no-print-directory deploy ENV=lab LIMIT=db1,db2,db3 TAGS=postgresql` failed" in capsys.readouterr().err
    )
    assert json.loads(exercise.STATE.read_text()) == state


def test_a_grade_waits_for_the_alerts_to_clear_and_says_so_once(lab_state, monkeypatch, capsys):
    started = exercise.now().isoformat(timespec="seconds")
    state = {"name": "sms-smsbox-stopped", "target": "sms1", "since": "10:40", "started": started}
    state |= {"trainee": "ada", "hints": []}
    exercise.STATE.write_text(json.dumps(state))
    looks = [["KannelDown (firing, sms1)"], ["KannelDown (firing, sms1)"], []]
    pauses = []
    monkeypatch.setattr(exercise, "health", lambda hosts: [])
    monkeypatch.setattr(exercise, "alerts_now", lambda environment, names, hosts: looks.pop(0))
    monkeypatch.setattr(exercise.time, "sleep", pauses.append)
    assert exercise.main(["grade"]) == 0
    out = capsys.readouterr().out
    assert out.count("waiting for KannelDown (firing, sms1) to clear") == 1
    assert "PASS: sms-smsbox-stopped is fixed" in out
    assert pauses == [exercise.ALERTS_POLL_SECONDS] * 2
