"""Property values as the engine sends them (protobuf Structs) and back: secrets, unknowns, numbers.

A secret arrives as {SIG: SECRET_SIG, "value": v} and is held here as Secret(v); a value not yet
known in a preview is the UNKNOWN string. Struct numbers are doubles, so replicas: 2 arrives as 2.0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format, struct_pb2

SIG = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


@dataclass(frozen=True)
class Secret:
    value: Any


def decode(struct: struct_pb2.Struct | None) -> dict:
    """A Struct from the engine as plain data, secrets as Secret, whole numbers as ints."""
    if struct is None:
        return {}
    return _decode(json_format.MessageToDict(struct))


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get(SIG) == SECRET_SIG:
            return Secret(_decode(value.get("value")))
        return {key: _decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def encode(value: dict) -> struct_pb2.Struct:
    """Plain data (with Secret and UNKNOWN) as a Struct for the engine."""
    struct = struct_pb2.Struct()
    struct.update(_encode(value))
    return struct


def _encode(value: Any) -> Any:
    if isinstance(value, Secret):
        return {SIG: SECRET_SIG, "value": _encode(value.value)}
    if isinstance(value, dict):
        return {key: _encode(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(item) for item in value]
    return value


def reveal(value: Any) -> Any:
    """The same data with every Secret replaced by what it holds (what the API server gets)."""
    if isinstance(value, Secret):
        return reveal(value.value)
    if isinstance(value, dict):
        return {key: reveal(item) for key, item in value.items()}
    if isinstance(value, list):
        return [reveal(item) for item in value]
    return value


def has_secret(value: Any) -> bool:
    if isinstance(value, Secret):
        return True
    if isinstance(value, dict):
        return any(has_secret(item) for item in value.values())
    if isinstance(value, list):
        return any(has_secret(item) for item in value)
    return False


def has_unknown(value: Any) -> bool:
    if value == UNKNOWN:
        return True
    if isinstance(value, Secret):
        return has_unknown(value.value)
    if isinstance(value, dict):
        return any(has_unknown(item) for item in value.values())
    if isinstance(value, list):
        return any(has_unknown(item) for item in value)
    return False


def mark_secrets(outputs: Any, inputs: Any) -> Any:
    """Outputs with the secretness of the inputs at the same places, as upstream does: maps are
    followed key by key, any other value holding a secret makes the whole output value secret;
    a Secret object's data and stringData are always secret."""
    if isinstance(outputs, Secret) or not isinstance(outputs, dict):
        return outputs
    marked = dict(outputs)
    if marked.get("kind") == "Secret" and marked.get("apiVersion") == "v1":
        for key in ("data", "stringData"):
            if key in marked and not isinstance(marked[key], Secret):
                marked[key] = Secret(marked[key])
    if isinstance(inputs, Secret):
        inputs = inputs.value
    if not isinstance(inputs, dict):
        return marked
    for key, value in inputs.items():
        if key not in marked or isinstance(marked[key], Secret):
            continue
        if isinstance(value, dict) and isinstance(marked[key], dict):
            marked[key] = mark_secrets(marked[key], value)
        elif has_secret(value):
            marked[key] = Secret(marked[key])
    return marked
