"""tests/host_session.py: one agent per host runs every command of the checks; here the agent runs
locally (its launch line is `python3 -c ...` instead of `ssh host python3 -c ...`)."""

from __future__ import annotations

import pytest
from testinfra.backend.ssh import SshBackend

from tests.host_session import AGENT_COMMAND, HostSession, share_one_session


@pytest.fixture
def session():
    return HostSession("local", AGENT_COMMAND)


def test_exit_status_and_both_outputs_come_back_byte_for_byte(session):
    rc, stdout, stderr = session.run("printf 'a\\000b\\n\\342\\202\\254'; echo oops >&2; exit 3")
    assert (rc, stdout, stderr) == (3, b"a\x00b\n\xe2\x82\xac", b"oops\n")


def test_commands_share_one_process_and_do_not_read_its_input(session):
    first = session.run("echo $PPID")[1]
    # `cat` would wait forever on the agent's own input; it gets nothing and ends
    assert session.run("cat") == (0, b"", b"")
    assert session.run("echo $PPID")[1] == first


def test_a_session_that_cannot_start_names_the_host_and_says_why():
    broken = HostSession("db9", "echo 'ssh: connect to host db9 port 22: Connection refused' >&2; exit 255")
    with pytest.raises(RuntimeError, match=r"db9: the shell session ended \(exit 255\): ssh: connect to host db9"):
        broken.run("true")


def test_an_ended_session_is_started_again_at_the_next_command(session):
    with pytest.raises(RuntimeError, match="local: the shell session ended"):
        session.run("kill -9 $PPID")
    assert session.run("echo back") == (0, b"back\n", b"")


@pytest.mark.parametrize(("sudo", "agent_as_root"), [(True, True), (False, False)])
def test_the_agent_runs_as_root_where_testinfra_would_wrap_each_command_in_sudo(sudo, agent_as_root):
    backend = SshBackend("admin@db1:2201", sudo=sudo, ssh_extra_args="-o ControlPath=/tmp/cp/%C")
    share_one_session(backend, "db1")
    launch = backend.session.launch
    assert launch.startswith("ssh -o ControlPath=/tmp/cp/%C") and "-o User=admin" in launch and "-o Port=2201" in launch
    assert ("'sudo -n python3 -u -c " in launch) is agent_as_root
    assert backend.session.name == "db1"  # errors name the inventory host, not its address
    backend.session.launch = AGENT_COMMAND  # the same agent, run here
    result = backend.run("printf %s", "two words; $(no expansion)")
    assert result.stdout == "two words; $(no expansion)"
    # as root the command goes as given; otherwise testinfra's own text (no sudo here either)
    assert result.command == b"printf 'two words; $(no expansion)'"
