"""The kit's own rules on every host: no secret readable by others, no certificate near expiry.

The scans run on the host (on_host/*.py, standard library only) and print what they found; the
evidence names files and keys, never a secret's value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.compliance.controls import control

testinfra_hosts = ["ansible://all"]

ON_HOST = Path(__file__).parent / "on_host"


def on_host(host, evidence, script: str) -> list[dict]:
    """Run one of on_host/ as root on the host and read its JSON; the evidence shows its findings."""
    with host.sudo():
        result = host.run("python3 -c %s", (ON_HOST / script).read_text())
    found = json.loads(result.stdout) if result.rc == 0 else None
    evidence.note(f"sudo python3 tests/compliance/on_host/{script}", result.stderr if found is None else "")
    assert found is not None, f"{script} failed on the host: {result.stderr[-500:]}"
    return found


@pytest.fixture
def certificate_min_days(request) -> int:
    return request.config.getoption("certificate_min_days")


@control(
    "KIT-SECRET-01",
    title="No secret is readable by other users",
    rationale="Private keys, passwords and passphrases in configuration files are readable only by root and "
    "the service that needs them; a file as a Debian package ships it is not counted (its samples).",
    severity="critical",
    source="kit",
)
def test_no_world_readable_secret(host, evidence):
    found = on_host(host, evidence, "find_exposed_secrets.py")
    evidence.note(
        "world-readable files holding a secret",
        "\n".join(f"{f['path']}:{f['line']} {f['key']}" for f in found) or "none",
    )
    assert not found, f"{len(found)} secret(s) readable by others: " + ", ".join(sorted({f["path"] for f in found}))


@control(
    "KIT-CERT-01",
    title="Every certificate the services use is valid for at least the minimum number of days",
    rationale="An expired certificate stops TLS between the tiers (database, backups, monitoring, Kubernetes); "
    "renewal must start well before (make audit --certificate-min-days, 30 by default).",
    severity="high",
    source="kit",
)
def test_certificates_valid_long_enough(host, evidence, certificate_min_days):
    found = on_host(host, evidence, "list_certificates.py")
    evidence.note(
        f"certificates and days left (minimum {certificate_min_days})",
        "\n".join(f"{c['path']}  {c['subject']}  until {c['not_after']}  ({c['days_left']} days)" for c in found)
        or "no certificate on this host",
    )
    short = [f"{c['path']} ({c['days_left']} days)" for c in found if c["days_left"] < certificate_min_days]
    assert not short, f"valid for fewer than {certificate_min_days} days: {short}"
