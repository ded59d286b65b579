"""The rules of rules.py as pulumi_policy policies, every one mandatory (a violation stops the
preview or update and names the object and what to change)."""

from __future__ import annotations

import json

import pulumi
from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy
from rules import RULES, Allowances, Rule


def allowances() -> Allowances:
    """From the stack's config, which the engine passes to the pack (PULUMI_CONFIG)."""
    raw = pulumi.runtime.get_config("govops:exposedServices")
    exposed = json.loads(raw) if isinstance(raw, str) else raw
    return Allowances(exposed_services=frozenset(exposed or ()))


def policy(name: str, description: str, rule: Rule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in rule(args.resource_type, args.props, allowances()):
            report_violation(message)

    return ResourceValidationPolicy(name, description, validate, EnforcementLevel.MANDATORY)


def policies() -> list[ResourceValidationPolicy]:
    return [policy(name, description, rule) for name, (description, rule) in RULES.items()]
