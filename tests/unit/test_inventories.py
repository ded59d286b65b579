"""The environments' inventories: same groups everywhere, sane lab ports and addresses."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
import yaml

STACKS = Path(__file__).resolve().parents[2] / "stacks"
ENVS = sorted(p.parent.name for p in STACKS.glob("*/hosts.yml"))
LAB_ONLY_GROUPS = {"smsc_simulator", "restore_scratch"}


def hosts_by_group(env: str) -> dict[str, dict]:
    inventory = yaml.safe_load((STACKS / env / "hosts.yml").read_text())
    return {name: group["hosts"] for name, group in inventory["all"]["children"].items()}


def test_lab_staging_and_prod_exist():
    assert {"lab", "staging", "prod"} <= set(ENVS)


@pytest.mark.parametrize("env", [e for e in ENVS if e != "lab"])
def test_same_groups_as_the_lab(env):
    assert set(hosts_by_group(env)) == set(hosts_by_group("lab")) - LAB_ONLY_GROUPS


@pytest.mark.parametrize("env", ENVS)
def test_every_host_has_a_private_address(env):
    for group, hosts in hosts_by_group(env).items():
        for name, variables in hosts.items():
            ipaddress.ip_address(variables["private_address"])  # raises on a bad address
            assert name.isidentifier(), f"{env}/{group}: host name {name} is not a plain name"


def test_lab_ports_and_addresses_are_unique_and_inside_the_subnet():
    lab = yaml.safe_load((STACKS / "lab/group_vars/all/lab.yml").read_text())
    subnet = ipaddress.ip_network(lab["lab_network_subnet"])
    hosts = {n: v for group in hosts_by_group("lab").values() for n, v in group.items()}
    ports = [v["ansible_port"] for v in hosts.values()]
    addresses = [v["private_address"] for v in hosts.values()]
    assert len(set(ports)) == len(ports)
    assert len(set(addresses)) == len(addresses)
    assert all(ipaddress.ip_address(a) in subnet for a in addresses)
    assert {"db1", "db2", "db3", "backup1", "scratch1", "sms1", "sms2", "smsc1", "mon1", "k8s1"} == set(hosts)
