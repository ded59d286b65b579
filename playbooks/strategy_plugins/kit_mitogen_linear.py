"""Mitogen's linear strategy, without Mitogen's CPU pinning, with Jinja's code cached on disk.

Mitogen pins its connection multiplexer to CPU 0 and everything else it starts (Ansible's
controller, every worker, every SSH client, and so every process those start) to the other CPUs.
On a 2-CPU machine that is CPU 1 alone: the controller, the workers and, through `podman run`
from `make lab-hosts`, every lab host and every service in it shared one CPU while the other
held an idle multiplexer (measured: `taskset -pc` showed 1 on all of them, vmstat half idle
with a run queue of 11). Without the pinning the kernel spreads the work over every CPU.

The templates each task worker compiles are cached on disk between runs: jinja_code_cache.py.
"""

from __future__ import annotations

import gc
import importlib.util
from pathlib import Path

import ansible_mitogen.affinity
import ansible_mitogen.loaders
import ansible_mitogen.strategy

# The base policy assigns nothing: each process keeps the CPUs its parent had.
ansible_mitogen.affinity.policy = ansible_mitogen.affinity.Policy()

Linear = ansible_mitogen.loaders.strategy_loader.get("linear", class_only=True)

# Installed here, in the controller's process, so that every worker forked from it has it.
_spec = importlib.util.spec_from_file_location("kit_jinja_code_cache", Path(__file__).with_name("jinja_code_cache.py"))
jinja_code_cache = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(jinja_code_cache)
jinja_code_cache.install()


class StrategyModule(ansible_mitogen.strategy.StrategyMixin, Linear):
    """Ansible's linear strategy run over Mitogen's connections."""

    def _queue_task(self, host, task, task_vars, play_context):
        # Each task on each host runs in a worker forked from this process. The worker starts with
        # the garbage collector off: a collection would walk (and so copy, page by page) the whole
        # heap it inherits, and a worker lives for one task, its memory freed when it exits. This
        # process freezes its objects while it forks and collects as before once the worker runs.
        # Measured on no-change converges of the lab: on one lab 53 s instead of 72-77 (user CPU
        # 37 s instead of 52); on a freshly built one 64-70 s instead of 69 (issue 18 has both).
        gc.disable()
        gc.freeze()
        try:
            return super()._queue_task(host, task, task_vars, play_context)
        finally:
            gc.unfreeze()
            gc.enable()
