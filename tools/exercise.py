"""Break-and-fix exercises for trainees, on the lab (docs/trainees.md).

    exercise.py list              the catalogue, with level, topic and what the trainee solved
    exercise.py start NAME        break the lab as the exercise says; print only the symptom
    exercise.py grade [--hint N]  the health checks of the exercise's hosts, then its alerts
    exercise.py reset             restore what the exercise broke (make deploy), end it

The catalogue is exercises/catalogue.yml; the running exercise is .lab/exercise.json; every grade
is recorded in reports/exercises.json. Hosts are reached as the runbooks' Fabric tasks reach them.
Bad input (an unknown name, no exercise running, a second one) exits 2 and changes nothing.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from invoke.exceptions import Exit  # noqa: E402

from runbooks.tasks.core import Environment, Problem, Refused, connect, http_on_host, operator, table  # noqa: E402
from runbooks.tasks.core import run as run_on_host  # noqa: E402

CATALOGUE = REPO / "exercises/catalogue.yml"
SOLUTIONS = REPO / "exercises/solutions.yml"
STATE = REPO / ".lab/exercise.json"
RECORD = REPO / "reports/exercises.json"
HEALTH_XML = REPO / "reports/exercise-health.xml"
LEVELS = ("beginner", "intermediate", "advanced")
STEP_KINDS = ("host", "kubectl", "local")
TARGETS = ("leader", "replica")  # chosen from the database cluster when the exercise starts
ENVIRONMENT = "lab"  # exercises break hosts: the lab's, never another environment's
# Once the health checks pass, an alert still needs a scrape and an evaluation to clear (the lab
# scrapes every 15 s at most); a fix that holds clears it well within this.
ALERTS_CLEAR_SECONDS = 120
# How often the grade looks again (one request to Prometheus each): a cleared alert is reported
# within this, where a 10 s pause kept a fixed exercise waiting 5 s on average for nothing.
ALERTS_POLL_SECONDS = 3
HEALTH_JOBS = 2  # as make health


# -- the catalogue ------------------------------------------------------------------------------


def _step_problems(where: str, steps) -> list[str]:
    if not isinstance(steps, list) or not steps:
        return [f"{where}: expected a non-empty list of steps"]
    problems = []
    for index, step in enumerate(steps, 1):
        kinds = [kind for kind in STEP_KINDS if isinstance(step, dict) and kind in step]
        if len(kinds) != 1:
            problems.append(f"{where} step {index}: expected exactly one of {', '.join(STEP_KINDS)}")
        elif kinds == ["host"] and not isinstance(step.get("run"), str):
            problems.append(f"{where} step {index}: `host` needs `run`, the shell command to run there")
    return problems


def catalogue_problems(data, known_hosts: set[str], known_groups: set[str], solutions: dict) -> list[str]:
    """What is wrong with a catalogue, each naming the exercise and the field; [] when it is sound."""
    exercises = data.get("exercises") if isinstance(data, dict) else None
    if not isinstance(exercises, list) or not exercises:
        return ["expected a top-level `exercises:` list"]
    problems, seen = [], set()
    for exercise in exercises:
        name = exercise.get("name") if isinstance(exercise, dict) else None
        if not isinstance(name, str) or not name:
            problems.append(f"an exercise without a name: {exercise!r:.80}")
            continue
        if name in seen:
            problems.append(f"{name}: the name is used twice")
        seen.add(name)
        if exercise.get("level") not in LEVELS:
            problems.append(f"{name}.level: expected one of {', '.join(LEVELS)}, got {exercise.get('level')!r}")
        for field in ("topic", "symptom", "target"):
            if not isinstance(exercise.get(field), str) or not exercise[field].strip():
                problems.append(f"{name}.{field}: expected a text")
        target = exercise.get("target")
        if isinstance(target, str) and target not in TARGETS and target not in known_hosts:
            problems.append(f"{name}.target: expected a lab host or one of {', '.join(TARGETS)}, got {target!r}")
        problems += _step_problems(f"{name}.break", exercise.get("break"))
        grade = exercise.get("grade") or {}
        if not isinstance(grade.get("hosts"), list) or not grade["hosts"]:
            problems.append(f"{name}.grade.hosts: expected a non-empty list of hosts or groups")
        if not isinstance(grade.get("alerts"), list):
            problems.append(f"{name}.grade.alerts: expected a list of alert names (may be empty)")
        hosts = list(grade.get("hosts") or []) + list((exercise.get("reset") or {}).get("deploy", {}).get("limit", []))
        for host in hosts:
            if host != "target" and host not in known_hosts and host not in known_groups:
                problems.append(f"{name}: unknown host or group {host!r}")
        if not isinstance(exercise.get("hints"), list) or not exercise["hints"]:
            problems.append(f"{name}.hints: expected a non-empty list")
        reset = exercise.get("reset") or {}
        if not reset.get("deploy") and not reset.get("pulumi"):
            problems.append(f"{name}.reset: expected `deploy: {{limit, tags}}` or `pulumi: true`")
        if "undo" in reset:
            problems += _step_problems(f"{name}.reset.undo", reset["undo"])
        if name not in solutions:
            problems.append(f"{name}: no documented fix in {SOLUTIONS.name}")
        else:
            problems += _step_problems(f"{name} ({SOLUTIONS.name})", solutions[name])
    problems += [f"{SOLUTIONS.name}: {name}: no such exercise" for name in solutions if name not in seen]
    return problems


def load_catalogue(environment: Environment, path: Path = CATALOGUE, solutions_path: Path = SOLUTIONS) -> dict:
    """name -> exercise (with its `solution`); a broken catalogue is refused with every problem."""
    data = yaml.safe_load(path.read_text())
    solutions = (yaml.safe_load(solutions_path.read_text()) or {}).get("solutions") or {}
    groups = set(environment.inventory_manager.groups) - {"all", "ungrouped"}
    problems = catalogue_problems(data, set(environment.host_names), groups, solutions)
    if problems:
        raise Refused(f"{path.relative_to(REPO)} is not valid:\n  " + "\n  ".join(problems))
    return {exercise["name"]: {**exercise, "solution": solutions[exercise["name"]]} for exercise in data["exercises"]}


# -- state and record ---------------------------------------------------------------------------


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def read_state() -> dict | None:
    return json.loads(STATE.read_text()) if STATE.is_file() else None


def write_state(state: dict) -> None:
    STATE.parent.mkdir(parents=True, exist_ok=True)
    STATE.write_text(json.dumps(state, indent=2) + "\n")


def read_record() -> dict:
    return json.loads(RECORD.read_text()) if RECORD.is_file() else {"attempts": []}


def record_attempt(attempt: dict) -> None:
    record = read_record()
    record["attempts"].append(attempt)
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    RECORD.write_text(json.dumps(record, indent=2) + "\n")


# -- the lab ------------------------------------------------------------------------------------


def choose_target(environment: Environment, target: str) -> str:
    """A lab host as named, or the database cluster's leader or a replica at this moment."""
    if target not in TARGETS:
        return target
    from runbooks.tasks.db import read_cluster

    _, cluster = read_cluster(environment, environment.group("db"))
    members = sorted(cluster.get("members", []), key=lambda member: member["name"])
    running = [m["name"] for m in members if m.get("state") in ("running", "streaming")]
    leaders = [m["name"] for m in members if m.get("role") == "leader" and m["name"] in running]
    replicas = [name for name in running if name not in leaders]
    chosen = leaders if target == "leader" else replicas
    if not chosen:
        raise Problem(f"the database cluster has no running {target} now: `fab -r runbooks db.status --env lab`")
    return chosen[-1]


def hosts_of(environment: Environment, names: list[str], target: str) -> list[str]:
    hosts: list[str] = []
    for name in names:
        name = target if name == "target" else name
        hosts += environment.group(name) if name in environment.inventory_manager.groups else [name]
    return list(dict.fromkeys(hosts))


def fill(text: str, state: dict) -> str:
    # str.replace, not format: the shell commands hold braces of their own (awk)
    return text.replace("{target}", state["target"]).replace("{since}", state["since"])


def run_step(environment: Environment, step: dict, state: dict, *, quiet: bool = False) -> None:
    """One step of a break, a fix or an undo; a failure stops the whole list (Problem)."""
    if "host" in step:
        command = fill(step["run"], state)
        for host in hosts_of(environment, [step["host"]], state["target"]):
            with connect(environment.connection_of(host)) as conn:
                result = run_on_host(conn, ["sh", "-ec", command], timeout=120)
            if result.exited != 0:
                raise Problem(f"{host}: `{command}` failed: {(result.stderr or result.stdout).strip()[-500:]}")
        return
    if "kubectl" in step:
        from runbooks.tasks.k8s import kubectl_command

        command = [*kubectl_command(environment), *shlex.split(fill(step["kubectl"], state))]
    else:
        command = shlex.split(fill(step["local"], state))
    result = subprocess.run(command, cwd=REPO, text=True, capture_output=quiet, timeout=1800, check=False)
    if result.returncode != 0:
        detail = (result.stdout or "")[-1500:] + (result.stderr or "")[-1500:] if quiet else ""
        raise Problem(f"`{shlex.join(command)}` exited {result.returncode}{': ' + detail if detail else ''}")


def health(hosts: list[str]) -> list[str]:
    """The health checks of `hosts` (make health's, run quietly): the ones that failed. The
    run stops at the first failure: one is enough to say "not yet", and a broken service makes
    some checks wait for their timeouts."""
    HEALTH_XML.parent.mkdir(parents=True, exist_ok=True)
    HEALTH_XML.unlink(missing_ok=True)
    command = [
        sys.executable, "-m", "pytest", "tests/health", "-p", "no:cacheprovider", "-q", "--maxfail=1",
        "-n", str(HEALTH_JOBS), "--hosts=" + ",".join(f"ansible://{host}" for host in hosts),
        f"--ansible-inventory=stacks/{ENVIRONMENT}", f"--junitxml={HEALTH_XML}",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900, check=False)
    if not HEALTH_XML.is_file():
        raise Problem(f"the health checks did not run:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    cases = ET.parse(HEALTH_XML).getroot().iter("testcase")
    ran, failed = 0, []
    for case in cases:
        ran += 1
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(case.get("name", "?"))
    if ran == 0:
        raise Problem(f"no health check ran for {', '.join(hosts)}:\n{result.stdout[-2000:]}")
    return failed


def alerts_now(environment: Environment, names: list[str], hosts: list[str]) -> list[str]:
    """Which of the alerts `names` Prometheus has pending or firing for `hosts` (or for no host)."""
    if not names:
        return []
    monitoring = environment.group("monitoring")[0]
    port = environment.value(monitoring, "prometheus", "prometheus_port")
    with connect(environment.connection_of(monitoring)) as conn:
        answer = http_on_host(
            conn, "GET", f"http://127.0.0.1:{port}/api/v1/alerts", **environment.web_login(monitoring, "prometheus")
        )
    if answer.status != 200:
        raise Problem(f"Prometheus on {monitoring} answered {answer.status or 'nothing'}: {answer.body[:200]}")
    found = set()
    for alert in answer.json()["data"]["alerts"]:
        labels = alert["labels"]
        instance = labels.get("instance", "").split(":")[0]
        if labels["alertname"] in names and (not instance or instance in hosts):
            found.add(f"{labels['alertname']} ({alert['state']}{', ' + instance if instance else ''})")
    return sorted(found)


# -- the commands -------------------------------------------------------------------------------


def list_exercises(catalogue: dict) -> None:
    solved = {a["exercise"] for a in read_record()["attempts"] if a["result"] == "pass"}
    ordered = sorted(catalogue.values(), key=lambda e: (LEVELS.index(e["level"]), e["topic"].lower(), e["name"]))
    print(f"{len(catalogue)} exercises (make exercise NAME=<name> starts one):")
    rows = [[e["name"], e["level"], e["topic"], "yes" if e["name"] in solved else ""] for e in ordered]
    print(table(["name", "level", "topic", "solved before"], rows))
    state = read_state()
    if state:
        status = "solved, not reset" if state.get("solved") else "running"
        print(f"\n{state['name']} is {status} since {state['since']} (make grade; make exercise-reset ends it).")


def start(environment: Environment, catalogue: dict, name: str) -> None:
    if name not in catalogue:
        raise Refused(f"Unknown exercise '{name}'. Known exercises: {' '.join(sorted(catalogue))}")
    state = read_state()
    if state and not state.get("solved"):
        raise Refused(
            f"'{state['name']}' is running since {state['since']}: fix it and `make grade`, or `make exercise-reset`"
            " to give up on it, before starting another (nothing changed)"
        )
    exercise = catalogue[name]
    target = choose_target(environment, exercise["target"])
    hosts = hosts_of(environment, exercise["grade"]["hosts"], target)
    print(f"Checking that the lab is healthy on {', '.join(hosts)} before breaking it ...")
    failed = health(hosts)
    if failed:
        raise Problem(
            f"a health check fails on {', '.join(hosts)} before the exercise ({failed[0]}), so a grade would"
            f" mean nothing: `make health ENV=lab LIMIT={','.join(hosts)}`, then `make exercise-reset` or"
            " `make deploy ENV=lab`. Nothing was broken."
        )
    started = now()
    state = {
        "name": name,
        "target": target,
        "since": started.astimezone().strftime("%H:%M"),
        "started": started.isoformat(timespec="seconds"),
        "trainee": operator(),
        "hints": [],
    }
    write_state(state)  # first: a break that fails half-way is still undone by make exercise-reset
    for step in exercise["break"]:
        run_step(environment, step, state, quiet=True)
    print(f"\nExercise {name} ({exercise['level']}, {exercise['topic']}) has started. What a user reports:\n")
    print("  " + fill(exercise["symptom"], state).strip())
    print("\nFind the cause and fix it (docs/trainees.md). Then `make grade`; `make grade HINT=1` adds a hint.")


def grade(environment: Environment, catalogue: dict, hint: int | None) -> int:
    state = read_state()
    if not state:
        raise Refused("No exercise is running: `make exercise` lists them, `make exercise NAME=<name>` starts one")
    exercise = catalogue[state["name"]]
    if hint is not None and not 1 <= hint <= len(exercise["hints"]):
        raise Refused(f"HINT={hint}: {state['name']} has hints 1 to {len(exercise['hints'])}")
    hosts = hosts_of(environment, exercise["grade"]["hosts"], state["target"])
    print(f"Grading {state['name']}: the health checks of {', '.join(hosts)}, then the alerts ...")
    failed = health(hosts)
    firing: list[str] = []
    if not failed:
        deadline = time.monotonic() + ALERTS_CLEAR_SECONDS
        shown: list[str] = []
        while (firing := alerts_now(environment, exercise["grade"]["alerts"], hosts)) and time.monotonic() < deadline:
            if firing != shown:  # said once per change, not at every look
                print(f"  the health checks pass; waiting for {', '.join(firing)} to clear ...")
                shown = firing
            time.sleep(ALERTS_POLL_SECONDS)
    passed = not failed and not firing
    graded = now()
    seconds = round((graded - datetime.datetime.fromisoformat(state["started"])).total_seconds())
    if hint is not None and hint not in state["hints"]:
        state["hints"].append(hint)
    record_attempt(
        {
            "exercise": state["name"],
            "level": exercise["level"],
            "trainee": state["trainee"],
            "started": state["started"],
            "graded": graded.isoformat(timespec="seconds"),
            "seconds_since_start": seconds,
            "result": "pass" if passed else "fail",
            "health": "fail" if failed else "pass",
            "alerts": firing,
            "hints_seen": sorted(state["hints"]),
        }
    )
    if passed:
        state["solved"] = graded.isoformat(timespec="seconds")
        print(f"PASS: {state['name']} is fixed, {seconds // 60} min {seconds % 60} s after it started.")
        print("`make exercise-reset` ends it; recorded in reports/exercises.json.")
    else:
        why = f"a health check of {', '.join(hosts)} fails" if failed else f"still firing: {', '.join(firing)}"
        print(f"FAIL: not fixed yet ({why}). `make health ENV=lab` shows the checks.")
    if hint is not None:
        print(f"Hint {hint} of {len(exercise['hints'])}: {exercise['hints'][hint - 1]}")
    write_state(state)
    return 0 if passed else 1


def make(*arguments: str) -> None:
    """A target of the kit's Makefile, its output shown as it goes; a failure stops the reset."""
    command = ["make", "--no-print-directory", *arguments]
    if subprocess.run(command, cwd=REPO, timeout=1800, check=False).returncode != 0:
        raise Problem(f"`{shlex.join(command)}` failed (its output is above)")


def reset(environment: Environment, catalogue: dict) -> None:
    state = read_state()
    if not state:
        print("No exercise is recorded: the whole lab is converged again (make deploy ENV=lab, make pulumi-up).")
        make("deploy", "ENV=lab")
        make("pulumi-up")
        return
    plan = catalogue[state["name"]]["reset"]
    for step in plan.get("undo", []):
        run_step(environment, step, state)
    if plan.get("deploy"):
        limit = ",".join(hosts_of(environment, plan["deploy"]["limit"], state["target"]))
        make("deploy", "ENV=lab", f"LIMIT={limit}", "TAGS=" + ",".join(plan["deploy"].get("tags", [])))
    if plan.get("pulumi"):
        make("pulumi-up")
    STATE.unlink()
    print(f"Reset: what {state['name']} broke is restored; no exercise is running.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default=ENVIRONMENT, help="the environment: lab only")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list")
    commands.add_parser("start").add_argument("name")
    commands.add_parser("grade").add_argument("--hint", type=int)
    commands.add_parser("reset")
    args = parser.parse_args(argv)
    try:
        if args.env != ENVIRONMENT:
            raise Refused(f"ENV={args.env}: exercises break hosts, so they run on the lab only (ENV=lab)")
        environment = Environment(ENVIRONMENT)
        catalogue = load_catalogue(environment)
        if args.command == "list":
            list_exercises(catalogue)
        elif args.command == "start":
            start(environment, catalogue, args.name)
        elif args.command == "grade":
            return grade(environment, catalogue, args.hint)
        else:
            reset(environment, catalogue)
    except Exit as error:
        print(error.message, file=sys.stderr)
        return error.code
    return 0


if __name__ == "__main__":
    sys.exit(main())
