"""The flags a running service was started with: its command line, and for etcd, which reads its
settings from ETCD_* variables, the environment its systemd unit gives it. What CIS Kubernetes
checks, read as kube-bench reads it.

The environment comes from the unit (Environment=, then EnvironmentFile=, which overrides it),
not from /proc/<pid>/environ: reading another user's environ needs CAP_SYS_PTRACE, which
containers drop. A file changed since the start shows up as drift in the same audit."""

from __future__ import annotations

import shlex


def process_flags(host, evidence, process: str) -> dict[str, str]:
    """{'--flag': 'value'} of the oldest process named `process` (a flag without a value maps to
    'true'); ETCD_FOO_BAR in its environment counts as --foo-bar where no flag sets it."""
    with host.sudo():
        # -f: the kernel's process name is cut at 15 characters (kube-controller)
        pid = host.check_output("pgrep -o -f %s", f"^(\\S*/)?{process}( |$)")
        cmdline = host.check_output("tr '\\0' '\\n' < /proc/%s/cmdline", pid).splitlines()
        unit = host.check_output("ps -o unit= -p %s", pid).strip()
        environment = shlex.split(host.check_output("systemctl show -p Environment --value %s", unit))
        files = host.check_output("systemctl show -p EnvironmentFiles --value %s", unit).split()
        for path in files[::2]:  # "/etc/default/etcd (ignore_errors=yes)" per file
            content = host.run("cat %s", path.lstrip("-")).stdout
            environment += [word for line in content.splitlines() if not line.lstrip().startswith("#")
                            for word in shlex.split(line)]  # fmt: skip
    flags: dict[str, str] = {}
    for variable in environment:
        name, _, value = variable.partition("=")
        if name.startswith("ETCD_"):
            flags["--" + name.removeprefix("ETCD_").lower().replace("_", "-")] = value
    for argument in cmdline[1:]:
        name, sep, value = argument.partition("=")
        if name.startswith("--"):
            flags[name] = value if sep else "true"
    evidence.note(
        f"{process} (pid {pid}, {unit}): /proc/{pid}/cmdline and the unit's environment {' '.join(files[::2])}",
        "\n".join(f"{name}={value}" for name, value in sorted(flags.items())),
    )
    return flags
