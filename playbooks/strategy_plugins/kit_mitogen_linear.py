"""Mitogen's linear strategy, without Mitogen's CPU pinning, with Jinja's code cached on disk.

Mitogen pins its connection multiplexer to CPU 0 and everything else it starts (Ansible's
controller, every worker, every SSH client, and so every process those start) to the other CPUs.
On a 2-CPU machine that is CPU 1 alone: the controller, the workers and, through `podman run`
from `make lab-hosts`, every lab host and every service in it shared one CPU while the other
held an idle multiplexer (measured: `taskset -pc` showed 1 on all of them, vmstat half idle
with a run queue of 11). Without the pinning the kernel spreads the work over every CPU.

The templates each task worker compiles are cached on disk between runs: jinja_code_cache.py.

A task whose condition (`when`) is false on a host is skipped here, in the controller, without
forking a worker for it: see _skipped_here.
"""

from __future__ import annotations

import gc
import importlib.util
from pathlib import Path

import ansible_mitogen.affinity
import ansible_mitogen.loaders
import ansible_mitogen.strategy
from ansible._internal._display_utils import DeferredWarningContext
from ansible._internal._task import TaskContext
from ansible._internal._templating._engine import TemplateEngine
from ansible.executor.task_result import _RawTaskResult
from ansible.utils.display import Display

# The base policy assigns nothing: each process keeps the CPUs its parent had.
ansible_mitogen.affinity.policy = ansible_mitogen.affinity.Policy()

Linear = ansible_mitogen.loaders.strategy_loader.get("linear", class_only=True)

# Installed here, in the controller's process, so that every worker forked from it has it.
_spec = importlib.util.spec_from_file_location("kit_jinja_code_cache", Path(__file__).with_name("jinja_code_cache.py"))
jinja_code_cache = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(jinja_code_cache)
jinja_code_cache.install()

display = Display()


class StrategyModule(ansible_mitogen.strategy.StrategyMixin, Linear):
    """Ansible's linear strategy run over Mitogen's connections."""

    def _queue_task(self, host, task, task_vars, play_context):
        skipped = self._skipped_here(host, task, task_vars, play_context)
        if skipped is not None:
            display.vvv(f"{host.name}: skipped in the controller, without a worker: {task.get_name()}")
            # What a worker would have sent, in the order it would: the same callbacks, the same
            # result (and so the same output, stats and registered variable).
            self._queued_task_cache[(host.name, task._uuid)] = {
                "host": host,
                "task": task,
                "task_vars": task_vars,
                "play_context": play_context,
            }
            self._tqm.send_callback("v2_runner_on_start", host, task)
            self._final_q.send_task_result(
                _RawTaskResult(host=host, task=task, return_data=skipped, task_fields=task.dump_attrs())
            )
            self._pending_results += 1
            return None
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

    def _skipped_here(self, host, task, task_vars, play_context):
        """The result a worker would return for a task whose condition is false on this host, or
        None when the task must go to a worker: its condition is true, it loops (the condition
        is then evaluated per item), it is delegated, or anything is uncertain (an error or a
        warning while evaluating: the worker then reports it as it always did).

        A no-change converge of the lab skips 211 of its 816 host-tasks, each of which forked a
        worker from this large process only to evaluate one expression: 59 -> 45 s without those
        forks (the same lab, medians of 3; issue 18). The steps are
        the worker's own (TaskExecutor._execute_internal up to its condition), on the same
        variables; the task is only read and the play context is copied first.
        """
        if not task.when or task.loop is not None or task.loop_with or task.delegate_to:
            return None
        templar = TemplateEngine(loader=self._loader, variables=task_vars)
        try:
            with TaskContext(task), DeferredWarningContext(variables=task_vars) as warnings:
                context = play_context.set_task_and_variable_override(task=task, variables=task_vars, templar=templar)
                context.post_validate(templar=templar)
                if not context.remote_addr:
                    context.remote_addr = host.address
                condition_vars = task_vars.copy()
                context.update_vars(condition_vars)
                details = {}
                if task._resolve_conditional(task.when, condition_vars, result_context=details):
                    return None
                if warnings.get_warnings() or warnings.get_deprecation_warnings():
                    return None
                result = dict(changed=False, skipped=True, skip_reason="Conditional result was False") | details
                task.update_result_no_log(templar, result)
        except Exception:  # the worker evaluates it again and reports what went wrong
            return None
        return result
