"""The certificates the host's services use, with the days each has left.

Every PEM file holding a certificate under the given directories, except the system's trust
store. Only the first certificate of a file (the leaf, or the CA itself) is read.
Prints JSON: [{"path", "subject", "not_after", "days_left"}]."""

import datetime
import json
import os
import subprocess
import sys

ROOTS = sys.argv[1:] or ["/etc", "/var/lib", "/opt", "/srv"]
SKIP = ("/etc/ssl/certs", "/var/lib/dpkg", "/var/lib/apt", "/var/lib/postgresql/15/main/base")


def main() -> None:
    now = datetime.datetime.now(datetime.UTC)
    found = []
    for root in ROOTS:
        for directory, subdirs, files in os.walk(root):
            subdirs[:] = [d for d in subdirs if not os.path.join(directory, d).startswith(SKIP)]
            for name in files:
                path = os.path.join(directory, name)
                if not name.endswith((".crt", ".pem", ".cert")) or not os.path.isfile(path):
                    continue
                try:
                    with open(path, "rb") as handle:
                        if b"-----BEGIN CERTIFICATE-----" not in handle.read(1 << 20):
                            continue
                except OSError:
                    continue
                out = subprocess.run(
                    ["openssl", "x509", "-in", path, "-noout", "-enddate", "-subject", "-nameopt", "RFC2253"],
                    capture_output=True,
                    text=True,
                ).stdout
                fields = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
                not_after = datetime.datetime.strptime(fields["notAfter"], "%b %d %H:%M:%S %Y %Z").replace(
                    tzinfo=datetime.UTC
                )
                found.append(
                    {
                        "path": path,
                        "subject": fields.get("subject", ""),
                        "not_after": not_after.isoformat(),
                        "days_left": (not_after - now).days,
                    }
                )
    print(json.dumps(found))


main()
