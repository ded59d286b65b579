"""Run the provider as the engine runs a plugin: serve on a free local port and print it."""

from __future__ import annotations

import sys
import threading
from concurrent import futures

import grpc
from pulumi.runtime.proto import provider_pb2_grpc

from .engine import Engine
from .provider import Provider
from .server import Servicer


def main(argv: list[str]) -> None:
    if "--version" in argv:
        from . import VERSION

        print(VERSION)
        return
    engine_address = next((arg for arg in argv if not arg.startswith("-")), None)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    provider_pb2_grpc.add_ResourceProviderServicer_to_server(Servicer(Provider(Engine(engine_address))), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop(0)


main(sys.argv[1:])
