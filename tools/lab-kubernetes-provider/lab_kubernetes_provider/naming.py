"""Names, namespaces and ids of objects, as upstream gives them (metadata/naming.go)."""

from __future__ import annotations

import hashlib
import secrets

AUTONAMED = "pulumi.com/autonamed"


def urn_name(urn: str) -> str:
    """The resource's name in the program: the last `::` part of its URN."""
    return urn.rsplit("::", 1)[-1]


def autoname(urn: str, random_seed: bytes) -> str:
    """The resource name, a dash and 8 characters of [0-9a-f], derived from the engine's random seed
    for this resource, so a preview and the update that follows agree. (Upstream draws the 8 from
    a ChaCha stream seeded by SHA-256 of the seed; the suffixes differ, the form is the same.)"""
    suffix = hashlib.sha256(random_seed).hexdigest()[:8] if random_seed else secrets.token_hex(4)
    return f"{urn_name(urn)}-{suffix}"


def is_autonamed(obj: dict) -> bool:
    return (obj.get("metadata") or {}).get("annotations", {}).get(AUTONAMED) == "true"


def assign_name(news: dict, olds: dict, urn: str, random_seed: bytes) -> dict:
    """News with a name: autonamed when there are no old inputs and no metadata.name; an object
    autonamed before keeps its name while the program still gives none."""
    metadata = dict(news.get("metadata") or {})
    if metadata.get("name") or metadata.get("generateName"):
        return news
    if olds:
        if not is_autonamed(olds):
            return news
        name = olds["metadata"]["name"]
    else:
        name = autoname(urn, random_seed)
    metadata["name"] = name
    metadata["annotations"] = {**(metadata.get("annotations") or {}), AUTONAMED: "true"}
    return {**news, "metadata": metadata}


def object_id(obj: dict) -> str:
    """namespace/name, or the name alone for a cluster-scoped object (upstream's fqObjName)."""
    metadata = obj.get("metadata") or {}
    namespace = metadata.get("namespace")
    return f"{namespace}/{metadata['name']}" if namespace else metadata["name"]


def parse_id(resource_id: str) -> tuple[str | None, str]:
    namespace, _, name = resource_id.rpartition("/")
    return namespace or None, name


def describe(obj: dict) -> str:
    """How messages name an object: Kind namespace/name."""
    return f"{obj.get('kind', '?')} {object_id(obj)}"
