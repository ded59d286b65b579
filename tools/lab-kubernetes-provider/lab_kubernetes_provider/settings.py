"""The provider's settings, from the variables of the engine's Configure call.

The engine names each `kubernetes:<key>` of the stack (or the explicit provider's inputs)
`kubernetes:config:<key>`, every value a string. Keys not listed here are ignored.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

PREFIX = "kubernetes:config:"


class SettingsError(ValueError):
    """A provider setting is wrong; the message names it."""


@dataclass(frozen=True)
class Settings:
    kubeconfig: dict | None  # the parsed kubeconfig; None: the ambient one ($KUBECONFIG or ~/.kube/config)
    kubeconfig_source: str  # where it came from, for messages
    context: str | None
    namespace: str  # the default namespace of namespaced objects
    render_dir: Path | None  # renderYamlToDirectory: write manifests there, touch no cluster
    secret_mutable: bool = False
    configmap_mutable: bool = False
    patch_force: bool = False
    upsert_existing: bool = False

    @property
    def render(self) -> bool:
        return self.render_dir is not None


def _flag(variables: dict[str, str], key: str, env: str) -> bool:
    """A true/false setting: the provider's config first, then upstream's environment variable."""
    if PREFIX + key in variables:
        return variables[PREFIX + key] == "true"
    return os.environ.get(env) == "true"


def load_kubeconfig(path_or_contents: str) -> tuple[dict | None, str]:
    """The kubeconfig named by the `kubeconfig` setting, a path or else the file's contents (as
    upstream reads it), or the ambient one when the setting is empty."""
    if not path_or_contents:
        ambient = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or str(Path.home() / ".kube/config")
        if not Path(ambient).is_file():
            return None, ambient
        path_or_contents = ambient
    path = Path(path_or_contents).expanduser()
    try:
        if "\n" not in path_or_contents and path.is_file():
            return _parse(path.read_text(), str(path)), str(path)
    except OSError as error:
        raise SettingsError(f"kubernetes:kubeconfig: cannot read {path}: {error}") from error
    if "\n" not in path_or_contents and "apiVersion" not in path_or_contents:
        raise SettingsError(f"kubernetes:kubeconfig: {path_or_contents} is not a file (nor a kubeconfig's contents)")
    return _parse(path_or_contents, "the kubernetes:kubeconfig setting's contents"), "kubernetes:kubeconfig"


def _parse(text: str, source: str) -> dict:
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise SettingsError(f"kubernetes:kubeconfig: {source} is not YAML: {error}") from error
    if not isinstance(parsed, dict) or not parsed.get("clusters") or not parsed.get("contexts"):
        raise SettingsError(f"kubernetes:kubeconfig: {source} is not a kubeconfig (no clusters or contexts)")
    return parsed


def context_namespace(kubeconfig: dict | None, context: str | None) -> str | None:
    """The namespace that the kubeconfig's context (the named one, else the current one) sets."""
    if not kubeconfig:
        return None
    name = context or kubeconfig.get("current-context")
    for entry in kubeconfig.get("contexts") or []:
        if entry.get("name") == name:
            return (entry.get("context") or {}).get("namespace")
    return None


def from_variables(variables: dict[str, str]) -> Settings:
    """Settings from Configure's variables. In render mode no kubeconfig is needed."""
    render_dir = variables.get(PREFIX + "renderYamlToDirectory") or None
    context = variables.get(PREFIX + "context") or None
    try:
        kubeconfig, source = load_kubeconfig(variables.get(PREFIX + "kubeconfig", ""))
    except SettingsError:
        if not render_dir:
            raise
        kubeconfig, source = None, "none (render mode)"
    # Upstream's order: the provider's namespace, else the context's, else "default".
    namespace = variables.get(PREFIX + "namespace") or context_namespace(kubeconfig, context) or "default"
    return Settings(
        kubeconfig=kubeconfig,
        kubeconfig_source=source,
        context=context,
        namespace=namespace,
        render_dir=Path(render_dir) if render_dir else None,
        secret_mutable=_flag(variables, "enableSecretMutable", "PULUMI_K8S_ENABLE_SECRET_MUTABLE"),
        configmap_mutable=_flag(variables, "enableConfigMapMutable", "PULUMI_K8S_ENABLE_CONFIGMAP_MUTABLE"),
        patch_force=_flag(variables, "enablePatchForce", "PULUMI_K8S_ENABLE_PATCH_FORCE"),
        upsert_existing=_flag(variables, "upsertExistingObjects", "PULUMI_K8S_UPSERT_EXISTING_OBJECTS"),
    )
