"""Waiting until an object is ready or gone, as upstream's await logic does for what the stacks use.

A Deployment is ready when its controller has seen the latest spec, condition Available is True,
and the ReplicaSet of its current revision has all its replicas ready; after the first revision
also condition Progressing must be True with reason NewReplicaSetAvailable. Other kinds are ready
once the API server accepted them (upstream also waits for Pods, Jobs, Services with endpoints,
StatefulSets, DaemonSets, Ingresses and PVCs: not yet here). pulumi.com/skipAwait: "true" skips
the wait, pulumi.com/timeoutSeconds sets it (default 10 minutes).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from . import naming
from .cluster import Cluster

DEFAULT_TIMEOUT = 600
REVISION = "deployment.kubernetes.io/revision"
POLL_SECONDS = 1.0
# Upstream skips the deletion wait only for these kinds when skipAwait is set.
SKIP_DELETE_WAIT = {"Namespace", "Pod", "ReplicationController", "DaemonSet", "Deployment", "StatefulSet", "Job"}


class AwaitTimeout(RuntimeError):
    """The object did not reach its condition in time; `live` is what was last seen."""

    def __init__(self, message: str, live: dict) -> None:
        super().__init__(message)
        self.live = live


def annotations(obj: dict) -> dict:
    return (obj.get("metadata") or {}).get("annotations") or {}


def skip_await(inputs: dict) -> bool:
    return annotations(inputs).get("pulumi.com/skipAwait") == "true"


def timeout_seconds(request_timeout: float, inputs: dict) -> float:
    """The engine's customTimeouts first, then the object's pulumi.com/timeoutSeconds, else 10 min."""
    if request_timeout:
        return request_timeout
    try:
        return float(annotations(inputs)["pulumi.com/timeoutSeconds"])
    except (KeyError, ValueError):
        return DEFAULT_TIMEOUT


def _condition(obj: dict, kind: str) -> dict:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            return condition
    return {}


def deployment_state(deployment: dict, replica_sets: list[dict]) -> tuple[bool, str]:
    """(ready, what is missing) of a Deployment, given the ReplicaSets of its namespace. The
    observedGeneration check makes an update wait for the revision its new spec brings."""
    metadata, status = deployment["metadata"], deployment.get("status") or {}
    if status.get("observedGeneration", 0) < metadata.get("generation", 0):
        return False, "the Deployment controller has not seen the latest spec yet"
    revision = annotations(deployment).get(REVISION)
    if not revision:
        return False, "no ReplicaSet revision yet"
    available, progressing = _condition(deployment, "Available"), _condition(deployment, "Progressing")
    missing = []
    if available.get("status") != "True":
        missing.append(f"Available=True (now {available.get('status', 'absent')}: {available.get('message', '')})")
    if revision != "1" and not (
        progressing.get("status") == "True" and progressing.get("reason") == "NewReplicaSetAvailable"
    ):
        missing.append(
            f"Progressing=True with reason NewReplicaSetAvailable (now {progressing.get('reason', 'absent')})"
        )
    owned = [rs for rs in replica_sets if _owned_by(rs, deployment) and annotations(rs).get(REVISION) == revision]
    if not owned:
        missing.append(f"the ReplicaSet of revision {revision}")
    else:
        wanted = (owned[0].get("spec") or {}).get("replicas", 1)
        ready = (owned[0].get("status") or {}).get("readyReplicas", 0)
        if ready < wanted:
            missing.append(f"{wanted} ready replicas in ReplicaSet {owned[0]['metadata']['name']} (now {ready})")
    return not missing, "; ".join(missing)


def _owned_by(child: dict, owner: dict) -> bool:
    uid = owner["metadata"].get("uid")
    return any(ref.get("uid") == uid for ref in child["metadata"].get("ownerReferences") or [])


def await_ready(
    cluster: Cluster,
    live: dict,
    inputs: dict,
    timeout: float,
    status: Callable[[str], None] = lambda _: None,
) -> dict:
    """The live object once ready (see the module's rules); AwaitTimeout after `timeout` s."""
    if skip_await(inputs) or (live.get("apiVersion"), live.get("kind")) != ("apps/v1", "Deployment"):
        return live
    deadline = time.monotonic() + timeout
    name, namespace = live["metadata"]["name"], live["metadata"].get("namespace")
    while True:
        current = cluster.get("apps/v1", "Deployment", name, namespace) or live
        replica_sets = cluster.list("apps/v1", "ReplicaSet", namespace)
        ready, missing = deployment_state(current, replica_sets)
        if ready:
            return current
        status(f"waiting for {missing}")
        if time.monotonic() >= deadline:
            raise AwaitTimeout(
                f"{naming.describe(current)} was not ready after {timeout:g} s: waited for condition "
                f"Available=True and its current ReplicaSet ready; still missing: {missing}",
                current,
            )
        time.sleep(POLL_SECONDS)


def await_deleted(cluster: Cluster, obj: dict, inputs: dict, timeout: float) -> None:
    """Return once the object is gone; RuntimeError after `timeout` s."""
    if skip_await(inputs) and obj.get("kind") in SKIP_DELETE_WAIT:
        return
    metadata = obj["metadata"]
    deadline = time.monotonic() + timeout
    while cluster.get(obj["apiVersion"], obj["kind"], metadata["name"], metadata.get("namespace")) is not None:
        if time.monotonic() >= deadline:
            raise RuntimeError(f"{naming.describe(obj)} was still there {timeout:g} s after its deletion")
        time.sleep(POLL_SECONDS)
