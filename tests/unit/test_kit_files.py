"""kit_files, the module that sets several files of a host in one call: run as Ansible runs it (the
module program with its arguments file) on a temporary directory. A second run changes nothing,
check mode touches nothing, and content that fails its validation leaves the old file."""

from __future__ import annotations

import grp
import json
import os
import pwd
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "playbooks/library/kit_files.py"
OWNER = pwd.getpwuid(os.getuid()).pw_name
GROUP = grp.getgrgid(os.getgid()).gr_name


def kit_files(tmp_path: Path, files: list[dict], check: bool = False) -> dict:
    arguments = tmp_path / "arguments.json"
    arguments.write_text(
        json.dumps({"ANSIBLE_MODULE_ARGS": {"files": files, "_ansible_check_mode": check, "_ansible_diff": True}})
    )
    result = subprocess.run([sys.executable, str(MODULE), str(arguments)], capture_output=True, text=True, check=False)
    return json.loads(result.stdout)


def mode(path: Path) -> str:
    return f"{stat.S_IMODE(path.stat().st_mode):04o}"


def entries(root: Path) -> list[dict]:
    return [
        {"path": str(root / "etc"), "state": "directory", "mode": "0750", "owner": OWNER, "group": GROUP},
        {"path": str(root / "etc/banner"), "content": "Authorised use only.\n", "mode": "0644"},
        {"path": str(root / "etc/limits.conf"), "content": "* hard core 0\n", "mode": "0640", "owner": OWNER},
    ]


def test_a_first_run_sets_everything_and_a_second_changes_nothing(tmp_path):
    first = kit_files(tmp_path, entries(tmp_path))
    assert first["changed"] and first["changed_paths"] == [entry["path"] for entry in entries(tmp_path)]
    assert (tmp_path / "etc/banner").read_text() == "Authorised use only.\n"
    assert [mode(tmp_path / "etc"), mode(tmp_path / "etc/banner"), mode(tmp_path / "etc/limits.conf")] == [
        "0750",
        "0644",
        "0640",
    ]
    second = kit_files(tmp_path, entries(tmp_path))
    assert (second["changed"], second["changed_paths"], second["diff"]) == (False, [], [])


def test_check_mode_reports_each_change_with_its_diff_and_touches_nothing(tmp_path):
    kit_files(tmp_path, entries(tmp_path))
    (tmp_path / "etc/banner").write_text("Welcome!\n")
    (tmp_path / "etc/limits.conf").chmod(0o666)
    checked = kit_files(tmp_path, entries(tmp_path), check=True)
    assert checked["changed_paths"] == [str(tmp_path / "etc/banner"), str(tmp_path / "etc/limits.conf")]
    banner, limits = checked["diff"]
    assert (banner["before"], banner["after"]) == ("Welcome!\n", "Authorised use only.\n")
    assert (limits["before"], limits["after"]) == ({"mode": "0666"}, {"mode": "0640"})
    assert (tmp_path / "etc/banner").read_text() == "Welcome!\n" and mode(tmp_path / "etc/limits.conf") == "0666"


def test_content_that_fails_validation_leaves_the_old_file_and_names_it(tmp_path):
    target = tmp_path / "apt.conf"
    target.write_text('APT::Periodic::Enable "1";\n')
    failed = kit_files(tmp_path, [{"path": str(target), "content": "not apt syntax\n", "validate": "grep -q APT:: %s"}])
    assert failed.get("failed") and f"{target}: failed to validate" in failed["msg"]
    assert target.read_text() == 'APT::Periodic::Enable "1";\n'
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".kit_files.")] == []


def test_an_entry_without_content_sets_only_the_attributes_of_an_existing_file(tmp_path):
    shadow = tmp_path / "shadow"
    shadow.write_text("root:*:19000::::::\n")
    shadow.chmod(0o644)
    result = kit_files(tmp_path, [{"path": str(shadow), "mode": "0640"}])
    assert result["changed"] and mode(shadow) == "0640" and shadow.read_text() == "root:*:19000::::::\n"
    missing = kit_files(tmp_path, [{"path": str(tmp_path / "gshadow"), "mode": "0640"}])
    assert missing.get("failed") and "gshadow: expected an existing file" in missing["msg"]


def test_absent_removes_a_file_once(tmp_path):
    stray = tmp_path / "sources.list"
    stray.write_text("deb http://example.invalid/debian bookworm main\n")
    assert kit_files(tmp_path, [{"path": str(stray), "state": "absent"}])["changed"]
    assert not stray.exists()
    assert not kit_files(tmp_path, [{"path": str(stray), "state": "absent"}])["changed"]


def test_a_relative_path_is_refused(tmp_path):
    result = kit_files(tmp_path, [{"path": "etc/banner", "content": "x\n"}])
    assert result.get("failed") and "etc/banner: expected an absolute path" in result["msg"]


def test_lines_are_set_as_lineinfile_sets_them(tmp_path):
    login_defs = tmp_path / "login.defs"
    login_defs.write_text("# ageing\nPASS_MAX_DAYS\t99999\n#PASS_MIN_DAYS 0\nPASS_MIN_DAYS\t0\nUMASK 022\n")
    lines = [
        {"regexp": r"^\s*PASS_MAX_DAYS\s", "line": "PASS_MAX_DAYS\t365"},
        {"regexp": r"^\s*PASS_MIN_DAYS\s", "line": "PASS_MIN_DAYS\t1"},
        {"regexp": r"^\s*PASS_WARN_AGE\s", "line": "PASS_WARN_AGE\t7"},
    ]
    result = kit_files(tmp_path, [{"path": str(login_defs), "lines": lines}])
    assert result["changed"]
    assert login_defs.read_text() == (
        "# ageing\nPASS_MAX_DAYS\t365\n#PASS_MIN_DAYS 0\nPASS_MIN_DAYS\t1\nUMASK 022\nPASS_WARN_AGE\t7\n"
    )
    assert not kit_files(tmp_path, [{"path": str(login_defs), "lines": lines}])["changed"]
    both = kit_files(tmp_path, [{"path": str(login_defs), "lines": lines, "content": "x\n"}])
    assert both.get("failed") and "give content or lines, not both" in both["msg"]


def test_a_link_replaces_a_file_or_another_link_and_check_mode_leaves_it(tmp_path):
    zone = tmp_path / "localtime"
    zone.write_text("a copied zone file\n")
    wanted = [{"path": str(zone), "state": "link", "src": "/usr/share/zoneinfo/Asia/Phnom_Penh"}]
    checked = kit_files(tmp_path, wanted, check=True)
    assert checked["changed"] and not zone.is_symlink()
    assert "file" in checked["diff"][0]["before"] and "Phnom_Penh" in checked["diff"][0]["after"]
    assert kit_files(tmp_path, wanted)["changed_paths"] == [str(zone)]
    assert os.readlink(zone) == "/usr/share/zoneinfo/Asia/Phnom_Penh"
    assert kit_files(tmp_path, wanted)["changed"] is False
    moved = [{**wanted[0], "src": "/usr/share/zoneinfo/UTC"}]
    assert kit_files(tmp_path, moved)["changed"] and os.readlink(zone) == "/usr/share/zoneinfo/UTC"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["arguments.json", "localtime"]  # no temporary left


def test_a_link_without_src_or_with_a_mode_or_over_a_directory_is_refused(tmp_path):
    (tmp_path / "dir").mkdir()
    cases = {
        "needs src": {"path": str(tmp_path / "l1"), "state": "link"},
        "takes src only": {"path": str(tmp_path / "l2"), "state": "link", "src": "/etc/hosts", "mode": "0644"},
        "is a directory": {"path": str(tmp_path / "dir"), "state": "link", "src": "/etc/hosts"},
    }
    for message, entry in cases.items():
        result = kit_files(tmp_path, [entry])
        assert result.get("failed") and message in result["msg"] and entry["path"] in result["msg"], result
    assert not (tmp_path / "l1").exists() and not (tmp_path / "l2").exists() and (tmp_path / "dir").is_dir()
