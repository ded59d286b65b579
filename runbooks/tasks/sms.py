"""The SMS gateways: Kannel's bearerbox and smsbox on each sms_gateway host, read and driven through
bearerbox's admin HTTP interface on the host itself (kannel_admin_port; passwords read on the host).

Kannel 1.4.5's admin commands: status, store-status, log-level, shutdown, suspend, isolate, resume,
restart, graceful-restart, flush-dlr, stop-smsc, start-smsc, add-smsc, remove-smsc, reload-lists,
remove-message. There is no "requeue". stop-smsc followed by start-smsc looks like one, but a stopped
link is unusable to bearerbox's router: with no other link allowed for its messages (each node here
has one link, operator), the messages the link held go back to bearerbox's queue, find no link and
are rejected, and so is every new message for the link until it is started again. So sms.requeue
restarts bearerbox instead (kannel-bearerbox; smsbox follows): every message the SMSC has not
acknowledged is in the spool store and is sent again once the link is bound.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET

from invoke import task

from .core import (
    Environment,
    Problem,
    Refused,
    Unreachable,
    change,
    connect,
    http_on_host,
    no_fabric_hosts,
    run,
    table,
    verdict,
)

GROUP = "sms_gateway"
ROLE = "kannel"
UNITS = ("kannel-bearerbox", "kannel-smsbox", "haproxy", "kannel-exporter")
LINK_WAIT_SECONDS = 90
# KannelQueueGrowing fires when the store holds more than this and keeps growing.
STORE_ALERT_SIZE = 100


def _text(element, path: str, default: str = "") -> str:
    found = element.find(path) if element is not None else None
    return (found.text or "").strip() if found is not None and found.text is not None else default


def parse_status(xml_text: str) -> dict:
    """The parts of bearerbox's status.xml that on-call staff read (Kannel 1.4.5's format)."""
    root = ET.fromstring(xml_text)
    if root.tag == "gateway" and (root.text or "").strip() == "Denied":
        raise ValueError("the status page denied the password")
    sms = root.find("sms")
    links = []
    for smsc in root.iter("smsc"):
        links.append(
            {
                "id": _text(smsc, "id"),
                "name": _text(smsc, "name"),
                "status": _text(smsc, "status"),
                "queued": _text(smsc, "queued", "0"),
                "failed": _text(smsc, "failed", "0"),
                "sent": _text(smsc, "sms/sent", "0"),
                "received": _text(smsc, "sms/received", "0"),
                "outbound": _text(smsc, "sms/outbound"),
                "dlr_received": _text(smsc, "dlr/received", "0"),
            }
        )
    boxes = [
        {
            "type": _text(box, "type"),
            "id": _text(box, "id"),
            "queue": _text(box, "queue"),
            "status": _text(box, "status"),
        }
        for box in root.iter("box")
    ]
    return {
        "status": _text(root, "status"),
        "sent": _text(sms, "sent/total", "0"),
        "sent_queued": _text(sms, "sent/queued", "0"),
        "received": _text(sms, "received/total", "0"),
        "received_queued": _text(sms, "received/queued", "0"),
        "store": _text(sms, "storesize", "0"),
        "outbound": _text(sms, "outbound"),
        "inbound": _text(sms, "inbound"),
        "dlr_queued": _text(root, "dlr/queued", "0"),
        "links": links,
        "boxes": boxes,
    }


def status_problems(host: str, status: dict, link_ids: list[str]) -> list[str]:
    problems = []
    if not status["status"].startswith("running"):
        problems.append(f"{host}: bearerbox is {status['status']!r}, not running")
    for link_id in link_ids:
        states = [link["status"] for link in status["links"] if link["id"] == link_id]
        if not states:
            problems.append(f"{host}: link {link_id} is not in bearerbox's status page")
        elif not all(state.startswith("online") for state in states):
            problems.append(f"{host}: link {link_id} is {', '.join(states)}")
    if not any(box["type"] == "smsbox" for box in status["boxes"]):
        problems.append(f"{host}: no smsbox is connected to bearerbox (sendsms cannot work)")
    if int(status["store"] or 0) > STORE_ALERT_SIZE:
        problems.append(f"{host}: {status['store']} messages wait in the store")
    return problems


def read_status(conn, kannel) -> dict:
    secret = (
        {"file": kannel["__kannel_exporter_password_file"]}
        if kannel["kannel_exporter_enabled"]
        else {"conf": kannel["__kannel_config"], "key": "status-password"}
    )
    answer = http_on_host(
        conn, "GET", f"http://127.0.0.1:{kannel['kannel_admin_port']}/status.xml?password={{secret}}", secret=secret
    )
    if answer.status != 200:
        raise Problem(f"bearerbox's status page answered {answer.status or 'nothing'}: {answer.body[:200]}")
    return parse_status(answer.body)


def admin(conn, kannel, command: str, **params: str) -> str:
    """One of bearerbox's admin commands, with the admin password read from kannel.conf on the host."""
    query = "".join(f"{key}={value}&" for key, value in params.items())
    answer = http_on_host(
        conn,
        "GET",
        f"http://127.0.0.1:{kannel['kannel_admin_port']}/{command}.txt?{query}password={{secret}}",
        secret={"conf": kannel["__kannel_config"], "key": "admin-password"},
    )
    text = answer.body.strip()
    if answer.status != 200 or text.startswith("Denied"):
        raise Problem(f"bearerbox refused {command} ({answer.status}): {text[:200]}")
    return text


def print_status(host: str, status: dict, units: dict[str, str]) -> None:
    print(f"== {host}: bearerbox {status['status']}")
    print("   units: " + ", ".join(f"{unit} {state}" for unit, state in units.items()))
    print(
        f"   SMS sent {status['sent']} (queued {status['sent_queued']}), received {status['received']}"
        f" (queued {status['received_queued']}), store {status['store']}, DLRs queued {status['dlr_queued']};"
        f" msg/s out {status['outbound'] or '-'}, in {status['inbound'] or '-'}"
    )
    rows = [
        [
            link["id"],
            link["status"],
            link["queued"],
            link["failed"],
            link["sent"],
            link["received"],
            link["dlr_received"],
            link["outbound"],
            link["name"],
        ]
        for link in status["links"]
    ]
    print(table(["link", "status", "queued", "failed", "sent", "received", "DLRs in", "msg/s out", "name"], rows))
    boxes = ", ".join(f"{box['type']} {box['status']} (queue {box['queue']})" for box in status["boxes"]) or "none"
    print(f"   boxes: {boxes}")


def _unit_states(conn) -> dict[str, str]:
    states = run(conn, ["systemctl", "is-active", *UNITS]).stdout.split()
    return dict(zip(UNITS, states, strict=False))


@task(auto_shortflags=False, help={"env": "environment (stacks/<env>)", "host": "one gateway (default: all)"})
def status(c, env="lab", host=None):
    """Read-only: each gateway's SMPP links, queues, store and throughput (Kannel's status page)."""
    no_fabric_hosts(c)
    environment = Environment(env)
    problems = []
    for name in environment.hosts_for("sms.status", [GROUP], host):
        kannel = environment.role_vars(name, ROLE)
        link_ids = environment.fields(name, ROLE, "kannel_smsc_links", "id")
        try:
            with connect(environment.connection_of(name)) as conn:
                units = _unit_states(conn)
                gateway = read_status(conn, kannel)
        except (Unreachable, Problem, ValueError, ET.ParseError) as error:
            problems.append(f"{name}: {getattr(error, 'message', None) or error}")
            continue
        print_status(name, gateway, units)
        problems += [f"{name}: {unit} is {state}" for unit, state in units.items() if state != "active"]
        problems += status_problems(name, gateway, link_ids)
    verdict(problems, "every link is online, bearerbox runs, an smsbox is connected")


def _gateway(env: str, task_name: str, host: str | None) -> tuple[Environment, str]:
    environment = Environment(env)
    if not host:
        gateways = environment.group(GROUP)
        raise Refused(f"{task_name} acts on one gateway: say which with --host ({', '.join(gateways)})")
    return environment, environment.hosts_for(task_name, [GROUP], host)[0]


def _link(environment: Environment, host: str, link: str | None, task_name: str) -> str:
    ids = environment.fields(host, ROLE, "kannel_smsc_links", "id")
    if link is None and len(ids) == 1:
        return ids[0]
    if link not in ids:
        raise Refused(f"{task_name}: --link must be one of {host}'s links: {', '.join(ids) or 'none'}")
    return link


def _wait_online(conn, kannel, link_ids: list[str], seconds: int) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        try:
            status = read_status(conn, kannel)
            states = [link["status"] for link in status["links"] if link["id"] in link_ids]
            if states and all(state.startswith("online") for state in states):
                return status
        except (Problem, ValueError, ET.ParseError):
            status = None
        if time.monotonic() > deadline:
            raise Problem(
                f"the link(s) {', '.join(link_ids)} are not online after {seconds} s"
                " (runbooks/KannelSmscLinkOffline.md)"
            )
        time.sleep(3)


_CHANGE_HELP = {
    "env": "environment (stacks/<env>)",
    "host": "the gateway (an sms_gateway host)",
    "yes": "do not ask for confirmation (needed in a non-interactive shell)",
    "dry_run": "print what would be done and change nothing",
}


@task(auto_shortflags=False, help=_CHANGE_HELP)
def suspend(c, env="lab", host=None, yes=False, dry_run=False):
    """Changes: pause the whole gateway (bearerbox /suspend): nothing in or out, queued messages wait."""
    no_fabric_hosts(c)
    environment, name = _gateway(env, "sms.suspend", host)
    port = environment.value(name, ROLE, "kannel_admin_port")
    plan = [
        f"GET http://127.0.0.1:{port}/suspend on {name} with the admin password read from kannel.conf there",
        "bearerbox keeps its links bound but takes no message from smsbox or the SMSC until sms.resume",
    ]

    def act() -> str:
        with connect(environment.connection_of(name)) as conn:
            kannel = environment.role_vars(name, ROLE)
            reply = admin(conn, kannel, "suspend")
            state = read_status(conn, kannel)["status"]
        return f"{name}: {reply}; bearerbox {state}"

    warning = (
        "sendsms requests to this gateway wait instead of being queued; the CFM service's client sends through"
        " the other gateway when they time out (the guard answers 504 after 30 s)"
    )
    change(env, "sms.suspend", {"host": name}, plan, act, yes=yes, dry_run=dry_run, warning=warning)


@task(auto_shortflags=False, help=_CHANGE_HELP)
def resume(c, env="lab", host=None, yes=False, dry_run=False):
    """Changes: resume a suspended gateway (bearerbox /resume)."""
    no_fabric_hosts(c)
    environment, name = _gateway(env, "sms.resume", host)
    port = environment.value(name, ROLE, "kannel_admin_port")
    plan = [f"GET http://127.0.0.1:{port}/resume on {name} with the admin password read from kannel.conf there"]

    def act() -> str:
        with connect(environment.connection_of(name)) as conn:
            kannel = environment.role_vars(name, ROLE)
            reply = admin(conn, kannel, "resume")
            state = read_status(conn, kannel)["status"]
        return f"{name}: {reply}; bearerbox {state}"

    change(env, "sms.resume", {"host": name}, plan, act, yes=yes, dry_run=dry_run)


_LINK_HELP = _CHANGE_HELP | {"link": "the link's smsc-id (default: the host's only link)"}


@task(auto_shortflags=False, help=_LINK_HELP)
def stop_link(c, env="lab", host=None, link=None, yes=False, dry_run=False):
    """Changes: unbind one SMPP link (bearerbox /stop-smsc); its messages are rejected while it is stopped."""
    no_fabric_hosts(c)
    environment, name = _gateway(env, "sms.stop-link", host)
    link_id = _link(environment, name, link, "sms.stop-link")
    port = environment.value(name, ROLE, "kannel_admin_port")
    plan = [f"GET http://127.0.0.1:{port}/stop-smsc?smsc={link_id} on {name} (admin password read there)"]
    warning = (
        f"while {link_id} is stopped, {name} rejects every message for it, also those it had queued (a failed"
        " delivery report, 'Not routable' to sendsms): use it only when the operator asks for the bind to go,"
        " and prefer sms.suspend to pause a gateway"
    )

    def act() -> str:
        with connect(environment.connection_of(name)) as conn:
            return f"{name}: {admin(conn, environment.role_vars(name, ROLE), 'stop-smsc', smsc=link_id)}"

    change(env, "sms.stop-link", {"host": name, "link": link_id}, plan, act, yes=yes, dry_run=dry_run, warning=warning)


@task(auto_shortflags=False, help=_LINK_HELP)
def start_link(c, env="lab", host=None, link=None, yes=False, dry_run=False):
    """Changes: bind a stopped SMPP link again (bearerbox /start-smsc) and wait until it is online."""
    no_fabric_hosts(c)
    environment, name = _gateway(env, "sms.start-link", host)
    link_id = _link(environment, name, link, "sms.start-link")
    port = environment.value(name, ROLE, "kannel_admin_port")
    plan = [
        f"GET http://127.0.0.1:{port}/start-smsc?smsc={link_id} on {name} (admin password read there)",
        f"wait up to {LINK_WAIT_SECONDS} s until {link_id} is online",
    ]

    def act() -> str:
        with connect(environment.connection_of(name)) as conn:
            kannel = environment.role_vars(name, ROLE)
            reply = admin(conn, kannel, "start-smsc", smsc=link_id)
            status = _wait_online(conn, kannel, [link_id], LINK_WAIT_SECONDS)
        return f"{name}: {reply}; {link_id} online, store {status['store']}"

    change(env, "sms.start-link", {"host": name, "link": link_id}, plan, act, yes=yes, dry_run=dry_run)


@task(auto_shortflags=False, help=_CHANGE_HELP)
def requeue(c, env="lab", host=None, yes=False, dry_run=False):
    """Changes: send again every message the SMSC has not acknowledged (restart bearerbox; its store is kept)."""
    no_fabric_hosts(c)
    environment, name = _gateway(env, "sms.requeue", host)
    plan = [
        f"systemctl restart kannel-bearerbox on {name} (smsbox restarts with it)",
        "bearerbox reloads its spool store: every message the SMSC has not acknowledged is sent again",
        f"wait up to {LINK_WAIT_SECONDS} s until every link of {name} is online",
    ]
    warning = (
        f"for a few seconds {name}'s sendsms answers 503 (the CFM service sends through the other gateway);"
        " a message the SMSC took but had not acknowledged may reach the citizen twice"
    )

    def act() -> str:
        with connect(environment.connection_of(name)) as conn:
            kannel = environment.role_vars(name, ROLE)
            before = read_status(conn, kannel)["store"]
            restarted = run(conn, ["systemctl", "restart", "kannel-bearerbox"], timeout=90)
            if restarted.exited != 0:
                raise Problem(f"systemctl restart kannel-bearerbox failed on {name}: {restarted.stderr.strip()}")
            link_ids = environment.fields(name, ROLE, "kannel_smsc_links", "id")
            status = _wait_online(conn, kannel, link_ids, LINK_WAIT_SECONDS)
        return f"{name}: bearerbox restarted, store {before} -> {status['store']}, links online"

    change(env, "sms.requeue", {"host": name}, plan, act, yes=yes, dry_run=dry_run, warning=warning)
