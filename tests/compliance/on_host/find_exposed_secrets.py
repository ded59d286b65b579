"""Files that others may read and that hold a secret: a private key or a password-like setting.

Files a Debian package ships unchanged are left out (their samples, such as openssl.cnf, show
example passwords). The values are never printed: only the file, the line number and the key.
Prints JSON: [{"path", "line", "key"}]."""

import hashlib
import json
import os
import re
import stat
import sys

ROOTS = sys.argv[1:] or ["/etc", "/var/lib", "/opt", "/srv", "/home", "/root"]
SKIP = ("/var/lib/dpkg", "/var/lib/apt", "/etc/ssl/certs", "/var/lib/postgresql", "/var/lib/prometheus")
# Program code names passwords in its variables; secrets live in configuration and key files.
CODE_DIRS = {"site-packages", "dist-packages", "__pycache__", "node_modules"}
CODE_SUFFIXES = (".py", ".pyc", ".pl", ".pm", ".rb", ".js", ".sh", ".html", ".md", ".rst", ".txt")
SECRET = re.compile(
    # "passwd" alone is the account database's name (nsswitch.conf), not a setting
    r"^\s*(?!#|;)[^\n]*?(?P<key>[A-Za-z0-9_.-]*(password|secret|passphrase|cipher-pass|api[_-]?key|[_-]passwd|passwd[_-])"
    r"[A-Za-z0-9_.-]*)\s*[:=]\s*\S|(?P<pem>-----BEGIN [A-Z ]*PRIVATE KEY-----)",
    re.IGNORECASE,
)


def shipped_md5s() -> dict[str, str]:
    """Every file dpkg installed, with the md5 it shipped with (conffiles included)."""
    sums = {}
    info = "/var/lib/dpkg/info"
    for name in os.listdir(info):
        if name.endswith(".md5sums"):
            with open(os.path.join(info, name), errors="replace") as handle:
                for line in handle:
                    digest, _, path = line.strip().partition("  ")
                    sums["/" + path] = digest
    in_conffiles = False
    with open("/var/lib/dpkg/status", errors="replace") as handle:
        for line in handle:
            if line.startswith("Conffiles:"):
                in_conffiles = True
            elif in_conffiles and line.startswith(" /"):
                path, digest = line.split()[:2]
                sums[path] = digest
            else:
                in_conffiles = False
    return sums


def main() -> None:
    shipped = shipped_md5s()
    found = []
    for root in ROOTS:
        for directory, subdirs, files in os.walk(root):
            subdirs[:] = [d for d in subdirs if d not in CODE_DIRS and not os.path.join(directory, d).startswith(SKIP)]
            for name in files:
                path = os.path.join(directory, name)
                if name.endswith(CODE_SUFFIXES):
                    continue
                try:
                    info = os.lstat(path)
                    if not stat.S_ISREG(info.st_mode) or not info.st_mode & stat.S_IROTH or info.st_size > 2**21:
                        continue
                    with open(path, "rb") as handle:
                        data = handle.read()
                except OSError:
                    continue
                if b"\0" in data[:8192]:
                    continue  # binary
                if path in shipped and hashlib.md5(data).hexdigest() == shipped[path]:
                    continue  # as the package ships it
                for number, line in enumerate(data.decode(errors="replace").splitlines(), start=1):
                    match = SECRET.search(line)
                    if match:
                        found.append({"path": path, "line": number, "key": match["key"] or match["pem"]})
    print(json.dumps(found))


main()
