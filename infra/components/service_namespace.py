"""A namespace for one service: labels for ownership and data classification, the restricted Pod
Security Standard, a quota, default limits, a network policy that denies all traffic not allowed
explicitly, and on top of that baseline the flows the service needs (NetworkFlows) and its
deployer and auditor roles (AccessRoles)."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
from config import Platform, Service

from components.access_roles import AccessRoles
from components.labels import service_labels
from components.network_flows import NetworkFlows

# Each container gets these unless it asks for its own, so the quota always applies.
DEFAULT_LIMITS = {"cpu": "500m", "memory": "512Mi"}
DEFAULT_REQUESTS = {"cpu": "100m", "memory": "128Mi"}
# The API server refuses pods that break the restricted profile (non-root, no escalation, ...),
# whatever declared them; pinned to the cluster's minor version.
POD_SECURITY = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "v1.34",
}


class ServiceNamespace(pulumi.ComponentResource):
    namespace: pulumi.Output[str]

    def __init__(
        self,
        service: Service,
        environment: str,
        platform: Platform | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("govops:platform:ServiceNamespace", service.name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = service_labels(service, environment)
        ns = k8s.core.v1.Namespace(
            service.name,
            metadata=k8s.meta.v1.ObjectMetaArgs(name=service.name, labels={**labels, **POD_SECURITY}),
            opts=child,
        )
        metadata = k8s.meta.v1.ObjectMetaArgs(namespace=ns.metadata.name, labels=labels)
        self.quota = k8s.core.v1.ResourceQuota(
            f"{service.name}-quota",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="quota", namespace=ns.metadata.name, labels=labels),
            spec=k8s.core.v1.ResourceQuotaSpecArgs(
                hard={
                    "limits.cpu": service.quota.cpu,
                    "limits.memory": service.quota.memory,
                    "pods": str(service.quota.pods),
                }
            ),
            opts=child,
        )
        self.limit_range = k8s.core.v1.LimitRange(
            f"{service.name}-limits",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="default-limits", namespace=metadata.namespace, labels=labels),
            spec=k8s.core.v1.LimitRangeSpecArgs(
                limits=[
                    k8s.core.v1.LimitRangeItemArgs(
                        type="Container", default=DEFAULT_LIMITS, default_request=DEFAULT_REQUESTS
                    )
                ]
            ),
            opts=child,
        )
        self.default_deny = k8s.networking.v1.NetworkPolicy(
            f"{service.name}-default-deny",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="default-deny", namespace=metadata.namespace, labels=labels),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(pod_selector={}, policy_types=["Ingress", "Egress"]),
            opts=child,
        )
        self.namespace = ns.metadata.name
        self.flows = NetworkFlows(service, environment, platform, self.namespace, child) if platform else None
        self.access = AccessRoles(service, environment, self.namespace, child) if service.access else None
        self.register_outputs({"namespace": self.namespace})
