"""Which keys an environment's vault still lacks, compared with its vault.example.yml. Prints names only.

Usage: python playbooks/vault_check.py ENV [--ask-vault-pass] [--vault-password-file FILE] [--vault FILE]

The vault is stacks/ENV/group_vars/all/vault.yml, opened as ansible-playbook opens it: the password
from ANSIBLE_VAULT_PASSWORD_FILE (or ansible.cfg), --vault-password-file or --ask-vault-pass.
Exit status: 0 when nothing is missing, 1 when keys are missing or still hold the example's
placeholder (or the vault does not exist), 2 when the vault cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

import jinja2
import yaml

REPO = Path(__file__).resolve().parents[1]
STACKS = REPO / "stacks"
VAULT = Path("group_vars/all/vault.yml")
EXAMPLE = Path("vault.example.yml")


def _strings(value) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def referenced_vault_keys(env_dir: Path) -> set[str]:
    """The vault_* variables the environment's group_vars (and host_vars) use: the one list of what
    its vault must hold.

    Read from the templates in the values (comments and names alone do not count); the vault itself
    is left out.
    """
    parser = jinja2.Environment()
    names: set[str] = set()
    for path in sorted([*(env_dir / "group_vars").rglob("*.yml"), *(env_dir / "host_vars").rglob("*.yml")]):
        if path.name == VAULT.name:
            continue
        for text in _strings(yaml.safe_load(path.read_text())):
            if "{{" in text or "{%" in text:
                names |= {node.name for node in parser.parse(text).find_all(jinja2.nodes.Name) if node.ctx == "load"}
    return {name for name in names if name.startswith("vault_")}


def key_paths(data: dict, prefix: str = "") -> set[str]:
    """Every key, nested ones as parent.child: vault_tls_certs.db1 is a key the vault must hold too."""
    paths = set()
    for key, value in data.items():
        paths.add(prefix + str(key))
        if isinstance(value, dict):
            paths |= key_paths(value, f"{prefix}{key}.")
    return paths


def _value_at(data: dict, path: str):
    for part in path.split("."):
        data = data[part]
    return data


def compare(vault: dict, example: dict, needed: set[str]) -> tuple[list[str], list[str]]:
    """(keys missing from the vault, keys still holding the example's placeholder); names only.

    A missing key's own keys are not listed again (vault_tls_certs, not also vault_tls_certs.db1).
    """
    wanted = needed | {path for path in key_paths(example) if path.split(".")[0] in needed}
    present = key_paths(vault)
    absent = wanted - present
    missing = sorted(path for path in absent if not any(parent in absent for parent in _parents(path)))
    placeholders = sorted(
        path
        for path in wanted & present
        if not isinstance(_value_at(example, path), dict) and _same(_value_at(vault, path), _value_at(example, path))
    )
    return missing, placeholders


def _same(value, placeholder) -> bool:
    return str(value) == str(placeholder)


def _parents(path: str) -> list[str]:
    parts = path.split(".")
    return [".".join(parts[:end]) for end in range(1, len(parts))]


def open_vault(path: Path, ask_vault_pass: bool, password_files: list[str]) -> dict:
    """The decrypted vault, read as ansible-playbook reads it (whole-file or inline !vault values)."""
    from ansible import constants
    from ansible.cli import CLI
    from ansible.parsing.dataloader import DataLoader

    loader = DataLoader()
    CLI.setup_vault_secrets(
        loader,
        vault_ids=list(constants.DEFAULT_VAULT_IDENTITY_LIST),
        vault_password_files=list(password_files),
        ask_vault_pass=ask_vault_pass,
        auto_prompt=False,
        initialize_context=False,
    )
    return loader.load_from_file(str(path)) or {}


def known_environments() -> list[str]:
    return sorted(path.parent.name for path in STACKS.glob("*/hosts.yml"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("env")
    parser.add_argument("--ask-vault-pass", action="store_true")
    parser.add_argument("--vault-password-file", action="append", default=[])
    parser.add_argument("--vault", type=Path, help=f"the vault to check (default stacks/ENV/{VAULT})")
    args = parser.parse_args(argv)

    env_dir = (STACKS / args.env).relative_to(REPO) if Path.cwd() == REPO else STACKS / args.env
    if args.env not in known_environments():
        print(f"Unknown ENV '{args.env}'. Known environments: {' '.join(known_environments())}", file=sys.stderr)
        return 2
    if not (env_dir / EXAMPLE).is_file():
        print(f"{args.env} has no {EXAMPLE} (the lab generates its secrets; it needs no vault)", file=sys.stderr)
        return 2
    example = yaml.safe_load((env_dir / EXAMPLE).read_text()) or {}
    needed = referenced_vault_keys(env_dir)
    vault_path = args.vault or env_dir / VAULT

    if not vault_path.is_file():
        missing, _ = compare({}, example, needed)
        print(f"{vault_path} does not exist. Create it encrypted with the keys of {env_dir / EXAMPLE}:")
        print(f"  ansible-vault create {vault_path}")
        print(f"Every key is missing ({len(missing)}):")
        print("\n".join(f"missing: {name}" for name in missing))
        return 1
    try:
        vault = open_vault(vault_path, args.ask_vault_pass, args.vault_password_file)
    except Exception as error:  # whatever stops Ansible from reading it, said plainly
        # the first line only: a parse error's later lines may quote the decrypted text
        print(f"Cannot read {vault_path}: {(str(error) or type(error).__name__).splitlines()[0]}", file=sys.stderr)
        if type(error).__name__ == "AnsibleVaultError":
            print("Give its password: ANSIBLE_VAULT_PASSWORD_FILE=<file>, or --ask-vault-pass", file=sys.stderr)
            print("(make vault-check ENV=... VAULT_ARGS=--ask-vault-pass)", file=sys.stderr)
        return 2
    if not isinstance(vault, dict):
        print(f"{vault_path} is not a mapping of vault_* keys", file=sys.stderr)
        return 2

    missing, placeholders = compare(vault, example, needed)
    for name in missing:
        print(f"missing: {name}")
    for name in placeholders:
        print(f"still the example's placeholder: {name}")
    if missing or placeholders:
        print(f"{vault_path}: {len(missing)} missing, {len(placeholders)} placeholder(s); see {env_dir / EXAMPLE}")
        return 1
    print(f"{vault_path}: every key of {env_dir / EXAMPLE} is there ({len(key_paths(vault))} keys, values not shown)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
