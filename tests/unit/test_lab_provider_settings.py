"""The lab Kubernetes provider's settings, as Configure hands them over."""

from __future__ import annotations

import pytest
import yaml
from lab_kubernetes_provider.settings import SettingsError, from_variables

KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [{"name": "lab", "cluster": {"server": "https://127.0.0.1:1"}}],
    "users": [{"name": "admin", "user": {}}],
    "contexts": [
        {"name": "lab", "context": {"cluster": "lab", "user": "admin"}},
        {"name": "apps", "context": {"cluster": "lab", "user": "admin", "namespace": "t11-apps"}},
    ],
    "current-context": "lab",
}


@pytest.fixture
def kubeconfig(tmp_path):
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(KUBECONFIG))
    return path


def variables(**settings: str) -> dict[str, str]:
    return {f"kubernetes:config:{key}": value for key, value in settings.items()}


def test_default_namespace_is_the_setting_then_the_contexts_then_default(kubeconfig):
    assert from_variables(variables(kubeconfig=str(kubeconfig))).namespace == "default"
    assert from_variables(variables(kubeconfig=str(kubeconfig), context="apps")).namespace == "t11-apps"
    chosen = from_variables(variables(kubeconfig=str(kubeconfig), context="apps", namespace="t11-x"))
    assert chosen.namespace == "t11-x"


def test_kubeconfig_is_a_path_or_else_the_contents(kubeconfig):
    by_path = from_variables(variables(kubeconfig=str(kubeconfig)))
    assert by_path.kubeconfig == KUBECONFIG and by_path.kubeconfig_source == str(kubeconfig)
    by_contents = from_variables(variables(kubeconfig=kubeconfig.read_text()))
    assert by_contents.kubeconfig == KUBECONFIG


@pytest.mark.parametrize(
    ("value", "message"),
    [("/nonexistent/kubeconfig", "is not a file"), ("apiVersion: v1\nkind: Config\n", "is not a kubeconfig")],
)
def test_a_wrong_kubeconfig_is_named(value, message):
    with pytest.raises(SettingsError, match=message):
        from_variables(variables(kubeconfig=value))


def test_render_mode_needs_no_kubeconfig(tmp_path):
    settings = from_variables(variables(kubeconfig="/nonexistent", renderYamlToDirectory=str(tmp_path)))
    assert settings.render and settings.render_dir == tmp_path and settings.namespace == "default"


def test_mutability_flags_follow_the_setting_then_upstreams_environment(kubeconfig, monkeypatch):
    monkeypatch.setenv("PULUMI_K8S_ENABLE_SECRET_MUTABLE", "true")
    settings = from_variables(variables(kubeconfig=str(kubeconfig), enableConfigMapMutable="true"))
    assert settings.secret_mutable and settings.configmap_mutable and not settings.patch_force
    assert not from_variables(variables(kubeconfig=str(kubeconfig), enableSecretMutable="false")).secret_mutable
