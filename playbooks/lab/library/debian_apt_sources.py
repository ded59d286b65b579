#!/usr/bin/python
"""Read the Debian mirror from the controller's own apt configuration.

The lab has no internet: the only Debian mirror it can use is the one this machine's apt already
uses. debootstrap needs it to build the lab image, and the `common` role needs it for the lab
hosts' apt sources. Nothing here names a mirror; it only reads what apt is configured with.
"""

from __future__ import annotations

import glob
import os

DOCUMENTATION = r"""
module: debian_apt_sources
short_description: Find the Debian mirrors configured on the controller
description:
  - Parses /etc/apt/sources.list, /etc/apt/sources.list.d/*.list (one-line format) and
    /etc/apt/sources.list.d/*.sources (deb822) and returns the enabled C(deb) entries for a release.
  - Fails with the list of files it read when no entry serves the release.
options:
  release:
    description: Debian code name the lab uses.
    type: str
    default: bookworm
  mirror:
    description: Override for the main archive (the LAB_DEBIAN_MIRROR variable). Skips the files.
    type: str
  security_mirror:
    description: Override for the security archive (LAB_DEBIAN_SECURITY_MIRROR), with I(mirror).
    type: str
  root:
    description: Directory that holds etc/apt (for tests).
    type: str
    default: /
"""

RETURN = r"""
sources:
  description: apt sources in the shape of C(common_apt_sources).
  type: list
  elements: dict
mirror:
  description: URI of the main archive, for debootstrap.
  type: str
files:
  description: The files that were read.
  type: list
"""


def parse_one_line(text: str) -> list[dict]:
    """Entries of a one-line-style sources.list: `deb [opts] uri suite [components...]`."""
    entries = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        if words[0] != "deb":
            continue
        words = words[1:]
        if words and words[0].startswith("["):
            # options such as [signed-by=...] run up to the closing bracket
            while words and not words[0].endswith("]"):
                words.pop(0)
            words = words[1:]
        if len(words) < 2:
            continue
        entries.append({"uris": [words[0]], "suites": [words[1]], "components": words[2:]})
    return entries


def parse_deb822(text: str) -> list[dict]:
    """Entries of a deb822 .sources file; disabled stanzas and non-deb types are skipped."""
    entries = []
    for stanza in _stanzas(text):
        if stanza.get("enabled", "yes").lower() == "no":
            continue
        if "deb" not in stanza.get("types", "").split():
            continue
        uris = stanza.get("uris", "").split()
        suites = stanza.get("suites", "").split()
        if uris and suites:
            entries.append({"uris": uris, "suites": suites, "components": stanza.get("components", "").split()})
    return entries


def _stanzas(text: str) -> list[dict]:
    stanzas, current, key = [], {}, None
    for raw in [*text.splitlines(), ""]:
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if current:
                stanzas.append(current)
            current, key = {}, None
        elif raw[0] in " \t" and key:
            current[key] += " " + raw.strip()
        elif ":" in raw:
            key, value = raw.split(":", 1)
            key = key.strip().lower()
            current[key] = value.strip()
    return stanzas


def select(entries: list[dict], release: str) -> list[dict]:
    """Keep the entries that serve `release` (plus its -updates and -security suites)."""
    wanted = {release, f"{release}-updates", f"{release}-security"}
    selected = []
    for entry in entries:
        suites = [s for s in entry["suites"] if s in wanted]
        uris = [u for u in entry["uris"] if u.split(":", 1)[0] in ("http", "https", "file")]
        if suites and uris:
            selected.append({"uris": uris, "suites": suites, "components": entry["components"] or ["main"]})
    return selected


def read_sources(root: str, release: str) -> tuple[list[dict], list[str]]:
    apt = os.path.join(root, "etc/apt")
    one_line = [os.path.join(apt, "sources.list"), *sorted(glob.glob(os.path.join(apt, "sources.list.d/*.list")))]
    deb822 = sorted(glob.glob(os.path.join(apt, "sources.list.d/*.sources")))
    entries, read = [], []
    for path, parser in [(p, parse_one_line) for p in one_line] + [(p, parse_deb822) for p in deb822]:
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as handle:
                entries += parser(handle.read())
            read.append(path)
    return select(entries, release), read


def from_override(mirror: str, security_mirror: str | None, release: str) -> list[dict]:
    sources = [{"uris": [mirror], "suites": [release, f"{release}-updates"], "components": ["main"]}]
    if security_mirror:
        sources.append({"uris": [security_mirror], "suites": [f"{release}-security"], "components": ["main"]})
    return sources


def main_mirror(sources: list[dict], release: str) -> str | None:
    for entry in sources:
        if release in entry["suites"]:
            return entry["uris"][0]
    return None


def run(params: dict) -> dict:
    release = params["release"]
    if params.get("mirror"):
        sources, read = from_override(params["mirror"], params.get("security_mirror"), release), []
    else:
        sources, read = read_sources(params["root"], release)
    mirror = main_mirror(sources, release)
    if not mirror:
        looked = ", ".join(read) or "no file found"
        return {
            "failed": True,
            "msg": (
                f"No Debian '{release}' mirror found in the controller's apt configuration "
                f"(looked in /etc/apt/sources.list, /etc/apt/sources.list.d/*.list and *.sources; "
                f"read: {looked}). Set LAB_DEBIAN_MIRROR=<http URI of a Debian archive> "
                "(and optionally LAB_DEBIAN_SECURITY_MIRROR) to override."
            ),
            "files": read,
        }
    return {"changed": False, "sources": sources, "mirror": mirror, "files": read}


def main() -> None:
    from ansible.module_utils.basic import AnsibleModule

    module = AnsibleModule(
        argument_spec={
            "release": {"type": "str", "default": "bookworm"},
            "mirror": {"type": "str"},
            "security_mirror": {"type": "str"},
            "root": {"type": "str", "default": "/"},
        },
        supports_check_mode=True,
    )
    result = run(module.params)
    if result.get("failed"):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
