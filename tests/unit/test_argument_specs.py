"""Every role's defaults/main.yml and meta/argument_specs.yml describe the same variables."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROLES = sorted(p for p in (Path(__file__).resolve().parents[2] / "roles").iterdir() if p.is_dir())


def load(path: Path):
    return yaml.safe_load(path.read_text()) or {}


def scenarios_converging(role: Path) -> list[Path]:
    """Molecule scenarios whose converge step applies the role (its own, or one of a whole tier)."""
    return [
        converge.parent
        for converge in sorted(role.parent.glob("*/molecule/*/converge.yml"))
        if f"name: {role.name}\n" in converge.read_text() or converge.parent.parent.parent == role
    ]


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_role_has_a_spec_and_molecule_scenario(role):
    assert (role / "meta/argument_specs.yml").is_file()
    # etcd, postgresql and patroni are tested together in the database tier's scenario
    # (roles/pgbackrest): one member and the repository host its WAL goes to
    assert scenarios_converging(role), f"{role.name}: no molecule scenario applies it"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_defaults_and_spec_agree(role):
    defaults = load(role / "defaults/main.yml")
    options = load(role / "meta/argument_specs.yml")["argument_specs"]["main"]["options"]
    without_spec = sorted(set(defaults) - set(options))
    assert not without_spec, f"{role.name}: defaults without a spec entry: {without_spec}"
    for name, option in options.items():
        assert name.startswith(f"{role.name}_"), f"{role.name}: public variable {name} lacks the role prefix"
        assert option.get("description"), f"{role.name}: {name} has no description"
        if option.get("required"):
            assert name not in defaults, f"{role.name}: {name} is required, so it must not have a default"
            continue
        assert name in defaults, f"{role.name}: {name} is in the spec but not in defaults/main.yml"
        assert option.get("default") == defaults[name], (
            f"{role.name}: default of {name} differs between spec and defaults"
        )


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_private_variables_live_in_vars(role):
    private = load(role / "vars/main.yml") if (role / "vars/main.yml").exists() else {}
    for name in private:
        assert name.startswith(f"__{role.name}_"), f"{role.name}: vars/main.yml variable {name} is not __{role.name}_*"
