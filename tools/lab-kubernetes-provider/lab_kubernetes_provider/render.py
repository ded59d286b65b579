"""renderYamlToDirectory: each object as a YAML file, nothing sent to a cluster. Upstream's layout:
CustomResourceDefinitions in 0-crd/, everything else in 1-manifest/, each file named
<apiVersion with / and : as _>-<kind in lower case>-<namespace or default>-<name>.yaml."""

from __future__ import annotations

from pathlib import Path

import yaml

from . import kinds


def path_for(obj: dict, directory: Path) -> Path:
    metadata = obj.get("metadata") or {}
    api_version = obj["apiVersion"].replace("/", "_").replace(":", "_")
    name = f"{api_version}-{obj['kind'].lower()}-{metadata.get('namespace') or 'default'}-{metadata['name']}.yaml"
    return directory / ("0-crd" if kinds.is_crd(obj) else "1-manifest") / name


def write(obj: dict, directory: Path) -> Path:
    """Write the manifest (mode 0600: it may hold secrets in plain text, as upstream warns)."""
    path = path_for(obj, directory)
    for sub in ("0-crd", "1-manifest"):
        (directory / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(obj, sort_keys=True, default_flow_style=False))
    path.chmod(0o600)
    return path


def remove(obj: dict, directory: Path) -> None:
    path_for(obj, directory).unlink(missing_ok=True)
