"""The provider's operations on plain data (the gRPC glue is in server.py).

State ("outputs") of a resource is the live object as the API server returned it, plus the
inputs that produced it under `__inputs` and our field manager under `__fieldManager`, the shape
upstream checkpoints. Ids are namespace/name, or name for cluster-scoped kinds.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import FIELD_MANAGER, diff, kinds, naming, readiness, render
from .cluster import Cluster, ClusterError, NotFound, UnknownKind
from .engine import Engine
from .properties import has_secret, has_unknown, mark_secrets, reveal
from .settings import Settings, from_variables

READ_ONLY_METADATA = ("creationTimestamp", "deletionGracePeriodSeconds", "deletionTimestamp", "generation")
READ_ONLY_METADATA += ("managedFields", "resourceVersion", "uid", "selfLink")
PROPAGATION = {"orphan": "Orphan", "background": "Background"}  # else Foreground, upstream's default


class ProviderError(RuntimeError):
    """An operation failed; the message is for the person running Pulumi."""


class PartialFailure(ProviderError):
    """The object was written but did not become ready: the engine records `outputs` anyway."""

    def __init__(self, message: str, resource_id: str, outputs: dict, inputs: dict) -> None:
        super().__init__(message)
        self.resource_id, self.outputs, self.inputs = resource_id, outputs, inputs


@dataclass
class CheckResult:
    inputs: dict
    failures: list[tuple[str, str]]  # (property, reason)


def checkpoint(inputs: dict, live: dict) -> dict:
    """The state upstream stores: the live object with the inputs' secretness, and the inputs."""
    return {**mark_secrets(live, inputs), "__inputs": inputs, "__fieldManager": FIELD_MANAGER}


def split_state(state: dict) -> tuple[dict, dict]:
    """(old inputs, old live object) of a resource's state."""
    return state.get("__inputs") or {}, {key: value for key, value in state.items() if not key.startswith("__")}


def without_read_only(obj: dict) -> dict:
    metadata = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in READ_ONLY_METADATA}
    return {**obj, "metadata": metadata}


def without_nulls(value):
    """The value without null map entries: to the API server a null field is an absent one, and
    the live object never shows it, so keeping it would be a diff forever."""
    if isinstance(value, dict):
        return {key: without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [without_nulls(item) for item in value]
    return value


class Provider:
    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = engine or Engine(None)
        self.settings: Settings | None = None
        self._cluster: Cluster | None = None
        self._declared_crds: dict[tuple[str, str], bool] = {}  # (apiVersion, kind) -> namespaced

    # ---- configuration and kinds -----------------------------------------------------------

    def configure(self, variables: dict[str, str]) -> None:
        """Settings, and in cluster mode a connection to the API server: a wrong kubeconfig or an
        unreachable server fails here, once, before any resource is touched."""
        try:
            self.settings = from_variables(variables)
            self._cluster = None if self.settings.render else Cluster(self.settings)
        except (ValueError, ClusterError) as error:
            raise ProviderError(str(error)) from error

    @property
    def cluster(self) -> Cluster:
        if self._cluster is None:
            raise ProviderError("no Kubernetes API server in render mode (renderYamlToDirectory)")
        return self._cluster

    def namespaced(self, api_version: str, kind: str) -> bool:
        """Whether the kind lives in namespaces; UnknownKind when the API server has no such kind
        (a kind declared by a CustomResourceDefinition of this program counts as known)."""
        if (api_version, kind) in self._declared_crds:
            return self._declared_crds[(api_version, kind)]
        if self.settings.render:
            return (api_version, kind) not in kinds.CLUSTER_SCOPED
        return self.cluster.namespaced(api_version, kind)

    def _remember_crd(self, crd: dict) -> None:
        spec = crd.get("spec") or {}
        for version in spec.get("versions") or []:
            key = (f"{spec.get('group')}/{version.get('name')}", (spec.get("names") or {}).get("kind"))
            self._declared_crds[key] = spec.get("scope") == "Namespaced"

    # ---- check and diff -------------------------------------------------------------------

    def check(self, urn: str, olds: dict, news: dict, random_seed: bytes) -> CheckResult:
        news = naming.assign_name(without_read_only(without_nulls(news)), olds, urn, random_seed)
        api_version, kind = kinds.gvk(news)
        if not api_version or not kind:
            api_version, kind = kinds.from_type_token(kinds.type_token(urn))
            news = {"apiVersion": api_version, "kind": kind, **news}
        if kinds.is_crd(news):
            self._remember_crd(reveal(news))
        try:
            namespaced = self.namespaced(api_version, kind)
        except UnknownKind as error:
            return CheckResult(news, [("kind", str(error))])
        if namespaced and not news["metadata"].get("namespace"):
            news = {**news, "metadata": {**news["metadata"], "namespace": self.settings.namespace}}
        if self.settings.render and has_secret(news):
            self.engine.warning(urn, "rendered YAML will contain a secret value in plaintext")
        return CheckResult(news, [])

    def diff(self, state: dict, news: dict, old_inputs: dict, ignore_changes: list[str]) -> diff.Result:
        inputs, live = split_state(reveal(state))
        api_version, kind = kinds.gvk(news)
        try:
            namespaced = self.namespaced(api_version, kind)
        except UnknownKind:
            namespaced = True  # as upstream: probably a custom resource whose CRD comes later
        return diff.compute(
            inputs or reveal(old_inputs),
            live,
            reveal(news),
            namespaced,
            ignore_changes,
            self.settings.secret_mutable,
            self.settings.configmap_mutable,
        )

    # ---- create, read, update, delete ----------------------------------------------------

    def create(self, urn: str, inputs: dict, preview: bool, timeout: float) -> tuple[str, dict]:
        obj = reveal(inputs)
        if preview and (self.settings.render or has_unknown(obj)):
            return "", inputs  # nothing to ask a server yet: the engine shows the inputs
        if self.settings.render:
            path = render.write(obj, self.settings.render_dir)
            if has_secret(inputs):
                self.engine.warning(urn, f"rendered file {path} contains a secret value in plaintext")
            return naming.object_id(obj), checkpoint(inputs, obj)
        if has_unknown(obj):
            raise ProviderError(f"{naming.describe(obj)}: some inputs are still unknown at create")
        if preview:
            try:
                live = self.cluster.apply(obj, dry_run=True, force=True)
            except NotFound:
                return "", inputs  # its namespace does not exist yet: it will be created first
            except ClusterError as error:
                raise ProviderError(f"{naming.describe(obj)}: the API server refused it: {error}") from error
            live.pop("status", None)
            return "", checkpoint(inputs, live)
        metadata = obj["metadata"]
        existing = self._get(obj, metadata["name"], metadata.get("namespace"))
        if existing is not None and not self.settings.upsert_existing:
            raise ProviderError(
                f"{naming.describe(obj)} already exists in the cluster and Pulumi does not manage it: "
                "import it (pulumi import), delete it, or set kubernetes:upsertExistingObjects"
            )
        live = self._apply(obj, force=self._force(obj, None))
        resource_id = naming.object_id(live)
        return resource_id, self._await(urn, inputs, live, timeout, resource_id)

    def read(self, urn: str, resource_id: str, state: dict, inputs: dict) -> tuple[str, dict, dict] | None:
        """(id, state, inputs) of the live object, None when it is gone (refresh drops it)."""
        old_inputs = inputs or state.get("__inputs") or {}
        if self.settings.render:
            return resource_id, state, old_inputs
        namespace, name = naming.parse_id(resource_id)
        api_version, kind = kinds.gvk(reveal(old_inputs)) if old_inputs.get("kind") else kinds.gvk(state)
        if not kind:
            api_version, kind = kinds.from_type_token(kinds.type_token(urn))
        try:
            live = self.cluster.get(api_version, kind, name, namespace)
        except UnknownKind:
            return None  # its kind is gone (a CRD deleted): so is the object, as upstream sees it
        except ClusterError as error:
            raise ProviderError(f"{kind} {resource_id}: cannot read it: {error}") from error
        if live is None:
            return None
        if old_inputs:
            live_inputs = diff.prune(live, reveal(old_inputs))
        else:  # import: every top-level field but status, without what the server owns
            live_inputs = without_read_only({k: v for k, v in live.items() if k != "status"})
            annotations = dict(live_inputs["metadata"].get("annotations") or {})
            annotations.pop("deployment.kubernetes.io/revision", None)
            annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
            live_inputs["metadata"] = (
                {**live_inputs["metadata"], "annotations": annotations}
                if annotations
                else {k: v for k, v in live_inputs["metadata"].items() if k != "annotations"}
            )
        live_inputs = mark_secrets(live_inputs, old_inputs)
        return resource_id or naming.object_id(live), checkpoint(live_inputs, live), live_inputs

    def update(
        self, urn: str, resource_id: str, state: dict, news: dict, preview: bool, timeout: float, ignore: list[str]
    ) -> dict:
        obj = reveal(news)
        if preview and (self.settings.render or has_unknown(obj)):
            return news
        if self.settings.render:
            render.write(obj, self.settings.render_dir)
            return checkpoint(news, obj)
        _, old_live = split_state(reveal(state))
        metadata = old_live.get("metadata") or obj["metadata"]
        live_before = self._get(obj, metadata["name"], metadata.get("namespace"))
        if live_before is None:
            raise ProviderError(f"{naming.describe(obj)} is gone from the cluster: run `pulumi refresh`, then update")
        obj = _keep_ignored(obj, live_before, ignore)
        if preview:
            try:
                live = self.cluster.apply(obj, dry_run=True, force=self._force(obj, live_before, preview=True))
            except ClusterError as error:
                raise ProviderError(f"{naming.describe(obj)}: the API server refused it: {error}") from error
            return checkpoint(news, live)
        live = self._apply(obj, force=self._force(obj, live_before))
        return self._await(urn, news, live, timeout, resource_id)

    def delete(self, resource_id: str, state: dict, timeout: float) -> None:
        inputs, live = split_state(reveal(state))
        obj = live if live.get("kind") else inputs
        if self.settings.render:
            render.remove(obj, self.settings.render_dir)
            return
        namespace, name = naming.parse_id(resource_id)
        policy = readiness.annotations(inputs).get("pulumi.com/deletionPropagationPolicy", "").lower()
        try:
            deleted = self.cluster.delete(
                obj["apiVersion"], obj["kind"], name, namespace, PROPAGATION.get(policy, "Foreground")
            )
            if deleted:
                readiness.await_deleted(self.cluster, obj, inputs, readiness.timeout_seconds(timeout, inputs))
        except UnknownKind:
            return  # its kind is gone, and the object with it
        except (ClusterError, RuntimeError) as error:
            raise ProviderError(f"{naming.describe(obj)}: deletion failed: {error}") from error

    # ---- helpers --------------------------------------------------------------------------

    def _get(self, obj: dict, name: str, namespace: str | None) -> dict | None:
        try:
            return self.cluster.get(obj["apiVersion"], obj["kind"], name, namespace)
        except ClusterError as error:
            raise ProviderError(f"{naming.describe(obj)}: cannot read it: {error}") from error

    def _apply(self, obj: dict, force: bool) -> dict:
        try:
            return self.cluster.apply(obj, dry_run=False, force=force)
        except ClusterError as error:
            raise ProviderError(f"{naming.describe(obj)}: the API server refused it: {error}") from error

    def _force(self, obj: dict, live: dict | None, preview: bool = False) -> bool:
        """Take fields from other field managers only where upstream does: the object asks for it
        (pulumi.com/patchForce), the provider does (enablePatchForce), or the live object records
        no field managers at all (made before server-side apply)."""
        if readiness.annotations(obj).get("pulumi.com/patchForce") == "true" or self.settings.patch_force:
            return True
        if preview and live is None:
            return True
        return live is not None and not (live.get("metadata") or {}).get("managedFields")

    def _await(self, urn: str, inputs: dict, live: dict, timeout: float, resource_id: str) -> dict:
        try:
            ready = readiness.await_ready(
                self.cluster,
                live,
                reveal(inputs),
                readiness.timeout_seconds(timeout, reveal(inputs)),
                status=lambda message: self.engine.status(urn, message),
            )
        except readiness.AwaitTimeout as error:
            raise PartialFailure(str(error), resource_id, checkpoint(inputs, error.live), inputs) from error
        except ClusterError as error:
            raise PartialFailure(str(error), resource_id, checkpoint(inputs, live), inputs) from error
        self.engine.status(urn, "")
        return checkpoint(inputs, ready)


def _keep_ignored(obj: dict, live: dict, ignore: list[str]) -> dict:
    """ignoreChanges: the live values of the ignored (dotted) paths, so applying leaves them be."""
    for path in ignore:
        keys = path.split(".")
        source, target = live, obj
        for key in keys[:-1]:
            source = source.get(key) if isinstance(source, dict) else None
            if not isinstance(target.get(key), dict):
                break
            target[key] = dict(target[key])
            target = target[key]
        else:
            if isinstance(source, dict) and keys[-1] in source:
                target[keys[-1]] = source[keys[-1]]
            else:
                target.pop(keys[-1], None)
    return obj
