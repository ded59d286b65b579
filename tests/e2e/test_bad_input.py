"""Bad input gets a clear error naming what is wrong, and leaves nothing half-made."""

from __future__ import annotations

import json
import socket

import pytest
import yaml
from conftest import REPO, recap, run
from sms_lab import Lab

SCRATCH_LAB = "govops-e2e"


def test_unknown_env_lists_the_known_ones():
    result = run("make", "--no-print-directory", "health", "ENV=nowhere")
    assert result.returncode == 2
    assert "Unknown ENV 'nowhere'. Known environments: lab prod staging" in result.stderr


@pytest.fixture
def scratch_lab(tmp_path):
    """A second, tiny lab inventory (its own name, network and ports) to break on purpose."""

    def make(hosts: dict) -> list[str]:
        (tmp_path / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
        (tmp_path / "group_vars").symlink_to(REPO / "stacks/lab/group_vars")
        return [
            "ansible-playbook", "-i", str(tmp_path), "playbooks/lab/up.yml",
            "-e", f"lab_name={SCRATCH_LAB}", "-e", "lab_network_subnet=10.232.0.0/24",
        ]  # fmt: skip

    yield make
    run("podman", "rm", "--force", "--time", "0", f"{SCRATCH_LAB}-e2e1", f"{SCRATCH_LAB}-e2e2")
    run("podman", "network", "rm", "--force", SCRATCH_LAB)


def leftovers() -> tuple[list, bool]:
    ps = run("podman", "ps", "--all", "--format", "json", "--filter", f"name=^{SCRATCH_LAB}-")
    network = run("podman", "network", "exists", SCRATCH_LAB)
    return json.loads(ps.stdout or "[]"), network.returncode == 0


def test_taken_ssh_port_is_named_with_its_host(scratch_lab, lab_running):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        command = scratch_lab({"e2e1": {"ansible_port": port, "private_address": "10.232.0.11"}})
        result = run(*command)
    assert result.returncode != 0
    assert f"127.0.0.1:{port} is already in use; lab host 'e2e1' needs it" in result.stdout
    assert leftovers() == ([], False)


def test_podman_failure_is_explained_and_cleaned_up(scratch_lab, lab_running):
    command = scratch_lab(
        {
            "e2e1": {"ansible_port": 22291, "private_address": "10.232.0.11"},
            "e2e2": {
                "ansible_port": 22292,
                "private_address": "10.232.0.12",
                "lab_container_capabilities": ["CAP_BOGUS"],
            },
        }
    )
    result = run(*command)
    assert result.returncode != 0
    assert "Podman could not create or start a lab host; what this run created was removed." in result.stdout
    assert "Podman said:" in result.stdout and "CAP_BOGUS" in result.stdout
    assert leftovers() == ([], False)


def test_lab_address_outside_the_subnet_is_refused(scratch_lab):
    result = run(*scratch_lab({"e2e1": {"ansible_port": 22291, "private_address": "192.0.2.7"}}))
    assert result.returncode != 0
    assert "host 'e2e1' needs ansible_port" in result.stdout and "got 192.0.2.7" in result.stdout
    assert leftovers() == ([], False)


def test_lab_disk_without_an_absolute_path_is_refused(scratch_lab):
    disks = [{"path": "var/log/kannel", "size_mb": 64}]
    host = {"ansible_port": 22291, "private_address": "10.232.0.11", "lab_container_disks": disks}
    result = run(*scratch_lab({"e2e1": host}))
    assert result.returncode != 0
    expected = "e2e1: each entry of lab_container_disks needs path (an absolute path)"
    assert expected in result.stdout, result.stdout[-2000:]
    assert leftovers() == ([], False)


@pytest.mark.parametrize(
    ("extra_vars", "message"),
    [
        ({"common_journald_storage": "sometimes"}, "common_journald_storage"),
        ({"common_admin_users": [{"name": "eve", "ssh_keys": ["not-a-key"]}]}, "common_admin_users: key not-a-key"),
        ({"common_admin_users": [{"name": "eve"}]}, "common_admin_users: 'eve' has no ssh_keys"),
        ({"common_timezone": "Mars/Olympus_Mons"}, "common_timezone: 'Mars/Olympus_Mons'"),
        ({"common_apt_cache_valid_time": "soon"}, "common_apt_cache_valid_time"),
    ],
    ids=["choice", "bad-key", "no-key", "time-zone", "type"],
)
def test_bad_role_input_stops_before_any_change(lab_running, extra_vars, message):
    result = run(
        "ansible-playbook", "-i", "stacks/lab", "playbooks/site.yml", "--limit", "db1", "-e", json.dumps(extra_vars)
    )  # fmt: skip
    assert result.returncode != 0
    assert message in result.stdout, result.stdout[-3000:]
    assert recap(result.stdout)["db1"]["changed"] == 0
    assert recap(result.stdout)["db1"]["failed"] == 1


@pytest.mark.parametrize(
    ("extra_vars", "message"),
    [
        ({"kannel_admin_password": "short"}, "kannel_admin_password: need at least 8 characters"),
        (
            {"kannel_smsc_links": [{"id": "op", "host": "smsc1", "port": 2775, "system_id": "x", "password": "p4ssw0rd",
                                    "transceiver": False}]},
            "kannel_smsc_links 'op': with transceiver false, set receive_port",
        ),
        ({"kannel_mo_url": "ftp://cfm/mo"}, "kannel_mo_url must be an http(s):// URL"),
        (
            {"kannel_sendsms_users": [{"username": "cfm", "password": "p4ssw0rd!", "allow_ips": ["10.0.4.*"]}]},
            "kannel_sendsms_users 'cfm': allow_ips entry '10.0.4.*' must be an IPv4 address or CIDR network",
        ),
        (
            {"kannel_sendsms_users": [{"username": "cfm", "password": "p4ssw0rd!", "max_messages": 0}]},
            "kannel_sendsms_users 'cfm': max_messages must be from 1 to 255",
        ),
    ],
    ids=["short-password", "no-receiver", "bad-url", "wildcard-allow-ip", "zero-parts"],
)  # fmt: skip
def test_bad_gateway_input_stops_before_any_change(lab_running, extra_vars, message):
    playbook = "playbooks/sms_gateways.yml"
    result = run("ansible-playbook", "-i", "stacks/lab", playbook, "--limit", "sms1", "-e", json.dumps(extra_vars))
    assert result.returncode != 0
    assert message in result.stdout, result.stdout[-3000:]
    assert recap(result.stdout)["sms1"]["changed"] == 0


DATABASES = "playbooks/databases.yml"
BACKUPS = "playbooks/backups.yml"


@pytest.mark.parametrize(
    ("playbook", "extra_vars", "message"),
    [
        (
            DATABASES, {"patroni_synchronous_mode": True, "patroni_members": ["db1"], "etcd_members": ["db1"]},
            "patroni_synchronous_mode is on but patroni_members has 1 member",
        ),
        (DATABASES, {"patroni_superuser_password": ""}, "patroni_superuser_password: need at least 12 characters"),
        (DATABASES, {"patroni_ttl": "soon"}, "patroni_ttl"),
        (DATABASES, {"patroni_loop_wait": 20}, "must be at most patroni_ttl"),
        (
            DATABASES, {"postgresql_hba_entries": [{"type": "hostssl", "database": "all", "user": "all",
                                                    "address": "0.0.0.0/0", "method": "trust"}]},
            "and trust only with type local",
        ),
        (BACKUPS, {"pgbackrest_retention_full": 0}, "pgbackrest_retention_full is 0; it must be 1 or more"),
        (BACKUPS, {"pgbackrest_retention_diff": "weekly"}, "pgbackrest_retention_diff"),
        (BACKUPS, {"pgbackrest_cipher_pass": ""}, "pgbackrest_cipher_pass must be set"),
        (BACKUPS, {"pgbackrest_schedule_full": "every sunday"},
         "pgbackrest_schedule_full is not a systemd calendar expression"),
    ],
    ids=["db-sync-with-one-member", "db-missing-password", "db-wrong-type", "db-lease-too-short", "db-trust-over-tcp",
         "backup-retention-zero", "backup-wrong-type", "backup-missing-passphrase", "backup-bad-schedule"],
)  # fmt: skip
def test_bad_tier_input_stops_every_host_before_any_change(lab_running, playbook, extra_vars, message):
    """The database and backup tiers check all their hosts' input before any host changes."""
    result = run("ansible-playbook", "-i", "stacks/lab", playbook, "-e", json.dumps(extra_vars))
    assert result.returncode != 0
    assert " ".join(message.split()) in " ".join(result.stdout.split()), result.stdout[-3000:]
    assert all(counts["changed"] == 0 for counts in recap(result.stdout).values())


BAD_RULE = """groups:
  - name: broken
    rules:
      - alert: Broken
        expr: sum(rate(up[5m]) by
"""


@pytest.fixture
def bad_rule_file(tmp_path):
    path = tmp_path / "broken.yml"
    path.write_text(BAD_RULE)
    return str(path)


@pytest.mark.parametrize(
    ("extra_vars", "message"),
    [
        ({"prometheus_rule_files": ["BAD_RULE_FILE"]}, "failed to validate"),
        ({"prometheus_external_labels": {"bad label": "x"}}, "failed to validate"),
        (
            {"alertmanager_webhook_receivers": [
                {"name": "incident", "url": "http://[::1"}, {"name": "tickets", "url": "http://smsc1:9096/tickets"},
                {"name": "db-tickets", "url": "http://smsc1:9096/tickets/db"},
                {"name": "deadmans-switch", "url": "http://smsc1:9096/watchdog"}]},
            "failed to validate",
        ),
        ({"alertmanager_webhook_receivers": [{"name": "incident"}]}, "missing required arguments: url"),
        ({"alertmanager_sms_pager_numbers": ["012-345-678"]}, "'012-345-678' is not an E.164 number"),
        (
            {"alertmanager_web_users": {"govops": "one-password-for-two", "prometheus": "one-password-for-two"}},
            "no two accounts sharing one",
        ),
    ],
    ids=["invalid-rule", "invalid-scrape-config", "invalid-receiver", "receiver-without-url", "number-not-e164",
         "web-password-shared"],
)  # fmt: skip
def test_bad_monitoring_input_is_refused_and_the_running_configuration_stays(
    lab_running, bad_rule_file, extra_vars, message
):
    extra_vars = json.loads(json.dumps(extra_vars).replace("BAD_RULE_FILE", bad_rule_file))
    lab = Lab()
    prometheus = f"http://{lab.address('mon1')}:9090"
    alertmanager = f"http://{lab.address('mon1')}:9093"

    def running() -> tuple[str, str, int]:
        login = lab.web_login("prometheus")
        config = json.loads(lab.http("GET", f"{prometheus}/api/v1/status/config", auth=login)[1])["data"]["yaml"]
        routes = lab.http("GET", f"{alertmanager}/api/v2/status", auth=lab.web_login("alertmanager"))[1]
        groups = len(json.loads(lab.http("GET", f"{prometheus}/api/v1/rules", auth=login)[1])["data"]["groups"])
        return config, json.loads(routes)["config"]["original"], groups

    before = running()
    result = run("ansible-playbook", "-i", "stacks/lab", "playbooks/monitoring.yml", "--limit", "mon1",
                 "-e", json.dumps(extra_vars))  # fmt: skip
    assert result.returncode != 0
    assert message in result.stdout, result.stdout[-3000:]
    assert recap(result.stdout)["mon1"]["changed"] == 0
    assert running() == before, "the running Prometheus or Alertmanager configuration changed"
