"""The Pulumi stacks for real: `make up` against the lab's API server, a preview that finds
nothing to do, the objects read back through the API, drift found by refresh and repaired by
up, bad input refused before the state changes, and `make render ENV=prod` accepted by the API
server. A scratch copy of the lab stack (namespaces PREFIX...) keeps the lab's own stack apart."""

from __future__ import annotations

import pytest
import yaml
from conftest import REPO, run
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pulumi_lab import KUBECONFIG, PREFIX, api, make, scratch_stack, service_names, state_digest

pytestmark = pytest.mark.usefixtures("lab_running")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """The scratch stack, brought up once for the module and destroyed afterwards."""
    env = scratch_stack(tmp_path_factory.mktemp("pulumi") / "scratch")
    result = make("up", env)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    yield env
    core = client.CoreV1Api(api())
    for name in service_names():
        try:
            core.delete_namespace(name)
        except ApiException as error:
            assert error.status == 404


def test_the_lab_stack_holds_the_programs_objects():
    """`make lab` ran `make up ENV=lab`: a preview of the lab's own stack finds nothing to do."""
    result = make("preview", {}, "--expect-no-changes")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "state in file://" + str(REPO / ".lab/pulumi") in result.stdout


def test_up_then_a_preview_finds_nothing_to_do(stack):
    result = make("preview", stack, "--expect-no-changes")
    assert result.returncode == 0, result.stdout[-4000:]
    assert "using pulumi-resource-kubernetes from $PATH" in result.stdout + result.stderr
    assert "Kubernetes provider: the lab's stand-in" in result.stdout


def test_the_objects_read_back_through_the_api(stack):
    stack_config = yaml.safe_load((REPO / "stacks/Pulumi.lab.yaml").read_text())["config"]
    core, networking = client.CoreV1Api(api()), client.NetworkingV1Api(api())
    for service in stack_config["govops:services"]:
        name = PREFIX + service["name"]
        labels = core.read_namespace(name).metadata.labels
        assert labels["govops.gov/data-classification"] == service["dataClassification"]
        assert labels["govops.gov/environment"] == "lab"
        hard = core.read_namespaced_resource_quota("quota", name).spec.hard
        quota = service["quota"]
        assert hard == {"limits.cpu": quota["cpu"], "limits.memory": quota["memory"], "pods": str(quota["pods"])}
        limits = core.read_namespaced_limit_range("default-limits", name).spec.limits[0]
        assert limits.type == "Container" and limits.default == {"cpu": "500m", "memory": "512Mi"}
        policy = networking.read_namespaced_network_policy("default-deny", name).spec
        assert policy.pod_selector.match_labels is None and policy.policy_types == ["Ingress", "Egress"]
        assert not policy.ingress and not policy.egress, "deny all: no rule allows anything"


def test_drift_is_found_by_refresh_and_repaired_by_up(stack):
    networking = client.NetworkingV1Api(api())
    namespace = service_names()[0]
    networking.delete_namespaced_network_policy("default-deny", namespace)
    refresh = run(str(REPO / ".venv/bin/python"), "tools/pulumi_stack.py", "refresh", "--env", "lab", env=stack)
    assert refresh.returncode == 0, refresh.stdout[-3000:]
    assert "default-deny" in refresh.stdout and "deleted" in refresh.stdout
    drifted = make("preview", stack)
    assert "+ 1 to create" in drifted.stdout or "1 to create" in drifted.stdout, drifted.stdout[-3000:]
    assert make("up", stack).returncode == 0
    assert networking.read_namespaced_network_policy("default-deny", namespace).spec.policy_types
    assert make("preview", stack, "--expect-no-changes").returncode == 0


def test_a_missing_passphrase_is_refused_and_the_state_kept(stack):
    before = state_digest(stack)
    result = make("up", {**stack, "GOVOPS_PULUMI_PASSPHRASE": "/nonexistent/passphrase"})
    assert result.returncode != 0
    assert "the lab stack exists but its passphrase /nonexistent/passphrase is missing" in result.stderr
    assert state_digest(stack) == before


@pytest.mark.parametrize(
    ("kubeconfig", "message"),
    [
        ("/nonexistent/kubeconfig", "kubernetes:kubeconfig: /nonexistent/kubeconfig is not a file"),
        ("unreachable", "cannot reach the Kubernetes API server https://127.0.0.1:9"),
    ],
)
def test_a_wrong_kubeconfig_is_one_clear_error_and_the_state_kept(stack, tmp_path, kubeconfig, message):
    if kubeconfig == "unreachable":  # the lab's credentials, a server nobody listens on
        config = yaml.safe_load(KUBECONFIG.read_text())
        config["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:9"
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(config))
    wrong = scratch_stack(tmp_path / "wrong", **{"kubernetes:kubeconfig": str(kubeconfig)})
    wrong["GOVOPS_PULUMI_STATE"], wrong["GOVOPS_PULUMI_PASSPHRASE"] = (
        stack["GOVOPS_PULUMI_STATE"],
        stack["GOVOPS_PULUMI_PASSPHRASE"],
    )
    before = state_digest(stack)
    result = make("up", wrong)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert message in output, output[-3000:]
    assert "Traceback" not in output
    assert state_digest(stack) == before


def test_upstream_wins_where_it_is_installed(stack, tmp_path):
    """An upstream kubernetes plugin in the plugin cache (here a fake that says it ran) is the one
    the engine starts: the stand-in is kept off PATH."""
    fake, marker = tmp_path / "pulumi-resource-kubernetes", tmp_path / "upstream-ran"
    fake.write_text(f"#!/bin/sh\necho upstream > {marker}\nexit 3\n")
    fake.chmod(0o755)
    home = {"PULUMI_HOME": str(tmp_path / "home")}
    install = ("plugin", "install", "resource", "kubernetes", "v4.34.2", "--file", str(fake))
    assert run(str(REPO / ".toolchain/bin/pulumi"), *install, env=home).returncode == 0
    before = state_digest(stack)
    result = make("preview", {**stack, **home})
    assert "Kubernetes provider: upstream kubernetes plugin 4.34.2 (plugin cache)" in result.stdout
    assert "using pulumi-resource-kubernetes from $PATH" not in result.stdout + result.stderr
    assert marker.read_text() == "upstream\n"
    assert state_digest(stack) == before


def test_an_unknown_stack_is_refused():
    result = make("up", {}, stack_env="qa")
    assert result.returncode == 2 and "Unknown ENV 'qa'" in result.stderr


def test_staging_and_prod_refuse_to_run_without_upstream(tmp_path):
    result = make("preview", {"PULUMI_HOME": str(tmp_path / "home")}, stack_env="prod")
    assert result.returncode == 2
    assert "the prod stack needs the upstream Kubernetes provider, and it is not installed" in result.stderr


def test_render_prod_is_accepted_by_the_lab_api_server(tmp_path):
    """`kubectl apply --server-side --dry-run=server` of every rendered manifest. The lab holds
    no prod namespaces, so namespaced objects go into scratch namespaces (PREFIX render-<name>,
    made for the test) and the Namespaces are tried under scratch names."""
    result = make("render", {}, stack_env="prod")
    assert result.returncode == 0, result.stdout[-3000:]
    rendered = sorted((REPO / "reports/render/prod").rglob("*.yaml"))
    manifests = [yaml.safe_load(path.read_text()) for path in rendered]
    assert {m["kind"] for m in manifests} == {
        "Namespace",
        "ResourceQuota",
        "LimitRange",
        "NetworkPolicy",
        "Role",
        "RoleBinding",
        "ServiceAccount",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "Ingress",
        "Secret",
        "EndpointSlice",
        "ConfigMap",
    }
    names = [m["metadata"]["name"] for m in manifests if m["kind"] == "Namespace"]
    scratch = {name: f"{PREFIX}render-{name}" for name in names}
    for manifest in manifests:
        if manifest["kind"] == "Namespace":
            manifest["metadata"]["name"] = f"{PREFIX}render-dry-{manifest['metadata']['name']}"
        else:
            manifest["metadata"]["namespace"] = scratch[manifest["metadata"]["namespace"]]
    (tmp_path / "manifests.yaml").write_text(yaml.safe_dump_all(manifests))
    core = client.CoreV1Api(api())
    try:
        for name in scratch.values():
            core.create_namespace({"metadata": {"name": name}})
        kubectl = [str(REPO / ".toolchain/bin/kubectl"), "--kubeconfig", str(KUBECONFIG), "apply", "--server-side"]
        dry_run = run(*kubectl, "--dry-run=server", "-f", str(tmp_path / "manifests.yaml"))
    finally:
        for name in scratch.values():
            core.delete_namespace(name)
    assert dry_run.returncode == 0, dry_run.stderr
    assert dry_run.stdout.count("serverside-applied (server dry run)") == len(manifests), dry_run.stdout
