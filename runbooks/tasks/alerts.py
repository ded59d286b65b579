"""Alerts and silences: Alertmanager's API v2 on the monitoring host (alertmanager_port, the host only),
as the kit's account (alertmanager_web_kit_user)."""

from __future__ import annotations

import datetime
import re
from urllib.parse import quote

from invoke import task

from .core import Environment, Problem, Refused, change, connect, http_on_host, no_fabric_hosts, operator, table

GROUP = "monitoring"
ROLE = "alertmanager"
MAX_SILENCE = datetime.timedelta(days=7)
DURATION_RE = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?$")


def parse_duration(text: str) -> datetime.timedelta:
    """2h, 30m, 1d12h: a silence's length, at most MAX_SILENCE."""
    match = DURATION_RE.match(text or "")
    if not text or not match or not any(match.groups()):
        raise Refused(f"--duration {text!r}: give it as 30m, 2h, 1d or 1d12h")
    days, hours, minutes = (int(part or 0) for part in match.groups())
    duration = datetime.timedelta(days=days, hours=hours, minutes=minutes)
    if not datetime.timedelta(minutes=1) <= duration <= MAX_SILENCE:
        raise Refused(f"--duration {text}: from 1 minute to {MAX_SILENCE.days} days")
    return duration


def parse_matchers(alert: str, labels: list[str]) -> list[dict]:
    """alertname=<alert> and each --label name=value, as exact matchers."""
    if not alert or not re.fullmatch(r"[A-Z][A-Za-z0-9]+", alert):
        raise Refused(f"--alert {alert!r}: the alert's name, e.g. KannelSmscLinkOffline")
    matchers = [{"name": "alertname", "value": alert, "isRegex": False, "isEqual": True}]
    for label in labels:
        name, sep, value = label.partition("=")
        if not sep or not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", name) or not value:
            raise Refused(f"--label {label!r}: give it as name=value, e.g. instance=sms1")
        matchers.append({"name": name, "value": value, "isRegex": False, "isEqual": True})
    return matchers


def silence_body(alert: str, labels: list[str], duration: str, reason: str, now: datetime.datetime) -> dict:
    if not (reason or "").strip():
        raise Refused("--reason is required: why the alert is silenced (a ticket, the change under way)")
    ends = now + parse_duration(duration)
    return {
        "matchers": parse_matchers(alert, labels),
        "startsAt": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "endsAt": ends.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "createdBy": operator(),
        "comment": reason.strip(),
    }


def _monitoring(environment: Environment, host: str | None, task_name: str) -> str:
    return environment.hosts_for(task_name, [GROUP], host)[0]


def _api(environment: Environment, name: str) -> str:
    return f"http://127.0.0.1:{environment.value(name, ROLE, 'alertmanager_port')}/api/v2"


def _matchers_text(matchers: list[dict]) -> str:
    return ",".join(
        f"{m['name']}{'=' if m.get('isEqual', True) else '!'}{'~' if m['isRegex'] else ''}{m['value']}"
        for m in matchers
    )


@task(
    name="list",
    auto_shortflags=False,
    help={"env": "environment (stacks/<env>)", "host": "the monitoring host (default: the first)"},
)
def list_alerts(c, env="lab", host=None):
    """Read-only: the alerts that fire now (and whether silenced or inhibited), and the silences."""
    no_fabric_hosts(c)
    environment = Environment(env)
    name = _monitoring(environment, host, "alerts.list")
    api = _api(environment, name)
    with connect(environment.connection_of(name)) as conn:
        login = environment.web_login(name, ROLE)
        alerts = http_on_host(conn, "GET", f"{api}/alerts?active=true&silenced=true&inhibited=true", **login)
        silences = http_on_host(conn, "GET", f"{api}/silences", **login)
    if alerts.status != 200 or silences.status != 200:
        raise Problem(f"Alertmanager on {name} answered {alerts.status or 'nothing'}: see runbooks/AlertmanagerDown.md")
    rows = []
    for alert in sorted(alerts.json(), key=lambda a: (a["labels"].get("severity", ""), a["labels"]["alertname"])):
        labels = alert["labels"]
        state = alert["status"]["state"]
        if alert["status"].get("silencedBy"):
            state += " (silenced)"
        if alert["status"].get("inhibitedBy"):
            state += " (inhibited)"
        rows.append(
            [
                labels["alertname"],
                labels.get("severity", ""),
                labels.get("instance", labels.get("tier", "")),
                state,
                alert.get("startsAt", "")[:19],
                alert["annotations"].get("summary", ""),
            ]
        )
    print(f"Alerts in {env} (Alertmanager on {name}):")
    print(table(["alert", "severity", "instance", "state", "since (UTC)", "summary"], rows))
    current = [s for s in silences.json() if s["status"]["state"] in ("active", "pending")]
    print(f"Silences ({len(current)} active or pending):")
    print(
        table(
            ["id", "state", "matchers", "ends (UTC)", "by", "comment"],
            [
                [
                    s["id"],
                    s["status"]["state"],
                    _matchers_text(s["matchers"]),
                    s["endsAt"][:19],
                    s["createdBy"],
                    s["comment"],
                ]
                for s in current
            ],
        )
    )
    firing = [r for r in rows if r[0] != "Watchdog" and r[3] == "active"]
    if not any(r[0] == "Watchdog" for r in rows):
        print("PROBLEM: the Watchdog is not firing: the alerting pipeline is broken (runbooks/Watchdog.md)")
        raise Problem("the Watchdog alert is missing")
    print(f"OK: Alertmanager answers; {len(firing)} alert(s) firing and not silenced besides the Watchdog")


@task(
    auto_shortflags=False,
    iterable=["label"],
    help={
        "env": "environment (stacks/<env>)",
        "alert": "the alert's name (alertname)",
        "label": "also match this label, name=value (repeat for more), e.g. instance=sms1",
        "duration": "how long: 30m, 2h, 1d (at most 7 days)",
        "reason": "why (a ticket, the change under way): the silence's comment",
        "yes": "do not ask for confirmation (needed in a non-interactive shell)",
        "dry_run": "print what would be done and change nothing",
    },
)
def silence(c, alert=None, label=None, duration="1h", reason=None, env="lab", yes=False, dry_run=False):
    """Changes: silence an alert for a time, with a reason (Alertmanager's POST /api/v2/silences)."""
    no_fabric_hosts(c)
    environment = Environment(env)
    labels = label or []
    body = silence_body(alert, labels, duration, reason, datetime.datetime.now(datetime.UTC))
    name = _monitoring(environment, None, "alerts.silence")
    plan = [
        f"POST {_api(environment, name)}/silences on {name}: {_matchers_text(body['matchers'])} until"
        f" {body['endsAt']} by {body['createdBy']}, comment {body['comment']!r}"
    ]

    def act() -> str:
        with connect(environment.connection_of(name)) as conn:
            answer = http_on_host(
                conn, "POST", f"{_api(environment, name)}/silences", body=body, **environment.web_login(name, ROLE)
            )
        if answer.status != 200:
            raise Problem(f"Alertmanager refused the silence ({answer.status}): {answer.body[:300]}")
        return f"silence {answer.json().get('silenceID')} until {body['endsAt']}"

    arguments = {"alert": alert, "label": labels, "duration": duration, "reason": body["comment"]}
    change(env, "alerts.silence", arguments, plan, act, yes=yes, dry_run=dry_run)


@task(
    auto_shortflags=False,
    help={
        "env": "environment (stacks/<env>)",
        "silence_id": "the silence's id (alerts.list shows it)",
        "yes": "do not ask for confirmation (needed in a non-interactive shell)",
        "dry_run": "print what would be done and change nothing",
    },
)
def unsilence(c, silence_id=None, env="lab", yes=False, dry_run=False):
    """Changes: end a silence now (Alertmanager's DELETE /api/v2/silence/<id>)."""
    no_fabric_hosts(c)
    environment = Environment(env)
    if not silence_id or not re.fullmatch(r"[0-9a-fA-F-]{8,64}", silence_id):
        raise Refused("--silence-id: the id alerts.list shows for the silence")
    name = _monitoring(environment, None, "alerts.unsilence")
    url = f"{_api(environment, name)}/silence/{quote(silence_id)}"
    plan = [f"DELETE {url} on {name}"]

    def act() -> str:
        with connect(environment.connection_of(name)) as conn:
            answer = http_on_host(conn, "DELETE", url, **environment.web_login(name, ROLE))
        if answer.status != 200:
            raise Problem(f"Alertmanager did not expire silence {silence_id} ({answer.status}): {answer.body[:200]}")
        return f"silence {silence_id} expired"

    change(env, "alerts.unsilence", {"silence_id": silence_id}, plan, act, yes=yes, dry_run=dry_run)
