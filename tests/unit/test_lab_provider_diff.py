"""The lab Kubernetes provider's diff: changes against the live object as last read, pruned to the
old inputs, and upstream's rules for what replaces an object."""

from __future__ import annotations

import copy

import pytest
from lab_kubernetes_provider import diff
from lab_kubernetes_provider.properties import UNKNOWN

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "t11-a", "labels": {"app": "web"}},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}},
    },
}


def live_of(inputs: dict) -> dict:
    """What the API server returns: the inputs plus defaults, server fields and status."""
    live = copy.deepcopy(inputs)
    live["metadata"].update(uid="u1", resourceVersion="7", managedFields=[{"manager": "m"}])
    live.setdefault("spec", {})["progressDeadlineSeconds"] = 600
    live["status"] = {"replicas": 2}
    return live


def changed(news: dict, old: dict = DEPLOYMENT, live: dict | None = None, **options) -> diff.Result:
    return diff.compute(old, live_of(old) if live is None else live, news, namespaced=True, **options)


def edit(obj: dict, path: str, value) -> dict:
    new = copy.deepcopy(obj)
    *parents, last = path.split(".")
    target = new
    for key in parents:
        target = target.setdefault(key, {})
    target[last] = value
    return new


def test_the_same_inputs_are_no_change_whatever_the_server_added():
    result = changed(copy.deepcopy(DEPLOYMENT))
    assert not result.changed and result.detailed == {} and result.replaces == []


def test_whole_numbers_compare_equal_whatever_their_type():
    assert not changed(edit(DEPLOYMENT, "spec.replicas", 2.0)).changed


def test_an_empty_namespace_is_the_default_one():
    old = edit(DEPLOYMENT, "metadata.namespace", "default")
    news = copy.deepcopy(old)
    del news["metadata"]["namespace"]
    assert not changed(news, old).changed


def test_a_label_change_updates_in_place():
    result = changed(edit(DEPLOYMENT, "metadata.labels", {"app": "web", "tier": "front"}))
    assert result.changed and result.detailed == {"metadata.labels.tier": "ADD"} and not result.replaces


def test_drift_on_the_cluster_shows_after_a_refresh():
    drifted = live_of(DEPLOYMENT)
    drifted["spec"]["replicas"] = 5
    result = changed(copy.deepcopy(DEPLOYMENT), live=drifted)
    assert result.detailed == {"spec.replicas": "UPDATE"}


def test_a_selector_change_replaces_a_named_deployment_deleting_it_first():
    result = changed(edit(DEPLOYMENT, "spec.selector", {"matchLabels": {"app": "web2"}}))
    assert result.replaces == ["spec.selector.matchLabels.app"]
    assert result.detailed == {"spec.selector.matchLabels.app": "UPDATE_REPLACE"}
    assert result.delete_before_replace, "the same name cannot exist twice"


def test_an_autonamed_object_is_replaced_by_a_new_name_first():
    old = edit(DEPLOYMENT, "metadata.annotations", {"pulumi.com/autonamed": "true"})
    result = changed(edit(old, "spec.selector", {"matchLabels": {"app": "other"}}), old)
    assert result.replaces and not result.delete_before_replace


def test_a_new_name_or_namespace_replaces_without_deleting_first():
    renamed = changed(edit(DEPLOYMENT, "metadata.name", "web2"))
    assert renamed.replaces == ["metadata.name"] and not renamed.delete_before_replace
    moved = changed(edit(DEPLOYMENT, "metadata.namespace", "t11-b"))
    assert moved.replaces == ["metadata.namespace"] and not moved.delete_before_replace


@pytest.mark.parametrize(
    ("obj", "path", "value", "replaced"),
    [
        (
            {"apiVersion": "v1", "kind": "Service", "spec": {"clusterIP": "10.0.0.9"}},
            "spec.clusterIP",
            "10.0.0.8",
            True,
        ),
        ({"apiVersion": "v1", "kind": "Service", "spec": {"clusterIP": "1", "ports": []}}, "spec.ports", [1], False),
        ({"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"a": 1}}}, "spec.template", {"a": 2}, True),
        (
            {"apiVersion": "apps/v1", "kind": "DaemonSet", "spec": {"selector": {"x": 1}}},
            "spec.selector",
            {"x": 2},
            True,
        ),
        (
            {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "spec": {"accessModes": ["ReadWriteOnce"]}},
            "spec.accessModes",
            ["ReadWriteMany"],
            True,
        ),
        (
            {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "spec": {"storageClassName": "a"}},
            "spec.storageClassName",
            "b",
            True,
        ),
        (
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "roleRef": {"name": "a"}},
            "roleRef",
            {"name": "b"},
            True,
        ),
        ({"apiVersion": "v1", "kind": "Secret", "data": {"k": "YQ=="}}, "data", {"k": "Yg=="}, True),
        ({"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "a"}}, "data", {"k": "b"}, True),
        ({"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "a"}}, "metadata.labels", {"x": "y"}, False),
    ],
)
def test_upstreams_replacement_fields(obj, path, value, replaced):
    old = {**obj, "metadata": {"name": "o", "namespace": "t11-a"}}
    result = changed(edit(old, path, value), old)
    assert result.changed
    assert bool(result.replaces) is replaced, result.detailed


def test_secret_and_configmap_contents_update_in_place_when_made_mutable_unless_immutable():
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": "t11-a"},
        "data": {"k": "YQ=="},
    }
    assert not changed(edit(secret, "data", {"k": "Yg=="}), secret, secret_mutable=True).replaces
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "t11-a"},
        "data": {"k": "a"},
    }
    assert not changed(edit(config, "data", {"k": "b"}), config, configmap_mutable=True).replaces
    frozen = {**config, "immutable": True}
    assert changed(edit(frozen, "data", {"k": "b"}), frozen, configmap_mutable=True).replaces


def test_container_fields_of_a_pod_replace_it():
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "t11-a"}}
    pod["spec"] = {"containers": [{"name": "c", "image": "i:1"}]}
    result = changed(edit(pod, "spec.containers", [{"name": "c", "image": "i:2"}]), pod)
    assert result.replaces == ["spec.containers[0].image"]


def test_a_value_unknown_in_preview_is_an_update():
    result = changed(edit(DEPLOYMENT, "metadata.labels", {"app": UNKNOWN}))
    assert result.detailed == {"metadata.labels.app": "UPDATE"}


def test_a_removed_input_is_a_delete_and_ignore_changes_hides_paths():
    news = copy.deepcopy(DEPLOYMENT)
    del news["metadata"]["labels"]
    assert changed(news).detailed == {"metadata.labels": "DELETE"}
    assert not changed(news, ignore_changes=["metadata.labels"]).changed


def test_cluster_scoped_objects_ignore_namespaces():
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "t11-a", "labels": {"a": "b"}}}
    live = {**namespace, "metadata": {**namespace["metadata"], "uid": "1"}, "status": {"phase": "Active"}}
    assert not diff.compute(namespace, live, copy.deepcopy(namespace), namespaced=False).changed
    special = {"dots.in/key": "x", "plain": "y"}
    result = diff.compute(namespace, live, edit(namespace, "metadata.labels", special), namespaced=False)
    assert set(result.detailed) == {'metadata.labels["dots.in/key"]', "metadata.labels.plain", "metadata.labels.a"}
