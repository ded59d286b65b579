"""Stack configuration, read once into typed values with clear errors for missing or wrong ones."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

ENVIRONMENTS = ("lab", "staging", "prod")
DATA_CLASSIFICATIONS = ("public", "internal", "confidential")
NAME = re.compile(r"^[a-z]([-a-z0-9]{0,30}[a-z0-9])?$")
QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti)?$")


class ConfigError(ValueError):
    """A stack setting is missing or wrong; the message names it and says what was expected."""


@dataclass(frozen=True)
class Quota:
    cpu: str
    memory: str
    pods: int


@dataclass(frozen=True)
class Service:
    name: str
    data_classification: str
    quota: Quota


@dataclass(frozen=True)
class StackConfig:
    environment: str
    services: tuple[Service, ...]


def parse(raw: dict[str, Any]) -> StackConfig:
    """Check the `govops:*` settings of a stack (as plain data) and return them typed."""
    environment = raw.get("environment")
    if environment not in ENVIRONMENTS:
        raise ConfigError(f"govops:environment must be one of {', '.join(ENVIRONMENTS)}; got {environment!r}")
    services = raw.get("services")
    if not isinstance(services, list) or not services:
        raise ConfigError("govops:services must be a non-empty list of {name, dataClassification, quota}")
    parsed = tuple(_service(index, entry) for index, entry in enumerate(services))
    names = [s.name for s in parsed]
    if len(set(names)) != len(names):
        raise ConfigError(f"govops:services: names must be unique; got {names}")
    return StackConfig(environment=environment, services=parsed)


def _service(index: int, entry: Any) -> Service:
    where = f"govops:services[{index}]"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be a mapping; got {entry!r}")
    name = entry.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise ConfigError(f"{where}.name must be a DNS label (a-z, 0-9, -); got {name!r}")
    classification = entry.get("dataClassification")
    if classification not in DATA_CLASSIFICATIONS:
        raise ConfigError(
            f"{where}.dataClassification must be one of {', '.join(DATA_CLASSIFICATIONS)}; got {classification!r}"
        )
    quota = entry.get("quota")
    if not isinstance(quota, dict):
        raise ConfigError(f"{where}.quota must be a mapping with cpu, memory and pods")
    for key in ("cpu", "memory"):
        if not isinstance(quota.get(key), str) or not QUANTITY.match(quota[key]):
            raise ConfigError(
                f"{where}.quota.{key} must be a Kubernetes quantity such as '2' or '4Gi'; got {quota.get(key)!r}"
            )
    pods = quota.get("pods")
    if not isinstance(pods, int) or isinstance(pods, bool) or pods < 1:
        raise ConfigError(f"{where}.quota.pods must be a positive integer; got {pods!r}")
    return Service(name, classification, Quota(quota["cpu"], quota["memory"], pods))


def load() -> StackConfig:
    """Read the current stack's configuration (needs the Pulumi runtime)."""
    import pulumi

    config = pulumi.Config("govops")
    return parse({"environment": config.get("environment"), "services": config.get_object("services")})
