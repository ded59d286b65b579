"""Messages to the engine: warnings and status lines shown against a resource."""

from __future__ import annotations

import contextlib

import grpc
from pulumi.runtime.proto import engine_pb2, engine_pb2_grpc


class Engine:
    def __init__(self, address: str | None) -> None:
        self._stub = engine_pb2_grpc.EngineStub(grpc.insecure_channel(address)) if address else None

    def _log(self, severity, urn: str, message: str, ephemeral: bool = False) -> None:
        if self._stub is None:
            return
        # A message the engine cannot take must not fail the operation.
        with contextlib.suppress(grpc.RpcError):
            self._stub.Log(engine_pb2.LogRequest(severity=severity, message=message, urn=urn, ephemeral=ephemeral))

    def warning(self, urn: str, message: str) -> None:
        self._log(engine_pb2.WARNING, urn, message)

    def info(self, urn: str, message: str) -> None:
        self._log(engine_pb2.INFO, urn, message)

    def status(self, urn: str, message: str) -> None:
        self._log(engine_pb2.INFO, urn, message, ephemeral=True)
