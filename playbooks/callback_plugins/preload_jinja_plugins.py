"""Load Ansible's Jinja filters and tests once in the controller, before it forks task workers.

Every task on every host runs in a freshly forked worker process. A worker that templates a filter
or a test first imports and wraps every built-in filter and test plugin file, and that work dies
with the worker: a fifth of the workers' CPU in a no-change converge of the lab (py-spy). Loaded
here, in the controller's main process at the start of the playbook, the forked workers inherit
the loaded plugins. Nothing else changes: the same loader, the same plugins, the same lookups.
"""

from ansible.plugins.callback import CallbackBase
from ansible.plugins.loader import filter_loader, test_loader

DOCUMENTATION = """
name: preload_jinja_plugins
type: aggregate
short_description: load the Jinja filter and test plugins once, before the task workers fork
description:
  - Always on (no need to enable it); it prints nothing. A speed-up of the controller only.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "preload_jinja_plugins"
    CALLBACK_NEEDS_ENABLED = False

    def v2_playbook_on_start(self, playbook):
        for loader in (filter_loader, test_loader):
            # all() fills the loader's cache of the built-in and configured plugins (a generator)
            for _plugin in loader.all():
                pass
