"""kit_files' controller side: an entry's template is rendered with the task's variables and its
own template_vars, and written by the module. Run as a user runs it: ansible-playbook on this
machine (local connection), the kit's module and action found as ansible.cfg finds them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"


def playbook(tmp_path: Path, entries: list[dict]) -> Path:
    (tmp_path / "templates").mkdir(exist_ok=True)
    (tmp_path / "templates/listen.conf.j2").write_text(
        "# {{ ansible_managed }}\nlisten {{ listen_host }}:{{ port }}\n{% if tls %}tls on\n{% endif %}"
    )
    task = {"name": "Write the files", "kit_files": {"files": entries}, "vars": {"listen_host": "127.0.0.1"}}
    play = [{"hosts": "localhost", "gather_facts": False, "vars": {"tls": True}, "tasks": [task]}]
    path = tmp_path / "play.yml"
    path.write_text(json.dumps(play))
    return path


def run(play: Path, *options: str) -> tuple[int, dict]:
    """ansible-playbook's exit code and the task's result (the json callback)."""
    config = play.parent / "ansible.cfg"
    config.write_text("[defaults]\n")  # Ansible's defaults, not the kit's (its inventory is the lab)
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(config),
        "ANSIBLE_LIBRARY": str(ROOT / "playbooks/library"),
        "ANSIBLE_ACTION_PLUGINS": str(ROOT / "playbooks/action_plugins"),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_LOCALHOST_WARNING": "false",
    }
    command = [str(ANSIBLE_PLAYBOOK), "-i", "localhost,", "-c", "local", str(play), *options]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    output = json.loads(done.stdout)
    return done.returncode, output["plays"][0]["tasks"][0]["hosts"]["localhost"]


def entries(root: Path) -> list[dict]:
    return [
        {"path": str(root / "out/listen.conf"), "template": "listen.conf.j2", "template_vars": {"port": 5432}},
        {"path": str(root / "out/plain"), "content": "plain\n"},
    ]


def test_a_template_entry_is_rendered_with_the_task_vars_and_its_own(tmp_path):
    (tmp_path / "out").mkdir()
    rc, result = run(playbook(tmp_path, entries(tmp_path)))
    assert rc == 0, result
    assert result["changed_paths"] == [str(tmp_path / "out/listen.conf"), str(tmp_path / "out/plain")]
    written = (tmp_path / "out/listen.conf").read_text().splitlines()
    assert written[0].startswith("# Ansible managed")
    assert written[1:] == ["listen 127.0.0.1:5432", "tls on"]
    assert (tmp_path / "out/plain").read_text() == "plain\n"

    rc, again = run(playbook(tmp_path, entries(tmp_path)))
    assert (rc, again["changed"], again["changed_paths"]) == (0, False, [])


def test_check_mode_shows_the_rendered_change_and_writes_nothing(tmp_path):
    (tmp_path / "out").mkdir()
    run(playbook(tmp_path, entries(tmp_path)))
    changed = entries(tmp_path)
    changed[0]["template_vars"] = {"port": 6432}
    rc, result = run(playbook(tmp_path, changed), "--check", "--diff")
    assert (rc, result["changed_paths"]) == (0, [str(tmp_path / "out/listen.conf")])
    assert "listen 127.0.0.1:6432" in result["diff"][0]["after"]
    assert "listen 127.0.0.1:5432" in (tmp_path / "out/listen.conf").read_text()


def test_a_missing_template_is_named_and_nothing_is_written(tmp_path):
    (tmp_path / "out").mkdir()
    broken = [entries(tmp_path)[1], {"path": str(tmp_path / "out/x.conf"), "template": "x.conf.j2"}]
    rc, result = run(playbook(tmp_path, broken))
    assert rc != 0 and result["failed"]
    assert result["msg"].startswith(f"{tmp_path / 'out/x.conf'}: template x.conf.j2 not found")
    assert list((tmp_path / "out").iterdir()) == []


def test_a_template_that_does_not_render_is_named(tmp_path):
    (tmp_path / "out").mkdir()
    without_port = [{"path": str(tmp_path / "out/listen.conf"), "template": "listen.conf.j2"}]
    rc, result = run(playbook(tmp_path, without_port))
    assert rc != 0
    assert result["msg"].startswith(f"{tmp_path / 'out/listen.conf'}: template listen.conf.j2 did not render")
    assert "port" in result["msg"]
    assert not (tmp_path / "out/listen.conf").exists()
