"""How a service's pods reach its database: through the HAProxy routers the Ansible roles run on
every db host (port 5000: the leader; 5001: the replicas), behind two selector-less Services,
db-rw and db-ro, whose EndpointSlices list the routers. Every router sends 5000 to whichever
member leads, so a failover needs no change here. The Secret `db` holds the application role's
connection settings (libpq's PG* variables and URLs), all of it a Pulumi secret."""

from __future__ import annotations

from urllib.parse import quote, urlencode

import pulumi
import pulumi_kubernetes as k8s
from config import Platform, Service

from components.labels import service_labels
from components.secret_data import secret_data

# EndpointSlices of a Service without a selector are ours to keep; the label tells the
# EndpointSlice controller so.
MANAGED_BY = {"endpointslice.kubernetes.io/managed-by": "pulumi.govops.gov"}


# libpq's timeouts for a client of the routers, as in the README's "Connecting to the databases":
# give up on a dead router after 2 s (libpq's least) and try the next, and end a session whose
# router died within 3 s (keepalives and tcp_user_timeout) instead of the kernel's minutes.
CLIENT_TIMEOUTS = {
    "connect_timeout": "2",
    "keepalives_idle": "2",
    "keepalives_interval": "1",
    "keepalives_count": "2",
    "tcp_user_timeout": "3000",
}


def connection_settings(service: Service, ports: tuple[int, int], password: str) -> dict[str, str]:
    """The Secret's content for a password (the Services' names resolve in the namespace)."""
    database = service.database
    assert database
    ns, (read_write, read_only) = service.name, ports

    def url(host: str, port: int) -> str:
        user, secret = quote(database.user, safe=""), quote(password, safe="")
        query = urlencode({"sslmode": database.ssl_mode, **CLIENT_TIMEOUTS})
        return f"postgresql://{user}:{secret}@{host}.{ns}.svc:{port}/{database.name}?{query}"

    return {
        "PGHOST": f"db-rw.{ns}.svc",
        "PGPORT": str(read_write),
        "PGDATABASE": database.name,
        "PGUSER": database.user,
        "PGPASSWORD": password,
        "PGSSLMODE": database.ssl_mode,
        "PGCONNECT_TIMEOUT": CLIENT_TIMEOUTS["connect_timeout"],
        "DATABASE_URL": url("db-rw", read_write),
        "DATABASE_READONLY_URL": url("db-ro", read_only),
    }


class DatabaseAccess(pulumi.ComponentResource):
    secret_name: pulumi.Output[str]
    read_write_service: pulumi.Output[str]
    read_only_service: pulumi.Output[str]

    def __init__(
        self,
        service: Service,
        environment: str,
        platform: Platform,
        namespace: pulumi.Input[str],
        password: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("govops:platform:DatabaseAccess", f"{service.name}-database", None, opts)
        assert service.database, "DatabaseAccess needs the service's database settings"
        child = pulumi.ResourceOptions(parent=self)
        labels = service_labels(service, environment)
        secret = k8s.core.v1.Secret(
            f"{service.name}-db",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="db", namespace=namespace, labels=labels),
            type="Opaque",
            data=pulumi.Output.secret(
                pulumi.Output.from_input(password).apply(
                    lambda p: secret_data(connection_settings(service, platform.router_ports, p))
                )
            ),
            opts=child,
        )
        names = {}
        # Kubernetes does not health-check these: a router that is down stays listed, and the
        # client's retry reaches another (every router reaches the leader).
        ready = k8s.discovery.v1.EndpointConditionsArgs(ready=True)
        read_write, read_only = platform.router_ports
        for name, port in (("db-rw", read_write), ("db-ro", read_only)):
            routed = k8s.core.v1.Service(
                f"{service.name}-{name}",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=namespace, labels=labels),
                spec=k8s.core.v1.ServiceSpecArgs(
                    type="ClusterIP",
                    ports=[k8s.core.v1.ServicePortArgs(name="postgres", port=port, target_port=port, protocol="TCP")],
                ),
                opts=child,
            )
            k8s.discovery.v1.EndpointSlice(
                f"{service.name}-{name}-routers",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=f"{name}-routers",
                    namespace=namespace,
                    labels={**labels, **MANAGED_BY, "kubernetes.io/service-name": name},
                ),
                address_type="IPv4",
                endpoints=[
                    k8s.discovery.v1.EndpointArgs(addresses=[address], conditions=ready)
                    for address in platform.database_routers
                ],
                ports=[k8s.discovery.v1.EndpointPortArgs(name="postgres", port=port, protocol="TCP")],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[routed]),
            )
            names[name] = routed.metadata.name
        self.secret_name = secret.metadata.name
        self.read_write_service = names["db-rw"]
        self.read_only_service = names["db-ro"]
        self.register_outputs(
            {
                "secret_name": self.secret_name,
                "read_write_service": self.read_write_service,
                "read_only_service": self.read_only_service,
            }
        )
