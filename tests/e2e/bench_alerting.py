"""Benchmark of the monitoring tier on the lab: how long from a fault to its alert in
Alertmanager, and to the SMS page at the SMSC, over RUNS faults of each kind (medians); the
number of alerts, rule tests and targets; Prometheus's memory and its longest scrape.

Usage (lab up and converged): make bench-alerts   [RUNS=3]
All traffic goes to the lab's containers; every loop is bounded."""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import yaml
from monitoring_lab import Monitoring
from sms_lab import Lab, wait_until

RULES = Path(__file__).resolve().parents[2] / "monitoring/rules"


def node_exporter_fault(monitoring: Monitoring) -> tuple[float, float | None]:
    started = time.time()
    monitoring.systemctl("sms2", "stop", "prometheus-node-exporter")
    try:
        return monitoring.wait_for_alert("NodeExporterDown", started, instance="sms2"), None
    finally:
        monitoring.systemctl("sms2", "start", "prometheus-node-exporter")
        monitoring.wait_for_resolution("NodeExporterDown", instance="sms2")


def replica_fault(monitoring: Monitoring) -> tuple[float, float | None]:
    replica = monitoring.replica()
    started = time.time()
    monitoring.systemctl(replica, "stop", "patroni")
    try:
        alert = monitoring.wait_for_alert("PostgresqlDown", started, instance=replica)
        return alert, monitoring.wait_for_page(started, "PostgresqlDown")
    finally:
        monitoring.systemctl(replica, "start", "patroni")
        monitoring.wait_for_resolution("PostgresqlDown", instance=replica)


def smsc_link_fault(monitoring: Monitoring) -> tuple[float, float | None]:
    started = time.time()
    monitoring.lab.simulator("POST", "/fault", {"mode": "drop_binds"})
    try:
        return monitoring.wait_for_alert("KannelSmscLinkOffline", started, instance="sms1"), None
    finally:
        monitoring.lab.simulator("POST", "/fault", {"mode": "none"})
        monitoring.wait_for_resolution("KannelSmscLinkOffline", instance="sms1")


def rule_counts() -> tuple[int, int]:
    alerts = {
        rule["alert"]
        for path in [*RULES.glob("*.yml"), *RULES.glob("*.j2")]
        for group in yaml.safe_load(
            "\n".join(line for line in path.read_text().splitlines() if not line.startswith("{{"))
        )["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    cases = sum(
        len(group.get("alert_rule_test", [])) + len(group.get("promql_expr_test", []))
        for path in (RULES / "tests").glob("*_test.yml")
        for group in yaml.safe_load(path.read_text())["tests"]
    )
    return len(alerts), cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    monitoring = Monitoring(Lab())
    if not wait_until(lambda: not monitoring.query("up == 0"), 180, 5):
        raise SystemExit(f"targets are down before the faults: {monitoring.query('up == 0')}")

    results = {}
    for name, fault in [("node exporter stopped", node_exporter_fault), ("replica stopped", replica_fault),
                        ("SMSC link down", smsc_link_fault)]:  # fmt: skip
        results[name] = [fault(monitoring) for _ in range(args.runs)]

    alerts, cases = rule_counts()
    targets = len(monitoring.query("up"))
    memory = float(monitoring.query('process_resident_memory_bytes{job="prometheus"}')[0]["value"][1])
    longest = max(monitoring.query("max_over_time(scrape_duration_seconds[10m])"), key=lambda r: float(r["value"][1]))
    print(f"alerts: {alerts}, promtool test cases: {cases}, scrape targets: {targets}")
    for name, runs in results.items():
        alert = statistics.median(a for a, _ in runs)
        pages = [p for _, p in runs if p is not None]
        page = f", to the SMS page median {statistics.median(pages):.0f} s {[round(p) for p in pages]}" if pages else ""
        print(f"{name:22}: to the alert median {alert:.0f} s {[round(a) for a, _ in runs]}{page}")
    print(f"Prometheus resident memory: {memory / 2**20:.0f} MiB")
    print(
        f"longest scrape (10 min): {float(longest['value'][1]) * 1000:.0f} ms "
        f"({longest['metric']['job']} on {longest['metric']['instance']})"
    )


if __name__ == "__main__":
    main()
