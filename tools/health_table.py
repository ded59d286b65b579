"""The end of `make health ENV=...`: one table of the environment, every host by every component.

Reads the health run's JUnit XML (reports/health-<env>.xml). A test's host is its
[ansible://<host>] parameter, its component its module (tests/health/test_<component>.py).
A cell is "ok" (every check passed), "FAIL n/m" (n of its m checks failed or errored), "skip"
(every check skipped) or empty (the component does not run on that host). Always exits 0: the
health run's own exit status is what `make health` returns.

Usage: python tools/health_table.py reports/health-lab.xml [--env lab] [--inventory stacks/lab]

With --inventory, a test id that carries more parameters after the host ([ansible://db1-cfm])
is given to the inventory's host it starts with; without it, the whole id names the host.
"""

from __future__ import annotations

import argparse
import re
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

HOST_RE = re.compile(r"\[ansible://([^\]\s]+)\]")
CONTROLLER = "(controller)"


def outcome(testcase: ET.Element) -> str:
    tags = {child.tag for child in testcase}
    if tags & {"failure", "error"}:
        return "failed"
    if "skipped" in tags:
        return "skipped"
    return "passed"


def host_of(test_id: str, known_hosts: list[str]) -> str:
    """The host of a test id's parameters: a known host it starts with (the longest), else all of it."""
    match = HOST_RE.search(test_id)
    if not match:
        return CONTROLLER
    ids = match.group(1)
    candidates = [host for host in known_hosts if ids == host or ids.startswith(host + "-")]
    return max(candidates, key=len) if candidates else ids


def inventory_hosts(inventory: str, pattern: str = "all") -> list[str]:
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader

    return [host.name for host in InventoryManager(loader=DataLoader(), sources=[inventory]).get_hosts(pattern)]


def results(junit: Path, known_hosts: list[str] = ()) -> dict[str, dict[str, list[str]]]:
    """host -> component -> the outcomes of its checks."""
    cells: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for testcase in ET.parse(junit).iter("testcase"):
        module = testcase.get("classname", "").rsplit(".", 1)[-1]
        component = module.removeprefix("test_") or "(collection)"
        cells[host_of(testcase.get("name", ""), list(known_hosts))][component].append(outcome(testcase))
    for host in known_hosts:  # a host none of whose checks ran still gets its row
        cells.setdefault(host, defaultdict(list))
    return cells


def cell(outcomes: list[str]) -> str:
    if not outcomes:
        return ""
    failed = outcomes.count("failed")
    if failed:
        return f"FAIL {failed}/{len(outcomes)}"
    return "skip" if outcomes.count("skipped") == len(outcomes) else "ok"


def render(cells: dict[str, dict[str, list[str]]], env: str = "") -> str:
    hosts = sorted(cells, key=lambda host: (host == CONTROLLER, host))
    components = sorted({component for per_host in cells.values() for component in per_host})
    rows = [[host, *(cell(cells[host].get(component, [])) for component in components)] for host in hosts]
    headers = ["host", *components]
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
    lines = [
        "  ".join(str(value).ljust(width) for value, width in zip(row, widths, strict=True)).rstrip()
        for row in [headers, *rows]
    ]
    unhealthy = sorted({host for host in hosts for outcomes in cells[host].values() if "failed" in outcomes})
    title = f"Health of {env}" if env else "Health"
    summary = f"unhealthy: {', '.join(unhealthy)}" if unhealthy else "every host healthy"
    return "\n".join([f"{title}: {len(hosts)} hosts x {len(components)} components, {summary}", *lines])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("junit", type=Path)
    parser.add_argument("--env", default="")
    parser.add_argument("--inventory", help="the environment's inventory (stacks/<env>), to tell hosts from parameters")
    parser.add_argument("--hosts", default="all", help="the inventory pattern the checks ran on (make health LIMIT=)")
    args = parser.parse_args(argv)
    if not args.junit.is_file():
        print(f"No health report at {args.junit}: the health run did not get as far as writing it.")
        return 0
    try:
        known_hosts = inventory_hosts(args.inventory, args.hosts) if args.inventory else []
        print(render(results(args.junit, known_hosts), args.env))
    except ET.ParseError as error:
        print(f"Cannot read {args.junit}: {error}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
