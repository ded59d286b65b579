"""The CFM and scorecard services on the lab's API server. The lab's own stack (`make up ENV=lab`,
run by `make lab`) put both onto kwok's nodes; a scratch copy of it (namespaces PREFIX svc-...)
goes up, previews with no changes, rolls out a replica change made in its stack file, and is
stopped by the policy pack when an image is given by tag, with nothing changed."""

from __future__ import annotations

import time

import pytest
import yaml
from conftest import REPO
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pulumi_lab import PREFIX, api, edit_stack, make, scratch_stack, service_names, state_digest

pytestmark = pytest.mark.usefixtures("lab_running")
SCRATCH = PREFIX + "svc-"
TAGGED = "registry.govops.internal/cfm/web:1.4.2"


def lab_services() -> list[dict]:
    return yaml.safe_load((REPO / "stacks/Pulumi.lab.yaml").read_text())["config"]["govops:services"]


def wait_available(namespace: str, replicas: int, timeout: float = 180) -> client.V1Deployment:
    """The web Deployment once its latest spec is rolled out with `replicas` available (bounded)."""
    apps = client.AppsV1Api(api())
    deadline = time.monotonic() + timeout
    while True:
        deployment = apps.read_namespaced_deployment("web", namespace)
        status = deployment.status
        if (
            (status.observed_generation or 0) >= deployment.metadata.generation
            and status.updated_replicas == replicas
            and status.available_replicas == replicas
            and (status.replicas or 0) == replicas
        ):
            return deployment
        if time.monotonic() > deadline:
            pytest.fail(f"{namespace}/web: not {replicas} available after {timeout} s: {status}")
        time.sleep(2)


def pods_on_nodes(namespace: str) -> list[str]:
    core = client.CoreV1Api(api())
    selector = "app.kubernetes.io/name=web"
    return [pod.spec.node_name for pod in core.list_namespaced_pod(namespace, label_selector=selector).items]


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    """The scratch stack, brought up once for the module and its namespaces removed afterwards."""
    env = scratch_stack(tmp_path_factory.mktemp("services") / "scratch", prefix=SCRATCH)
    result = make("up", env)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    yield env
    core = client.CoreV1Api(api())
    for name in service_names(SCRATCH):
        try:
            core.delete_namespace(name)
        except ApiException as error:
            assert error.status == 404


def test_the_lab_stack_runs_both_services_on_kwoks_nodes():
    kwok_nodes = {node.metadata.name for node in client.CoreV1Api(api()).list_node(label_selector="type=kwok").items}
    for service in lab_services():
        replicas = service["web"]["replicas"]
        deployment = wait_available(service["name"], replicas)
        assert deployment.spec.template.spec.containers[0].image == service["web"]["image"]
        nodes = pods_on_nodes(service["name"])
        assert len(nodes) == replicas and set(nodes) <= kwok_nodes
        assert len(set(nodes)) == min(replicas, len(kwok_nodes)), f"spread across nodes: {nodes}"


def test_up_makes_both_services_available_and_a_second_preview_finds_nothing(services):
    for service in lab_services():
        wait_available(SCRATCH + service["name"], service["web"]["replicas"])
    result = make("preview", services, "--expect-no-changes")
    assert result.returncode == 0, result.stdout[-4000:]
    assert "govops-workloads" in result.stdout, "the policy pack ran"


def test_a_replica_change_in_the_stack_file_is_rolled_out(services):
    """The autoscaler's floor rises and it scales the Deployment up to it (it owns the count)."""
    cfm = SCRATCH + "cfm"
    before = wait_available(cfm, lab_services()[0]["web"]["replicas"]).spec.replicas

    def more_replicas(config):
        config["govops:services"][0]["web"]["replicas"] = before + 1

    edit_stack(services, more_replicas)
    result = make("up", services)
    assert result.returncode == 0, result.stdout[-4000:]
    assert wait_available(cfm, before + 1).spec.replicas == before + 1
    autoscaler = client.AutoscalingV2Api(api()).read_namespaced_horizontal_pod_autoscaler("web", cfm)
    assert autoscaler.spec.min_replicas == before + 1
    assert make("preview", services, "--expect-no-changes").returncode == 0


def test_an_image_by_tag_stops_the_preview_with_the_policys_message_and_changes_nothing(services):
    cfm = SCRATCH + "cfm"
    image = client.AppsV1Api(api()).read_namespaced_deployment("web", cfm).spec.template.spec.containers[0].image
    before = state_digest(services)

    def by_tag(config):
        config["govops:services"][0]["web"]["image"] = TAGGED

    edit_stack(services, by_tag)
    try:
        for verb in ("preview", "up"):  # up previews first: refused before any change
            result = make(verb, services)
            output = result.stdout + result.stderr
            assert result.returncode != 0, output[-3000:]
            assert "[mandatory]  images-pinned-by-digest" in output, output[-3000:]
            assert f"Deployment {cfm}/web: container 'web' image '{TAGGED}' is not pinned by digest" in output
        deployment = client.AppsV1Api(api()).read_namespaced_deployment("web", cfm)
        assert deployment.spec.template.spec.containers[0].image == image
        assert state_digest(services) == before
    finally:
        edit_stack(services, lambda config: config["govops:services"][0]["web"].update(image=image))
