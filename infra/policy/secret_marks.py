"""Keep the engine's secret markers where a policy can see them.

The engine sends a resource's inputs with each secret marked, but pulumi_policy (1.21) unwraps the
markers before a validation runs (it keeps them only for remediations), so a policy cannot tell a
secret from plain text. install() swaps in a deserializer that turns every string inside a secret
into a SecretValue (a str, so every other policy reads it as before).
tests/unit/test_infra_policies.py runs the pinned pulumi_policy's analyzer with it installed.
"""

from __future__ import annotations

from typing import Any

import pulumi_policy.policy
from pulumi_policy.deserialize import SPECIAL_SECRET_SIG, SPECIAL_SIG_KEY, deserialize_properties


class SecretValue(str):
    """A string the engine sent as a secret."""


def mark(value: Any, secret: bool = False) -> Any:
    """`value` (as decoded from the engine's Struct) with the strings of its secrets marked."""
    if isinstance(value, dict):
        if value.get(SPECIAL_SIG_KEY) == SPECIAL_SECRET_SIG:
            return mark(value.get("value"), secret=True)
        return {key: mark(item, secret) for key, item in value.items()}
    if isinstance(value, list):
        return [mark(item, secret) for item in value]
    return SecretValue(value) if secret and isinstance(value, str) else value


def deserialize_keeping_secrets(props: dict[str, Any], proxy_secrets: bool = False) -> dict[str, Any]:
    return deserialize_properties(mark(props), proxy_secrets)


def install() -> None:
    pulumi_policy.policy.deserialize_properties = deserialize_keeping_secrets
