"""The gRPC face of the provider: the engine's ResourceProvider calls, translated to Provider's."""

from __future__ import annotations

import functools
import traceback

import grpc
from google.protobuf import any_pb2, empty_pb2
from google.rpc import status_pb2
from pulumi.runtime.proto import plugin_pb2
from pulumi.runtime.proto import provider_pb2 as pb
from pulumi.runtime.proto.provider_pb2_grpc import ResourceProviderServicer

from . import VERSION, kinds
from .properties import decode, encode
from .provider import PartialFailure, Provider, ProviderError

DIFF_KINDS = dict(pb.PropertyDiff.Kind.items())


class _Status(grpc.Status):
    def __init__(self, code: grpc.StatusCode, details: str, metadata: tuple) -> None:
        self.code, self.details, self.trailing_metadata = code, details, metadata


def _partial(context: grpc.ServicerContext, failure: PartialFailure) -> None:
    """Fail with ErrorResourceInitFailed, so the engine records the object that was written."""
    detail = pb.ErrorResourceInitFailed(
        id=failure.resource_id,
        properties=encode(failure.outputs),
        inputs=encode(failure.inputs),
        reasons=[str(failure)],
    )
    packed = any_pb2.Any()
    packed.Pack(detail)
    status = status_pb2.Status(code=grpc.StatusCode.UNKNOWN.value[0], message=str(failure), details=[packed])
    context.abort_with_status(
        _Status(grpc.StatusCode.UNKNOWN, str(failure), (("grpc-status-details-bin", status.SerializeToString()),))
    )


def _errors(method):
    """One clear message for a failure we expected; a traceback only for a bug of ours."""

    @functools.wraps(method)
    def wrapper(self, request, context):
        try:
            return method(self, request, context)
        except PartialFailure as failure:
            _partial(context, failure)
        except ProviderError as error:
            context.abort(grpc.StatusCode.UNKNOWN, str(error))
        except Exception:
            context.abort(grpc.StatusCode.INTERNAL, "lab Kubernetes provider bug:\n" + traceback.format_exc())

    return wrapper


class Servicer(ResourceProviderServicer):
    def __init__(self, provider: Provider) -> None:
        self.provider = provider

    def GetPluginInfo(self, request, context):
        return plugin_pb2.PluginInfo(version=VERSION)

    def CheckConfig(self, request, context):
        return pb.CheckResponse(inputs=request.news)

    @_errors
    def Configure(self, request, context):
        self.provider.configure(dict(request.variables))
        return pb.ConfigureResponse(acceptSecrets=True, supportsPreview=True)

    @_errors
    def Invoke(self, request, context):
        if request.tok in kinds.REFUSED_INVOKES:
            raise ProviderError(
                f"{request.tok} is not offered by the lab's Kubernetes provider (a stand-in for upstream "
                "pulumi-kubernetes): declare the objects as resources instead"
            )
        raise ProviderError(f"unknown Invoke {request.tok!r}")

    @_errors
    def Check(self, request, context):
        result = self.provider.check(request.urn, decode(request.olds), decode(request.news), request.randomSeed)
        failures = [pb.CheckFailure(property=prop, reason=reason) for prop, reason in result.failures]
        return pb.CheckResponse(inputs=encode(result.inputs), failures=failures)

    @_errors
    def Diff(self, request, context):
        result = self.provider.diff(
            decode(request.olds), decode(request.news), decode(request.old_inputs), list(request.ignoreChanges)
        )
        return pb.DiffResponse(
            changes=pb.DiffResponse.DIFF_SOME if result.changed else pb.DiffResponse.DIFF_NONE,
            replaces=result.replaces,
            deleteBeforeReplace=result.delete_before_replace,
            detailedDiff={
                path: pb.PropertyDiff(kind=DIFF_KINDS[kind], inputDiff=kind.startswith("DELETE"))
                for path, kind in result.detailed.items()
            },
            hasDetailedDiff=True,
        )

    @_errors
    def Create(self, request, context):
        resource_id, outputs = self.provider.create(
            request.urn, decode(request.properties), request.preview, request.timeout
        )
        return pb.CreateResponse(id=resource_id, properties=encode(outputs))

    @_errors
    def Read(self, request, context):
        found = self.provider.read(request.urn, request.id, decode(request.properties), decode(request.inputs))
        if found is None:
            return pb.ReadResponse(id="")
        resource_id, state, inputs = found
        return pb.ReadResponse(id=resource_id, properties=encode(state), inputs=encode(inputs))

    @_errors
    def Update(self, request, context):
        outputs = self.provider.update(
            request.urn,
            request.id,
            decode(request.olds),
            decode(request.news),
            request.preview,
            request.timeout,
            list(request.ignoreChanges),
        )
        return pb.UpdateResponse(properties=encode(outputs))

    @_errors
    def Delete(self, request, context):
        self.provider.delete(request.id, decode(request.properties), request.timeout)
        return empty_pb2.Empty()

    def Cancel(self, request, context):
        return empty_pb2.Empty()
