"""Build the pinned Go tools (tools/<family>/go.mod) that no registry ships as binaries.

Each family's `tool` directives are built with the machine's Go into a cache outside the
clone, keyed by the family's go.mod and go.sum, the Go version and the build flags, so a
fresh clone on the same machine reuses them. Only what is missing is built. The binaries are
linked into .toolchain/bin and their checksums written to .toolchain/SHA256SUMS, which the
lab's artifact checks read. Figures go to reports/toolchain.json.

    python tools/toolchain.py [--cache DIR] [--out .toolchain] [FAMILY ...]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
# Static, reproducible binaries: no cgo, no local paths, no VCS stamp, no symbol tables.
BUILD_FLAGS = ["-trimpath", "-buildvcs=false"]
BASE_LDFLAGS = "-s -w"


class ToolchainError(RuntimeError):
    """A tool could not be built; the message names it and says why."""


def version_ldflags(family: str, requires: dict[str, str]) -> str:
    """The -X flags that stamp each family's version, so `<tool> --version` prints the pin."""
    if family == "kubernetes":
        version = requires["k8s.io/kubernetes"]
        major, minor = version.lstrip("v").split(".")[:2]
        pkg = "k8s.io/component-base/version"
        stamps = {
            "gitVersion": version,
            "gitMajor": major,
            "gitMinor": minor,
            "gitCommit": version,
            "gitTreeState": "clean",
            "buildDate": "1970-01-01T00:00:00Z",
        }
        return " ".join(f"-X {pkg}.{key}={value}" for key, value in stamps.items())
    if family == "pulumi":
        version = requires["github.com/pulumi/pulumi/pkg/v3"]
        return f"-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version={version}"
    return ""


def parse_go_mod(path: Path) -> tuple[list[str], dict[str, str]]:
    """The `tool` packages and the direct `require` versions of a go.mod."""
    text = re.sub(r"//.*", "", path.read_text())
    tools: list[str] = []
    requires: dict[str, str] = {}
    for keyword, block, single in re.findall(r"^(tool|require)\s*(?:\(([^)]*)\)|(.+))$", text, re.M):
        for line in (block or single).splitlines():
            fields = line.split()
            if not fields:
                continue
            if keyword == "tool":
                tools.append(fields[0])
            else:
                requires[fields[0]] = fields[1]
    return tools, requires


def go_version() -> str:
    if shutil.which("go") is None:
        raise ToolchainError("'go' is not on PATH: install Go 1.26 or later to build the pinned tools")
    return subprocess.run(["go", "env", "GOVERSION"], capture_output=True, text=True, check=True).stdout.strip()


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def pinned_on_path(name: str, version: str, own: Path) -> Path | None:
    """A `pulumi` already on PATH (not our own link in `own`) that reports the pinned version."""
    found = shutil.which(name)
    if found is None or Path(found).parent.resolve() == own.resolve():
        return None
    result = subprocess.run([found, "version"], capture_output=True, text=True, check=False)
    return Path(found) if result.stdout.strip() == version else None


def build_family(family: str, cache: Path, goversion: str) -> tuple[Path, list[dict]]:
    """Build a family's tools into its cache entry unless it is complete; return its bin dir."""
    gomod = TOOLS / family / "go.mod"
    tools, requires = parse_go_mod(gomod)
    if not tools:
        raise ToolchainError(f"{gomod}: no `tool` directives: nothing to build")
    ldflags = f"{BASE_LDFLAGS} {version_ldflags(family, requires)}".strip()
    key_input = b"".join(p.read_bytes() for p in (gomod, gomod.with_name("go.sum")))
    key_input += f"{goversion} {BUILD_FLAGS} {ldflags}".encode()
    module = max((m for m in requires if tools[0].startswith(m + "/")), key=len)
    pin = requires[module]
    entry = cache / f"{family}-{pin}-{hashlib.sha256(key_input).hexdigest()[:12]}"
    names = [tool.rstrip("/").rsplit("/", 1)[-1] for tool in tools]
    if all((entry / "bin" / name).is_file() for name in names):
        return entry / "bin", [{"tool": n, "family": family, "cached": True} for n in names]

    staging = Path(tempfile.mkdtemp(prefix=f".{family}-", dir=cache))
    figures = []
    env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-mod=readonly", GOTOOLCHAIN="local")
    try:
        for tool, name in zip(tools, names, strict=True):
            print(f"toolchain: building {name} ({family}, {pin}) ...", flush=True)
            started = time.monotonic()
            result = subprocess.run(
                ["go", "build", *BUILD_FLAGS, "-ldflags", ldflags, "-o", str(staging / name), tool],
                cwd=gomod.parent,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                detail = "\n".join(result.stderr.strip().splitlines()[-6:])
                raise ToolchainError(f"cannot build {name} ({tool}, tools/{family}/go.mod):\n{detail}")
            seconds = round(time.monotonic() - started, 1)
            size = (staging / name).stat().st_size
            print(f"toolchain: {name}: {seconds} s, {size / 2**20:.1f} MiB", flush=True)
            figures.append({"tool": name, "family": family, "seconds": seconds, "bytes": size, "cached": False})
        shutil.rmtree(entry, ignore_errors=True)
        (staging / "bin").mkdir()
        for name in names:
            (staging / name).rename(staging / "bin" / name)
        staging.rename(entry)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return entry / "bin", figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "govops" / "toolchain"
    parser.add_argument("--cache", type=Path, default=default_cache, help="where built tools are kept")
    parser.add_argument("--out", type=Path, default=Path(".toolchain"), help="links and SHA256SUMS")
    parser.add_argument("--report", type=Path, default=Path("reports/toolchain.json"))
    parser.add_argument("families", nargs="*", help="tools/<family> to build (default: all)")
    args = parser.parse_args(argv)

    families = args.families or sorted(p.parent.name for p in TOOLS.glob("*/go.mod"))
    started = time.monotonic()
    figures: list[dict] = []
    try:
        goversion = go_version()
        args.cache.mkdir(parents=True, exist_ok=True)
        bins: dict[str, Path] = {}
        for family in families:
            if not (TOOLS / family / "go.mod").is_file():
                raise ToolchainError(f"unknown tool family {family!r}: there is no tools/{family}/go.mod")
            _, requires = parse_go_mod(TOOLS / family / "go.mod")
            if family == "pulumi" and (
                found := pinned_on_path("pulumi", requires["github.com/pulumi/pulumi/pkg/v3"], args.out / "bin")
            ):
                print(f"toolchain: using {found} (already the pinned version)")
                bins["pulumi"] = found
                continue
            bin_dir, built = build_family(family, args.cache, goversion)
            figures += built
            bins.update({path.name: path for path in sorted(bin_dir.iterdir())})
    except ToolchainError as error:
        print(f"make toolchain: {error}", file=sys.stderr)
        return 2

    link_dir = args.out / "bin"
    link_dir.mkdir(parents=True, exist_ok=True)
    for name, target in bins.items():
        link = link_dir / name
        if not (link.is_symlink() and link.resolve() == target.resolve()):
            link.unlink(missing_ok=True)
            link.symlink_to(target)
    sums = "".join(f"{sha256(target)}  {name}\n" for name, target in sorted(bins.items()))
    (args.out / "SHA256SUMS").write_text(sums)
    total = round(time.monotonic() - started, 1)
    built = [f for f in figures if not f["cached"]]
    print(f"toolchain: {len(bins)} tools in {link_dir} ({len(built)} built) in {total} s")
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps({"go": goversion, "total_seconds": total, "tools": figures}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
