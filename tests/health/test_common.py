"""Health of the `common` role on any host: molecule verify and `make health` both run this."""

from __future__ import annotations

import json
import re

import pytest

# HostDiskAlmostFull (monitoring/rules/hosts.yml): the same file systems and the same limit.
NOT_DISKS = re.compile(r"tmpfs|ramfs|devtmpfs|overlay|squashfs|nsfs|fuse.*")
DISK_FREE_AT_LEAST = 0.05


@pytest.fixture
def common(role_vars):
    return role_vars("common")


def test_hostname_is_the_inventory_name(host, common):
    assert host.check_output("hostname") == common["common_hostname"]


def test_etc_hosts_lists_the_environment(host, common):
    hosts_file = host.file("/etc/hosts").content_string
    expected = common["__common_etc_hosts_lines"]
    assert expected, "the inventory gives no host with a private_address"
    for line in expected:
        address, *names = line.split()
        assert any(row.split()[:1] == [address] and row.split()[1:] == names for row in hosts_file.splitlines()), (
            f"/etc/hosts lacks '{line}'"
        )
    for line in expected:
        name = line.split()[-1]
        assert host.run(f"getent hosts {name}").rc == 0, f"{name} does not resolve"


def test_time_zone(host, common):
    zone = common["common_timezone"]
    assert host.file("/etc/localtime").linked_to == f"/usr/share/zoneinfo/{zone}"
    assert host.file("/etc/timezone").content_string.strip() == zone
    offset_here = host.check_output("date +%z")
    offset_of_zone = host.check_output(f"TZ={zone} date +%z")
    assert offset_here == offset_of_zone


def test_apt_sources_come_from_the_variable(host, common):
    assert not host.file("/etc/apt/sources.list").exists
    sources = host.file("/etc/apt/sources.list.d/debian.sources")
    assert sources.user == "root" and sources.mode == 0o644
    text = sources.content_string
    for source in common["common_apt_sources"]:
        assert f"URIs: {' '.join(source['uris'])}" in text
        assert f"Suites: {' '.join(source['suites'])}" in text
    # apt reads it without complaint
    assert host.run("apt-get --print-uris --quiet check").rc == 0


def test_base_packages_are_installed(host, common):
    missing = [
        name
        for name in common["common_base_packages"] + common["common_extra_packages"]
        if not host.package(name).is_installed
    ]
    assert not missing, f"packages not installed: {missing}"


def test_package_fact_matches_dpkg(host, common):
    """The roles skip apt when this fact says their packages are installed: it must agree with dpkg."""
    fact = host.file("/etc/ansible/facts.d/dpkg.fact")
    assert fact.user == "root" and fact.mode == 0o755
    reported = json.loads(host.check_output(fact.path))
    statuses = host.check_output("dpkg-query -W -f '${db:Status-Abbrev} ${Package}\\n'").splitlines()
    installed = [line.split()[-1] for line in statuses if line.startswith("ii ")]
    assert sorted(reported["installed"]) == sorted(installed)
    assert set(common["common_base_packages"]) <= set(reported["installed"])
    assert reported["lists_age"] >= 0


def test_apt_marks_each_update_where_the_fact_reads_its_age(host):
    """Without the mark the age is the lists directory's, which stays old when an update finds
    nothing new: every converge would update the lists again."""
    stamp = host.file("/var/lib/apt/periodic/update-success-stamp")
    assert stamp.exists, "no apt update has marked its success since the hook was installed"
    reported = json.loads(host.check_output("/etc/ansible/facts.d/dpkg.fact"))
    age = int(host.check_output(f"echo $(( $(date +%s) - $(stat -c %Y {stamp.path}) ))"))
    assert abs(reported["lists_age"] - age) <= 5, (reported["lists_age"], age)


def test_admin_users_have_keys_and_sudo(host, common):
    group = common["common_admin_group"]
    admins = common["__common_admins"]
    for admin in admins:
        user = host.user(admin["name"])
        if admin["state"] == "absent":
            assert not user.exists, f"{admin['name']} should have been removed"
            continue
        assert user.exists, f"admin {admin['name']} missing"
        assert group in user.groups
        keys = host.file(f"{user.home}/.ssh/authorized_keys")
        assert keys.user == admin["name"] and keys.mode == 0o600
        for key in admin["ssh_keys"]:
            assert key in keys.content_string
        # no password: "!" locked (key login only)
        assert host.check_output(f"getent shadow {admin['name']}").split(":")[1].startswith("!")
    sudoers = host.file("/etc/sudoers.d/govops-admins")
    assert sudoers.mode == 0o440
    assert f"%{group} ALL=(ALL:ALL)" in sudoers.content_string
    assert host.run("visudo -c").rc == 0


def test_admins_can_use_sudo(host, common):
    for admin in common["__common_admins_present"]:
        result = host.run(f"sudo -u {admin['name']} sudo -n true")
        assert result.rc == 0, f"{admin['name']} cannot sudo: {result.stderr}"


def test_journald_is_persistent(host, common):
    config = host.file("/etc/systemd/journald.conf.d/10-govops.conf").content_string
    assert f"Storage={common['common_journald_storage']}" in config
    assert host.service("systemd-journald").is_running
    if common["common_journald_storage"] == "persistent":
        machine_id = host.file("/etc/machine-id").content_string.strip()
        assert host.file(f"/var/log/journal/{machine_id}").is_directory
        assert host.run(f"journalctl --quiet --directory=/var/log/journal/{machine_id} -n 1").rc == 0


def test_ssh_server_runs(host):
    assert host.service("ssh").is_running
    assert host.socket("tcp://0.0.0.0:22").is_listening


def test_every_disk_has_room(host):
    full = []
    for line in host.check_output("df -B1 --output=fstype,size,avail,target").splitlines()[1:]:
        fstype, size, available, mount = line.split(None, 3)
        if not NOT_DISKS.fullmatch(fstype) and int(size) and int(available) / int(size) < DISK_FREE_AT_LEAST:
            full.append(f"{mount}: {int(available) / int(size):.1%} free")
    assert not full, f"disks almost full (runbooks/HostDiskAlmostFull.md): {full}"
