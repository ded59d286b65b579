"""The alert and recording rules (monitoring/rules): they load, their promtool tests pass, every
alert fires in a test and stays quiet in another, carries its severity and annotations, and
points at its runbook.

The templated rule files (*.yml.j2, the environment's settings and SLOs) are rendered as the
prometheus role renders them, with its defaults, before promtool reads them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader
from ansible.template import Templar, trust_as_template

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "monitoring/rules"
RUNBOOKS = REPO / "runbooks"
RUNBOOK_SECTIONS = ("Meaning", "Impact", "Diagnosis", "Mitigation", "Verification", "Escalation")
SEVERITIES = {"critical", "warning", "info", "none"}
# Always firing by design (a dead man's switch): it has no quiet case.
ALWAYS_FIRING = {"Watchdog"}
# What the role reads from the inventory and the host when it renders the templates.
RENDER_CONTEXT = {
    "ansible_managed": "Ansible managed",
    "prometheus_utc_offset_seconds": 25200,  # Asia/Phnom_Penh, the kit's default zone
    "groups": {"db": ["db1", "db2"], "all": ["db1", "db2"]},
    "hostvars": {"db1": {"patroni_synchronous_mode": True}, "db2": {}},
}


@pytest.fixture(scope="module")
def rules_dir(tmp_path_factory) -> Path:
    """monitoring/rules with its templates rendered, as /etc/prometheus/rules holds them."""
    rendered = tmp_path_factory.mktemp("rules")
    shutil.copytree(RULES, rendered, dirs_exist_ok=True)
    init_plugin_loader()
    loader = DataLoader()
    variables = dict(loader.load_from_file(str(REPO / "roles/prometheus/defaults/main.yml"), trusted_as_template=True))
    variables |= RENDER_CONTEXT | {"role_path": str(REPO / "roles/prometheus")}
    templar = Templar(loader=loader, variables=variables)
    for template in RULES.glob("*.yml.j2"):
        (rendered / template.name).unlink()
        text = templar.template(trust_as_template(template.read_text()))
        (rendered / template.name.removesuffix(".j2")).write_text(text)
    return rendered


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    if shutil.which("promtool") is None:
        pytest.fail("promtool is missing: `make setup` installs Debian's prometheus package, which has it")
    return subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


@cache
def rule_files(rules_dir: Path) -> tuple[Path, ...]:
    return tuple(sorted(rules_dir.glob("*.yml")))


def alerts(rules_dir: Path) -> list[dict]:
    return [
        rule
        for path in rule_files(rules_dir)
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def test_every_rule_file_loads(rules_dir):
    files = [path.name for path in rule_files(rules_dir)]
    assert {"hosts.yml", "postgresql.yml", "backups.yml", "sms.yml", "kubernetes.yml", "slo.yml"} <= set(files)
    result = promtool("check", "rules", *files, cwd=rules_dir)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass(rules_dir):
    tests = sorted(path.name for path in (rules_dir / "tests").glob("*_test.yml"))
    assert tests, "no promtool tests"
    result = promtool("test", "rules", *tests, cwd=rules_dir / "tests")
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]


def test_every_alert_is_labelled_and_annotated(rules_dir):
    problems = []
    for rule in alerts(rules_dir):
        name, labels, annotations = rule["alert"], rule.get("labels", {}), rule.get("annotations", {})
        if not re.fullmatch(r"[A-Z][A-Za-z0-9]+", name):
            problems.append(f"{name}: not a CamelCase name")
        if labels.get("severity") not in SEVERITIES:
            problems.append(f"{name}: severity {labels.get('severity')!r} is not one of {sorted(SEVERITIES)}")
        for key in ("summary", "description", "runbook_url"):
            if not str(annotations.get(key, "")).strip():
                problems.append(f"{name}: no {key}")
        if not str(annotations.get("runbook_url", "")).endswith(f"/runbooks/{name}.md"):
            problems.append(f"{name}: runbook_url does not point at runbooks/{name}.md")
    assert not problems, "\n".join(problems)


def test_every_alert_has_a_firing_and_a_quiet_test(rules_dir):
    firing, quiet = set(), set()
    for path in (rules_dir / "tests").glob("*_test.yml"):
        for group in yaml.safe_load(path.read_text())["tests"]:
            for case in group.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    names = {rule["alert"] for rule in alerts(rules_dir)}
    untested = sorted(names - firing)
    never_quiet = sorted(names - quiet - ALWAYS_FIRING)
    assert not untested, f"alerts without a test in which they fire: {untested}"
    assert not never_quiet, f"alerts without a test in which they stay quiet: {never_quiet}"
    assert not (firing | quiet) - names, f"tests of alerts that do not exist: {sorted((firing | quiet) - names)}"


def test_every_alert_has_its_runbook(rules_dir):
    problems = []
    for name in sorted({rule["alert"] for rule in alerts(rules_dir)}):
        runbook = RUNBOOKS / f"{name}.md"
        if not runbook.is_file():
            problems.append(f"runbooks/{name}.md is missing")
            continue
        text = runbook.read_text()
        title = text.splitlines()[0] if text else ""
        if name not in title:
            problems.append(f"runbooks/{name}.md: its title does not name the alert ({title!r})")
        headings = set(re.findall(r"^## (\w+)", text, re.MULTILINE))
        missing = [section for section in RUNBOOK_SECTIONS if section not in headings]
        if missing:
            problems.append(f"runbooks/{name}.md: no section {', '.join(missing)}")
    assert not problems, "\n".join(problems)
