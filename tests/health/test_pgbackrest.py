"""pgBackRest on every host of the stanza: its configuration, certificates and TLS server."""

from __future__ import annotations

import pytest

testinfra_hosts = ["ansible://db", "ansible://backup", "ansible://restore_scratch"]


@pytest.fixture
def pgbackrest(role_vars):
    return role_vars("pgbackrest")


def test_configuration_is_readable_by_its_user_only(host, pgbackrest):
    assert host.package("pgbackrest").is_installed
    config = host.file(pgbackrest["__pgbackrest_config"])
    assert config.user == "root" and config.group == pgbackrest["__pgbackrest_user"] and config.mode == 0o640
    key = host.file(f"{pgbackrest['__pgbackrest_tls_dir']}/host.key")
    assert key.group == pgbackrest["__pgbackrest_user"] and key.mode == 0o640
    # only the repository host knows the passphrase
    has_passphrase = "repo1-cipher-pass=" in config.content_string
    assert has_passphrase == (pgbackrest["__pgbackrest_kind"] == "repository")


def test_tls_server_runs_where_others_connect(host, pgbackrest):
    listening = host.socket(f"tcp://0.0.0.0:{pgbackrest['pgbackrest_tls_port']}").is_listening
    assert listening == (pgbackrest["__pgbackrest_kind"] in ("repository", "database"))
    if listening:
        service = host.service("pgbackrest")
        assert service.is_running and service.is_enabled
