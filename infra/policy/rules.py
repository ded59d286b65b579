"""The policy pack's rules as plain functions: (resource type, inputs, stack's allowances) ->
what is wrong, each message saying what to change. __main__.py makes them mandatory policies;
tests/unit/test_infra_policies.py calls them directly."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from secret_marks import SecretValue

# The labels infra/components/labels.py puts on every object (a unit test keeps them equal).
REQUIRED_LABELS = ("govops.gov/owner", "govops.gov/service", "govops.gov/environment", "govops.gov/data-classification")
DIGEST = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")
KUBERNETES_KIND = re.compile(r"^kubernetes:[a-z0-9.]+/v[0-9a-z]+:[A-Za-z]+$")
# Where each workload kind keeps its pod spec.
POD_SPECS = {
    "kubernetes:core/v1:Pod": ("spec",),
    "kubernetes:core/v1:PodTemplate": ("template", "spec"),
    "kubernetes:core/v1:ReplicationController": ("spec", "template", "spec"),
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
EXPOSING_TYPES = ("LoadBalancer", "NodePort")


@dataclass(frozen=True)
class Allowances:
    """What the stack file allows (govops:exposedServices: ['<namespace>/<service>', ...])."""

    exposed_services: frozenset[str] = frozenset()


Rule = Callable[[str, Mapping[str, Any], Allowances], list[str]]


def _dig(value: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def _kind(resource_type: str) -> str:
    return resource_type.rsplit(":", 1)[-1]


def object_name(resource_type: str, props: Mapping[str, Any]) -> str:
    """`Kind namespace/name` for messages."""
    metadata = props.get("metadata") or {}
    where = "/".join(str(part) for part in (metadata.get("namespace"), metadata.get("name")) if part)
    return f"{_kind(resource_type)} {where or '(unnamed)'}"


def _pod_spec(resource_type: str, props: Mapping[str, Any]) -> Mapping[str, Any] | None:
    path = POD_SPECS.get(resource_type)
    return _dig(props, *path) if path else None


def _containers(pod: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for field in ("initContainers", "containers", "ephemeralContainers"):
        yield from pod.get(field) or []


def requests_and_limits(resource_type: str, props: Mapping[str, Any], _: Allowances) -> list[str]:
    pod = _pod_spec(resource_type, props)
    problems = []
    for container in _containers(pod) if pod else ():
        missing = [
            f"{kind}.{resource}"
            for kind in ("requests", "limits")
            for resource in ("cpu", "memory")
            if not _dig(container, "resources", kind, resource)
        ]
        if missing:
            problems.append(
                f"{object_name(resource_type, props)}: container '{container.get('name')}' has no "
                f"{', '.join(missing)}: set resources.requests and resources.limits for cpu and memory "
                "(web.resources in the stack file)"
            )
    return problems


def _effective(pod: Mapping[str, Any], container: Mapping[str, Any], field: str) -> Any:
    """A security setting as it applies: the container's own, else the pod's."""
    own = _dig(container, "securityContext", field)
    return own if own is not None else _dig(pod, "securityContext", field)


def runs_as_non_root(resource_type: str, props: Mapping[str, Any], _: Allowances) -> list[str]:
    pod = _pod_spec(resource_type, props)
    problems = []
    for container in _containers(pod) if pod else ():
        if _effective(pod, container, "runAsNonRoot") is not True or _effective(pod, container, "runAsUser") == 0:
            problems.append(
                f"{object_name(resource_type, props)}: container '{container.get('name')}' may run as root: set "
                "securityContext.runAsNonRoot: true (pod or container) and a runAsUser other than 0"
            )
    return problems


def no_privilege_escalation(resource_type: str, props: Mapping[str, Any], _: Allowances) -> list[str]:
    pod = _pod_spec(resource_type, props)
    problems = []
    for container in _containers(pod) if pod else ():
        context = container.get("securityContext") or {}
        if context.get("allowPrivilegeEscalation") is not False or context.get("privileged") is True:
            problems.append(
                f"{object_name(resource_type, props)}: container '{container.get('name')}' may gain privileges: set "
                "securityContext.allowPrivilegeEscalation: false (and never privileged: true)"
            )
    return problems


def images_pinned_by_digest(resource_type: str, props: Mapping[str, Any], _: Allowances) -> list[str]:
    pod = _pod_spec(resource_type, props)
    problems = []
    for container in _containers(pod) if pod else ():
        image = container.get("image")
        if not isinstance(image, str) or not DIGEST.match(image):
            problems.append(
                f"{object_name(resource_type, props)}: container '{container.get('name')}' image {image!r} is not "
                "pinned by digest: use <repository>@sha256:<64 hex digits> (the digest the registry gives for the "
                "tag, e.g. `skopeo inspect docker://<image>`), never :latest or a bare tag"
            )
    return problems


def required_labels(resource_type: str, props: Mapping[str, Any], _: Allowances) -> list[str]:
    if not KUBERNETES_KIND.match(resource_type):
        return []  # providers, components: no Kubernetes metadata
    places = {"metadata.labels": _dig(props, "metadata", "labels")}
    if resource_type in POD_SPECS and resource_type != "kubernetes:core/v1:Pod":
        template = POD_SPECS[resource_type][:-1]  # the pod spec's sibling metadata
        places[".".join((*template, "metadata.labels"))] = _dig(props, *template, "metadata", "labels")
    problems = []
    for place, labels in places.items():
        missing = [key for key in REQUIRED_LABELS if not (labels or {}).get(key)]
        if missing:
            problems.append(
                f"{object_name(resource_type, props)}: {place} lacks {', '.join(missing)}: every object carries the "
                "owner, service, environment and data classification labels (infra/components/labels.py)"
            )
    return problems


def no_unallowed_exposure(resource_type: str, props: Mapping[str, Any], allowances: Allowances) -> list[str]:
    if resource_type != "kubernetes:core/v1:Service":
        return []
    kind = _dig(props, "spec", "type")
    if kind not in EXPOSING_TYPES:
        return []
    metadata = props.get("metadata") or {}
    key = f"{metadata.get('namespace')}/{metadata.get('name')}"
    if key in allowances.exposed_services:
        return []
    return [
        f"Service {key} is of type {kind}, which opens it outside the cluster: keep it ClusterIP behind the "
        f"Ingress, or allow it in the stack file with govops:exposedServices: ['{key}']"
    ]


def secret_data_is_secret(resource_type: str, props: Mapping[str, Any], _: Allowances) -> list[str]:
    if resource_type != "kubernetes:core/v1:Secret":
        return []
    problems = []
    for field in ("data", "stringData"):
        for key, value in (props.get(field) or {}).items():
            if not isinstance(value, SecretValue):
                problems.append(
                    f"{object_name(resource_type, props)}: {field}.{key} is not a Pulumi secret, so it would sit in "
                    "the state and the preview in plain text: take it from secret stack config (`pulumi config set "
                    "--secret govops:<key>`) and pass the whole data as a secret Output"
                )
    return problems


# name -> (description, rule); every one mandatory
RULES: dict[str, tuple[str, Rule]] = {
    "containers-have-requests-and-limits": (
        "Every container sets cpu and memory requests and limits.",
        requests_and_limits,
    ),
    "containers-run-as-non-root": ("Every container runs as a non-root user.", runs_as_non_root),
    "containers-no-privilege-escalation": ("No container may gain privileges.", no_privilege_escalation),
    "images-pinned-by-digest": (
        "Every image is pinned by digest (no :latest, no bare tag).",
        images_pinned_by_digest,
    ),
    "required-labels": (
        "Every object carries owner, service, environment and data classification labels.",
        required_labels,
    ),
    "no-unallowed-exposure": (
        "No LoadBalancer or NodePort Service without an allowance in stack config.",
        no_unallowed_exposure,
    ),
    "secret-data-from-secret-config": (
        "A Secret's data is a Pulumi secret (from secret stack config).",
        secret_data_is_secret,
    ),
}
