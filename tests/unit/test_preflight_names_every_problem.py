"""Each role's preflight names every problem of its input in one failure, before anything changes.

One run of the environment check (playbooks/validate.yml on the controller) over a copy of prod
whose host_vars break several rules of each role at once. Every value keeps the type its argument
spec asks for, so what fails is the role's own preflight, and each broken rule is named in it.
"""

from __future__ import annotations

import pytest
import yaml
from environment_check import InputCheck, fixture_vault, inventory_copy, roles_by_host

pytestmark = pytest.mark.filterwarnings("ignore:AnsibleCollectionFinder has already been configured")

LINK = {"id": "operator", "host": "smsc.operator.example", "port": 2775, "system_id": "cfm", "password": "p4ssw0rd!"}

BROKEN = {
    "db1": {
        "etcd_members": ["db1", "db2"],
        "etcd_heartbeat_interval": 100,
        "etcd_election_timeout": 200,
        "postgresql_parameters": {"ssl": "off"},
        "patroni_loop_wait": 30,
        "patroni_router_check_interval": "1 sec",
        "pgbackrest_retention_full": 0,
        "pgbackrest_retention_diff": 0,
    },
    "backup1": {"pgbackrest_schedule_full": "every sunday", "pgbackrest_schedule_check": "hourly at :07"},
    "sms1": {
        "kannel_smsc_links": [{**LINK, "transceiver": False}],
        "kannel_sendsms_users": [
            {"username": "cfm", "password": "p4ssw0rd!", "allow_ips": ["10.0.4.*", "10.0.5.0/24"], "max_messages": 0},
            {"username": "ops", "password": "p4ssw0rd!", "default_smsc": "elsewhere"},
        ],
        "kannel_mo_url": "ftp://cfm/mo",
    },
    "mon1": {
        "prometheus_scrape_interval": "15 seconds",
        "prometheus_slo_sms_delivery_target": 1.5,
        "prometheus_business_hours": {"start": 18, "end": 8, "days": [1, 2, 3, 4, 5]},
        "alertmanager_sms_pager_numbers": ["012-345-678", "+85512345678"],
    },
    "k8s1": {"kubernetes_control_plane_service_cidr": "10.96.0.1/16"},
}

EXPECTED = {
    ("db1", "etcd"): [
        "must name this host (db1) once each, and be an odd number of members",
        "etcd_election_timeout (200 ms) must be at least 5 x etcd_heartbeat_interval (100 ms)",
    ],
    ("db1", "postgresql"): ["postgresql_parameters sets ['ssl'], which the role keeps fixed"],
    ("db1", "patroni"): [
        "patroni_loop_wait (30) + 2 x patroni_retry_timeout",
        "patroni_router_check_interval ('1 sec') and patroni_router_down_interval",
    ],
    ("db1", "pgbackrest"): [
        "pgbackrest_retention_full is 0; it must be 1 or more",
        "pgbackrest_retention_diff is 0; it must be 1 or more",
    ],
    ("backup1", "pgbackrest"): [
        "pgbackrest_schedule_full is not a systemd calendar expression (every sunday)",
        "pgbackrest_schedule_check is not a systemd calendar expression (hourly at :07)",
    ],
    ("sms1", "kannel"): [
        "kannel_smsc_links 'operator': with transceiver false, set receive_port",
        "kannel_sendsms_users 'cfm': allow_ips entry '10.0.4.*' must be an IPv4 address or CIDR network",
        "kannel_sendsms_users 'cfm': max_messages must be from 1 to 255 (parts of one SMS); got 0",
        "kannel_sendsms_users 'ops': default_smsc 'elsewhere' is not a kannel_smsc_links id",
        "kannel_mo_url must be an http(s):// URL or empty; got 'ftp://cfm/mo'",
    ],
    ("mon1", "prometheus"): [
        "prometheus_scrape_interval must be a duration such as 15s, 1m or 15d; got '15 seconds'",
        "prometheus_slo_sms_delivery_target must be a fraction between 0 and 1, such as 0.999; got 1.5",
        "prometheus_business_hours must be {start, end, days} with 0 <= start < end <= 24",
    ],
    ("mon1", "alertmanager"): ["alertmanager_sms_pager_numbers: '012-345-678' is not an E.164 number"],
    ("k8s1", "kubernetes_control_plane"): [
        "kubernetes_control_plane_service_cidr must be an IPv4 network such as 10.96.0.0/16; got 10.96.0.1/16"
    ],
}


@pytest.fixture(scope="module")
def failures(tmp_path_factory):
    inventory = inventory_copy("prod", tmp_path_factory.mktemp("broken"), fixture_vault("prod"))
    for host, values in BROKEN.items():
        (inventory / "host_vars" / f"{host}.yml").write_text(yaml.safe_dump(values))
    return InputCheck(inventory, roles_by_host(inventory), limit=",".join(BROKEN)).failures()


@pytest.mark.parametrize(("host", "role"), list(EXPECTED), ids=[f"{host}-{role}" for host, role in EXPECTED])
def test_one_failure_names_every_broken_rule(failures, host, role):
    failure = failures[host].get(role, "")
    missing = [message for message in EXPECTED[host, role] if message not in " ".join(failure.split())]
    assert not missing, f"{host} {role} failed with: {failure!r}"


def test_roles_whose_input_is_sound_pass(failures):
    broken_roles = {host: {role for broken_host, role in EXPECTED if broken_host == host} for host in BROKEN}
    unexpected = {host: set(failures[host]) - broken_roles[host] for host in BROKEN}
    assert not any(unexpected.values()), {
        host: {role: failures[host][role] for role in roles} for host, roles in unexpected.items()
    }


def test_nothing_was_left_out_of_the_broken_input():
    """Every host given broken values has expectations, so none of them is checked for nothing."""
    assert {host for host, _ in EXPECTED} == set(BROKEN)
