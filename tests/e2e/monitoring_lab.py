"""Faults in the lab and the alerts they raise: used by test_monitoring.py and bench_alerting.py.

Alertmanager, Prometheus, the webhook sink and the SMSC simulator are asked over HTTP from the
controller (the lab's own containers); faults are made with `podman exec` on the lab hosts.
Every wait is bounded.
"""

from __future__ import annotations

import json
import subprocess
import urllib.parse
from dataclasses import dataclass
from datetime import datetime

from sms_lab import Lab, wait_until

# The lab's on-call numbers and short code (stacks/lab/group_vars/monitoring/monitoring.yml).
ONCALL = ("85512999001", "85512999002")
PAGER_FROM = "1279"


@dataclass
class Monitoring:
    lab: Lab

    def url(self, host: str, port: int, path: str) -> str:
        return f"http://{self.lab.address(host)}:{port}{path}"

    def get(self, host: str, port: int, path: str, auth: tuple[str, str] | None = None):
        status, body = self.lab.http("GET", self.url(host, port, path), auth=auth)
        if status != 200:
            raise RuntimeError(f"GET {host}:{port}{path}: {status} {body[:300]}")
        return json.loads(body)

    # --- Prometheus and Alertmanager ----------------------------------------------------------
    def query(self, expr: str) -> list[dict]:
        path = "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        return self.get("mon1", 9090, path, self.lab.web_login("prometheus"))["data"]["result"]

    def alerts(self, name: str, **labels: str) -> list[dict]:
        """Alertmanager's active alerts of that name whose labels include `labels`."""
        path = "/api/v2/alerts?" + urllib.parse.urlencode({"filter": f'alertname="{name}"'})
        found = self.get("mon1", 9093, path, self.lab.web_login("alertmanager"))
        return [a for a in found if all(a["labels"].get(k) == v for k, v in labels.items())]

    def wait_for_alert(self, name: str, since: float, timeout: float = 180, **labels: str) -> float:
        """Seconds from `since` until the alert fired (its startsAt, which Prometheus sets when the
        alert fires), once it is active in Alertmanager: right even when the wait began late."""
        found = wait_until(lambda: self.alerts(name, **labels), timeout, 2)
        if not found:
            raise AssertionError(f"{name} {labels} did not reach Alertmanager within {timeout:.0f} s")
        return max(0.0, min(_epoch(alert["startsAt"]) for alert in found) - since)

    def wait_for_resolution(self, name: str, timeout: float = 240, **labels: str) -> None:
        if not wait_until(lambda: not self.alerts(name, **labels), timeout, 3):
            raise AssertionError(f"{name} {labels} still active {timeout:.0f} s after the fix")

    # --- what the alerts reach ----------------------------------------------------------------
    def pages(self, since: float, containing: str) -> list[dict]:
        """SMS from the pager's short code to the on-call numbers that reached the SMSC simulator."""
        texts = self.lab.simulator("GET", "/texts")["texts"]
        return [
            t
            for t in texts
            if t["source"] == PAGER_FROM
            and t["destination"].lstrip("+") in ONCALL
            and containing in t["text"]
            and _epoch(t["received_at"]) >= since
        ]

    def wait_for_page(self, since: float, containing: str, timeout: float = 240) -> float:
        """Seconds from `since` until a page mentioning `containing` reached the SMSC."""
        found = wait_until(lambda: self.pages(since, containing), timeout, 2)
        if not found:
            raise AssertionError(f"no page with {containing!r} reached the SMSC within {timeout:.0f} s")
        return min(_epoch(t["received_at"]) for t in found) - since

    def sink(self, path: str) -> list[dict]:
        """What the lab's webhook sink on smsc1 received on `path` (the second alert path)."""
        query = urllib.parse.urlencode({"path": path})
        return self.get("smsc1", 9096, f"/received?{query}")["records"]

    # --- faults -------------------------------------------------------------------------------
    def systemctl(self, host: str, *args: str) -> None:
        subprocess.run(
            ["podman", "exec", f"govops-lab-{host}", "systemctl", *args],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def replica(self) -> str:
        """A database member that is a replica now."""
        return self._member("patroni_replica == 1", "no replica in the database cluster")

    def leader(self) -> str:
        """The database member that leads the cluster now."""
        return self._member("patroni_primary == 1", "no leader in the database cluster")

    def _member(self, expr: str, missing: str) -> str:
        found = self.query(expr)
        if not found:
            raise RuntimeError(missing)
        return sorted(r["metric"]["instance"] for r in found)[0]


def ready_monitoring() -> Monitoring:
    """The lab's monitoring, once every target is up (faults start from a quiet lab)."""
    monitoring = Monitoring(Lab())
    assert wait_until(lambda: monitoring.query("up") and not monitoring.query("up == 0"), 180, 5), (
        f"targets down before the faults: {monitoring.query('up == 0')}"
    )
    return monitoring


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
