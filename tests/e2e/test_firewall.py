"""The baseline's nftables firewall on the converged lab, probed with plain TCP connects from one
lab host to another (bash's /dev/tcp, as any client would connect): a peer the service list names
gets in, a host it does not name is dropped. And a run whose rules would shut out the SSH
connection it came in on stops before writing them.

The whole e2e suite runs with the firewall on: every tier's own traffic crosses it."""

from __future__ import annotations

import pytest
import yaml
from conftest import REPO, run

ADDRESSES = {
    name: variables["private_address"]
    for group in yaml.safe_load((REPO / "stacks/lab/hosts.yml").read_text())["all"]["children"].values()
    for name, variables in group["hosts"].items()
}
CONNECT_SECONDS = 3


def connects(source: str, target: str, port: int) -> int:
    """Exit status of a TCP connect from one lab host to another: 0 connected, 124 no answer
    (dropped), 1 refused."""
    probe = f"timeout {CONNECT_SECONDS} bash -c '</dev/tcp/{ADDRESSES[target]}/{port}'"
    return run("podman", "exec", f"govops-lab-{source}", "bash", "-c", probe, timeout=30).returncode


@pytest.mark.parametrize(
    ("source", "target", "port", "allowed"),
    [
        ("db2", "db1", 5432, True),  # replication
        ("sms1", "db1", 5432, False),  # the SMS tier has no business with the database
        ("mon1", "db1", 9547, True),  # Prometheus scrapes Patroni's metrics
        ("sms1", "db1", 8008, False),  # Patroni's REST API: the members and routers only
        ("db1", "backup1", 8432, True),  # WAL archiving to the repository
        ("sms1", "backup1", 8432, False),
        ("sms1", "smsc1", 2775, True),  # SMPP binds
        ("db1", "smsc1", 2775, False),
        ("mon1", "sms1", 13013, True),  # the sendsms probe
        ("scratch1", "k8s1", 6443, False),
    ],
    ids=lambda value: str(value),
)
def test_host_to_host_traffic_follows_the_service_list(lab_running, source, target, port, allowed):
    status = connects(source, target, port)
    if allowed:
        assert status == 0, f"{source} -> {target}:{port} should connect, exit status {status}"
    else:
        assert status == 124, f"{source} -> {target}:{port} should be dropped (no answer), exit status {status}"


def test_rules_that_would_shut_out_ssh_are_refused_before_anything_changes(lab_running):
    host = "scratch1"
    before = run("podman", "exec", f"govops-lab-{host}", "bash", "-c", "sha256sum /etc/nftables.conf; nft list ruleset")
    result = run(
        "ansible-playbook", "-i", "stacks/lab", "playbooks/site.yml", "--limit", host, "--tags", "baseline_firewall",
        "-e", '{"baseline_firewall_ssh_sources": ["192.0.2.0/24"], "baseline_firewall_admin_sources": []}',
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "10.231.0.1 is connected to scratch1 over SSH now" in output, output[-3000:]
    assert "baseline_firewall_ssh_sources (192.0.2.0/24)" in output
    after = run("podman", "exec", f"govops-lab-{host}", "bash", "-c", "sha256sum /etc/nftables.conf; nft list ruleset")
    assert before.returncode == 0 and after.stdout == before.stdout
    # and SSH still lets the controller in
    assert run("ansible", host, "-i", "stacks/lab", "-m", "ansible.builtin.ping").returncode == 0
