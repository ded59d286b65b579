"""What the Pulumi e2e tests share: a scratch copy of the lab stack (its own state, passphrase
and namespaces named PREFIX...), the engine run the way `make` runs it, and an API client."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import yaml
from conftest import REPO, run
from kubernetes import client, config

# Namespaces of the scratch stacks: e2e-... in `make e2e`; GOVOPS_E2E_PREFIX=t11- keeps a run
# beside a lab whose own stack is in use.
PREFIX = os.environ.get("GOVOPS_E2E_PREFIX", "e2e-")
KUBECONFIG = REPO / ".lab/kubeconfig"


def api() -> client.ApiClient:
    return config.new_client_from_config(config_file=str(KUBECONFIG))


def scratch_stack(directory: Path, prefix: str = PREFIX, **config_changes) -> dict[str, str]:
    """A copy of the lab stack whose services are <prefix><name>, with state and passphrase in
    `directory`: the environment variables that point `make preview|up` at it."""
    stack = yaml.safe_load((REPO / "stacks/Pulumi.lab.yaml").read_text())
    settings = stack["config"]
    settings["govops:services"] = [{**s, "name": prefix + s["name"]} for s in settings["govops:services"]]
    settings["kubernetes:kubeconfig"] = str(KUBECONFIG)
    settings.update(config_changes)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "Pulumi.lab.yaml").write_text(yaml.safe_dump(stack))
    return {
        "GOVOPS_STACK_FILE": str(directory / "Pulumi.lab.yaml"),
        "GOVOPS_PULUMI_STATE": str(directory / "state"),
        "GOVOPS_PULUMI_PASSPHRASE": str(directory / "passphrase"),
    }


def make(target: str, env: dict[str, str], *pulumi_args: str, stack_env: str = "lab"):
    extra = [f"PULUMI_ARGS={' '.join(pulumi_args)}"] if pulumi_args else []
    return run("make", "--no-print-directory", target, f"ENV={stack_env}", *extra, env=env)


def state_digest(env: dict[str, str]) -> str:
    """A digest of every file of the scratch state (the stack's checkpoint and its history)."""
    digest = hashlib.sha256()
    state = Path(env["GOVOPS_PULUMI_STATE"])
    for path in sorted(state.rglob("*.json")):
        if "/history/" not in str(path) and "/backups/" not in str(path):
            digest.update(path.read_bytes())
    return digest.hexdigest()


def service_names(prefix: str = PREFIX) -> list[str]:
    stack = yaml.safe_load((REPO / "stacks/Pulumi.lab.yaml").read_text())
    return [prefix + s["name"] for s in stack["config"]["govops:services"]]


def edit_stack(env: dict[str, str], change) -> None:
    """Change the scratch stack file's settings in place: change(config) edits the mapping."""
    path = Path(env["GOVOPS_STACK_FILE"])
    stack = yaml.safe_load(path.read_text())
    change(stack["config"])
    path.write_text(yaml.safe_dump(stack))
