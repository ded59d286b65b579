"""Print what the lab holds: each host, its groups, the roles site.yml gives it, how to reach it.

Usage: python playbooks/lab/summary.py stacks/lab
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def site_plays(site: Path) -> list[dict]:
    """The plays of site.yml, following import_playbook one level deep."""
    plays = []
    for entry in yaml.safe_load(site.read_text()):
        imported = entry.get("ansible.builtin.import_playbook") or entry.get("import_playbook")
        plays += yaml.safe_load((site.parent / imported).read_text()) if imported else [entry]
    return plays


def roles_by_host(plays: list[dict], groups: dict[str, list[str]]) -> dict[str, list[str]]:
    roles: dict[str, list[str]] = {}
    for play in plays:
        names = [r["role"] if isinstance(r, dict) else r for r in play.get("roles", [])]
        for pattern in str(play.get("hosts", "")).split(":"):
            for host in groups.get(pattern.strip(), [pattern.strip()]):
                roles.setdefault(host, []).extend(n for n in names if n not in roles.get(host, []))
    return roles


def main(inventory: str) -> None:
    data = json.loads(subprocess.check_output(["ansible-inventory", "-i", inventory, "--list", "--export"], cwd=REPO))
    hostvars = data["_meta"]["hostvars"]
    groups = {name: group.get("hosts", []) for name, group in data.items() if name != "_meta"}
    for name, group in data.items():
        for child in group.get("children", []) if name != "_meta" else []:
            groups[name] = groups.get(name, []) + groups.get(child, [])
    groups["all"] = sorted(hostvars)
    roles = roles_by_host(site_plays(REPO / "playbooks/site.yml"), groups)
    print(f"{'host':<8} {'group':<18} {'address':<13} {'ssh':<40} roles")
    for host in sorted(hostvars):
        member = ",".join(g for g, hosts in groups.items() if host in hosts and g not in ("all", "ungrouped"))
        vars_ = hostvars[host]
        ssh = f"ssh -p {vars_['ansible_port']} debian@127.0.0.1"
        print(
            f"{host:<8} {member:<18} {vars_.get('private_address', ''):<13} {ssh:<40} {','.join(roles.get(host, []))}"
        )
    print("SSH key: .lab/ssh/id_ed25519 (lab only)   status: make lab-status   health: make health ENV=lab")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "stacks/lab")
