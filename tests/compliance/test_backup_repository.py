"""The backup repository (pgBackRest on the backup hosts). The database hosts' side, WAL archived
with pgBackRest, is CIS PostgreSQL 15 8.2 in test_postgresql_server.py."""

from __future__ import annotations

import json

from tests.compliance.controls import control

testinfra_hosts = ["ansible://backup"]


@control(
    "KIT-BACKUP-01",
    title="The backup repository is encrypted",
    rationale="A copy of the repository (a stolen disk, a misplaced archive) reveals no citizen's data "
    "without the passphrase, which is kept in the vault.",
    severity="critical",
    source="kit",
)
def test_repository_encrypted(host, evidence, role_vars):
    pgbackrest = role_vars("pgbackrest")
    result = evidence.run(
        "runuser -u %s -- pgbackrest --stanza=%s info --output=json",
        pgbackrest["__pgbackrest_user"],
        pgbackrest["pgbackrest_stanza"],
    )
    assert result.rc == 0, result.stderr
    stanza = json.loads(result.stdout)[0]
    assert stanza["cipher"] not in ("none", ""), f"the repository's cipher is {stanza['cipher']!r}"
    assert stanza["backup"], "the repository holds no backup to judge"
