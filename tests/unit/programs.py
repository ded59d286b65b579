"""Helpers for the unit tests that start one of the kit's programs as a process."""

from __future__ import annotations

import signal
import subprocess


def terminate(process: subprocess.Popen) -> str:
    """SIGTERM, and what the program wrote on stderr; a program that does not stop is killed and fails the test."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.communicate(timeout=10)[1] or ""
    except subprocess.TimeoutExpired:
        process.kill()
        err = process.communicate()[1] or ""
        raise AssertionError(f"still running 10 s after SIGTERM; stderr: {err}") from None
