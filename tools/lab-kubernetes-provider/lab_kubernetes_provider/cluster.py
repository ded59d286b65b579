"""The API server: one connection from the provider's settings, discovery, and the calls the
provider makes (server-side apply, get, delete), with errors turned into one clear sentence."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

import urllib3
from kubernetes import client, config
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ApiException, ResourceNotFoundError

from . import FIELD_MANAGER
from .settings import Settings

# Connect and read timeouts (s) of each request: an unreachable server fails in seconds.
REQUEST_TIMEOUT = (5, 30)


class ClusterError(RuntimeError):
    """The API server could not be used or refused a request; the message says which and why."""


class UnknownKind(ClusterError):
    """The API server serves no such apiVersion/kind."""


def api_message(error: ApiException) -> str:
    """The API server's own message of a refused request (its Status), else the HTTP reason."""
    try:
        return json.loads(error.body)["message"]
    except (TypeError, ValueError, KeyError):
        return f"{error.status} {error.reason}"


class Cluster:
    def __init__(self, settings: Settings) -> None:
        if settings.kubeconfig is None:
            raise ClusterError(
                f"no kubeconfig: set kubernetes:kubeconfig (a path or the contents), or KUBECONFIG "
                f"({settings.kubeconfig_source} does not exist)"
            )
        configuration = client.Configuration()
        try:
            config.load_kube_config_from_dict(
                settings.kubeconfig, context=settings.context, client_configuration=configuration
            )
        except (config.ConfigException, ValueError, KeyError, TypeError) as error:
            raise ClusterError(f"kubeconfig {settings.kubeconfig_source}: {error}") from error
        configuration.retries = urllib3.Retry(total=1, read=0, status=0)
        self.server = configuration.host
        self.source = settings.kubeconfig_source
        self.api = client.ApiClient(configuration)
        try:
            version = client.VersionApi(self.api).get_code(_request_timeout=REQUEST_TIMEOUT)
        except ApiException as error:
            raise ClusterError(
                f"the Kubernetes API server {self.server} (kubeconfig {self.source}) refused us: {api_message(error)}"
            ) from error
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise ClusterError(
                f"cannot reach the Kubernetes API server {self.server} (kubeconfig {self.source}): {_reason(error)}"
            ) from error
        self.version = version.git_version
        # Discovery is cached per server in a file of our own, refreshed when a kind is not found.
        key = hashlib.sha256(self.server.encode()).hexdigest()[:12]
        cache = Path(tempfile.gettempdir()) / f"govops-lab-k8s-discovery-{key}.json"
        self.dynamic = DynamicClient(self.api, cache_file=str(cache))

    def resource(self, api_version: str, kind: str):
        """The API resource serving apiVersion/kind; UnknownKind when discovery has none."""
        try:
            return self.dynamic.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError as error:
            raise UnknownKind(
                f"the Kubernetes API server {self.server} serves no {kind} in {api_version} "
                f"(`kubectl api-resources` lists what it serves)"
            ) from error

    def namespaced(self, api_version: str, kind: str) -> bool:
        return bool(self.resource(api_version, kind).namespaced)

    def apply(self, obj: dict, dry_run: bool, force: bool) -> dict:
        """Server-side apply of obj with our field manager; dry_run asks the server to validate and
        default it without storing anything."""
        resource = self.resource(obj["apiVersion"], obj["kind"])
        extra = {"dry_run": "All"} if dry_run else {}
        return self._call(
            self.dynamic.server_side_apply,
            resource,
            body=obj,
            name=obj["metadata"]["name"],
            namespace=obj["metadata"].get("namespace") if resource.namespaced else None,
            field_manager=FIELD_MANAGER,
            force_conflicts=force,
            **extra,
        )

    def get(self, api_version: str, kind: str, name: str, namespace: str | None) -> dict | None:
        """The live object, or None when there is none."""
        resource = self.resource(api_version, kind)
        try:
            return self._call(
                self.dynamic.get, resource, name=name, namespace=namespace if resource.namespaced else None
            )
        except NotFound:
            return None

    def list(self, api_version: str, kind: str, namespace: str | None) -> list[dict]:
        resource = self.resource(api_version, kind)
        return self._call(self.dynamic.get, resource, namespace=namespace).get("items") or []

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None, propagation: str) -> bool:
        """Delete the object; False when it was already gone."""
        resource = self.resource(api_version, kind)
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
        try:
            self._call(
                self.dynamic.delete,
                resource,
                name=name,
                namespace=namespace if resource.namespaced else None,
                body=body,
            )
        except NotFound:
            return False
        return True

    def _call(self, method, *args, **kwargs) -> dict:
        try:
            return method(*args, _request_timeout=REQUEST_TIMEOUT, **kwargs).to_dict()
        except ApiException as error:
            if error.status == 404:
                raise NotFound(api_message(error)) from error
            message = api_message(error)
            if error.status == 409 and "conflict" in message.lower():  # upstream's advice on SSA conflicts
                message += (
                    ". Another field manager owns these fields: set the annotation pulumi.com/patchForce: "
                    '"true" (or kubernetes:enablePatchForce) to take them over'
                )
            raise Refused(error.status, message) from error
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise ClusterError(f"cannot reach the Kubernetes API server {self.server}: {_reason(error)}") from error


class NotFound(ClusterError):
    pass


class Refused(ClusterError):
    """The API server answered with an error status; the message is its own."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _reason(error: BaseException) -> str:
    """The innermost cause of a connection error (urllib3 wraps it in retries)."""
    reason = getattr(error, "reason", None)
    return str(reason or error)
