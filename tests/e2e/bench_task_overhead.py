"""Benchmark of what one task costs Ansible on the lab, apart from the work it does: playbooks of
TASKS identical tasks, run on 1, 2, 5 and all of the lab's hosts, and with fewer forks. A `debug`
task never leaves the controller; a `stat` task (with become, as the roles' tasks are) makes one
round trip to each host. A no-change converge is mostly such tasks: seconds per host-task times
the host-tasks it runs (ok + skipped in its recap) is most of its time.

Usage (lab up and converged): make bench-tasks   [TASKS=40]
Only the lab's hosts are contacted, each playbook once; nothing on them changes."""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
INVENTORY = REPO / "stacks/lab"
KINDS = {
    "debug": {"become": False, "task": {"ansible.builtin.debug": {"msg": "no remote work"}}},
    "stat": {"become": True, "task": {"ansible.builtin.stat": {"path": "/etc/hosts"}}},
}


def lab_hosts() -> list[str]:
    inventory = yaml.safe_load((INVENTORY / "hosts.yml").read_text())
    return [host for group in inventory["all"]["children"].values() for host in group["hosts"]]


def write_playbook(directory: Path, kind: str, tasks: int) -> Path:
    spec = KINDS[kind]
    play = {
        "name": f"{tasks} {kind} tasks",
        "hosts": "all",
        "gather_facts": False,
        "become": spec["become"],
        "tasks": [{"name": f"{kind} {i}", **spec["task"]} for i in range(tasks)],
    }
    path = directory / f"{kind}.yml"
    path.write_text(yaml.safe_dump([play], sort_keys=False))
    return path


def timed_run(playbook: Path, hosts: list[str], forks: int) -> float:
    started = time.monotonic()
    subprocess.run(
        ["ansible-playbook", "-i", str(INVENTORY), str(playbook), "--limit", ",".join(hosts), "--forks", str(forks)],
        cwd=REPO, check=True, timeout=900, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=40)
    args = parser.parse_args()
    hosts = lab_hosts()
    runs = [(kind, count, len(hosts)) for kind in KINDS for count in sorted({1, 2, 5, len(hosts)})]
    runs += [("stat", len(hosts), forks) for forks in (1, 3)]
    print(f"{'tasks':>6} {'kind':>6} {'hosts':>5} {'forks':>5} {'seconds':>8} {'s/task':>7} {'ms/host-task':>12}")
    with tempfile.TemporaryDirectory() as directory:
        books = {kind: write_playbook(Path(directory), kind, args.tasks) for kind in KINDS}
        for kind, count, forks in runs:
            seconds = timed_run(books[kind], hosts[:count], forks)
            print(
                f"{args.tasks:>6} {kind:>6} {count:>5} {forks:>5} {seconds:>8.1f} {seconds / args.tasks:>7.2f}"
                f" {1000 * seconds / (args.tasks * count):>12.0f}"
            )


if __name__ == "__main__":
    main()
