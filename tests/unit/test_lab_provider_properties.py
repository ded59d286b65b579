"""The lab Kubernetes provider's property values: numbers, secrets and unknowns on the wire."""

from __future__ import annotations

from google.protobuf import struct_pb2
from lab_kubernetes_provider.properties import (
    SECRET_SIG,
    SIG,
    UNKNOWN,
    Secret,
    decode,
    encode,
    has_unknown,
    mark_secrets,
    reveal,
)


def struct(value: dict) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(value)
    return message


def test_whole_floats_become_ints_and_others_stay():
    decoded = decode(struct({"spec": {"replicas": 2.0, "ratio": 0.5, "ports": [{"port": 8080.0}], "name": "2"}}))
    assert decoded == {"spec": {"replicas": 2, "ratio": 0.5, "ports": [{"port": 8080}], "name": "2"}}
    assert isinstance(decoded["spec"]["replicas"], int)


def test_secrets_round_trip_and_are_revealed_only_on_request():
    wire = {"data": {SIG: SECRET_SIG, "value": {"password": "aGVsbG8="}}, "kind": "Secret"}
    decoded = decode(struct(wire))
    assert decoded["data"] == Secret({"password": "aGVsbG8="})
    assert reveal(decoded)["data"] == {"password": "aGVsbG8="}
    assert decode(encode(decoded)) == decoded


def test_unknowns_are_found_anywhere():
    assert has_unknown({"metadata": {"namespace": UNKNOWN}})
    assert has_unknown({"items": [Secret(UNKNOWN)]})
    assert not has_unknown({"metadata": {"name": "cfm"}})


def test_outputs_keep_the_inputs_secrets_and_secret_objects_hide_their_data():
    inputs = {"metadata": {"annotations": {"token": Secret("t")}}, "spec": {"list": [Secret("x"), "y"]}}
    live = {"metadata": {"annotations": {"token": "t"}, "uid": "1"}, "spec": {"list": ["x", "y"]}, "status": {}}
    marked = mark_secrets(live, inputs)
    assert marked["metadata"]["annotations"]["token"] == Secret("t")
    assert marked["metadata"]["uid"] == "1"
    assert marked["spec"]["list"] == Secret(["x", "y"]), "a list holding a secret is secret as a whole"
    secret = mark_secrets({"apiVersion": "v1", "kind": "Secret", "data": {"a": "Yg=="}}, {})
    assert secret["data"] == Secret({"a": "Yg=="})
