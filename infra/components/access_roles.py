"""Who may do what in a service's namespace: a deployer Role for the service's CI (roll out
workloads and their configuration, read what they do; no Secrets, no RBAC, no network policies,
which stay with this program) and a read-only auditor Role (everything but Secrets), each bound
to the groups the stack file names."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
from config import Service

from components.labels import service_labels

READ = ["get", "list", "watch"]
WRITE = [*READ, "create", "update", "patch"]
rbac = k8s.rbac.v1
RBAC_GROUP = "rbac.authorization.k8s.io"

DEPLOYER_RULES = [
    rbac.PolicyRuleArgs(api_groups=["apps"], resources=["deployments", "deployments/scale"], verbs=WRITE),
    rbac.PolicyRuleArgs(api_groups=["apps"], resources=["replicasets"], verbs=READ),
    rbac.PolicyRuleArgs(api_groups=[""], resources=["services", "configmaps"], verbs=WRITE),
    rbac.PolicyRuleArgs(api_groups=[""], resources=["pods", "pods/log", "events", "endpoints"], verbs=READ),
    rbac.PolicyRuleArgs(api_groups=["autoscaling"], resources=["horizontalpodautoscalers"], verbs=WRITE),
    rbac.PolicyRuleArgs(api_groups=["policy"], resources=["poddisruptionbudgets"], verbs=WRITE),
    rbac.PolicyRuleArgs(api_groups=["networking.k8s.io"], resources=["ingresses"], verbs=WRITE),
    rbac.PolicyRuleArgs(api_groups=["discovery.k8s.io"], resources=["endpointslices"], verbs=READ),
]
# Secrets are left out: reading one means reading its values.
AUDITOR_RULES = [
    rbac.PolicyRuleArgs(
        api_groups=[""],
        resources=[
            "pods",
            "services",
            "endpoints",
            "configmaps",
            "events",
            "serviceaccounts",
            "resourcequotas",
            "limitranges",
            "persistentvolumeclaims",
        ],
        verbs=READ,
    ),
    rbac.PolicyRuleArgs(api_groups=["apps"], resources=["deployments", "replicasets", "statefulsets"], verbs=READ),
    rbac.PolicyRuleArgs(api_groups=["batch"], resources=["jobs", "cronjobs"], verbs=READ),
    rbac.PolicyRuleArgs(api_groups=["autoscaling"], resources=["horizontalpodautoscalers"], verbs=READ),
    rbac.PolicyRuleArgs(api_groups=["policy"], resources=["poddisruptionbudgets"], verbs=READ),
    rbac.PolicyRuleArgs(api_groups=["networking.k8s.io"], resources=["ingresses", "networkpolicies"], verbs=READ),
    rbac.PolicyRuleArgs(api_groups=["discovery.k8s.io"], resources=["endpointslices"], verbs=READ),
    rbac.PolicyRuleArgs(api_groups=["rbac.authorization.k8s.io"], resources=["roles", "rolebindings"], verbs=READ),
]


class AccessRoles(pulumi.ComponentResource):
    deployer_role: pulumi.Output[str]
    auditor_role: pulumi.Output[str]

    def __init__(
        self,
        service: Service,
        environment: str,
        namespace: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("govops:platform:AccessRoles", f"{service.name}-access", None, opts)
        assert service.access, "AccessRoles needs the service's access settings"
        labels = service_labels(service, environment)
        groups = {"deployer": service.access.deployers, "auditor": service.access.auditors}
        rules = {"deployer": DEPLOYER_RULES, "auditor": AUDITOR_RULES}
        names = {}
        for role, members in groups.items():
            metadata = k8s.meta.v1.ObjectMetaArgs(name=role, namespace=namespace, labels=labels)
            created = rbac.Role(
                f"{service.name}-{role}", metadata=metadata, rules=rules[role], opts=pulumi.ResourceOptions(parent=self)
            )
            rbac.RoleBinding(
                f"{service.name}-{role}",
                metadata=metadata,
                role_ref=rbac.RoleRefArgs(api_group=RBAC_GROUP, kind="Role", name=role),
                subjects=[rbac.SubjectArgs(kind="Group", api_group=RBAC_GROUP, name=group) for group in members],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[created]),
            )
            names[role] = created.metadata.name
        self.deployer_role = names["deployer"]
        self.auditor_role = names["auditor"]
        self.register_outputs({"deployer_role": self.deployer_role, "auditor_role": self.auditor_role})
