"""Every exercise of exercises/catalogue.yml, proved on the lab through the trainee's own commands:
`make exercise NAME=...` breaks the lab and `make grade` fails; the documented fix
(exercises/solutions.yml) makes `make grade` pass; the exercise is started again (a trainee
trying once more) and `make exercise-reset` repairs that break: a health run of the exercise's
hosts is green. Each prints the time of each step. (make exits 2 whenever a
recipe fails: the messages tell a failed grade from a refusal.)"""

from __future__ import annotations

import json
import sys
import time

import pytest
from conftest import REPO, run

sys.path.insert(0, str(REPO / "tools"))
import exercise

ENVIRONMENT = exercise.Environment("lab")
CATALOGUE = exercise.load_catalogue(ENVIRONMENT)


def make(*args: str):
    return run("make", "--no-print-directory", *args, timeout=1800)


def output(result) -> str:
    return (result.stdout[-4000:] + result.stderr[-2000:]).strip()


@pytest.fixture(autouse=True)
def no_exercise_left(lab_running):
    """Each test starts with no exercise running, and leaves none (whatever happens)."""
    assert exercise.read_state() is None, f"an exercise is already running: {exercise.read_state()}"
    yield
    if exercise.read_state() is not None:
        make("exercise-reset")


def test_bad_input_changes_nothing():
    """An unknown name, a grade with nothing running, and a second exercise are refused."""
    unknown = make("exercise", "NAME=no-such-exercise")
    assert unknown.returncode == 2 and "Unknown exercise 'no-such-exercise'" in unknown.stderr, output(unknown)
    nothing = make("grade")
    assert nothing.returncode == 2 and "No exercise is running" in nothing.stderr, output(nothing)
    assert exercise.read_state() is None

    first = make("exercise", "NAME=backup-timer-disabled")
    assert first.returncode == 0, output(first)
    state = exercise.read_state()
    second = make("exercise", "NAME=sms-smsbox-stopped")
    assert second.returncode == 2 and "'backup-timer-disabled' is running since" in second.stderr, output(second)
    assert exercise.read_state() == state
    # the second one broke nothing: sms1 is as healthy as before
    assert make("health", "ENV=lab", "LIMIT=sms1").returncode == 0


@pytest.mark.parametrize("name", sorted(CATALOGUE, key=lambda n: exercise.LEVELS.index(CATALOGUE[n]["level"])))
def test_exercise_breaks_grades_and_resets(name):
    item = CATALOGUE[name]
    clock = time.monotonic()

    started = make("exercise", f"NAME={name}")
    assert started.returncode == 0, output(started)
    assert "What a user reports:" in started.stdout, output(started)
    to_break = time.monotonic() - clock
    state = exercise.read_state()
    hosts = exercise.hosts_of(ENVIRONMENT, item["grade"]["hosts"], state["target"])

    clock = time.monotonic()
    broken = make("grade", "HINT=1")
    assert broken.returncode != 0 and "FAIL: not fixed yet" in broken.stdout, output(broken)
    assert f"Hint 1 of {len(item['hints'])}: {item['hints'][0]}" in broken.stdout, output(broken)
    to_grade = time.monotonic() - clock

    clock = time.monotonic()
    for step in item["solution"]:
        exercise.run_step(ENVIRONMENT, step, state, quiet=True)
    to_fix = time.monotonic() - clock
    clock = time.monotonic()
    fixed = make("grade")
    assert fixed.returncode == 0 and f"PASS: {name} is fixed" in fixed.stdout, output(fixed)
    to_pass = time.monotonic() - clock

    attempts = [a for a in json.loads(exercise.RECORD.read_text())["attempts"] if a["started"] == state["started"]]
    assert [(a["result"], a["hints_seen"]) for a in attempts] == [("fail", [1]), ("pass", [1])], attempts

    clock = time.monotonic()
    again = make("exercise", f"NAME={name}")
    assert again.returncode == 0 and "What a user reports:" in again.stdout, output(again)
    to_break_again = time.monotonic() - clock
    clock = time.monotonic()
    reset = make("exercise-reset")
    assert reset.returncode == 0, output(reset)
    to_reset = time.monotonic() - clock
    assert exercise.read_state() is None
    clock = time.monotonic()
    health = make("health", "ENV=lab", f"LIMIT={','.join(hosts)}")
    assert health.returncode == 0 and "every host healthy" in health.stdout, output(health)
    to_health = time.monotonic() - clock
    print(
        f"\n{name} ({item['level']}): break {to_break:.0f} s, grade {to_grade:.0f} s, fix {to_fix:.0f} s,"
        f" passing grade {to_pass:.0f} s, break again {to_break_again:.0f} s, reset {to_reset:.0f} s,"
        f" health {to_health:.0f} s"
    )
