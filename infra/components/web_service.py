"""A service's web tier: a Deployment hardened the way the restricted Pod Security Standard and
the policy pack ask (non-root, read-only root filesystem, no privilege escalation, no
capabilities, the runtime's seccomp profile), probed, sized, spread across nodes, with its image
pinned by digest; a Service, a PodDisruptionBudget, a HorizontalPodAutoscaler whose floor is the
stack's replicas (the Deployment starts with them; later the autoscaler sets the count), and an
Ingress with TLS from a named Secret."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
from config import Platform, Service

from components.labels import component_labels, selector

core, meta = k8s.core.v1, k8s.meta.v1
NAME = "web"
USER_ID = 10001  # any non-root id; the image must not need root
HOSTNAME = "kubernetes.io/hostname"


def pod_spec(service: Service, environment: str, env_from: list[core.EnvFromSourceArgs]) -> core.PodSpecArgs:
    web = service.web
    assert web
    http = core.HTTPGetActionArgs
    container = core.ContainerArgs(
        name=NAME,
        image=web.image,
        ports=[
            core.ContainerPortArgs(name="http", container_port=web.port, protocol="TCP"),
            core.ContainerPortArgs(name="metrics", container_port=web.metrics_port, protocol="TCP"),
        ],
        env=[
            core.EnvVarArgs(name="GOVOPS_SERVICE", value=service.name),
            core.EnvVarArgs(name="GOVOPS_ENVIRONMENT", value=environment),
        ],
        env_from=env_from,
        resources=core.ResourceRequirementsArgs(requests=web.resources.requests, limits=web.resources.limits),
        readiness_probe=core.ProbeArgs(
            http_get=http(path=web.readiness_path, port="http"), period_seconds=10, failure_threshold=3
        ),
        liveness_probe=core.ProbeArgs(
            http_get=http(path=web.liveness_path, port="http"),
            initial_delay_seconds=15,
            period_seconds=20,
            failure_threshold=3,
        ),
        security_context=core.SecurityContextArgs(
            run_as_non_root=True,
            allow_privilege_escalation=False,
            privileged=False,
            read_only_root_filesystem=True,
            capabilities=core.CapabilitiesArgs(drop=["ALL"]),
        ),
        # the root filesystem is read-only: scratch space only here
        volume_mounts=[core.VolumeMountArgs(name="tmp", mount_path="/tmp")],
    )
    return core.PodSpecArgs(
        service_account_name=NAME,
        automount_service_account_token=False,  # the application does not talk to the API
        security_context=core.PodSecurityContextArgs(
            run_as_non_root=True,
            run_as_user=USER_ID,
            run_as_group=USER_ID,
            fs_group=USER_ID,
            seccomp_profile=core.SeccompProfileArgs(type="RuntimeDefault"),
        ),
        containers=[container],
        volumes=[core.VolumeArgs(name="tmp", empty_dir=core.EmptyDirVolumeSourceArgs(size_limit="64Mi"))],
        # at most one pod more on any node than on another, counted per revision
        topology_spread_constraints=[
            core.TopologySpreadConstraintArgs(
                max_skew=1,
                topology_key=HOSTNAME,
                when_unsatisfiable="DoNotSchedule",
                label_selector=meta.LabelSelectorArgs(match_labels=selector(service, NAME)),
                match_label_keys=["pod-template-hash"],
            )
        ],
    )


class WebService(pulumi.ComponentResource):
    deployment: pulumi.Output[str]
    service: pulumi.Output[str]
    hostname: str

    def __init__(
        self,
        service: Service,
        environment: str,
        platform: Platform,
        namespace: pulumi.Input[str],
        env_from: list[core.EnvFromSourceArgs],
        annotations: dict[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("govops:platform:WebService", f"{service.name}-web", None, opts)
        web = service.web
        assert web, "WebService needs the service's web settings"
        child = pulumi.ResourceOptions(parent=self)
        labels = component_labels(service, environment, NAME)
        select = selector(service, NAME)

        def metadata(**extra) -> meta.ObjectMetaArgs:
            return meta.ObjectMetaArgs(name=NAME, namespace=namespace, labels=labels, **extra)

        account = core.ServiceAccount(
            f"{service.name}-web", metadata=metadata(), automount_service_account_token=False, opts=child
        )
        deployment = k8s.apps.v1.Deployment(
            f"{service.name}-web",
            metadata=metadata(annotations=annotations),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=web.replicas,
                selector=meta.LabelSelectorArgs(match_labels=select),
                strategy=k8s.apps.v1.DeploymentStrategyArgs(
                    type="RollingUpdate",
                    rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(max_unavailable=0, max_surge=1),
                ),
                revision_history_limit=5,
                template=core.PodTemplateSpecArgs(
                    metadata=meta.ObjectMetaArgs(labels=labels, annotations=annotations),
                    spec=pod_spec(service, environment, env_from),
                ),
            ),
            # The autoscaler owns the replica count once the Deployment exists (its floor is
            # `replicas`): applying ours again would conflict with it, or undo its scaling.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[account], ignore_changes=["spec.replicas"]),
        )
        # Scraped through the pods (prometheus.io/* on them); the Service carries only the SLOs,
        # so a discovery of Services too would not scrape every pod twice.
        slo_only = {key: value for key, value in annotations.items() if not key.startswith("prometheus.io/")}
        front = core.Service(
            f"{service.name}-web",
            metadata=metadata(annotations=slo_only),
            spec=core.ServiceSpecArgs(
                type=web.service_type,
                selector=select,
                ports=[
                    core.ServicePortArgs(name="http", port=80, target_port="http", protocol="TCP"),
                    core.ServicePortArgs(name="metrics", port=web.metrics_port, target_port="metrics", protocol="TCP"),
                ],
            ),
            opts=child,
        )
        k8s.policy.v1.PodDisruptionBudget(
            f"{service.name}-web",
            metadata=metadata(),
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                max_unavailable=1, selector=meta.LabelSelectorArgs(match_labels=select)
            ),
            opts=child,
        )
        autoscaling = k8s.autoscaling.v2
        k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{service.name}-web",
            metadata=metadata(),
            spec=autoscaling.HorizontalPodAutoscalerSpecArgs(
                scale_target_ref=autoscaling.CrossVersionObjectReferenceArgs(
                    api_version="apps/v1", kind="Deployment", name=NAME
                ),
                min_replicas=web.replicas,
                max_replicas=web.max_replicas,
                metrics=[
                    autoscaling.MetricSpecArgs(
                        type="Resource",
                        resource=autoscaling.ResourceMetricSourceArgs(
                            name="cpu",
                            target=autoscaling.MetricTargetArgs(
                                type="Utilization", average_utilization=web.cpu_utilization
                            ),
                        ),
                    )
                ],
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[deployment]),
        )
        networking = k8s.networking.v1
        backend = networking.IngressBackendArgs(
            service=networking.IngressServiceBackendArgs(name=NAME, port=networking.ServiceBackendPortArgs(name="http"))
        )
        networking.Ingress(
            f"{service.name}-web",
            metadata=metadata(),
            spec=networking.IngressSpecArgs(
                ingress_class_name=platform.ingress_class,
                tls=[networking.IngressTLSArgs(hosts=[web.hostname], secret_name=web.tls_secret)],
                rules=[
                    networking.IngressRuleArgs(
                        host=web.hostname,
                        http=networking.HTTPIngressRuleValueArgs(
                            paths=[networking.HTTPIngressPathArgs(path="/", path_type="Prefix", backend=backend)]
                        ),
                    )
                ],
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[front]),
        )
        self.deployment = deployment.metadata.name
        self.service = front.metadata.name
        self.hostname = web.hostname
        self.register_outputs({"deployment": self.deployment, "service": self.service})
