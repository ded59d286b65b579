"""The baseline's firewall services list against the roles and inventories it describes.

Each port is written "{{ <role variable> | default(N) }}": N must be that role's default, or the
firewall would open another port than the role listens on when the inventory does not set it."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SERVICES = yaml.safe_load((ROOT / "roles/baseline/defaults/main.yml").read_text())["baseline_firewall_services"]
PORT = re.compile(r"^\{\{ (?P<variable>\w+) \| default\((?P<default>\d+)\) \}\}$")


def role_defaults() -> dict:
    merged: dict = {}
    for path in sorted(ROOT.glob("roles/*/defaults/main.yml")):
        merged.update(yaml.safe_load(path.read_text()) or {})
    return merged


def inventory_groups(env: str) -> set[str]:
    inventory = yaml.safe_load((ROOT / "stacks" / env / "hosts.yml").read_text())
    return set(inventory["all"]["children"]) | {"all"}


PORTS = [(service["name"], port) for service in SERVICES for port in service["ports"]]


@pytest.mark.parametrize(("service", "port"), PORTS, ids=[f"{s}:{p}" for s, p in PORTS])
def test_port_default_is_the_roles(service, port):
    if isinstance(port, int):
        return  # a port no role sets (the Kubernetes components' fixed metrics ports)
    match = PORT.match(port)
    assert match, f"{service}: port {port!r} is neither a number nor '{{{{ <variable> | default(N) }}}}'"
    defaults = role_defaults()
    assert match["variable"] in defaults, f"{service}: no role defines {match['variable']}"
    assert defaults[match["variable"]] == int(match["default"]), (
        f"{service}: {match['variable']} defaults to {defaults[match['variable']]} in its role, {match['default']} here"
    )


@pytest.mark.parametrize("env", ["lab", "staging", "prod"])
def test_groups_are_the_inventory_groups(env):
    groups = inventory_groups(env) | {"smsc_simulator", "restore_scratch"}  # lab-only groups
    for service in SERVICES:
        unknown = set(service["groups"] + service["from"]) - groups
        assert not unknown, f"{service['name']}: groups {sorted(unknown)} are not in the {env} inventory"


def test_every_service_is_reachable_from_somewhere():
    for service in SERVICES:
        assert service["from"] or service.get("clients"), f"{service['name']}: no group and no clients may reach it"


def test_lab_controller_address_is_the_lab_gateway():
    """The lab lets its controller in by address: the first of the lab network, where podman's
    bridge puts the gateway the published SSH ports come in through."""
    lab = yaml.safe_load((ROOT / "stacks/lab/group_vars/all/lab.yml").read_text())
    baseline = yaml.safe_load((ROOT / "stacks/lab/group_vars/all/baseline.yml").read_text())
    gateway = f"{ipaddress.ip_network(lab['lab_network_subnet'])[1]}/32"
    for name in ("ssh", "admin", "client"):
        assert baseline[f"baseline_firewall_{name}_sources"] == [gateway], name


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_deployed_environments_restrict_ssh_and_let_the_pods_in(env):
    """SSH from the admin network only (never the role's open default), the bastion inside it, and
    the cluster's pod network as the platform's clients."""
    baseline = yaml.safe_load((ROOT / "stacks" / env / "group_vars/all/baseline.yml").read_text())
    ssh = [ipaddress.ip_network(source) for source in baseline["baseline_firewall_ssh_sources"]]
    assert ssh and all(network.prefixlen >= 16 for network in ssh), f"{env}: SSH open to {ssh}"
    for source in baseline["baseline_firewall_admin_sources"]:
        assert any(ipaddress.ip_network(source).subnet_of(network) for network in ssh), f"{env}: bastion {source}"
    pods = role_defaults()["kubernetes_control_plane_cluster_cidr"]
    assert baseline["baseline_firewall_client_sources"] == [pods], f"{env}: clients are not the pod network {pods}"
