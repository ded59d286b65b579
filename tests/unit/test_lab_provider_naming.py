"""The lab Kubernetes provider's names and ids: autonaming as upstream does it."""

from __future__ import annotations

import re

from lab_kubernetes_provider import naming

URN = "urn:pulumi:lab::govops::govops:platform:ServiceNamespace$kubernetes:apps/v1:Deployment::web"


def test_an_unnamed_new_object_is_autonamed_from_the_seed():
    named = naming.assign_name({"metadata": {"labels": {"a": "b"}}}, {}, URN, b"seed-1")
    name = named["metadata"]["name"]
    assert re.fullmatch(r"web-[0-9a-f]{8}", name)
    assert named["metadata"]["annotations"] == {"pulumi.com/autonamed": "true"}
    assert named["metadata"]["labels"] == {"a": "b"}
    again = naming.assign_name({"metadata": {}}, {}, URN, b"seed-1")
    assert again["metadata"]["name"] == name, "the same seed (preview, then update) gives the same name"
    assert naming.assign_name({"metadata": {}}, {}, URN, b"seed-2")["metadata"]["name"] != name


def test_an_autonamed_object_keeps_its_name():
    old = naming.assign_name({"metadata": {}}, {}, URN, b"seed-1")
    later = naming.assign_name({"metadata": {"labels": {"v": "2"}}}, old, URN, b"another seed")
    assert later["metadata"]["name"] == old["metadata"]["name"]
    assert naming.is_autonamed(later)


def test_a_given_name_is_never_replaced():
    given = {"metadata": {"name": "cfm"}}
    assert naming.assign_name(given, {}, URN, b"s") == given
    old = {"metadata": {"name": "cfm"}}
    assert naming.assign_name({"metadata": {}}, old, URN, b"s") == {"metadata": {}}, "not autonamed before: no name"


def test_ids_are_namespace_slash_name_or_the_name():
    assert naming.object_id({"metadata": {"name": "quota", "namespace": "cfm"}}) == "cfm/quota"
    assert naming.object_id({"metadata": {"name": "cfm"}}) == "cfm"
    assert naming.parse_id("cfm/quota") == ("cfm", "quota")
    assert naming.parse_id("cfm") == (None, "cfm")
