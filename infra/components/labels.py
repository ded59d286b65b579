"""The labels every object of a service carries: who owns it, what it is, where it runs and how
sensitive its data is. The policy pack requires the govops.gov/ ones (REQUIRED)."""

from __future__ import annotations

from config import Service

OWNER = "govops.gov/owner"
SERVICE = "govops.gov/service"
ENVIRONMENT = "govops.gov/environment"
DATA_CLASSIFICATION = "govops.gov/data-classification"
REQUIRED = (OWNER, SERVICE, ENVIRONMENT, DATA_CLASSIFICATION)


def service_labels(service: Service, environment: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/part-of": service.name,
        "app.kubernetes.io/managed-by": "pulumi",
        OWNER: service.owner,
        SERVICE: service.name,
        ENVIRONMENT: environment,
        DATA_CLASSIFICATION: service.data_classification,
    }


def component_labels(service: Service, environment: str, component: str) -> dict[str, str]:
    """A service's labels plus the component's name (e.g. web), as pods are selected by."""
    return {**service_labels(service, environment), "app.kubernetes.io/name": component}


def selector(service: Service, component: str) -> dict[str, str]:
    """The labels that pick a component's pods; stable, as a Deployment's selector cannot change."""
    return {"app.kubernetes.io/part-of": service.name, "app.kubernetes.io/name": component}
