"""Stack configuration, read once into typed values with clear errors for missing or wrong ones.

Every `govops:*` setting of a stack file is checked here before any resource is declared; an
error names the stack file and the key. Organisation rules that are not about a setting's shape
(images pinned by digest, exposed Services) are the policy pack's (infra/policy/), so a preview
reports them the same way whatever declared the object.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

ENVIRONMENTS = ("lab", "staging", "prod")
DATA_CLASSIFICATIONS = ("public", "internal", "confidential")
SSL_MODES = ("require", "verify-ca", "verify-full")
SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer")
NAME = re.compile(r"^[a-z]([-a-z0-9]{0,30}[a-z0-9])?$")
DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^[a-z0-9]([-a-z0-9_.]{0,61}[a-z0-9])?$")
QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti)?$")
SQL_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
CONFIG_KEY = re.compile(r"^[a-zA-Z][a-zA-Z0-9]*$")
PATH = re.compile(r"^/[-a-zA-Z0-9_./]*$")
EXPOSED = re.compile(r"^[-a-z0-9]+/[-a-z0-9]+$")

# Defaults that must match the Ansible roles' (tests/unit/test_infra_stacks.py keeps them in step).
ROUTER_PORTS = (5000, 5001)  # patroni_router_rw_port, patroni_router_ro_port
SENDSMS_PORT = 13013  # kannel_sendsms_port


class ConfigError(ValueError):
    """A stack setting is missing or wrong; the message names it and says what was expected."""


@dataclass(frozen=True)
class Quota:
    cpu: str
    memory: str
    pods: int


@dataclass(frozen=True)
class Resources:
    requests: dict[str, str]
    limits: dict[str, str]


@dataclass(frozen=True)
class Web:
    image: str
    replicas: int
    max_replicas: int
    cpu_utilization: int
    hostname: str
    tls_secret: str
    resources: Resources
    port: int = 8080
    metrics_port: int = 9090
    metrics_path: str = "/metrics"
    readiness_path: str = "/readyz"
    liveness_path: str = "/livez"
    service_type: str = "ClusterIP"


@dataclass(frozen=True)
class Slo:
    availability: float  # percent of successful requests over the window
    latency_ms: int  # the latency target...
    latency_percentile: int  # ...that this percentile of requests meets
    window_days: int


@dataclass(frozen=True)
class Database:
    name: str
    user: str
    password_key: str  # the stack's secret config key (govops:<key>) holding the user's password
    ssl_mode: str


@dataclass(frozen=True)
class Sms:
    username: str
    password_key: str  # the stack's secret config key (govops:<key>) holding the sendsms password
    # Where the gateways send delivery reports (<base>/dlr) and citizens' replies (<base>/mo): the
    # Kannel role's kannel_dlr_url and kannel_mo_url must start with it.
    callback_base_url: str


@dataclass(frozen=True)
class Access:
    deployers: tuple[str, ...]  # groups of the service's CI
    auditors: tuple[str, ...]  # groups that may read everything but Secrets


@dataclass(frozen=True)
class Service:
    name: str
    data_classification: str
    quota: Quota
    owner: str = "platform"
    access: Access | None = None
    web: Web | None = None
    slo: Slo | None = None
    database: Database | None = None
    sms: Sms | None = None


@dataclass(frozen=True)
class Platform:
    """What the services reach around the cluster; addresses are the Ansible inventory's."""

    ingress_namespace: str
    ingress_class: str
    dns_namespace: str
    database_routers: tuple[str, ...]
    sms_gateways: tuple[str, ...]
    monitoring_servers: tuple[str, ...]
    router_ports: tuple[int, int] = ROUTER_PORTS
    sendsms_port: int = SENDSMS_PORT


@dataclass(frozen=True)
class StackConfig:
    environment: str
    services: tuple[Service, ...]
    platform: Platform | None = None
    exposed_services: tuple[str, ...] = ()

    def secret_keys(self) -> tuple[str, ...]:
        """The secret config keys (without `govops:`) the stack's services need."""
        keys = [s.database.password_key for s in self.services if s.database]
        keys += [s.sms.password_key for s in self.services if s.sms]
        return tuple(keys)


class _Fields:
    """One mapping of the stack file, read key by key; what is left unread is a typo."""

    def __init__(self, value: Any, where: str, hint: str) -> None:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping ({hint}); got {value!r}")
        self.value, self.where, self.seen = value, where, set()

    def get(self, key: str, default: Any = None) -> Any:
        self.seen.add(key)
        return self.value.get(key, default)

    def has(self, key: str) -> bool:
        return key in self.value

    def string(self, key: str, pattern: re.Pattern, expected: str, default: str | None = None) -> str:
        value = self.get(key, default)
        if not isinstance(value, str) or not pattern.match(value):
            raise ConfigError(f"{self.where}.{key} must be {expected}; got {value!r}")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str | None = None) -> str:
        value = self.get(key, default)
        if value not in choices:
            raise ConfigError(f"{self.where}.{key} must be one of {', '.join(choices)}; got {value!r}")
        return value

    def integer(self, key: str, low: int, high: int, default: int | None = None) -> int:
        value = self.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ConfigError(f"{self.where}.{key} must be a whole number from {low} to {high}; got {value!r}")
        return value

    def number(self, key: str, low: float, high: float) -> float:
        value = self.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not low < value < high:
            raise ConfigError(f"{self.where}.{key} must be a number between {low} and {high}; got {value!r}")
        return float(value)

    def strings(self, key: str, check, expected: str) -> tuple[str, ...]:
        value = self.get(key)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and check(v) for v in value):
            raise ConfigError(f"{self.where}.{key} must be a non-empty list of {expected}; got {value!r}")
        return tuple(value)

    def mapping(self, key: str, hint: str) -> _Fields:
        return _Fields(self.get(key), f"{self.where}.{key}", hint)

    def done(self) -> None:
        unknown = sorted(set(self.value) - self.seen)
        if unknown:
            known = ", ".join(sorted(self.seen))
            raise ConfigError(f"{self.where}: unknown setting(s) {', '.join(unknown)}; known: {known}")


def parse(raw: dict[str, Any], source: str = "the stack file") -> StackConfig:
    """Check the `govops:*` settings of a stack (as plain data, keys without `govops:`) and return
    them typed. Errors name `source` (the stack file) and the key."""
    try:
        return _parse(raw)
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None


def _parse(raw: dict[str, Any]) -> StackConfig:
    environment = raw.get("environment")
    if environment not in ENVIRONMENTS:
        raise ConfigError(f"govops:environment must be one of {', '.join(ENVIRONMENTS)}; got {environment!r}")
    services = raw.get("services")
    if not isinstance(services, list) or not services:
        raise ConfigError("govops:services must be a non-empty list of {name, dataClassification, quota, ...}")
    parsed = tuple(_service(index, entry) for index, entry in enumerate(services))
    names = [s.name for s in parsed]
    if len(set(names)) != len(names):
        raise ConfigError(f"govops:services: names must be unique; got {names}")
    keys = StackConfig(environment, parsed).secret_keys()
    if len(set(keys)) != len(keys):
        raise ConfigError(f"govops:services: each passwordKey must name its own secret; got {list(keys)}")
    platform = _platform(raw["platform"]) if raw.get("platform") is not None else None
    if platform is None and any(s.web or s.database or s.sms for s in parsed):
        raise ConfigError("govops:platform is required when a service has web, database or sms settings")
    exposed = raw.get("exposedServices") or []
    if not isinstance(exposed, list) or not all(isinstance(e, str) and EXPOSED.match(e) for e in exposed):
        raise ConfigError(f"govops:exposedServices must be a list of '<namespace>/<service>'; got {exposed!r}")
    return StackConfig(environment, parsed, platform, tuple(exposed))


def _service(index: int, entry: Any) -> Service:
    fields = _Fields(entry, f"govops:services[{index}]", "name, owner, dataClassification, quota, ...")
    name = fields.string("name", NAME, "a DNS label (a-z, 0-9, -)")
    classification = fields.choice("dataClassification", DATA_CLASSIFICATIONS)
    quota = _quota(fields.mapping("quota", "cpu, memory and pods"))
    owner = fields.string("owner", LABEL_VALUE, "a label value naming the owning team (a-z, 0-9, -)", "platform")
    access = _access(fields.mapping("access", "deployers, auditors")) if fields.has("access") else None
    web = _web(fields.mapping("web", "image, replicas, hostname, ...")) if fields.has("web") else None
    slo = _slo(fields.mapping("slo", "availability, latencyMs, ...")) if fields.has("slo") else None
    database = _database(fields.mapping("database", "name, user, passwordKey")) if fields.has("database") else None
    sms = _sms(fields.mapping("sms", "username, passwordKey, callbackBaseUrl")) if fields.has("sms") else None
    fields.done()
    if web and not (access and slo):
        raise ConfigError(f"govops:services[{index}]: a service with web settings needs access and slo too")
    if web:
        _check_quota_fits(f"govops:services[{index}]", quota, web)
    return Service(name, classification, quota, owner, access, web, slo, database, sms)


def quantity(text: str) -> float:
    """A Kubernetes quantity as a number ('500m' -> 0.5, '1Gi' -> 2**30)."""
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    for unit, factor in units.items():
        if text.endswith(unit):
            return float(text.removesuffix(unit)) * factor
    return float(text)


def _check_quota_fits(where: str, quota: Quota, web: Web) -> None:
    """The most pods the web tier runs (maxReplicas, and one more during a rollout) fit the quota."""
    pods = web.max_replicas + 1
    for resource in ("cpu", "memory"):
        needed = pods * quantity(web.resources.limits[resource])
        if needed > quantity(getattr(quota, resource)):
            raise ConfigError(
                f"{where}.quota.{resource} ({getattr(quota, resource)}) is less than web.maxReplicas + 1 (a rollout's "
                f"extra pod) times web.resources.limits.{resource} ({pods} x {web.resources.limits[resource]}): "
                "raise the quota or lower maxReplicas or the limit"
            )
    if pods > quota.pods:
        raise ConfigError(f"{where}.quota.pods ({quota.pods}) is less than web.maxReplicas + 1 ({pods})")


def _quota(fields: _Fields) -> Quota:
    cpu = fields.string("cpu", QUANTITY, "a Kubernetes quantity such as '2' or '4Gi'")
    memory = fields.string("memory", QUANTITY, "a Kubernetes quantity such as '2' or '4Gi'")
    pods = fields.get("pods")
    if not isinstance(pods, int) or isinstance(pods, bool) or pods < 1:
        raise ConfigError(f"{fields.where}.pods must be a positive integer; got {pods!r}")
    fields.done()
    return Quota(cpu, memory, pods)


def _resources(fields: _Fields) -> Resources:
    both = {}
    for kind in ("requests", "limits"):
        amounts = fields.mapping(kind, "cpu and memory")
        quantity = "a Kubernetes quantity such as '250m' or '512Mi'"
        both[kind] = {key: amounts.string(key, QUANTITY, quantity) for key in ("cpu", "memory")}
        amounts.done()
    fields.done()
    return Resources(both["requests"], both["limits"])


def _web(fields: _Fields) -> Web:
    image = fields.get("image")
    if not isinstance(image, str) or not image or any(c.isspace() for c in image):
        expected = "an image reference (registry/name@sha256:<digest>)"
        raise ConfigError(f"{fields.where}.image must be {expected}; got {image!r}")
    replicas = fields.integer("replicas", 1, 100)
    web = Web(
        image=image,
        replicas=replicas,
        max_replicas=fields.integer("maxReplicas", replicas, 200, replicas),
        cpu_utilization=fields.integer("cpuUtilization", 1, 100, 70),
        hostname=fields.string("hostname", DNS_NAME, "a DNS name such as cfm.prod.govops.internal"),
        tls_secret=fields.string("tlsSecret", DNS_NAME, "the name of the TLS Secret for the hostname"),
        resources=_resources(fields.mapping("resources", "requests and limits, each with cpu and memory")),
        port=fields.integer("port", 1024, 65535, 8080),
        metrics_port=fields.integer("metricsPort", 1024, 65535, 9090),
        metrics_path=fields.string("metricsPath", PATH, "an HTTP path", "/metrics"),
        readiness_path=fields.string("readinessPath", PATH, "an HTTP path", "/readyz"),
        liveness_path=fields.string("livenessPath", PATH, "an HTTP path", "/livez"),
        service_type=fields.choice("serviceType", SERVICE_TYPES, "ClusterIP"),
    )
    fields.done()
    if web.port == web.metrics_port:
        raise ConfigError(f"{fields.where}.metricsPort must differ from port (metrics stay off the ingress path)")
    return web


def _slo(fields: _Fields) -> Slo:
    slo = Slo(
        availability=fields.number("availability", 0, 100),
        latency_ms=fields.integer("latencyMs", 1, 60000),
        latency_percentile=fields.integer("latencyPercentile", 50, 99, 95),
        window_days=fields.integer("windowDays", 1, 90, 30),
    )
    fields.done()
    return slo


def _access(fields: _Fields) -> Access:
    group = "group names"
    access = Access(fields.strings("deployers", bool, group), fields.strings("auditors", bool, group))
    fields.done()
    return access


def _database(fields: _Fields) -> Database:
    database = Database(
        name=fields.string("name", SQL_NAME, "a PostgreSQL database name"),
        user=fields.string("user", SQL_NAME, "the application role (patroni_databases' app_user)"),
        password_key=fields.string("passwordKey", CONFIG_KEY, "the secret config key holding the password"),
        ssl_mode=fields.choice("sslMode", SSL_MODES, "verify-full"),
    )
    fields.done()
    return database


def _sms(fields: _Fields) -> Sms:
    base = fields.get("callbackBaseUrl")
    parts = urlsplit(base) if isinstance(base, str) else None
    if not parts or parts.scheme not in ("http", "https") or not parts.hostname or parts.query or base.endswith("/"):
        raise ConfigError(
            f"{fields.where}.callbackBaseUrl must be an http(s) URL without query or trailing slash "
            f"(the gateways call <it>/dlr and <it>/mo); got {base!r}"
        )
    sms = Sms(
        username=fields.string("username", NAME, "the sendsms account (kannel_sendsms_users' username)"),
        password_key=fields.string("passwordKey", CONFIG_KEY, "the secret config key holding the password"),
        callback_base_url=base,
    )
    fields.done()
    return sms


def _platform(value: Any) -> Platform:
    fields = _Fields(value, "govops:platform", "ingressNamespace, databaseRouters, ...")

    def address(text: str) -> bool:
        try:
            return ipaddress.ip_address(text).version == 4
        except ValueError:
            return False

    addresses = "IPv4 addresses (the hosts' private_address)"
    platform = Platform(
        ingress_namespace=fields.string("ingressNamespace", NAME, "the ingress controller's namespace"),
        ingress_class=fields.string("ingressClassName", NAME, "the IngressClass to use"),
        dns_namespace=fields.string("dnsNamespace", NAME, "the cluster DNS's namespace", "kube-system"),
        database_routers=fields.strings("databaseRouters", address, addresses),
        sms_gateways=fields.strings("smsGateways", address, addresses),
        monitoring_servers=fields.strings("monitoringServers", address, addresses),
        router_ports=(
            fields.integer("routerReadWritePort", 1, 65535, ROUTER_PORTS[0]),
            fields.integer("routerReadOnlyPort", 1, 65535, ROUTER_PORTS[1]),
        ),
        sendsms_port=fields.integer("sendsmsPort", 1, 65535, SENDSMS_PORT),
    )
    fields.done()
    return platform


def check_secret(key: str, value: str | None, is_secret: bool, source: str) -> str:
    """A secret setting's value; missing or given as plain text is refused."""
    command = f"pulumi config set --secret govops:{key}"
    if value is None:
        raise ConfigError(
            f"{source}: govops:{key} is missing: set it with `{command}` (the stack's secrets provider encrypts it)"
        )
    if not is_secret:
        raise ConfigError(
            f"{source}: govops:{key} is plain text; a password must be a Pulumi secret: remove it and set it "
            f"with `{command}`"
        )
    return value


def stack_source(stack: str) -> str:
    """The stack file as the operator knows it (tools/pulumi_stack.py runs the engine on a copy)."""
    return os.environ.get("GOVOPS_STACK_SOURCE") or f"stacks/Pulumi.{stack}.yaml"


def load() -> tuple[StackConfig, dict[str, Any]]:
    """Read the current stack's configuration (needs the Pulumi runtime): the typed settings, and
    each secret setting as a secret Output by its key."""
    import pulumi

    config = pulumi.Config("govops")
    source = stack_source(pulumi.get_stack())
    keys = ("environment", "services", "platform", "exposedServices")
    raw = {key: config.get_object(key) if key != "environment" else config.get(key) for key in keys}
    stack = parse(raw, source)
    secrets = {}
    for key in stack.secret_keys():
        full_key = f"govops:{key}"  # read raw: Config.get would warn about reading a secret
        value = pulumi.runtime.get_config(full_key)
        secrets[key] = pulumi.Output.secret(check_secret(key, value, pulumi.runtime.is_config_secret(full_key), source))
    return stack, secrets
