"""Check Kubernetes manifests against the OpenAPI schema of the cluster's version, without a
cluster: kubernetes-validate's bundled schemas, strict (an unknown field is an error too).
`make render` runs it on what it wrote.

    python tools/validate_manifests.py [--kubernetes-version 1.34] FILE_OR_DIRECTORY...
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from importlib.metadata import version
from pathlib import Path

import kubernetes_validate
import yaml
from kubernetes_validate.utils import SchemaNotFoundError, VersionNotSupportedError

# The control plane's minor version (tools/kubernetes/go.mod pins k8s.io/kubernetes v1.34.4).
KUBERNETES_VERSION = "1.34"


def problems(manifest: dict, kubernetes_version: str = KUBERNETES_VERSION) -> list[str]:
    """What is wrong with one manifest (empty: valid)."""
    try:
        kubernetes_validate.validate(manifest, kubernetes_version, strict=True)
    except kubernetes_validate.ValidationError as error:
        where = ".".join(str(part) for part in error.path) or "(top level)"
        return [f"{where}: {error.message}"]
    except (SchemaNotFoundError, VersionNotSupportedError) as error:
        return [error.message]
    return []


def manifests(paths: Iterable[Path]) -> Iterable[tuple[Path, dict]]:
    for path in paths:
        files = sorted(path.rglob("*.yaml")) if path.is_dir() else [path]
        for file in files:
            for document in yaml.safe_load_all(file.read_text()):
                if document:
                    yield file, document


def report(paths: Iterable[Path], prefix: str = "validate", kubernetes_version: str = KUBERNETES_VERSION) -> int:
    """Print every problem and a summary line; 0 when all are valid."""
    count, failures = 0, 0
    for file, manifest in manifests(paths):
        count += 1
        found = problems(manifest, kubernetes_version)
        failures += bool(found)
        name = f"{manifest.get('kind')} {(manifest.get('metadata') or {}).get('name')}"
        for problem in found:
            print(f"{prefix}: {file}: {name}: {problem}", file=sys.stderr)
    schema = f"Kubernetes {kubernetes_version} schema (kubernetes-validate {version('kubernetes-validate')}, strict)"
    if failures:
        print(f"{prefix}: {failures} of {count} manifests do not match the {schema}", file=sys.stderr)
        return 1
    print(f"{prefix}: {count} manifests match the {schema}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--kubernetes-version", default=KUBERNETES_VERSION)
    args = parser.parse_args(argv)
    return report(args.paths, kubernetes_version=args.kubernetes_version)


if __name__ == "__main__":
    sys.exit(main())
