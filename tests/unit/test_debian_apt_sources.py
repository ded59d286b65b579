"""The lab reads its Debian mirror from the controller's apt configuration."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

MODULE = Path(__file__).resolve().parents[2] / "playbooks/lab/library/debian_apt_sources.py"
spec = importlib.util.spec_from_file_location("debian_apt_sources", MODULE)
apt = importlib.util.module_from_spec(spec)
spec.loader.exec_module(apt)


def write(root: Path, name: str, text: str) -> None:
    path = root / "etc/apt" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def params(root: Path, **overrides) -> dict:
    return {"release": "bookworm", "mirror": None, "security_mirror": None, "root": str(root), **overrides}


def test_deb822_with_comments_disabled_stanzas_and_other_suites(tmp_path):
    write(
        tmp_path,
        "sources.list.d/debian.sources",
        "Types: deb deb-src\n# a comment\nURIs: http://mirror.test/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main contrib\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        "Types: deb\nURIs: http://mirror.test/debian-security\nSuites: bookworm-security\nComponents: main\n\n"
        "Enabled: no\nTypes: deb\nURIs: http://disabled.test/debian\nSuites: bookworm\n\n"
        "Types: deb\nURIs: http://mirror.test/debian\nSuites: trixie\n",
    )
    result = apt.run(params(tmp_path))
    assert result["mirror"] == "http://mirror.test/debian"
    assert result["sources"] == [
        {
            "uris": ["http://mirror.test/debian"],
            "suites": ["bookworm", "bookworm-updates"],
            "components": ["main", "contrib"],
        },
        {"uris": ["http://mirror.test/debian-security"], "suites": ["bookworm-security"], "components": ["main"]},
    ]


def test_one_line_format_with_options_and_deb_src(tmp_path):
    write(
        tmp_path,
        "sources.list",
        "# comment\ndeb-src http://src.test/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] https://mirror.test/debian bookworm main non-free-firmware\n",
    )
    write(tmp_path, "sources.list.d/extra.list", "deb http://other.test/repo stable main\n")
    write(tmp_path, "sources.list.d/ignored.list.disabled", "deb http://ignored.test/debian bookworm main\n")
    result = apt.run(params(tmp_path))
    assert result["sources"] == [
        {"uris": ["https://mirror.test/debian"], "suites": ["bookworm"], "components": ["main", "non-free-firmware"]}
    ]


def test_no_mirror_names_the_files_and_the_override(tmp_path):
    write(tmp_path, "sources.list.d/vendor.list", "deb http://vendor.test/apt stable main\n")
    result = apt.run(params(tmp_path))
    assert result["failed"]
    assert "No Debian 'bookworm' mirror" in result["msg"]
    assert "vendor.list" in result["msg"]
    assert "LAB_DEBIAN_MIRROR" in result["msg"]


def test_no_apt_configuration_at_all(tmp_path):
    result = apt.run(params(tmp_path))
    assert result["failed"] and "no file found" in result["msg"]


@pytest.mark.parametrize("security", [None, "http://override.test/debian-security"])
def test_override_skips_the_files(tmp_path, security):
    result = apt.run(params(tmp_path, mirror="http://override.test/debian", security_mirror=security))
    assert result["mirror"] == "http://override.test/debian"
    assert result["files"] == []
    assert len(result["sources"]) == (2 if security else 1)
