"""The auditors' report of a compliance run: `make audit ENV=...` writes it with this.

Reads the JUnit XML of `pytest tests/compliance` (every test case carries its control's id, title,
rationale, severity and source, the host, and the evidence, as JUnit properties), the
environment's waivers file and the drift found by `ansible-playbook --check --diff`, and writes
reports/audit-<env>-<date>/ with report.html (to read and print), report.json and report.xml
(JUnit, one test suite per host). Waivers are checked first; a bad waiver is reported, never
silently applied, and an expired one counts as a failure.

    python tools/audit_report.py --env lab --junit reports/audit-lab.xml \\
        --waivers stacks/waivers.lab.yml --drift reports/audit-lab-drift.log --out reports/audit-lab-2026-12-01
"""

from __future__ import annotations

import argparse
import datetime
import html
import json
import re
import sys
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

SEVERITIES = ("critical", "high", "medium", "low")
WAIVER_KEYS = ("control", "hosts", "justification", "approver", "expires")


@dataclass
class Evidence:
    command: str
    rc: int | None
    excerpt: str


@dataclass
class Result:
    host: str
    control: str
    title: str
    severity: str
    source: str
    rationale: str
    status: str  # pass, fail, error or waived
    message: str = ""
    evidence: list[Evidence] = field(default_factory=list)
    waiver: dict | None = None


@dataclass
class Waiver:
    control: str
    hosts: list[str]
    justification: str
    approver: str
    expires: datetime.date

    def covers(self, result: Result) -> bool:
        return result.control == self.control and ("all" in self.hosts or result.host in self.hosts)


def read_results(junit: Path) -> list[Result]:
    """One Result per test case of pytest's JUnit XML."""
    results = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        properties = {p.get("name"): p.get("value") for p in case.iter("property")}
        if "control_id" not in properties:
            continue  # not a control (a collection error is reported by pytest itself)
        failure = case.find("failure")
        error = case.find("error")
        skipped = case.find("skipped")
        if failure is not None:
            status, message = "fail", failure.get("message") or ""
        elif error is not None:
            status, message = "error", error.get("message") or ""
        elif skipped is not None:
            status, message = "error", f"not checked: {skipped.get('message') or ''}"
        else:
            status, message = "pass", ""
        evidence = [Evidence(**item) for item in json.loads(properties.get("evidence", "[]"))]
        results.append(
            Result(
                host=properties.get("host", "?"),
                control=properties["control_id"],
                title=properties.get("control_title", ""),
                severity=properties.get("control_severity", ""),
                source=properties.get("control_source", ""),
                rationale=properties.get("control_rationale", ""),
                status=status,
                message=message,
                evidence=evidence,
            )
        )
    return results


def read_waivers(path: Path | None, known_controls: set[str]) -> tuple[list[Waiver], list[str]]:
    """The valid waivers of the file, and a sentence for each entry that is not one."""
    if path is None or not path.exists():
        return [], []
    data = yaml.safe_load(path.read_text()) or {}
    entries = data.get("waivers") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return [], [f"{path}: expected a mapping with a list 'waivers', found {type(data).__name__}"]
    waivers, problems = [], []
    for number, entry in enumerate(entries, start=1):
        where = f"{path}: waiver {number}"
        if not isinstance(entry, dict):
            problems.append(f"{where}: expected a mapping with {', '.join(WAIVER_KEYS)}")
            continue
        where = f"{where} ({entry.get('control', 'no control')})"
        missing = [key for key in WAIVER_KEYS if entry.get(key) in (None, "", [])]
        if missing:
            problems.append(f"{where}: missing {', '.join(missing)}")
            continue
        if entry["control"] not in known_controls:
            problems.append(f"{where}: unknown control id {entry['control']!r} (no such control in tests/compliance)")
            continue
        expires = entry["expires"]
        if isinstance(expires, str):
            try:
                expires = datetime.date.fromisoformat(expires)
            except ValueError:
                expires = None
        if not isinstance(expires, datetime.date):
            problems.append(f"{where}: expires must be a date (YYYY-MM-DD), found {entry['expires']!r}")
            continue
        hosts = entry["hosts"] if isinstance(entry["hosts"], list) else [entry["hosts"]]
        waivers.append(
            Waiver(entry["control"], [str(h) for h in hosts], entry["justification"], entry["approver"], expires)
        )
    return waivers, problems


def apply_waivers(results: list[Result], waivers: list[Waiver], today: datetime.date) -> None:
    """A failed control a waiver covers is waived, or failed with the reason when the waiver expired."""
    for result in results:
        waiver = next((w for w in waivers if w.covers(result)), None)
        if waiver is None or result.status == "pass":
            continue
        result.waiver = {**asdict(waiver), "expires": waiver.expires.isoformat()}
        if waiver.expires < today:
            result.status = "fail"
            result.message = f"waiver expired on {waiver.expires.isoformat()}; {result.message}"
        else:
            result.status = "waived"


_TASK = re.compile(r"^(TASK|RUNNING HANDLER) \[(?P<task>.+?)\] \*+$")
_CHANGED = re.compile(r"^changed: \[(?P<host>[^\]]+)\]")
_RECAP = re.compile(
    r"^(?P<host>\S+)\s+: ok=\d+\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)"
)


def read_drift(log: Path | None) -> dict[str, dict]:
    """Per host, what `ansible-playbook --check --diff` would change: the tasks, and whether it ran."""
    if log is None or not log.exists():
        return {}
    drift: dict[str, dict] = {}
    task = ""
    for raw in log.read_text(errors="replace").splitlines():
        line = re.sub(r"\x1b\[[0-9;]*m", "", raw)
        if match := _TASK.match(line):
            task = match["task"]
        elif match := _CHANGED.match(line):
            tasks = drift.setdefault(match["host"], {"changed": 0, "failed": 0, "tasks": [], "reached": True})["tasks"]
            if task not in tasks:
                tasks.append(task)
        elif match := _RECAP.match(line):
            entry = drift.setdefault(match["host"], {"changed": 0, "failed": 0, "tasks": [], "reached": True})
            entry["changed"] = int(match["changed"])
            entry["failed"] = int(match["failed"])
            entry["reached"] = match["unreachable"] == "0"
    return drift


def summarise(results: list[Result]) -> dict:
    counts = {status: sum(r.status == status for r in results) for status in ("pass", "fail", "error", "waived")}
    checked = counts["pass"] + counts["fail"] + counts["waived"]
    counts["pass_rate"] = round(100 * counts["pass"] / checked, 1) if checked else 0.0
    return counts


def write_json(path: Path, report: dict) -> None:
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")


def write_junit(path: Path, results: list[Result]) -> None:
    suites = ET.Element("testsuites", name="compliance audit")
    for host in sorted({r.host for r in results}):
        mine = [r for r in results if r.host == host]
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=host,
            tests=str(len(mine)),
            failures=str(sum(r.status == "fail" for r in mine)),
            errors=str(sum(r.status == "error" for r in mine)),
            skipped=str(sum(r.status == "waived" for r in mine)),
        )
        for result in mine:
            case = ET.SubElement(suite, "testcase", classname=host, name=f"{result.control} {result.title}")
            properties = ET.SubElement(case, "properties")
            for name in ("control", "severity", "source"):
                ET.SubElement(properties, "property", name=name, value=getattr(result, name))
            if result.status == "fail":
                ET.SubElement(case, "failure", message=result.message[:500]).text = _evidence_text(result)
            elif result.status == "error":
                ET.SubElement(case, "error", message=result.message[:500])
            elif result.status == "waived":
                ET.SubElement(
                    case, "skipped", message=f"waived by {result.waiver['approver']}: {result.waiver['justification']}"
                )
    ET.indent(suites)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)


def _evidence_heading(item: Evidence) -> str:
    """`$ command  (exit N)` for a command run on the host, the plain description for a note."""
    return html.escape(f"$ {item.command}  (exit {item.rc})" if item.rc is not None else item.command)


def _evidence_text(result: Result) -> str:
    return "\n\n".join(
        f"$ {e.command}  (exit {e.rc})\n{e.excerpt}" if e.rc is not None else f"{e.command}\n{e.excerpt}"
        for e in result.evidence
    )


def write_html(path: Path, report: dict, results: list[Result]) -> None:
    e = html.escape
    meta = report["metadata"]
    summary = report["summary"]
    rows = []
    for result in sorted(results, key=lambda r: (r.host, r.control)):
        evidence = "".join(f"<pre>{_evidence_heading(item)}\n{e(item.excerpt)}</pre>" for item in result.evidence)
        waiver = (
            f"<p>Waived until {e(result.waiver['expires'])} by {e(result.waiver['approver'])}: "
            f"{e(result.waiver['justification'])}</p>"
            if result.waiver
            else ""
        )
        message = f"<p>{e(result.message)}</p>" if result.message else ""
        rows.append(
            f'<tr class="{result.status}"><td>{e(result.host)}</td><td>{e(result.control)}</td>'
            f"<td><b>{e(result.title)}</b><br><small>{e(result.rationale)}</small></td><td>{e(result.severity)}</td>"
            f"<td>{e(result.source)}</td><td>{result.status.upper()}</td><td>{message}{waiver}{evidence}</td></tr>"
        )
    drift_rows = "".join(
        f"<tr><td>{e(host)}</td><td>{'yes' if d['reached'] else 'NOT REACHED'}</td>"
        f"<td>{d['changed']}</td><td>{d['failed']}</td>"
        f"<td>{e('; '.join(d['tasks'])) or 'none'}</td></tr>"
        for host, d in sorted(report["drift"].items())
    )
    problems = "".join(f"<li>{e(p)}</li>" for p in report["problems"]) or "<li>none</li>"
    waivers = "".join(
        f"<tr><td>{e(w['control'])}</td><td>{e(', '.join(w['hosts']))}</td><td>{e(w['justification'])}</td>"
        f"<td>{e(w['approver'])}</td><td>{e(w['expires'])}</td></tr>"
        for w in report["waivers"]
    )
    tools = ", ".join(f"{name} {version}" for name, version in meta["tools"].items())
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Compliance audit {e(meta["environment"])} {e(meta["time"])}</title>
<style>
body {{ font-family: sans-serif; font-size: 10pt; margin: 1.5em; }}
table {{ border-collapse: collapse; width: 100%; margin-bottom: 1.5em; }}
th, td {{ border: 1px solid #999; padding: 4px; vertical-align: top; text-align: left; }}
tr.pass td:nth-child(6) {{ color: #060; }}
tr.fail td:nth-child(6), tr.error td:nth-child(6) {{ color: #a00; font-weight: bold; }}
tr.waived td:nth-child(6) {{ color: #850; }}
pre {{ white-space: pre-wrap; font-size: 8pt; margin: 2px 0; }}
@media print {{ tr {{ page-break-inside: avoid; }} }}
</style></head><body>
<h1>Compliance audit: {e(meta["environment"])}</h1>
<p>Run at {e(meta["time"])} from commit {e(meta["commit"])}. Tools: {e(tools)}.</p>
<h2>Summary</h2>
<p>{summary["pass"]} passed, {summary["fail"]} failed, {summary["waived"]} waived, {summary["error"]} not checked
(pass rate {summary["pass_rate"]} % of the controls checked).</p>
<p>Controls declared: {sum(report["controls_by_source"].values())}
({e(", ".join(f"{source} {count}" for source, count in report["controls_by_source"].items()))}).</p>
<h2>Problems with the run</h2><ul>{problems}</ul>
<h2>Waivers</h2>
<table><tr><th>Control</th><th>Hosts</th><th>Justification</th><th>Approver</th><th>Expires</th></tr>{waivers}</table>
<h2>Configuration drift (ansible-playbook --check --diff)</h2>
<table><tr><th>Host</th><th>Reached</th><th>Would change</th><th>Failed</th><th>Tasks</th></tr>{drift_rows}</table>
<h2>Controls</h2>
<table><tr><th>Host</th><th>Control</th><th>Title and rationale</th><th>Severity</th><th>Source</th><th>Status</th>
<th>Evidence</th></tr>{"".join(rows)}</table>
</body></html>
"""
    path.write_text(page)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", required=True)
    parser.add_argument("--junit", type=Path, required=True, help="pytest's JUnit XML of tests/compliance")
    parser.add_argument("--waivers", type=Path, help="the environment's waivers file (absent: no waivers)")
    parser.add_argument("--drift", type=Path, help="the output of ansible-playbook --check --diff")
    parser.add_argument("--metadata", type=Path, help="JSON: time, commit, tools")
    parser.add_argument("--unreachable", default="", help="comma-separated hosts that could not be checked")
    parser.add_argument(
        "--catalogue", type=Path, help="JSON list of every declared control (pytest --controls-catalogue)"
    )
    parser.add_argument("--out", type=Path, required=True, help="the report directory")
    args = parser.parse_args(argv)

    if not args.junit.exists():
        print(f"audit_report: {args.junit} does not exist: the compliance tests did not run", file=sys.stderr)
        return 2
    results = read_results(args.junit)
    metadata = json.loads(args.metadata.read_text()) if args.metadata else {}
    today = datetime.date.fromisoformat(metadata.get("time", datetime.date.today().isoformat())[:10])
    catalogue = json.loads(args.catalogue.read_text()) if args.catalogue and args.catalogue.exists() else []
    known = {c["id"] for c in catalogue} | {r.control for r in results}
    waivers, problems = read_waivers(args.waivers, known)
    apply_waivers(results, waivers, today)
    problems += [
        f"{host}: could not be reached; none of its controls were checked"
        for host in args.unreachable.split(",")
        if host
    ]
    report = {
        "metadata": {"environment": args.env, "time": "", "commit": "", "tools": {}, **metadata},
        "summary": summarise(results),
        "controls_by_source": {
            source: sum(c["source"] == source for c in catalogue) for source in sorted({c["source"] for c in catalogue})
        },
        "problems": problems,
        "waivers": [{**asdict(w), "expires": w.expires.isoformat()} for w in waivers],
        "drift": read_drift(args.drift),
        "results": [asdict(r) for r in results],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "report.json", report)
    write_junit(args.out / "report.xml", results)
    write_html(args.out / "report.html", report, results)
    summary = report["summary"]
    print(
        f"{args.out}/report.html: {summary['pass']} passed, {summary['fail']} failed, {summary['waived']} waived,"
        f" {summary['error']} not checked; {len(problems)} problem(s)"
    )
    for problem in problems:
        print(f"  {problem}")
    return 0 if summary["fail"] == summary["error"] == 0 and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
