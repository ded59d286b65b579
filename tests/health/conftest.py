"""The health checks' pytest settings: --components, and each check only on its groups' hosts.

The same test files run as a role's molecule verify step and as `make health ENV=...`. The hosts,
their variables and host_http come from tests/host_checks.py, shared with tests/compliance.
"""

from __future__ import annotations

from tests.host_checks import host, host_in_module_groups, inventory, make_control_path_dir, role_vars

__all__ = ["host", "inventory", "role_vars"]  # fixtures, shared with tests/compliance


def pytest_configure(config):
    make_control_path_dir()


def pytest_addoption(parser):
    parser.addoption(
        "--components",
        default="",
        help="comma-separated health modules to run (test_<name>.py); default all (molecule names its own)",
    )


def pytest_collection_modifyitems(config, items):
    """Run each check only where it belongs: the module's `testinfra_hosts` names inventory groups
    (ansible://group), and --components (molecule) names the modules to run."""
    wanted = {name for name in config.getoption("components").split(",") if name}
    inventory = config.getoption("ansible_inventory")
    keep = []
    for item in items:
        if wanted and item.path.stem.removeprefix("test_") not in wanted:
            continue
        if inventory and not host_in_module_groups(item, inventory):
            continue
        keep.append(item)
    config.hook.pytest_deselected(items=[item for item in items if item not in keep])
    items[:] = keep
