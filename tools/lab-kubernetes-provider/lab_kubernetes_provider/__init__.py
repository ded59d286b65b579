"""A lab-only stand-in for the upstream Pulumi Kubernetes provider (pulumi-kubernetes), which no
registry here ships. See ../README.md for what it does and does not do."""

# The upstream release whose behaviour it follows, with build metadata that says it is ours.
UPSTREAM_VERSION = "4.34.2"
VERSION = f"{UPSTREAM_VERSION}+govops.lab.1"
# The server-side apply field manager of every object it writes.
FIELD_MANAGER = "govops-lab-kubernetes-provider"
