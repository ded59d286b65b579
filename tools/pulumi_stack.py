"""Run the Pulumi engine on one environment's stack: make preview|up|render ENV=<env>.

    python tools/pulumi_stack.py {preview,up,refresh,render} --env ENV [--stack-file F]
                                 [--state-dir D] [--passphrase-file P] [-- PULUMI_ARGS...]

(or GOVOPS_STACK_FILE, GOVOPS_PULUMI_STATE, GOVOPS_PULUMI_PASSPHRASE in the environment).

Each stack file (stacks/Pulumi.<env>.yaml) names where its state lives (`govops:backend`) and
its secrets provider (`secretsprovider`). The lab's backend is a directory under .lab/ with a
generated lab-only passphrase; staging's and prod's are real services, used only from their
controllers. `render` writes the manifests to reports/render/<env>/ through the provider's
renderYamlToDirectory, with a throwaway state and passphrase: no cluster, no real backend.

Which Kubernetes provider runs (upstream wins where it is installed): the engine takes a
`pulumi-resource-kubernetes` found on PATH before its plugin cache. The lab's stand-in
(tools/lab-kubernetes-provider) is put on PATH only for the lab and for render, and only when
no upstream kubernetes plugin is installed; staging and prod refuse to run unless upstream is
installed and nothing on PATH could shadow it.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import string
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
STAND_IN = REPO / "tools/lab-kubernetes-provider/bin"
PROVIDER = "pulumi-resource-kubernetes"
LAB_PASSPHRASE = REPO / ".lab/secrets/pulumi_passphrase_lab_only"
OFFLINE = {"PULUMI_SKIP_UPDATE_CHECK": "true", "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true"}
# The v3.79.0 language host takes Pulumi.yaml's `virtualenv` as a flag that this CLI no longer
# passes, so it is told which Python to run instead.
PYTHON = {"PULUMI_PYTHON_CMD": str(REPO / ".venv/bin/python")}
# Stacks whose backend this tool may create a stack in; elsewhere a stack is created by its owners.
OWN_BACKENDS = ("lab",)


class StackError(RuntimeError):
    """A stack cannot be run as asked; the message says why and what to do."""


@dataclass(frozen=True)
class Stack:
    env: str
    file: Path
    backend: str  # file://..., s3://..., as the engine takes it
    secrets_provider: str
    config: dict

    @property
    def passphrase(self) -> bool:
        return self.secrets_provider in ("passphrase", "default", "")


def load_stack(env: str, stack_file: Path | None = None, state_dir: Path | None = None) -> Stack:
    """An environment's stack from its stack file; the backend's relative file:// path is
    relative to the repository."""
    path = stack_file or REPO / f"stacks/Pulumi.{env}.yaml"
    if not path.is_file():
        known = sorted(
            p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in (REPO / "stacks").glob("Pulumi.*.yaml")
        )
        raise StackError(
            f"unknown stack {env!r}: there is no {path.relative_to(REPO)}. Known stacks: {', '.join(known)}"
        )
    raw = yaml.safe_load(path.read_text()) or {}
    config = raw.get("config") or {}
    backend = config.get("govops:backend")
    if state_dir is not None:
        backend = f"file://{state_dir.resolve()}"
    if not isinstance(backend, str) or "://" not in backend:
        raise StackError(f"{path}: govops:backend must name the stack's state backend (file://, s3://, ...)")
    scheme, _, rest = backend.partition("://")
    if scheme == "file" and not rest.startswith(("/", "~")):
        backend = f"file://{REPO / rest}"
    return Stack(env, path, backend, str(raw.get("secretsprovider", "")), config)


def upstream_installed(pulumi: str, env: dict[str, str]) -> list[str]:
    """Versions of the upstream kubernetes resource plugin in the engine's plugin cache."""
    listing = subprocess.run([pulumi, "plugin", "ls", "--json"], env=env, capture_output=True, text=True)
    if listing.returncode != 0:
        raise StackError(f"`pulumi plugin ls` failed: {listing.stderr.strip()}")
    plugins = json.loads(listing.stdout or "[]") or []
    return [p.get("version", "") for p in plugins if p.get("kind") == "resource" and p.get("name") == "kubernetes"]


def provider_path(env: str, verb: str, upstream: list[str], path: str) -> tuple[str, str]:
    """(PATH for the engine, which provider runs). The stand-in goes first on PATH for the lab
    and for render, when no upstream plugin is installed; staging and prod use upstream only."""
    parts = [p for p in path.split(os.pathsep) if p and Path(p).resolve() != STAND_IN.resolve()]
    if upstream:
        shadow = shutil.which(PROVIDER, path=os.pathsep.join(parts))
        if shadow:
            raise StackError(f"{shadow} on PATH would shadow the installed upstream provider; remove it from PATH")
        return os.pathsep.join(parts), f"upstream kubernetes plugin {', '.join(upstream)} (plugin cache)"
    if env in OWN_BACKENDS or verb == "render":
        return os.pathsep.join([str(STAND_IN), *parts]), "the lab's stand-in (tools/lab-kubernetes-provider)"
    raise StackError(
        f"the {env} stack needs the upstream Kubernetes provider, and it is not installed: install it from the "
        "internal artifact mirror with `pulumi plugin install resource kubernetes v4.34.2 --file <its tarball>`"
    )


def lab_passphrase(stack_exists: bool, path: Path = LAB_PASSPHRASE) -> Path:
    """The lab's passphrase file: made for a new stack, required for an existing one."""
    if path.is_file() and path.read_text().strip():
        return path
    if stack_exists:
        raise StackError(
            f"the lab stack exists but its passphrase {path} is missing or empty: restore it, or start "
            "over with `make lab-down && make lab` (the state cannot be read without it)"
        )
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    alphabet = string.ascii_letters + string.digits
    path.write_text("".join(secrets.choice(alphabet) for _ in range(40)))
    path.chmod(0o600)
    return path


def stack_exists(pulumi: str, stack: Stack, env: dict[str, str], cwd: Path) -> bool:
    listing = subprocess.run(
        [pulumi, "stack", "ls", "--json", "--cwd", str(cwd)], env=env, capture_output=True, text=True
    )
    if listing.returncode != 0:
        raise StackError(f"cannot list the stacks of {stack.backend}: {listing.stderr.strip()}")
    return any(entry.get("name") == stack.env for entry in json.loads(listing.stdout or "[]"))


def own_config(stack: Stack, workdir: Path, extra: dict | None = None) -> Path:
    """A copy of the stack file that the engine may write its salt into (never the tracked file)."""
    target = workdir / f"Pulumi.{stack.env}.yaml"
    salt = (yaml.safe_load(target.read_text()) or {}).get("encryptionsalt") if target.is_file() else None
    settings = {**stack.config, **(extra or {})}
    kubeconfig = settings.get("kubernetes:kubeconfig")
    if isinstance(kubeconfig, str) and "\n" not in kubeconfig and not Path(kubeconfig).is_absolute():
        # relative to the repository, as the stack file means it (the provider runs elsewhere)
        settings["kubernetes:kubeconfig"] = str(REPO / kubeconfig)
    content = {"config": settings}
    if stack.secrets_provider:
        content["secretsprovider"] = stack.secrets_provider
    if salt:
        content["encryptionsalt"] = salt
    target.write_text("# Generated by tools/pulumi_stack.py from " + str(stack.file) + "\n" + yaml.safe_dump(content))
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("verb", choices=("preview", "up", "refresh", "render"))
    parser.add_argument("--env", required=True)
    # Defaults from the environment too, so a test can point `make up` at a scratch stack.
    environ = os.environ.get
    parser.add_argument("--stack-file", type=Path, default=environ("GOVOPS_STACK_FILE"))
    parser.add_argument(
        "--state-dir", type=Path, default=environ("GOVOPS_PULUMI_STATE"), help="a file:// backend instead"
    )
    parser.add_argument("--passphrase-file", type=Path, default=environ("GOVOPS_PULUMI_PASSPHRASE", LAB_PASSPHRASE))
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--") if "--" in argv else len(argv)  # what follows `--` goes to the engine
    args = parser.parse_args(argv[:split])
    theirs = argv[split + 1 :]
    args.pulumi_args = theirs
    try:
        return run(args)
    except StackError as error:
        print(f"make {args.verb}: {error}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    env = {**os.environ, **OFFLINE, **PYTHON}
    # The pinned tools (CLI, language host, analyzer) first, as the Makefile has them.
    env["PATH"] = os.pathsep.join([str(REPO / ".toolchain/bin"), env.get("PATH", "")])
    pulumi = shutil.which("pulumi", path=env["PATH"])
    if pulumi is None:
        raise StackError("no `pulumi` on PATH: run `make toolchain` (it builds the pinned CLI into .toolchain/bin)")
    if args.verb == "render":
        return render(pulumi, args, env)
    stack = load_stack(args.env, args.stack_file, args.state_dir)
    env["PULUMI_BACKEND_URL"] = stack.backend
    env["PATH"], provider = provider_path(args.env, args.verb, upstream_installed(pulumi, env), env.get("PATH", ""))
    print(f"{args.verb} {args.env}: state in {stack.backend}, Kubernetes provider: {provider}", flush=True)
    if args.env not in OWN_BACKENDS:  # a real backend: its stack and secrets are its owners' business
        command = [pulumi, args.verb, "--stack", args.env, "--non-interactive", "--cwd", str(REPO)]
        return _engine(command + _verb_flags(args.verb) + args.pulumi_args, env)
    state = Path(stack.backend.removeprefix("file://"))
    workdir = state / "project"  # where the engine writes this stack's salt (stack init, config copies)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "Pulumi.yaml").write_text("name: govops\nruntime: python\n")
    exists = stack_exists(pulumi, stack, env, workdir)
    env["PULUMI_CONFIG_PASSPHRASE_FILE"] = str(lab_passphrase(exists, args.passphrase_file))
    env.pop("PULUMI_CONFIG_PASSPHRASE", None)
    if not exists:
        init = [pulumi, "stack", "init", args.env, "--secrets-provider", "passphrase", "--non-interactive"]
        subprocess.run([*init, "--cwd", str(workdir)], env=env, check=True, capture_output=True)
    config = own_config(stack, workdir)
    command = [pulumi, args.verb, "--stack", args.env, "--non-interactive", "--cwd", str(REPO)]
    return _engine([*command, "--config-file", str(config), *_verb_flags(args.verb), *args.pulumi_args], env)


def _verb_flags(verb: str) -> list[str]:
    return ["--yes"] if verb in ("up", "refresh") else []


def _engine(command: list[str], env: dict[str, str]) -> int:
    return subprocess.run(command, env=env).returncode


def render(pulumi: str, args: argparse.Namespace, env: dict[str, str]) -> int:
    """The stack's manifests in reports/render/<env>/, from a throwaway state: every object is
    new to it, so every manifest is written; no cluster and no real backend is contacted."""
    stack = load_stack(args.env, args.stack_file, Path(tempfile.gettempdir()))
    out = REPO / "reports/render" / args.env
    shutil.rmtree(out, ignore_errors=True)
    env["PATH"], provider = provider_path(args.env, "render", upstream_installed(pulumi, env), env.get("PATH", ""))
    with tempfile.TemporaryDirectory(prefix="govops-render-") as scratch:
        state, workdir = Path(scratch) / "state", Path(scratch) / "project"
        state.mkdir()
        workdir.mkdir()
        (workdir / "Pulumi.yaml").write_text("name: govops\nruntime: python\n")
        (Path(scratch) / "passphrase").write_text(secrets.token_urlsafe(24))
        env.update(PULUMI_BACKEND_URL=f"file://{state}", PULUMI_CONFIG_PASSPHRASE_FILE=f"{scratch}/passphrase")
        env.pop("PULUMI_CONFIG_PASSPHRASE", None)
        print(f"render {args.env}: manifests to {out}, Kubernetes provider: {provider}", flush=True)
        init = [pulumi, "stack", "init", args.env, "--secrets-provider", "passphrase", "--non-interactive"]
        subprocess.run([*init, "--cwd", str(workdir)], env=env, check=True, capture_output=True)
        # Only the program's settings: the stack's backend, secrets and cluster are not used.
        settings = {k: v for k, v in stack.config.items() if not k.startswith(("kubernetes:", "govops:backend"))}
        render_stack = Stack(args.env, stack.file, "", "", settings)
        config = own_config(render_stack, workdir, {"kubernetes:renderYamlToDirectory": str(out)})
        command = [pulumi, "up", "--stack", args.env, "--yes", "--skip-preview", "--non-interactive"]
        code = _engine([*command, "--cwd", str(REPO), "--config-file", str(config), *args.pulumi_args], env)
    if code == 0:
        print(f"render {args.env}: {len(list(out.rglob('*.yaml')))} manifests in {out.relative_to(REPO)}")
    return code


if __name__ == "__main__":
    sys.exit(main())
