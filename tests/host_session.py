"""One shell session per host for the health checks and compliance controls, where testinfra's
ssh backend opens a new SSH session for each command.

A check runs a few commands; a health run of the lab about a thousand. Each one through testinfra
costs a local shell, an SSH session on the shared connection and the login's PAM session on the
host: about 25 ms before the command itself starts. Here one small Python process per host (and
per pytest worker), started over that same SSH connection, runs each command with /bin/sh -c and
sends back the exit status and both outputs.
"""

from __future__ import annotations

import base64
import json
import shlex
import subprocess
import tempfile
import weakref

from testinfra.backend.base import CommandResult
from testinfra.backend.ssh import SshBackend

# Runs on the host, as the SSH login: one JSON line in (the command), one JSON line out.
AGENT = (
    "import base64, json, subprocess, sys\n"
    "for line in sys.stdin:\n"
    "    done = subprocess.run(['/bin/sh', '-c', json.loads(line)], stdin=subprocess.DEVNULL, capture_output=True)\n"
    "    answer = [done.returncode, base64.b64encode(done.stdout).decode(), base64.b64encode(done.stderr).decode()]\n"
    "    sys.stdout.write(json.dumps(answer) + '\\n')\n"
    "    sys.stdout.flush()\n"
)
AGENT_COMMAND = "python3 -u -c " + shlex.quote(AGENT)


class HostSession:
    """Commands run one after another in one long-lived agent, started by `launch` (a local shell
    command line). The agent is started at the first command and ends with this object."""

    def __init__(self, name: str, launch: str) -> None:
        self.name = name
        self.launch = launch
        self._agent: subprocess.Popen | None = None

    def _start(self) -> subprocess.Popen:
        # ssh's own messages go to a file: a pipe nobody reads while the session lasts could fill
        # and stop ssh; they are read only when the session ends.
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the session)
        agent = subprocess.Popen(
            self.launch, shell=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._errors
        )
        weakref.finalize(self, _stop, agent)
        return agent

    def run(self, command: str) -> tuple[int, bytes, bytes]:
        """(exit status, stdout, stderr) of `command` run with /bin/sh -c on the host."""
        if self._agent is None or self._agent.poll() is not None:
            self._agent = self._start()
        agent = self._agent
        try:
            agent.stdin.write(json.dumps(command).encode() + b"\n")
            agent.stdin.flush()
            line = agent.stdout.readline()
        except BrokenPipeError:
            line = b""
        if not line:
            self._agent = None
            _stop(agent)
            self._errors.seek(0)
            why = self._errors.read().decode(errors="replace").strip()[-2000:]
            raise RuntimeError(f"{self.name}: the shell session ended (exit {agent.returncode}): {why}")
        rc, stdout, stderr = json.loads(line)
        return rc, base64.b64decode(stdout), base64.b64decode(stderr)


def _stop(agent: subprocess.Popen) -> None:
    """End of input ends the agent; its SSH session closes with it."""
    if agent.poll() is None:
        try:
            agent.stdin.close()
            agent.wait(timeout=10)
        except (BrokenPipeError, subprocess.TimeoutExpired):
            agent.kill()
            agent.wait()


def share_one_session(backend: SshBackend, name: str) -> None:
    """Make testinfra's ssh `backend` (inventory host `name`) run its commands through one
    HostSession, started with its SSH command line (same options and login). Where the backend
    would wrap each command in `sudo /bin/sh -c` (Ansible's become, to root), the agent itself is
    started with `sudo -n` and runs the command as given: sudo's PAM session and log line cost
    11 ms a command."""
    if getattr(backend, "session", None) is not None:
        return
    as_root = bool(backend.sudo) and backend.sudo_user in (None, "root")
    ssh, arguments = backend._build_ssh_command(("sudo -n " if as_root else "") + AGENT_COMMAND)
    session = HostSession(name, backend.quote(" ".join(ssh), *arguments))

    def run(command: str, *args: str, **kwargs) -> CommandResult:
        text = backend.quote(command, *args) if as_root else backend.get_command(command, *args)
        rc, stdout, stderr = session.run(text)
        return backend.result(rc, backend.encode(text), stdout, stderr)

    backend.session = session
    backend.run = run
