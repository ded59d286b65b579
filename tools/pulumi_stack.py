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

Every preview, up and render runs the policy pack infra/policy (--policy-pack); a render's
manifests are then validated against the Kubernetes version's OpenAPI schema
(tools/validate_manifests.py).

Secrets: staging's and prod's are in their stack files, added by their owners with
`pulumi config set --secret`. The lab's are the lab's generated files named by
`govops:labSecretFiles` in its stack file, set as secrets into the engine's copy of that file
before each run (never into stacks/). A render, which has no real secrets, sets a placeholder
for each secret the program needs.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
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
LAB_SECRETS = REPO / ".lab/secrets"
POLICY_PACK = REPO / "infra/policy"
# Settings this tool reads; the program does not.
TOOL_KEYS = ("govops:backend", "govops:labSecretFiles")
RENDER_PLACEHOLDER = "render-placeholder-not-a-secret"
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


def own_config(stack: Stack, workdir: Path, extra: dict | None = None, keep: tuple[str, ...] = ()) -> Path:
    """A copy of the stack file that the engine may write its salt into (never the tracked file);
    the secret settings named in `keep` that an earlier run set into the copy stay in it."""
    target = workdir / f"Pulumi.{stack.env}.yaml"
    old = (yaml.safe_load(target.read_text()) or {}) if target.is_file() else {}
    salt = old.get("encryptionsalt")
    kept = {key: value for key, value in (old.get("config") or {}).items() if key in keep and isinstance(value, dict)}
    settings = {**stack.config, **(extra or {}), **kept}
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


def _module(name: str, path: Path):
    """A module of the repository by path (tools/ and infra/ are not packages)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


def program_config():
    """The program's own reading of stack files (infra/config.py), to know its secret settings."""
    return _module("govops_stack_config", REPO / "infra/config.py")


def secret_keys(stack: Stack) -> tuple[str, ...]:
    """The secret settings (govops:<key>) the stack's services need."""
    config = program_config()
    raw = {key.split(":", 1)[1]: value for key, value in stack.config.items() if key.startswith("govops:")}
    try:
        return config.parse(raw, str(stack.file)).secret_keys()
    except config.ConfigError as error:
        raise StackError(str(error)) from None


def lab_secret_values(stack: Stack, directory: Path = LAB_SECRETS) -> dict[str, str]:
    """govops:<key> -> value, from the lab's generated files that govops:labSecretFiles names."""
    files = stack.config.get("govops:labSecretFiles") or {}
    if not isinstance(files, dict):
        raise StackError(f"{stack.file}: govops:labSecretFiles must map secret keys to file names in {directory}")
    missing = sorted(set(secret_keys(stack)) - set(files))
    if missing:
        raise StackError(f"{stack.file}: govops:labSecretFiles names no file for {', '.join(missing)}")
    values = {}
    for key, name in files.items():
        path = directory / str(name)
        text = path.read_text().strip() if path.is_file() else ""
        if not text:
            raise StackError(
                f"{stack.file}: govops:labSecretFiles.{key} is {path}, which is missing or empty: "
                "`make deploy ENV=lab` generates the lab's secrets (stacks/lab/group_vars)"
            )
        values[f"govops:{key}"] = text
    return values


def set_secrets(pulumi: str, stack: Stack, config: Path, values: dict[str, str], env: dict[str, str]) -> None:
    """Each value as a secret into the engine's copy of the stack file, through stdin (never on a
    command line), unless the copy already holds these very values (a digest beside it says so)."""
    content = yaml.safe_load(config.read_text()) or {}
    held, salt = content.get("config") or {}, content.get("encryptionsalt")  # a new salt: a new key
    digest = hashlib.sha256(json.dumps([stack.env, salt, sorted(values.items())]).encode()).hexdigest()
    stamp = config.with_suffix(".secrets.sha256")
    if stamp.is_file() and stamp.read_text() == digest and all(isinstance(held.get(k), dict) for k in values):
        return
    for key, value in values.items():
        command = [pulumi, "config", "set", "--secret", key, "--stack", stack.env, "--non-interactive"]
        command += ["--config-file", str(config), "--cwd", str(config.parent)]
        result = subprocess.run(command, input=value, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise StackError(f"cannot set the secret {key} in {config}: {result.stderr.strip()}")
    stamp.write_text(digest)
    stamp.chmod(0o600)


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
    env["GOVOPS_STACK_SOURCE"] = _shown(stack.file)  # the program names it in its errors
    env["PATH"], provider = provider_path(args.env, args.verb, upstream_installed(pulumi, env), env.get("PATH", ""))
    print(f"{args.verb} {args.env}: state in {stack.backend}, Kubernetes provider: {provider}", flush=True)
    if args.env not in OWN_BACKENDS:  # a real backend: its stack and secrets are its owners' business
        command = [pulumi, args.verb, "--stack", args.env, "--non-interactive", "--cwd", str(REPO)]
        return _engine(command + _verb_flags(args.verb) + args.pulumi_args, env)
    secrets_wanted = lab_secret_values(stack)
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
    config = own_config(stack, workdir, keep=tuple(secrets_wanted))
    set_secrets(pulumi, stack, config, secrets_wanted, env)
    command = [pulumi, args.verb, "--stack", args.env, "--non-interactive", "--cwd", str(REPO)]
    return _engine([*command, "--config-file", str(config), *_verb_flags(args.verb), *args.pulumi_args], env)


def _verb_flags(verb: str) -> list[str]:
    flags = ["--yes"] if verb in ("up", "refresh") else []
    return flags + (["--policy-pack", str(POLICY_PACK)] if verb in ("preview", "up") else [])


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


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
        # Only the program's settings: the stack's backend, secrets and cluster are not used. Its
        # encrypted secrets cannot be read with a throwaway passphrase: placeholders instead.
        settings = {
            key: value
            for key, value in stack.config.items()
            if not key.startswith("kubernetes:") and key not in TOOL_KEYS and not _encrypted(value)
        }
        render_stack = Stack(args.env, stack.file, "", "", settings)
        config = own_config(render_stack, workdir, {"kubernetes:renderYamlToDirectory": str(out)})
        # A value given in plain text stays, so that the program refuses it as `up` would.
        unset = [key for key in secret_keys(stack) if f"govops:{key}" not in settings]
        placeholders = [arg for key in unset for arg in ("--secret", f"govops:{key}={RENDER_PLACEHOLDER}")]
        if placeholders:  # not secret: on the command line
            set_all = [pulumi, "config", "set-all", *placeholders, "--stack", args.env, "--non-interactive"]
            set_all += ["--config-file", str(config), "--cwd", str(workdir)]
            result = subprocess.run(set_all, env=env, capture_output=True, text=True)
            if result.returncode != 0:
                raise StackError(f"cannot set the placeholder secrets: {result.stderr.strip()}")
        env["GOVOPS_STACK_SOURCE"] = _shown(stack.file)
        command = [pulumi, "up", "--stack", args.env, "--yes", "--skip-preview", "--non-interactive"]
        command += ["--policy-pack", str(POLICY_PACK)]
        code = _engine([*command, "--cwd", str(REPO), "--config-file", str(config), *args.pulumi_args], env)
    if code != 0:
        return code
    manifests = sorted(out.rglob("*.yaml"))
    print(f"render {args.env}: {len(manifests)} manifests in {_shown(out)}")
    validate = _module("validate_manifests", REPO / "tools/validate_manifests.py")
    return validate.report(manifests, prefix=f"render {args.env}")


def _encrypted(value) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}


if __name__ == "__main__":
    sys.exit(main())
