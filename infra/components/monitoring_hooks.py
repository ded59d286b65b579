"""What the monitoring tier finds a service by, and what it holds the service to.

There is no Prometheus operator (no ServiceMonitor or PrometheusRule kinds): Prometheus discovers
pods and Services through the Kubernetes API and keeps those annotated prometheus.io/scrape=true,
scraping prometheus.io/port and prometheus.io/path; the govops.gov/ labels become the series'
labels. The SLOs are data: annotations on the workload and a ConfigMap `slo` the rules and
dashboards can read.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
from config import Service, Slo, Web

from components.labels import service_labels

SLO_PREFIX = "govops.gov/slo-"


def scrape_annotations(web: Web) -> dict[str, str]:
    return {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(web.metrics_port),
        "prometheus.io/path": web.metrics_path,
    }


def slo_data(slo: Slo) -> dict[str, str]:
    return {
        "availability-target": f"{slo.availability:g}",
        "latency-target-ms": str(slo.latency_ms),
        "latency-percentile": str(slo.latency_percentile),
        "window": f"{slo.window_days}d",
    }


class MonitoringHooks(pulumi.ComponentResource):
    slo_config_map: pulumi.Output[str]
    annotations: dict[str, str]  # for the pods and the Service: scrape settings and the SLOs

    def __init__(
        self,
        service: Service,
        environment: str,
        namespace: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("govops:platform:MonitoringHooks", f"{service.name}-monitoring", None, opts)
        assert service.web and service.slo, "MonitoringHooks needs the service's web and slo settings"
        data = slo_data(service.slo)
        labels = service_labels(service, environment)
        config_map = k8s.core.v1.ConfigMap(
            f"{service.name}-slo",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="slo", namespace=namespace, labels=labels),
            data=data,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.annotations = {
            **scrape_annotations(service.web),
            **{SLO_PREFIX + key: value for key, value in data.items()},
        }
        self.slo_config_map = config_map.metadata.name
        self.register_outputs({"slo_config_map": self.slo_config_map})
