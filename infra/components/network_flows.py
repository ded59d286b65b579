"""The traffic a service needs on top of its namespace's default-deny, one NetworkPolicy per flow
so each can be read (and audited) on its own:

- in: the ingress controller to the web port; the monitoring servers to the metrics port;
- out: cluster DNS; the database routers (HAProxy on the db hosts, read-write and read-only
  ports); for a service that sends SMS, the gateways' sendsms port.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
from config import Platform, Service

from components.labels import selector, service_labels

NAMESPACE_NAME = "kubernetes.io/metadata.name"  # set by the API server on every namespace
DNS_PODS = {"k8s-app": "kube-dns"}  # the label CoreDNS and kube-dns carry in every distribution

np = k8s.networking.v1


def _hosts(addresses: tuple[str, ...]) -> list[np.NetworkPolicyPeerArgs]:
    return [np.NetworkPolicyPeerArgs(ip_block=np.IPBlockArgs(cidr=f"{address}/32")) for address in addresses]


def _tcp(*ports: int) -> list[np.NetworkPolicyPortArgs]:
    return [np.NetworkPolicyPortArgs(protocol="TCP", port=port) for port in ports]


class NetworkFlows(pulumi.ComponentResource):
    policies: list[str]

    def __init__(
        self,
        service: Service,
        environment: str,
        platform: Platform,
        namespace: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("govops:platform:NetworkFlows", f"{service.name}-flows", None, opts)
        labels = service_labels(service, environment)
        every_pod = k8s.meta.v1.LabelSelectorArgs()
        self.policies = []

        def allow(name: str, pods: k8s.meta.v1.LabelSelectorArgs, ingress=None, egress=None) -> None:
            k8s.networking.v1.NetworkPolicy(
                f"{service.name}-{name}",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=namespace, labels=labels),
                spec=np.NetworkPolicySpecArgs(
                    pod_selector=pods,
                    policy_types=["Ingress"] if ingress else ["Egress"],
                    ingress=ingress,
                    egress=egress,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.policies.append(name)

        if service.web:
            web_pods = k8s.meta.v1.LabelSelectorArgs(match_labels=selector(service, "web"))
            controller_namespace = {NAMESPACE_NAME: platform.ingress_namespace}
            controller = np.NetworkPolicyPeerArgs(
                namespace_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=controller_namespace)
            )
            allow(
                "allow-from-ingress-controller",
                web_pods,
                ingress=[np.NetworkPolicyIngressRuleArgs(from_=[controller], ports=_tcp(service.web.port))],
            )
            allow(
                "allow-from-monitoring",
                web_pods,
                ingress=[
                    np.NetworkPolicyIngressRuleArgs(
                        from_=_hosts(platform.monitoring_servers), ports=_tcp(service.web.metrics_port)
                    )
                ],
            )
        dns = np.NetworkPolicyPeerArgs(
            namespace_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={NAMESPACE_NAME: platform.dns_namespace}),
            pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=DNS_PODS),
        )
        dns_ports = [np.NetworkPolicyPortArgs(protocol=protocol, port=53) for protocol in ("UDP", "TCP")]
        allow("allow-dns", every_pod, egress=[np.NetworkPolicyEgressRuleArgs(to=[dns], ports=dns_ports)])
        if service.database:
            routers = np.NetworkPolicyEgressRuleArgs(
                to=_hosts(platform.database_routers), ports=_tcp(*platform.router_ports)
            )
            allow("allow-database-routers", every_pod, egress=[routers])
        if service.sms:
            gateways = np.NetworkPolicyEgressRuleArgs(
                to=_hosts(platform.sms_gateways), ports=_tcp(platform.sendsms_port)
            )
            allow("allow-sms-gateways", every_pod, egress=[gateways])
        self.register_outputs({"policies": self.policies})
