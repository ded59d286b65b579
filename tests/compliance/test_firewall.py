"""CIS Debian 12 section 4.3 (nftables) and the kit's expected-ports rule, read from the running
host: the ruleset in force (nft -j list ruleset) and the sockets that listen (ss)."""

from __future__ import annotations

import ipaddress
import json

import pytest

from tests.compliance.controls import control

testinfra_hosts = ["ansible://all"]

KIT_TABLE = "govops_baseline"  # roles/baseline/vars/main.yml


@pytest.fixture(scope="module")
def ruleset(host) -> list[dict]:
    """The ruleset in force, as nft's JSON objects (tables, chains, rules); empty when nft is absent."""
    with host.sudo():
        result = host.run("nft -j list ruleset")
    return json.loads(result.stdout)["nftables"] if result.rc == 0 else []


def chains(ruleset: list[dict]) -> list[dict]:
    return [item["chain"] for item in ruleset if "chain" in item]


def rules(ruleset: list[dict], table: str | None = None) -> list[dict]:
    return [item["rule"] for item in ruleset if "rule" in item and table in (None, item["rule"]["table"])]


def show_chains(evidence, ruleset) -> None:
    evidence.note(
        "nft -j list ruleset: base chains",
        "\n".join(
            f"{c['family']} {c['table']} {c['name']}: hook {c['hook']}, policy {c.get('policy', 'accept')}"
            for c in chains(ruleset)
            if "hook" in c
        )
        or "no base chain",
    )


def accepted_ports(ruleset: list[dict]) -> set[tuple[str, int]]:
    """(protocol, port) the kit's table accepts on a destination port, from whatever sources."""
    ports: set[tuple[str, int]] = set()
    for rule in rules(ruleset, KIT_TABLE):
        if not any("accept" in expr for expr in rule["expr"]):
            continue
        for expr in rule["expr"]:
            payload = expr.get("match", {}).get("left", {}).get("payload", {})
            if payload.get("field") != "dport":
                continue
            right = expr["match"]["right"]
            for value in right["set"] if isinstance(right, dict) and "set" in right else [right]:
                low, high = value["range"] if isinstance(value, dict) else (value, value)
                ports.update((payload["protocol"], port) for port in range(low, high + 1))
    return ports


def listening(ss_output: str) -> list[tuple[str, str, int, str]]:
    """(protocol, address, port, process) of the sockets that listen beyond the loopback."""
    found = []
    for line in ss_output.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        address, _, port = fields[4].rpartition(":")
        address = address.strip("[]")
        if address.endswith("%lo"):
            continue
        address = address.split("%")[0]
        if address not in ("*", "0.0.0.0", "::") and ipaddress.ip_address(address).is_loopback:
            continue
        found.append((fields[0], address, int(port), " ".join(fields[6:])))
    return found


@control(
    "CIS-DEB12-4.3.1",
    title="nftables is installed",
    rationale="The host's firewall is nftables, the one firewall tool the baseline manages.",
    severity="medium",
    source="CIS Debian 12",
)
def test_nftables_installed(host, evidence):
    assert evidence.installed("nftables"), "nftables is not installed"


@control(
    "CIS-DEB12-4.3.5",
    title="nftables base chains exist for inbound and forwarded traffic",
    rationale="Without a base chain on a hook, the kernel never consults a rule for that traffic.",
    severity="high",
    source="CIS Debian 12",
)
def test_base_chains(host, evidence, ruleset):
    show_chains(evidence, ruleset)
    hooks = {c["hook"] for c in chains(ruleset) if "hook" in c and c["family"] in ("inet", "ip")}
    assert {"input", "forward"} <= hooks, f"base chains on hooks {sorted(hooks) or 'none'}; input and forward expected"


@control(
    "CIS-DEB12-4.3.6",
    title="nftables loopback traffic is configured",
    rationale="Local services talk over the loopback; a packet from outside claiming a loopback source "
    "address is forged and is dropped.",
    severity="medium",
    source="CIS Debian 12",
)
def test_loopback_rules(host, evidence, ruleset):
    with host.sudo():
        listed = evidence.run("nft list chain inet %s input", KIT_TABLE)
    text = listed.stdout
    assert listed.rc == 0, f"no input chain in table inet {KIT_TABLE}"
    assert 'iifname "lo" accept' in text, "loopback traffic is not accepted"
    assert "ip saddr 127.0.0.0/8 drop" in text, "packets from outside with a 127.0.0.0/8 source are not dropped"
    assert "ip6 saddr ::1 drop" in text, "packets from outside with the ::1 source are not dropped"


@control(
    "CIS-DEB12-4.3.8",
    title="nftables default deny policy on inbound and forwarded traffic",
    rationale="Whatever no rule lets in is dropped, so a service started by mistake is not reachable. "
    "Outbound traffic stays open: the hosts reach their peers, the mirror and the SMSC.",
    severity="high",
    source="CIS Debian 12",
)
def test_default_deny(host, evidence, ruleset):
    show_chains(evidence, ruleset)
    for hook in ("input", "forward"):
        dropping = [c for c in chains(ruleset) if c.get("hook") == hook and c.get("policy") == "drop"]
        assert dropping, f"no {hook} base chain with policy drop"


@control(
    "CIS-DEB12-4.3.9",
    title="nftables service is enabled",
    rationale="The rules must be loaded again when the host boots.",
    severity="medium",
    source="CIS Debian 12",
)
def test_nftables_service_enabled(host, evidence):
    state = evidence.unit("nftables.service", "is-enabled")
    assert state == "enabled", f"nftables.service is {state}"


@control(
    "CIS-DEB12-4.3.10",
    title="nftables rules are permanent",
    rationale="The ruleset in force is the one the boot loads (/etc/nftables.conf), not rules added by hand "
    "that a reboot would lose.",
    severity="medium",
    source="CIS Debian 12",
)
def test_rules_permanent(host, evidence, ruleset):
    with host.sudo():
        loaded = evidence.run(
            "nft --check --file /etc/nftables.conf && grep -c 'table inet %s {' /etc/nftables.conf", KIT_TABLE
        )
    assert loaded.rc == 0, f"/etc/nftables.conf does not define table inet {KIT_TABLE}, or nft refuses it"
    in_force = {c["table"] for c in chains(ruleset)}
    assert KIT_TABLE in in_force, f"table inet {KIT_TABLE} is not in force"


@control(
    "KIT-PORT-01",
    title="Only the expected ports listen beyond the loopback",
    rationale="Every port a host listens on beyond the loopback is one its roles declare "
    "(baseline_firewall_services, which the firewall opens to the groups that need it), or SSH. "
    "Anything else is a service nobody accounted for.",
    severity="high",
    source="kit",
)
def test_only_expected_ports_listen(host, evidence, ruleset):
    with host.sudo():
        ss = evidence.run("ss -Hltnup")
    assert ss.rc == 0, "ss failed"
    expected = accepted_ports(ruleset)
    evidence.note(
        f"ports table inet {KIT_TABLE} accepts",
        " ".join(f"{proto}/{port}" for proto, port in sorted(expected)) or "none (no kit firewall)",
    )
    unexpected = sorted(
        {
            f"{proto}/{port} on {address} {process}".strip()
            for proto, address, port, process in listening(ss.stdout)
            if (proto, port) not in expected
        }
    )
    assert not unexpected, f"listening but not declared: {unexpected}"
