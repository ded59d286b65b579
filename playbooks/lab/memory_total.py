"""Sum `podman stats --format '{{.Name}} {{.MemUsage}}'` lines read on stdin into a total."""

from __future__ import annotations

import re
import sys

UNITS = {"b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "kib": 2**10, "mib": 2**20, "gib": 2**30}


def to_bytes(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)\s*([a-zA-Z]+)", text.strip())
    if not match:
        raise ValueError(f"not a memory size: {text!r}")
    return float(match.group(1)) * UNITS[match.group(2).lower()]


def main() -> None:
    total = 0.0
    for line in sys.stdin:
        name, _, usage = line.strip().partition(" ")
        if not usage:
            continue
        used = to_bytes(usage.split("/")[0])
        total += used
        print(f"  {name:<24} {used / 2**20:8.1f} MiB")
    print(f"  {'total':<24} {total / 2**20:8.1f} MiB")


if __name__ == "__main__":
    main()
