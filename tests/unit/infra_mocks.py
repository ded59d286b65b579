"""One set of Pulumi mocks for every unit test of the program in infra/ (set_mocks is
process-wide), and a way to run the whole program on a stack file's settings."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pulumi
import yaml

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
sys.path.insert(0, str(INFRA))  # as conftest.py does, for a run of one file
SECRET_SIG = ("4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270")


class Mocks(pulumi.runtime.Mocks):
    """Records every resource; a resource's outputs are its inputs (as a real create would echo)."""

    def __init__(self) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args):
        self.resources.append(args)
        return f"{args.name}-id", args.inputs

    def call(self, args):
        return {}

    def of_type(self, kind: str) -> list[pulumi.runtime.MockResourceArgs]:
        """Resources of a Kubernetes kind (Deployment) or a full type token."""
        return [r for r in self.resources if r.typ == kind or r.typ.endswith(f":{kind}")]

    def named(self, kind: str, namespace: str, name: str) -> pulumi.runtime.MockResourceArgs:
        found = [r for r in self.of_type(kind) if (meta(r).get("namespace"), meta(r).get("name")) == (namespace, name)]
        assert len(found) == 1, f"{kind} {namespace}/{name}: {len(found)} declared"
        return found[0]


def meta(resource: pulumi.runtime.MockResourceArgs) -> dict:
    return resource.inputs.get("metadata") or {}


def unsecret(value):
    """A value of the mocks' inputs without the engine's secret markers."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG[0]) == SECRET_SIG[1]:
            return unsecret(value["value"])
        return {key: unsecret(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unsecret(item) for item in value]
    return value


def is_secret(value) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG[0]) == SECRET_SIG[1]


MOCKS = Mocks()
pulumi.runtime.set_mocks(MOCKS, project="govops", stack="lab", preview=False)


def stack_file_config(path: Path) -> dict:
    return (yaml.safe_load(path.read_text()) or {}).get("config") or {}


def _run(program: Path) -> None:
    runpy.run_path(str(program), run_name="__main__")  # its globals are not the test's result


def run_program(env: str, settings: dict, secrets: dict[str, str] | None = None, plain: dict | None = None) -> Mocks:
    """infra/__main__.py under the mocks as stack `env` with these settings (as in a stack file),
    `secrets` set as secret config and `plain` as plain config."""
    MOCKS.resources.clear()
    pulumi.runtime.set_mocks(MOCKS, project="govops", stack=env, preview=False)
    values = {**settings, **(secrets or {}), **(plain or {})}
    config = {key: value if isinstance(value, str) else json.dumps(value) for key, value in values.items()}
    pulumi.runtime.set_all_config(config, list(secrets or {}))
    try:
        pulumi.runtime.test(lambda: _run(INFRA / "__main__.py"))()
    finally:
        pulumi.runtime.set_all_config({}, [])
    return MOCKS
