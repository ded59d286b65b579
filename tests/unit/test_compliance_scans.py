"""The compliance controls' host-side scans (tests/compliance/on_host/), run here on a temporary
tree, and the rules a control's declaration must meet."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.compliance.controls import control, control_problems

ON_HOST = Path(__file__).resolve().parents[1] / "compliance/on_host"


def scan(script: str, root: Path) -> list[dict]:
    out = subprocess.run([sys.executable, str(ON_HOST / script), str(root)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def write(path: Path, text: str, mode: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def test_secret_scan_finds_readable_secrets_only_and_never_prints_them(tmp_path):
    write(tmp_path / "etc/kannel/kannel.conf", "group = core\nadmin-password = hunter2\n", 0o644)
    write(tmp_path / "etc/pgbackrest.conf", "repo1-cipher-pass=hunter3\n", 0o640)  # not readable by others
    write(tmp_path / "etc/tls/server.key", "-----BEGIN EC PRIVATE KEY-----\nMHcC\n", 0o644)
    write(tmp_path / "etc/sample.conf", "# password = example\n", 0o644)  # commented out
    write(tmp_path / "opt/app/main.py", "password = os.environ['X']\n", 0o644)  # program code
    write(tmp_path / "etc/nsswitch.conf", "passwd:         files\n", 0o644)  # the account database's name
    found = scan("find_exposed_secrets.py", tmp_path)
    assert sorted((Path(f["path"]).relative_to(tmp_path).as_posix(), f["line"], f["key"]) for f in found) == [
        ("etc/kannel/kannel.conf", 2, "admin-password"),
        ("etc/tls/server.key", 1, "-----BEGIN EC PRIVATE KEY-----"),
    ]
    assert "hunter" not in json.dumps(found)


def test_certificate_list_gives_the_days_left(tmp_path):
    (tmp_path / "etc/tls").mkdir(parents=True)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "10",
         "-subj", "/CN=db1", "-keyout", str(tmp_path / "etc/tls/host.key"), "-out", str(tmp_path / "etc/tls/host.crt")],
        check=True, capture_output=True,
    )  # fmt: skip
    write(tmp_path / "etc/tls/notes.pem", "not a certificate\n", 0o644)
    found = scan("list_certificates.py", tmp_path)
    assert [(Path(c["path"]).name, c["subject"], c["days_left"]) for c in found] == [("host.crt", "CN=db1", 9)]


def item(*marks, nodeid="tests/compliance/test_x.py::test_y"):
    return SimpleNamespace(nodeid=nodeid, iter_markers=lambda name: iter(marks))


def test_a_control_declaration_needs_every_field_and_known_values():
    good = control("KIT-X-01", title="t", rationale="r", severity="high", source="kit").mark
    assert control_problems(item(good)) == []
    assert control_problems(item()) == [
        "tests/compliance/test_x.py::test_y: expected exactly one @control(...), found 0"
    ]
    bad = control("KIT-X-02", title="", rationale="r", severity="urgent", source="a blog").mark
    problems = control_problems(item(bad))
    assert "control 'KIT-X-02' has no title" in problems[0]
    assert any("severity must be one of critical, high, medium, low, found 'urgent'" in p for p in problems)
    assert any("source must be one of" in p and "'a blog'" in p for p in problems)


@pytest.mark.parametrize("script", sorted(p.name for p in ON_HOST.glob("*.py")))
def test_host_scripts_use_the_standard_library_only(script):
    """They run with the host's own python3, where the kit installs nothing."""
    imports = [line.split()[1] for line in (ON_HOST / script).read_text().splitlines() if line.startswith("import ")]
    assert imports and all(name in sys.stdlib_module_names for name in imports), imports
