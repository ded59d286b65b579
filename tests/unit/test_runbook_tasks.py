"""The runbooks and their Fabric tasks, without a lab: every runbook names only tasks that exist and
has the six sections; the tasks read an environment's inventory as Ansible does and refuse what they
must (unknown environment or host, a host of the wrong group, a change without confirmation in a
non-interactive shell); a dry run changes nothing; each attempt is one line of the audit log; the
helper that makes HTTP requests on a host keeps passwords off command lines.

No test here reaches a host: staging and prod are example inventories of machines that do not exist,
and a test that would connect fails (`no_ssh`)."""

from __future__ import annotations

import datetime
import http.server
import io
import json
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from invoke import Context

REPO = Path(__file__).resolve().parents[2]
RUNBOOKS = REPO / "runbooks"
sys.path.insert(0, str(RUNBOOKS))
sys.path.insert(0, str(REPO / "tools"))

import fabfile  # noqa: E402
import health_table  # noqa: E402
from tasks import alerts, backup, core, db, host, k8s, sms  # noqa: E402

SECTIONS = ("Meaning", "Impact", "Diagnosis", "Mitigation", "Verification", "Escalation")
# `fab -r runbooks db.status --env prod`: the task is the first dotted word after `fab`.
TASK_MENTION = re.compile(r"\bfab\b(?:\s+-r\s+runbooks)?\s+([a-z][a-z0-9_-]*\.[a-z][a-z0-9_-]*)")
FAB = [str(REPO / ".venv/bin/fab"), "-r", str(RUNBOOKS)]
TASK_MODULES = (alerts, backup, db, host, k8s, sms)
KANNEL_FIXTURES = REPO / "tests/unit/fixtures/kannel"
PGBACKREST_FIXTURES = REPO / "tests/unit/fixtures/pgbackrest"


def task_names() -> set[str]:
    return set(fabfile.namespace.task_names)


def runbook_files() -> list[Path]:
    return sorted(path for path in RUNBOOKS.glob("*.md") if path.name != "README.md")


@pytest.fixture(autouse=True)
def audit_log(tmp_path, monkeypatch) -> Path:
    """Every test writes its audit lines to its own file, never to reports/."""
    path = tmp_path / "runbook-actions.log"
    monkeypatch.setattr(core, "AUDIT_LOG", path)
    return path


@pytest.fixture
def no_ssh(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("this test must not reach a host")

    for module in TASK_MODULES:
        if hasattr(module, "connect"):
            monkeypatch.setattr(module, "connect", refuse)
    monkeypatch.setattr(subprocess, "run", refuse)


@pytest.fixture
def non_interactive(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))


def audit_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# -- the runbooks -------------------------------------------------------------------------------


def test_every_runbook_names_only_tasks_that_exist():
    names = task_names()
    mentioned: dict[str, set[str]] = {}
    for path in [*runbook_files(), RUNBOOKS / "README.md"]:
        for task_name in TASK_MENTION.findall(path.read_text()):
            mentioned.setdefault(task_name, set()).add(path.name)
    unknown = {name: sorted(files) for name, files in mentioned.items() if name not in names}
    assert not unknown, f"runbooks name tasks that do not exist (fab -r runbooks --list): {unknown}"
    assert len(mentioned) >= 10, f"the runbooks name hardly any task: {sorted(mentioned)}"
    unused = sorted(names - set(mentioned))
    assert not unused, f"tasks no runbook mentions: {unused}"


def test_every_runbook_has_a_title_and_the_six_sections():
    problems = []
    for path in runbook_files():
        text = path.read_text()
        if not text.startswith("# "):
            problems.append(f"{path.name}: no title line")
        headings = re.findall(r"^## (\w+)", text, re.MULTILINE)
        if [heading for heading in headings if heading in SECTIONS] != list(SECTIONS):
            problems.append(f"{path.name}: sections {headings}, want {list(SECTIONS)} in this order")
        if "**Changes:**" not in text.split("## Mitigation", 1)[-1]:
            problems.append(f"{path.name}: no mitigation step marked **Changes:**")
    assert not problems, "\n".join(problems)


def test_the_index_lists_every_runbook():
    index = (RUNBOOKS / "README.md").read_text()
    missing = [path.name for path in runbook_files() if f"({path.name})" not in index]
    assert not missing, f"runbooks/README.md does not link {missing}"


def test_the_front_door_lists_the_tasks():
    listed = subprocess.run([*FAB, "--list"], capture_output=True, text=True, check=False, cwd=REPO, timeout=120)
    assert listed.returncode == 0, listed.stderr
    for name in ("db.status", "db.switchover", "sms.requeue", "alerts.silence", "host.restart", "k8s.status"):
        assert name in listed.stdout


# -- refusals through the front door --------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["db.status", "--env", "nowhere"], "Unknown environment 'nowhere'. Known environments: lab prod staging"),
        (
            ["sms.status", "--env", "staging", "--host", "sms9"],
            "Unknown host 'sms9' in staging. Known hosts: backup1 db1",
        ),
        (
            ["db.status", "--env", "staging", "--host", "sms1"],
            "db.status runs on the db group (db1, db2, db3); sms1 is in sms_gateway",
        ),
        (
            ["backup.status", "--env", "prod", "--host", "db1"],
            "backup.status runs on the backup group (backup1); db1 is in db",
        ),
        (["db.switchover", "--env", "prod", "--candidate", "mon1", "--dry-run"], "runs on the db group"),
        (["sms.suspend", "--env", "prod"], "sms.suspend acts on one gateway: say which with --host (sms1, sms2)"),
        (
            ["host.restart", "--env", "prod", "--host", "sms1", "--unit", "sshd"],
            "host.restart may restart govops-certificate-expiry, haproxy, kannel-bearerbox",
        ),
        (["host.free-logs", "--env", "prod", "--dry-run"], "host.free-logs acts on one host: say which with --host"),
        (
            ["host.free-logs", "--env", "prod", "--host", "sms1", "--journal-mb", "5", "--dry-run"],
            "--journal-mb 5: a whole number of MB, at least 50",
        ),
        (["backup.restore-drill", "--env", "prod", "--dry-run"], "runs in the lab only"),
        (["alerts.silence", "--env", "prod", "--alert", "HostDown", "--dry-run"], "--reason is required"),
        (
            ["k8s.status", "--env", "prod", "--service", "payroll"],
            "Unknown service 'payroll' in prod. Known services: cfm scorecard",
        ),
    ],
)
def test_bad_input_is_refused_before_anything_happens(args, message):
    result = subprocess.run(
        [*FAB, *args], capture_output=True, text=True, check=False, cwd=REPO, timeout=120, stdin=subprocess.DEVNULL
    )
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr


def test_fab_hosts_flag_is_refused():
    class Connection(Context):  # what `fab -H` hands a task
        pass

    with pytest.raises(core.Refused, match="not fab's -H"):
        db.status(Connection(), env="staging")


# -- the inventory, read as Ansible reads it ------------------------------------------------------


def test_lab_hosts_are_reached_as_ansible_reaches_them():
    db1 = core.Environment("lab").connection_of("db1")
    assert (db1.address, db1.port, db1.user) == ("127.0.0.1", 22201, "debian")
    assert db1.key_file == str(REPO / ".lab/ssh/id_ed25519")
    assert db1.known_hosts == str(REPO / ".lab/ssh/known_hosts")
    assert db1.strict_host_key_checking == "accept-new" and db1.identities_only
    assert db1.groups == ("db",)


def test_staging_hosts_use_their_address_the_deploy_user_and_checked_host_keys():
    sms2 = core.Environment("staging").connection_of("sms2")
    assert (sms2.address, sms2.port, sms2.user, sms2.key_file) == ("10.30.3.32", 22, "deploy", None)
    assert sms2.strict_host_key_checking == "yes" and sms2.known_hosts is None


def test_hosts_of_a_task_follow_the_groups():
    prod = core.Environment("prod")
    assert prod.hosts_for("sms.status", ["sms_gateway"], None) == ["sms1", "sms2"]
    assert prod.hosts_for("db.status", ["db"], "db3") == ["db3"]
    assert prod.group("restore_scratch") == []
    with pytest.raises(core.Refused, match="prod has no host in the restore_scratch group"):
        prod.hosts_for("drill", ["restore_scratch"], None)


def test_ssh_options_of_ansible_ssh_common_args():
    options = core._ssh_options("-o UserKnownHostsFile=.lab/ssh/known_hosts -oStrictHostKeyChecking=accept-new -C")
    assert options == {"userknownhostsfile": ".lab/ssh/known_hosts", "stricthostkeychecking": "accept-new"}


@pytest.fixture
def staging_with_test_vault(tmp_path) -> Path:
    """A copy of stacks/ with staging's vault: the test vault of tests/fixtures/vault (fake values)."""
    stacks = tmp_path / "stacks"
    shutil.copytree(REPO / "stacks/staging", stacks / "staging", ignore=shutil.ignore_patterns("vault.example.yml"))
    shutil.copy(REPO / "tests/fixtures/vault/staging.yml", stacks / "staging/group_vars/all/vault.yml")
    return stacks


def test_secrets_come_from_the_vault_with_the_password_ansible_playbook_would_use(staging_with_test_vault):
    environment = core.Environment(
        "staging",
        stacks=staging_with_test_vault,
        vault_password_files=[str(REPO / "tests/fixtures/vault/password.txt")],
    )
    password = environment.value("db2", "patroni", "patroni_restapi_password")
    assert password and "test" in password.lower()
    assert environment.connection_of("db2").address == "10.30.1.12"


def test_an_unopened_vault_is_refused_with_what_to_do(staging_with_test_vault):
    environment = core.Environment("staging", stacks=staging_with_test_vault)
    with pytest.raises(core.Refused, match="ANSIBLE_VAULT_PASSWORD_FILE"):
        environment.value("db2", "patroni", "patroni_restapi_password")


# -- changes: confirmation, dry run, audit log ---------------------------------------------------

CHANGES = [
    (db.switchover, {"env": "prod", "candidate": "db2"}),
    (backup.start, {"env": "prod", "type": "full"}),
    (backup.restore_drill, {"env": "lab"}),
    (sms.suspend, {"env": "prod", "host": "sms1"}),
    (sms.resume, {"env": "prod", "host": "sms1"}),
    (sms.stop_link, {"env": "prod", "host": "sms2", "link": "operator"}),
    (sms.start_link, {"env": "prod", "host": "sms2"}),
    (sms.requeue, {"env": "staging", "host": "sms1"}),
    (host.restart, {"env": "prod", "host": "db1", "unit": "patroni"}),
    (host.free_logs, {"env": "prod", "host": "sms2"}),
    (
        alerts.silence,
        {"env": "prod", "alert": "KannelQueueGrowing", "duration": "2h", "reason": "operator maintenance"},
    ),
    (alerts.unsilence, {"env": "prod", "silence_id": "8a4e7c1e-5f2b-4c1d-9a3e-0123456789ab"}),
]


@pytest.mark.parametrize(("change_task", "kwargs"), CHANGES, ids=[task.name for task, _ in CHANGES])
def test_a_dry_run_changes_nothing_and_is_logged(change_task, kwargs, no_ssh, non_interactive, audit_log, capsys):
    change_task(Context(), dry_run=True, **kwargs)
    out = capsys.readouterr().out
    assert "will:" in out and "Dry run: nothing changed." in out
    [line] = audit_lines(audit_log)
    assert line["result"] == "dry run: nothing changed" and line["environment"] == kwargs["env"]


@pytest.mark.parametrize(("change_task", "kwargs"), CHANGES, ids=[task.name for task, _ in CHANGES])
def test_a_change_needs_yes_in_a_non_interactive_shell(change_task, kwargs, no_ssh, non_interactive, audit_log):
    with pytest.raises(core.Refused, match="in a non-interactive shell say so with --yes") as refused:
        change_task(Context(), **kwargs)
    assert refused.value.code == 2
    [line] = audit_lines(audit_log)
    assert line["result"].startswith("refused")


def test_a_declined_confirmation_changes_nothing(monkeypatch, no_ssh, audit_log):
    tty = SimpleNamespace(isatty=lambda: True)
    monkeypatch.setattr(sys, "stdin", tty)
    monkeypatch.setattr("builtins.input", lambda prompt: "yes")  # not the environment's name
    with pytest.raises(core.Problem, match="nothing changed"):
        sms.resume(Context(), env="prod", host="sms2")
    assert audit_lines(audit_log)[0]["result"] == "declined by the operator"


class FakeHost:
    """A connection whose commands answer from a script: (pattern in the request, stdout)."""

    def __init__(self, name: str, answers: list[tuple[str, str]]) -> None:
        self.host, self.answers, self.commands = name, answers, []

    def run(self, command, **kwargs):
        stdin = kwargs["in_stream"].getvalue()
        self.commands.append((command, stdin))
        for pattern, stdout in self.answers:
            if pattern in command or pattern in stdin:
                return SimpleNamespace(exited=0, stdout=stdout, stderr="")
        raise AssertionError(f"unexpected command {command!r} {stdin!r}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def http_answer(status: int, body: str) -> str:
    return json.dumps({"status": status, "body": body}) + "\n"


def test_a_confirmed_change_runs_and_logs_who_what_where_and_the_result(monkeypatch, non_interactive, audit_log):
    suspended = (KANNEL_FIXTURES / "status-suspended-smsc-dead.xml").read_text()
    fake = FakeHost(
        "sms1", [("/suspend.txt", http_answer(200, "Kannel suspended")), ("/status.xml", http_answer(200, suspended))]
    )
    monkeypatch.setattr(sms, "connect", lambda target: fake)
    monkeypatch.setenv("SUDO_USER", "oncall-anna")
    sms.suspend(Context(), env="prod", host="sms1", yes=True)
    [line] = audit_lines(audit_log)
    assert line["user"] == "oncall-anna" and line["environment"] == "prod" and line["task"] == "sms.suspend"
    assert line["arguments"] == {"host": "sms1"}
    assert line["result"].startswith("done: sms1: Kannel suspended; bearerbox suspended")
    assert datetime.datetime.fromisoformat(line["time"]).tzinfo is not None
    command, stdin = fake.commands[0]
    assert command.startswith("sudo -n -- python3 -c ") and "password" not in command.split("-c", 1)[0]
    assert json.loads(stdin)["secret"] == {"conf": "/etc/kannel/kannel.conf", "key": "admin-password"}


def test_a_switchover_sends_the_vault_password_on_stdin_only(
    monkeypatch, non_interactive, audit_log, staging_with_test_vault
):
    environment = core.Environment(
        "staging",
        stacks=staging_with_test_vault,
        vault_password_files=[str(REPO / "tests/fixtures/vault/password.txt")],
    )
    monkeypatch.setattr(db, "Environment", lambda env: environment)
    monkeypatch.setattr(db.time, "sleep", lambda seconds: None)
    before = {
        "scope": "govops-pg",
        "members": [
            {"name": "db1", "role": "leader", "state": "running", "timeline": 4},
            {"name": "db2", "role": "sync_standby", "state": "streaming", "timeline": 4, "lag": 0},
            {"name": "db3", "role": "replica", "state": "streaming", "timeline": 4, "lag": 0},
        ],
    }
    after = {
        "scope": "govops-pg",
        "members": [
            {"name": "db2", "role": "leader", "state": "running", "timeline": 5},
            {"name": "db1", "role": "sync_standby", "state": "streaming", "timeline": 5, "lag": 0},
            {"name": "db3", "role": "replica", "state": "streaming", "timeline": 5, "lag": 0},
        ],
    }
    clusters = iter([before, after])
    fake = FakeHost("db1", [])

    def run(command, **kwargs):  # /cluster answers before, then after the switchover
        stdin = kwargs["in_stream"].getvalue()
        fake.commands.append((command, stdin))
        if "/cluster" in stdin:
            return SimpleNamespace(exited=0, stdout=http_answer(200, json.dumps(next(clusters))), stderr="")
        return SimpleNamespace(exited=0, stdout=http_answer(200, 'Successfully switched over to "db2"'), stderr="")

    fake.run = run
    monkeypatch.setattr(db, "connect", lambda target: fake)
    db.switchover(Context(), env="staging", candidate="db2", yes=True)
    password = environment.value("db1", "patroni", "patroni_restapi_password")
    [(post_command, post_stdin)] = [(c, s) for c, s in fake.commands if "/switchover" in s]
    assert password not in post_command
    request = json.loads(post_stdin)
    assert request["secret"] == {"value": password} and request["basic_user"] == "patroni"
    assert request["body"] == {"leader": "db1", "candidate": "db2"}
    [line] = audit_lines(audit_log)
    assert line["result"] == "done: db2 leads (was db1)" and password not in json.dumps(line)


def test_restarting_patroni_on_the_leader_is_refused(monkeypatch, non_interactive, audit_log):
    cluster = {"members": [{"name": "db1", "role": "leader", "state": "running"}]}
    monkeypatch.setattr(host.db, "read_cluster", lambda environment, hosts: ("db1", cluster))
    monkeypatch.setattr(host, "connect", lambda target: pytest.fail("must not restart"))
    with pytest.raises(core.Refused, match=r"db1 leads the cluster: run db\.switchover first"):
        host.restart(Context(), env="prod", host="db1", unit="patroni", yes=True)
    assert audit_lines(audit_log)[0]["result"].startswith("failed: db1 leads the cluster")


# -- silences -----------------------------------------------------------------------------------


def test_a_silence_has_matchers_an_end_a_reason_and_its_author(monkeypatch):
    monkeypatch.setenv("SUDO_USER", "oncall-bo")
    now = datetime.datetime(2026, 11, 29, 22, 0, tzinfo=datetime.UTC)
    body = alerts.silence_body("KannelSmscLinkOffline", ["instance=sms1"], "1d2h", " operator NOC ticket 4711 ", now)
    assert body["matchers"] == [
        {"name": "alertname", "value": "KannelSmscLinkOffline", "isRegex": False, "isEqual": True},
        {"name": "instance", "value": "sms1", "isRegex": False, "isEqual": True},
    ]
    assert (body["startsAt"], body["endsAt"]) == ("2026-11-29T22:00:00Z", "2026-12-01T00:00:00Z")
    assert body["createdBy"] == "oncall-bo" and body["comment"] == "operator NOC ticket 4711"


@pytest.mark.parametrize(
    ("alert", "labels", "duration", "reason", "message"),
    [
        ("HostDown", [], "8d", "x", "from 1 minute to 7 days"),
        ("HostDown", [], "soon", "x", "give it as 30m"),
        ("HostDown", ["instance"], "1h", "x", "give it as name=value"),
        ("hostdown", [], "1h", "x", "the alert's name"),
        ("HostDown", [], "1h", "  ", "--reason is required"),
    ],
)
def test_a_bad_silence_is_refused(alert, labels, duration, reason, message):
    with pytest.raises(core.Refused, match=re.escape(message)):
        alerts.silence_body(alert, labels, duration, reason, datetime.datetime.now(datetime.UTC))


# -- what the read-only tasks make of what the hosts answer -----------------------------------------


def test_kannel_status_page_of_a_healthy_and_an_unhealthy_gateway():
    online = sms.parse_status((KANNEL_FIXTURES / "status-online.xml").read_text())
    assert online["status"].startswith("running") and {link["id"] for link in online["links"]} == {"operator", "fake1"}
    assert sms.status_problems("sms1", online, ["operator"]) == []
    down = sms.parse_status((KANNEL_FIXTURES / "status-links-down.xml").read_text())
    problems = sms.status_problems("sms1", down, ["operator"])
    assert any("link operator is re-connecting" in p for p in problems)
    assert any("no smsbox is connected" in p for p in problems)
    with pytest.raises(ValueError, match="denied"):
        sms.parse_status((KANNEL_FIXTURES / "status-denied.xml").read_text())


def test_backup_age_and_job_results():
    [info] = json.loads((PGBACKREST_FIXTURES / "info-one-full.json").read_text())
    stop = info["backup"][-1]["timestamp"]["stop"]
    limits = {"full": 691200, "diff": 93600}
    units = backup.parse_units(
        "Id=pgbackrest-check.service\nResult=success\nExecMainStatus=0\nLoadState=loaded\n\n"
        "Id=pgbackrest-verify.service\nResult=exit-code\nExecMainStatus=1\nLoadState=loaded\n"
    )
    assert backup.backup_problems(info, {}, limits, stop + 3600) == []
    problems = backup.backup_problems(info, units, limits, stop + 10 * 86400)
    assert any("newest full backup is 10.0 days old" in p for p in problems)
    assert any("newest full or diff backup" in p for p in problems)
    assert any("pgbackrest-verify.service: last run exit-code (exit status 1)" in p for p in problems)
    [empty] = json.loads((PGBACKREST_FIXTURES / "info-no-backups.json").read_text())
    assert "no full backup in the repository" in backup.backup_problems(empty, {}, limits, stop)


def test_cluster_problems():
    healthy = {
        "members": [
            {"name": "db1", "role": "leader", "state": "running", "timeline": 2},
            {"name": "db2", "role": "sync_standby", "state": "streaming", "timeline": 2, "lag": 0},
            {"name": "db3", "role": "replica", "state": "streaming", "timeline": 2, "lag": 1024},
        ]
    }
    assert db.cluster_problems(healthy, ["db1", "db2", "db3"], synchronous=True) == []
    broken = {
        "members": [
            {"name": "db2", "role": "replica", "state": "starting", "timeline": 2, "lag": "unknown"},
            {"name": "db3", "role": "replica", "state": "streaming", "timeline": 1, "lag": 90 * 2**20},
        ]
    }
    problems = db.cluster_problems(broken, ["db1", "db2", "db3"], synchronous=True)
    assert problems[0].startswith("0 leaders") and "not in the cluster: db1" in problems
    assert any("db3 is 90.0 MB behind" in p for p in problems) and any("different timelines" in p for p in problems)
    assert "synchronous replication is on but no member is sync_standby" in problems


def test_disk_memory_and_certificates_of_a_host():
    disks = host.parse_df(
        "Filesystem Type 1-blocks Used Available Capacity Mounted on\n"
        "overlay overlay 100 97 3 97% /\ntmpfs tmpfs 10 0 10 0% /run\n/dev/sdb1 ext4 1000 100 900 10% /srv data\n"
    )
    assert [(d["mount"], d["available"]) for d in disks] == [("/", 3), ("/srv data", 900)]
    assert host.parse_meminfo("MemTotal: 1000 kB\nMemAvailable: 50 kB\n") == {
        "MemTotal": 1024000,
        "MemAvailable": 51200,
    }
    now = datetime.datetime(2026, 11, 29, tzinfo=datetime.UTC)
    certs = host.parse_certificates(
        "/etc/etcd/tls/member.crt|Dec  9 12:00:00 2026 GMT|CN=db1\n/etc/patroni/tls/bad.crt|unreadable|\n", now
    )
    assert round(certs[0]["days"]) == 10 and certs[0]["subject"] == "CN=db1" and certs[1]["days"] is None
    assert "kannel-bearerbox" in host.allowed_units(["sms_gateway"]) and "patroni" not in host.allowed_units(
        ["sms_gateway"]
    )


@pytest.mark.parametrize(
    ("path", "rotated"),
    [
        ("/var/log/kannel/bearerbox.log.1", True),
        ("/var/log/syslog.2.gz", True),
        ("/var/log/postgresql/postgresql-15-main.log-20261130", True),
        ("/var/log/pgbackrest/cfm-backup.log-20261130.xz", True),
        ("/var/log/kannel/access.log.old", True),
        ("/var/log/kannel/bearerbox.log", False),
        ("/var/log/postgresql/postgresql-15-main.log", False),
        ("/var/log/dpkg.log", False),
        ("/var/log/pgbackrest/cfm-archive-push-async.log", False),
    ],
)
def test_only_logs_logrotate_rotated_out_are_deleted(path, rotated):
    # find's posix-extended -regex matches the whole path, as fullmatch does
    assert bool(re.fullmatch(host.ROTATED_LOGS, path)) is rotated


def test_rotated_logs_are_listed_largest_first():
    listing = "120 /var/log/syslog.1\n125829120 /var/log/kannel/bearerbox.log.1\nnoise\n"
    assert host.parse_sizes(listing) == [(125829120, "/var/log/kannel/bearerbox.log.1"), (120, "/var/log/syslog.1")]


def test_deployment_readiness():
    ready = {
        "metadata": {"name": "web"},
        "spec": {"replicas": 2},
        "status": {"readyReplicas": 2, "conditions": [{"type": "Available", "status": "True"}]},
    }
    assert k8s.deployment_problems("cfm", ready) == []
    short = {"metadata": {"name": "web"}, "spec": {"replicas": 3}, "status": {"readyReplicas": 1}}
    assert k8s.deployment_problems("cfm", short) == ["cfm/web: 1 of 3 replicas ready"]


def test_kubectl_points_at_the_environments_cluster():
    lab = k8s.kubectl_command(core.Environment("lab"))
    assert f"--kubeconfig={REPO / '.lab/kubeconfig'}" in lab
    assert "--context=govops-prod" in k8s.kubectl_command(core.Environment("prod"))


# -- the HTTP helper that runs on the host ------------------------------------------------------------


class Recorder(http.server.BaseHTTPRequestHandler):
    seen: list = []  # noqa: RUF012 - shared with the test

    def do_GET(self):
        self.seen.append((self.path, self.headers.get("Authorization")))
        self.send_response(200 if "password=s%20cr%2Fet" in self.path else 401)
        self.end_headers()
        self.wfile.write(b"<gateway>ok</gateway>")

    do_POST = do_GET

    def log_message(self, *args):
        pass


@pytest.fixture
def local_server():
    server = http.server.HTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Recorder.seen.clear()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def remote_script(request: dict) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", core.HTTP_SCRIPT],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return json.loads(result.stdout)


def test_the_host_side_request_reads_its_secret_there(local_server, tmp_path):
    conf = tmp_path / "kannel.conf"
    conf.write_text('group = core\nadmin-port = 13000\nadmin-password = "s cr/et"\n')
    answer = remote_script(
        {
            "method": "GET",
            "url": f"{local_server}/status.xml?password={{secret}}",
            "secret": {"conf": str(conf), "key": "admin-password"},
        }
    )
    assert answer == {"status": 200, "body": "<gateway>ok</gateway>"}
    password_file = tmp_path / "status-password"
    password_file.write_text("s cr/et\n")
    assert (
        remote_script(
            {"method": "GET", "url": f"{local_server}/x?password={{secret}}", "secret": {"file": str(password_file)}}
        )["status"]
        == 200
    )
    remote_script(
        {
            "method": "POST",
            "url": f"{local_server}/switchover",
            "body": {"leader": "db1"},
            "basic_user": "patroni",
            "secret": {"value": "pw"},
        }
    )
    assert Recorder.seen[-1] == ("/switchover", "Basic cGF0cm9uaTpwdw==")
    missing = remote_script({"method": "GET", "url": f"{local_server}/", "secret": {"conf": str(conf), "key": "nope"}})
    assert missing == {"status": 0, "body": f"no nope in {conf}"}


def test_the_host_side_request_reports_an_unreachable_server():
    answer = remote_script({"method": "GET", "url": "http://127.0.0.1:9/status.xml", "timeout": 5})
    assert answer["status"] == 0 and "Connection refused" in answer["body"]


# -- make health's table ----------------------------------------------------------------------------


def test_the_health_table_has_every_host_and_component(tmp_path):
    junit = tmp_path / "health.xml"
    junit.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="tests.health.test_common" name="test_time_zone[ansible://db1]"/>'
        '<testcase classname="tests.health.test_common" name="test_time_zone[ansible://sms-edge1]"/>'
        '<testcase classname="tests.health.test_patroni" name="test_router[ansible://db1-cfm]">'
        '<failure message="x"/></testcase>'
        '<testcase classname="tests.health.test_patroni" name="test_api[ansible://db1]"/>'
        '<testcase classname="tests.health.test_kannel" name="test_links[ansible://sms-edge1]"><skipped/></testcase>'
        "</testsuite></testsuites>"
    )
    cells = health_table.results(junit, ["db1", "sms-edge1", "mon1"])
    text = health_table.render(cells, "prod")
    lines = text.splitlines()
    assert lines[0] == "Health of prod: 3 hosts x 3 components, unhealthy: db1"
    assert lines[1].split() == ["host", "common", "kannel", "patroni"]
    assert lines[2].split() == ["db1", "ok", "FAIL", "1/2"]
    assert lines[3].split() == ["mon1"]
    assert lines[4].split() == ["sms-edge1", "ok", "skip"]
    assert health_table.main([str(tmp_path / "missing.xml")]) == 0
