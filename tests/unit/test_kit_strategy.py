"""The kit's strategy (playbooks/strategy_plugins/kit_mitogen_linear.py) skips a task whose
condition is false in the controller, without a worker: every task's result, as Ansible's json
callback reports it, is the same as under Ansible's own linear strategy, and only the tasks that
can be decided safely there are (not a loop, a delegated task, or a condition that fails).
Run as a user runs it: ansible-playbook on this machine (local connection)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"

TASKS = [
    {"name": "A false condition", "command": "true", "when": "flag", "register": "r_false"},
    {"name": "A true condition", "debug": {"msg": "ran"}, "when": "not flag", "register": "r_true"},
    {"name": "A block whose condition is false", "when": "flag | bool",
     "block": [{"name": "Inside the block", "debug": {"msg": "never"}, "register": "r_block"}]},
    {"name": "An include whose condition is false", "include_tasks": "missing.yml", "when": "flag"},
    {"name": "A loop, skipped per item", "debug": {"msg": "{{ item }}"}, "loop": [1, 2, 3],
     "when": "item > 2", "register": "r_loop"},
    {"name": "A variable the play context adds", "debug": {"msg": "{{ ansible_host }}"},
     "when": "ansible_host == 'elsewhere'", "register": "r_magic"},
    {"name": "An undefined variable", "debug": {"msg": "never"}, "when": "no_such_variable",
     "register": "r_undefined", "ignore_errors": True},
    {"name": "A secret", "debug": {"msg": "secret"}, "when": "flag", "no_log": True, "register": "r_secret"},
    {"name": "A delegated task", "debug": {"msg": "never"}, "when": "flag", "delegate_to": "localhost",
     "register": "r_delegated"},
    {"name": "What was registered", "debug": {"msg": "{{ [r_false, r_true, r_block, r_loop, r_magic, r_undefined,"
                                                    " r_secret, r_delegated] }}"}},
]  # fmt: skip
SKIPPED_IN_THE_CONTROLLER = [
    "A false condition",
    "Inside the block",
    "An include whose condition is false",
    "A variable the play context adds",
    "A secret",
]


def run(tmp_path: Path, strategy: str, *options: str, callback: str = "ansible.builtin.default") -> str:
    """ansible-playbook's output, which must succeed."""
    play = tmp_path / "play.yml"
    play.write_text(json.dumps([{"hosts": "all", "gather_facts": False, "vars": {"flag": False}, "tasks": TASKS}]))
    config = tmp_path / "ansible.cfg"
    config.write_text("[defaults]\n")  # Ansible's defaults, not the kit's (its inventory is the lab)
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(config),
        "ANSIBLE_STRATEGY_PLUGINS": str(ROOT / "playbooks/strategy_plugins"),
        "ANSIBLE_STRATEGY": strategy,
        "ANSIBLE_STDOUT_CALLBACK": callback,
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_DEPRECATION_WARNINGS": "false",
        "ANSIBLE_FORCE_COLOR": "false",  # plain lines to compare, whatever the caller's terminal
        "ANSIBLE_NOCOLOR": "true",
        "GOVOPS_JINJA_CODE_CACHE": str(tmp_path / "jinja-code"),
    }
    command = [str(ANSIBLE_PLAYBOOK), "-i", "localhost,", "-c", "local", str(play), *options]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def results(tmp_path: Path, strategy: str) -> list[tuple[str, dict]]:
    """Each task's name and its result on each host (the json callback), without its times."""
    report = json.loads(run(tmp_path, strategy, callback="ansible.builtin.json"))
    return [(task["task"]["name"], task["hosts"]) for play in report["plays"] for task in play["tasks"]]


def test_every_result_is_the_one_ansibles_own_strategy_reports(tmp_path):
    kit = results(tmp_path, "kit_mitogen_linear")
    assert kit == results(tmp_path, "linear")
    by_name = dict(kit)
    assert by_name["A false condition"]["localhost"]["false_condition"] == "flag"
    assert by_name["A secret"]["localhost"]["censored"].startswith("the output has been hidden")
    assert by_name["An undefined variable"]["localhost"]["failed"] is True
    assert len(by_name["What was registered"]["localhost"]["msg"]) == 8


def test_only_what_is_decided_safely_is_skipped_in_the_controller(tmp_path):
    output = run(tmp_path, "kit_mitogen_linear", "-vvv")
    marker = "localhost: skipped in the controller, without a worker: "
    skipped = [line.split(marker, 1)[1] for line in output.splitlines() if marker in line]
    assert skipped == SKIPPED_IN_THE_CONTROLLER
