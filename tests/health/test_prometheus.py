"""Prometheus on the monitoring host: every target it was given is up, every rule file of the
kit is loaded and evaluates, and the consoles render values on the server."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.host_checks import host_http, kit_login

testinfra_hosts = ["ansible://monitoring"]

RULES = Path(__file__).resolve().parents[2] / "monitoring/rules"
ALERT = re.compile(r"^\s*- alert: (\w+)\s*$", re.MULTILINE)


def api(host, role_vars, path: str) -> dict:
    prometheus = role_vars("prometheus")
    status, body = host_http(
        host, "GET", f"http://127.0.0.1:{prometheus['prometheus_port']}{path}", auth=kit_login(prometheus, "prometheus")
    )
    assert status == 200, body[:300]
    return json.loads(body)["data"] if body.startswith("{") else {"html": body}


def test_the_api_asks_for_a_password(host, role_vars):
    """Without a login (or with a wrong password) Prometheus answers 401 and serves nothing."""
    prometheus = role_vars("prometheus")
    url = f"http://127.0.0.1:{prometheus['prometheus_port']}/api/v1/targets"
    user, _ = kit_login(prometheus, "prometheus")
    for auth in (None, (user, "not-the-password")):
        status, body = host_http(host, "GET", url, auth=auth)
        assert status == 401, f"{auth and auth[0]}: {status} {body[:200]}"


def test_prometheus_runs_with_a_valid_configuration(host):
    assert host.service("prometheus").is_running and host.service("prometheus").is_enabled
    host.run_expect([0], "promtool check config /etc/prometheus/prometheus.yml")


def test_every_target_is_up(host, role_vars):
    targets = api(host, role_vars, "/api/v1/targets?state=active")["activeTargets"]
    assert targets, "no targets"
    down = [f"{t['labels']['job']} {t['labels']['instance']}: {t['lastError']}" for t in targets if t["health"] != "up"]
    assert not down, "targets not up:\n" + "\n".join(down)


def test_every_probe_succeeds(host, role_vars):
    failing = api(host, role_vars, "/api/v1/query?query=probe_success%20%3D%3D%200")["result"]
    assert not failing, [f"{r['metric']['probe']} {r['metric']['instance']}" for r in failing]


def test_every_rule_file_of_the_kit_is_loaded_and_evaluates(host, role_vars):
    groups = api(host, role_vars, "/api/v1/rules")["groups"]
    loaded = {Path(group["file"]).name for group in groups}
    kit = {path.name.removesuffix(".j2") for path in RULES.glob("*.yml*")}
    assert kit <= loaded, f"rule files not loaded: {sorted(kit - loaded)}"
    broken = [f"{rule['name']}: {rule['lastError']}" for g in groups for rule in g["rules"] if rule.get("lastError")]
    assert not broken, broken


def test_every_alert_of_the_kit_is_loaded(host, role_vars):
    """A rule deleted from a live file (or the file edited by hand) is an alert that never fires."""
    loaded = {rule["name"] for g in api(host, role_vars, "/api/v1/rules")["groups"] for rule in g["rules"]}
    kit = {name for path in RULES.glob("*.yml*") for name in ALERT.findall(path.read_text())}
    assert kit, f"no alert found in {RULES}"
    assert kit <= loaded, f"alerts of the kit that Prometheus has not loaded: {sorted(kit - loaded)}"


def test_consoles_render_values(host, role_vars):
    for page, title in [("overview", "Platform overview"), ("database", "Database cluster"),
                        ("backups", "Backups"), ("sms", "SMS gateways")]:  # fmt: skip
        html = api(host, role_vars, f"/consoles/govops-{page}.html")["html"]
        assert f"<h1>{title}</h1>" in html, html[:300]
        assert "error executing template" not in html, html[-500:]
    # a value computed on the server: how many targets are up
    overview = api(host, role_vars, "/consoles/govops-overview.html")["html"]
    up, total = re.search(r"(\d+) of (\d+) targets up", overview).groups()
    assert int(up) == int(total) > 0, f"{up} of {total} targets up"
