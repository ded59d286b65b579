"""Diff: the new inputs against the live object as last read, pruned to the shape of the old
inputs (upstream's v4 diff), and which changes force a replacement (upstream's diff.go).

Paths are written as upstream writes them: spec.selector.matchLabels.app,
metadata.labels["app.kubernetes.io/part-of"], spec.containers[0].image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import naming
from .properties import UNKNOWN

_MISSING = object()


def _selector(prefix: str) -> list[str]:
    return [prefix]  # a change anywhere under a label selector


def _containers(*prefixes: str) -> list[str]:
    fields = ("args", "command", "env", "image", "imagePullPolicy", "lifecycle", "livenessProbe", "ports")
    fields += ("readinessProbe", "resources", "securityContext", "stdin", "stdinOnce", "terminationMessagePath")
    fields += ("terminationMessagePolicy", "tty", "volumeDevices", "volumeMounts", "workingDir")
    return [f"{prefix}.{name}" for prefix in prefixes for name in fields]


_POD_FIELDS = (
    "affinity",
    "automountServiceAccountToken",
    "dnsConfig",
    "dnsPolicy",
    "enableServiceLinks",
    "hostAliases",
    "hostIPC",
    "hostNetwork",
    "hostPID",
    "hostname",
    "imagePullSecrets",
    "nodeName",
    "nodeSelector",
    "overhead",
    "preemptionPolicy",
    "priority",
    "priorityClassName",
    "readinessGates",
    "restartPolicy",
    "runtimeClassName",
    "schedulerName",
    "securityContext",
    "serviceAccount",
    "serviceAccountName",
    "shareProcessNamespace",
    "subdomain",
    "terminationGracePeriodSeconds",
    "volumes",
)
_POD = [f"spec.{name}" for name in _POD_FIELDS] + _containers("spec.containers[*]", "spec.initContainers[*]")

# Per (apiVersion, kind): the fields a change of which replaces the object (after upstream's
# forceNew table). metadata.name and metadata.namespace replace every kind.
REPLACE_ON: dict[tuple[str, str], list[str]] = {
    ("apps/v1", "Deployment"): _selector("spec.selector"),
    ("apps/v1", "DaemonSet"): _selector("spec.selector"),
    ("apps/v1", "StatefulSet"): [
        "spec.podManagementPolicy",
        "spec.revisionHistoryLimit",
        "spec.serviceName",
        "spec.volumeClaimTemplates",
        *_selector("spec.selector"),
    ],
    ("batch/v1", "Job"): ["spec.completions", "spec.parallelism", "spec.template", *_selector("spec.selector")],
    ("v1", "Service"): ["spec.clusterIP"],
    ("v1", "PersistentVolumeClaim"): [
        "spec.accessModes",
        "spec.storageClassName",
        "spec.volumeName",
        *_selector("spec.selector"),
    ],
    ("v1", "Pod"): _POD,
    ("v1", "ResourceQuota"): ["spec.scopes"],
    ("v1", "Secret"): ["type"],
    ("storage.k8s.io/v1", "StorageClass"): ["parameters", "provisioner"],
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ["roleRef"],
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): ["roleRef"],
}


def replace_paths(obj: dict, secret_mutable: bool = False, configmap_mutable: bool = False) -> list[str]:
    """The replacement paths of an object's kind. Secret and ConfigMap contents replace the object
    unless the provider's enableSecretMutable / enableConfigMapMutable is on and the object is not
    immutable (upstream's rule: a new object lets Pods roll to it)."""
    key = (obj.get("apiVersion"), obj.get("kind"))
    paths = ["metadata.name", "metadata.namespace"]
    immutable = obj.get("immutable") is True
    if key == ("v1", "Secret") and (not secret_mutable or immutable):
        return [*paths, "type", "stringData", "data"]
    if key == ("v1", "ConfigMap") and (not configmap_mutable or immutable):
        return [*paths, "binaryData", "data"]
    return paths + REPLACE_ON.get(key, [])


def prune(live: Any, shape: Any) -> Any:
    """The parts of `live` at the places `shape` has (maps key by key, lists index by index)."""
    if isinstance(live, dict) and isinstance(shape, dict):
        return {key: prune(live[key], shape[key]) for key in shape if key in live}
    if isinstance(live, list) and isinstance(shape, list):
        return [prune(item, shape[index]) for index, item in enumerate(live[: len(shape)])]
    return live


def _path(parts: list[str | int]) -> str:
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif any(char in part for char in '."[]') or not part:
            text += '["' + part.replace('"', '\\"') + '"]'
        else:
            text += f".{part}" if text else part
    return text


def _equal(old: Any, new: Any) -> bool:
    if isinstance(old, bool) or isinstance(new, bool):
        return old is new
    if isinstance(old, int | float) and isinstance(new, int | float):
        return float(old) == float(new)
    return old == new


def changes(old: Any, new: Any, parts: list[str | int] | None = None) -> dict[str, tuple[str, list]]:
    """Where `new` differs from `old`: path -> (ADD | UPDATE | DELETE, the path as parts)."""
    parts = parts or []
    found: dict[str, tuple[str, list]] = {}
    if new is _MISSING:
        return {_path(parts): ("DELETE", parts)} if old is not _MISSING else {}
    if old is _MISSING:
        return {_path(parts): ("ADD", parts)}
    if new == UNKNOWN:
        return {_path(parts): ("UPDATE", parts)}
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            found.update(changes(old.get(key, _MISSING), new.get(key, _MISSING), [*parts, key]))
        return found
    if isinstance(old, list) and isinstance(new, list):
        for index in range(max(len(old), len(new))):
            before = old[index] if index < len(old) else _MISSING
            after = new[index] if index < len(new) else _MISSING
            found.update(changes(before, after, [*parts, index]))
        return found
    return {} if _equal(old, new) else {_path(parts): ("UPDATE", parts)}


def _matches(parts: list[str | int], pattern: str) -> bool:
    """A change at `parts` touches `pattern` (a.b[*].c): it is at or under it, or it adds or
    removes a whole map above it."""
    wanted = pattern.replace("[*]", ".*").split(".")
    for index, part in enumerate(parts):
        if index == len(wanted):
            return True
        if wanted[index] != "*" and wanted[index] != str(part):
            return False
    return True


@dataclass
class Result:
    changed: bool
    detailed: dict[str, str] = field(default_factory=dict)  # path -> ADD | UPDATE | DELETE, _REPLACE when so
    replaces: list[str] = field(default_factory=list)
    delete_before_replace: bool = False


def compute(
    old_inputs: dict,
    old_live: dict,
    news: dict,
    namespaced: bool,
    ignore_changes: list[str] = (),
    secret_mutable: bool = False,
    configmap_mutable: bool = False,
) -> Result:
    """The diff of a resource: new inputs against the old live object pruned to the old inputs."""
    base = prune(old_live, old_inputs) if old_live else old_inputs
    base = {**base, "metadata": dict(base.get("metadata") or {})}
    news = {**news, "metadata": dict(news.get("metadata") or {})}
    if namespaced:  # an empty namespace is "default" to the API server, so no diff between them
        for obj in (base, news):
            obj["metadata"]["namespace"] = obj["metadata"].get("namespace") or "default"
    else:
        base["metadata"].pop("namespace", None)
        news["metadata"].pop("namespace", None)
    old_name = (old_live.get("metadata") or {}).get("name") or base["metadata"].get("name")
    if news["metadata"].get("name"):
        base["metadata"]["name"] = old_name
    for key in ("apiVersion", "kind"):  # the live object always says both
        base.setdefault(key, news.get(key))

    found = changes(base, news)
    for ignored in ignore_changes:
        found = {path: change for path, change in found.items() if not _under(path, ignored)}
    patterns = replace_paths(news, secret_mutable, configmap_mutable)
    result = Result(changed=bool(found))
    for path, (kind, parts) in sorted(found.items()):
        replace = any(_matches(parts, pattern) for pattern in patterns) or (kind == "DELETE" and path == "metadata")
        result.detailed[path] = f"{kind}_REPLACE" if replace else kind
        if replace:
            result.replaces.append(path)
    old_namespace = (old_live.get("metadata") or {}).get("namespace") or base["metadata"].get("namespace")
    result.delete_before_replace = (
        bool(result.replaces)
        and bool(news["metadata"].get("name"))
        and not naming.is_autonamed(news)
        and news["metadata"].get("name") == old_name
        and news["metadata"].get("namespace") == (old_namespace or news["metadata"].get("namespace"))
    )
    return result


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + ".") or path.startswith(prefix + "[")
