"""The lab Kubernetes provider without a cluster: render mode (renderYamlToDirectory), Check's
autonaming and namespaces, the refused invokes, and the version it reports."""

from __future__ import annotations

import grpc
import pytest
import yaml
from lab_kubernetes_provider import VERSION, server
from lab_kubernetes_provider.properties import Secret
from lab_kubernetes_provider.provider import Provider, ProviderError

TYPE = "urn:pulumi:lab::govops::kubernetes:{}::{}"


class Warnings:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def warning(self, urn, message):
        self.messages.append(message)

    info = status = warning


@pytest.fixture
def rendering(tmp_path):
    engine = Warnings()
    provider = Provider(engine)
    provider.configure({"kubernetes:config:renderYamlToDirectory": str(tmp_path / "out")})
    return provider, engine, tmp_path / "out"


def test_check_fills_the_namespace_and_a_name_and_cluster_scoped_kinds_get_none(rendering):
    provider, _, _ = rendering
    quota = provider.check(
        TYPE.format("core/v1:ResourceQuota", "q"), {}, {"kind": "ResourceQuota", "apiVersion": "v1"}, b"s"
    )
    assert quota.failures == []
    assert quota.inputs["metadata"]["namespace"] == "default"
    assert quota.inputs["metadata"]["name"].startswith("q-")
    namespace = provider.check(TYPE.format("core/v1:Namespace", "ns"), {}, {"metadata": {"name": "t11-a"}}, b"s")
    assert namespace.inputs == {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "t11-a"}}


def test_check_drops_nulls_and_server_owned_metadata(rendering):
    provider, _, _ = rendering
    news = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w", "uid": "1", "generation": 3}}
    news["spec"] = {"template": {"spec": {"nodeSelector": None, "containers": [{"name": "c", "args": None}]}}}
    checked = provider.check(TYPE.format("apps/v1:Deployment", "w"), {}, news, b"s").inputs
    assert checked["metadata"] == {"name": "w", "namespace": "default"}
    assert checked["spec"] == {"template": {"spec": {"containers": [{"name": "c"}]}}}


def test_create_writes_upstreams_layout_and_nothing_else(rendering):
    provider, engine, out = rendering
    quota = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "quota", "namespace": "t11-a"}}
    quota["spec"] = {"hard": {"pods": "4"}}
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "x.y"}}
    assert provider.create("urn", quota, preview=True, timeout=0) == ("", quota), "a preview writes nothing"
    assert not out.exists()
    resource_id, state = provider.create("urn", quota, preview=False, timeout=0)
    provider.create("urn", crd, preview=False, timeout=0)
    assert resource_id == "t11-a/quota" and state["__inputs"] == quota
    written = out / "1-manifest/v1-resourcequota-t11-a-quota.yaml"
    assert yaml.safe_load(written.read_text()) == quota
    assert oct(written.stat().st_mode & 0o777) == "0o600"
    assert (out / "0-crd/apiextensions.k8s.io_v1-customresourcedefinition-default-x.y.yaml").is_file()
    assert engine.messages == []
    provider.delete(resource_id, state, timeout=0)
    assert not written.exists()


def test_a_secret_in_a_rendered_file_is_a_warning(rendering):
    provider, engine, out = rendering
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "t11-a"}}
    secret["stringData"] = Secret({"password": "lab-only"})
    checked = provider.check(TYPE.format("core/v1:Secret", "db"), {}, secret, b"s")
    provider.create("urn", checked.inputs, preview=False, timeout=0)
    assert "rendered YAML will contain a secret value in plaintext" in engine.messages
    assert any("contains a secret value in plaintext" in m and "v1-secret-t11-a-db.yaml" in m for m in engine.messages)
    assert "lab-only" in (out / "1-manifest/v1-secret-t11-a-db.yaml").read_text()


class Aborted(Exception):
    pass


class Context:
    def abort(self, code, details):
        self.code, self.details = code, details
        raise Aborted(details)


@pytest.mark.parametrize(
    "token", ["kubernetes:yaml:decode", "kubernetes:helm:template", "kubernetes:kustomize:directory"]
)
def test_upstreams_manifest_invokes_are_refused_by_name(token):
    context = Context()
    with pytest.raises(Aborted):
        server.Servicer(Provider()).Invoke(type("Request", (), {"tok": token})(), context)
    assert context.code == grpc.StatusCode.UNKNOWN
    assert token in context.details and "not offered by the lab's Kubernetes provider" in context.details


def test_the_version_says_it_is_ours_and_which_upstream_it_follows():
    assert VERSION.startswith("4.34.2+govops.lab.")
    assert server.Servicer(Provider()).GetPluginInfo(None, None).version == VERSION


def test_an_unreachable_api_server_fails_configure_with_one_clear_message(tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1', insecure-skip-tls-verify: true}}]\n"
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    with pytest.raises(ProviderError) as error:
        Provider().configure({"kubernetes:config:kubeconfig": str(kubeconfig)})
    assert str(error.value).startswith(
        f"cannot reach the Kubernetes API server https://127.0.0.1:1 (kubeconfig {kubeconfig})"
    )
