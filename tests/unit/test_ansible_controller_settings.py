"""The controller settings that make a converge cheaper (ansible.cfg) leave Ansible able to run
every task: each collection the kit names is linked, and the Jinja plugins load before workers fork."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import ansible

ROOT = Path(__file__).resolve().parents[2]
# a module, filter, test, lookup or callback named by its collection: namespace.collection.name
FQCN = re.compile(r"\b([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)\.[a-z][a-z0-9_]*\b")
# the ansible package's collections, installed beside ansible-core (where `make venv` links from)
BUNDLE = Path(ansible.__file__).parents[1] / "ansible_collections"


def python_with_kit_config(*arguments: str) -> str:
    """stdout of this Python run from the repository root with the kit's ansible.cfg."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    return subprocess.run(
        [sys.executable, *arguments], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout


def kit_collections() -> set[str]:
    line = next(x for x in (ROOT / "Makefile").read_text().splitlines() if x.startswith("KIT_COLLECTIONS :="))
    return set(line.split(":=", 1)[1].split())


def unlinked_collections(root: Path) -> dict[str, str]:
    """Collections of the ansible package named in root's roles, playbooks and inventories but not
    in KIT_COLLECTIONS, each with one file that names it."""
    linked = kit_collections() | {"ansible.builtin"}
    found = {}
    for path in sorted(p for top in ("roles", "playbooks", "stacks") for p in (root / top).rglob("*.y*ml")):
        for namespace, collection in FQCN.findall(path.read_text()):
            name = f"{namespace}.{collection}"
            if name not in linked and (BUNDLE / namespace / collection).is_dir():
                found.setdefault(name, str(path.relative_to(root)))
    return found


def test_every_collection_the_roles_and_playbooks_name_is_linked():
    assert unlinked_collections(ROOT) == {}, "add them to KIT_COLLECTIONS in the Makefile"


def test_a_collection_left_out_of_the_links_is_found(tmp_path):
    (tmp_path / "roles/demo/tasks").mkdir(parents=True)
    (tmp_path / "roles/demo/tasks/main.yml").write_text(
        "- community.docker.docker_container:\n    name: x\n- community.crypto.openssl_privatekey:\n    path: /k\n"
    )
    assert unlinked_collections(tmp_path) == {"community.docker": "roles/demo/tasks/main.yml"}


def test_ansible_finds_only_the_linked_collections():
    # `make unit` runs `make venv` first, which links them
    listed = python_with_kit_config("-m", "ansible", "galaxy", "collection", "list", "--format", "json")
    found = {name for collections in json.loads(listed).values() for name in collections}
    assert found - {"ansible._protomatter"} == kit_collections()


PRELOAD_PROBE = """
import json, sys
from ansible.plugins.loader import callback_loader, init_plugin_loader
init_plugin_loader()
callback = callback_loader.get("preload_jinja_plugins")
def loaded():
    prefixes = ("ansible.plugins.filter.", "ansible.plugins.test.")
    return sorted(m.rsplit("_", 1)[0] for m in sys.modules if m.startswith(prefixes))
before = loaded()
callback.v2_playbook_on_start(None)
print(json.dumps([callback.CALLBACK_NEEDS_ENABLED, before, loaded()]))
"""


def test_the_jinja_plugins_are_loaded_when_the_playbook_starts():
    needs_enabled, before, after = json.loads(python_with_kit_config("-c", PRELOAD_PROBE))
    assert needs_enabled is False, "the callback must be on without callbacks_enabled"
    assert before == []
    assert "ansible.plugins.filter.core" in after and "ansible.plugins.test.core" in after
