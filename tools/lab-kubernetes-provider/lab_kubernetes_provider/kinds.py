"""What kind of object a resource is: from its type token, and whether it lives in a namespace."""

from __future__ import annotations

# Built-in kinds that live outside namespaces; render mode has no API server to ask.
CLUSTER_SCOPED = {
    ("v1", "Namespace"),
    ("v1", "Node"),
    ("v1", "PersistentVolume"),
    ("v1", "ComponentStatus"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
    ("storage.k8s.io/v1", "StorageClass"),
    ("storage.k8s.io/v1", "CSIDriver"),
    ("storage.k8s.io/v1", "CSINode"),
    ("storage.k8s.io/v1", "VolumeAttachment"),
    ("scheduling.k8s.io/v1", "PriorityClass"),
    ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"),
    ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"),
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy"),
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding"),
    ("apiregistration.k8s.io/v1", "APIService"),
    ("networking.k8s.io/v1", "IngressClass"),
    ("node.k8s.io/v1", "RuntimeClass"),
    ("certificates.k8s.io/v1", "CertificateSigningRequest"),
    ("flowcontrol.apiserver.k8s.io/v1", "FlowSchema"),
    ("flowcontrol.apiserver.k8s.io/v1", "PriorityLevelConfiguration"),
}

# Upstream's invokes that render manifests; this stand-in offers none of them.
REFUSED_INVOKES = ("kubernetes:yaml:decode", "kubernetes:helm:template", "kubernetes:kustomize:directory")


def from_type_token(token: str) -> tuple[str, str]:
    """(apiVersion, kind) of a type token: kubernetes:core/v1:Namespace -> (v1, Namespace),
    kubernetes:apps/v1:Deployment -> (apps/v1, Deployment)."""
    try:
        _, group_version, kind = token.split(":")
    except ValueError as error:
        raise ValueError(f"not a Kubernetes type token: {token!r}") from error
    group, _, version = group_version.rpartition("/")
    return (version if group in ("core", "") else f"{group}/{version}"), kind


def type_token(urn: str) -> str:
    """The resource type of a URN (urn:pulumi:stack::project::parent$type::name)."""
    return urn.split("::")[2].rsplit("$", 1)[-1]


def gvk(obj: dict) -> tuple[str, str]:
    return obj.get("apiVersion", ""), obj.get("kind", "")


def is_crd(obj: dict) -> bool:
    return gvk(obj) == ("apiextensions.k8s.io/v1", "CustomResourceDefinition")
