"""The database cluster: Patroni on the db hosts (REST API on patroni_restapi_port, TLS)."""

from __future__ import annotations

import time

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
    table,
    verdict,
)

GROUP = "db"
ROLE = "patroni"
# The lag make health accepts for a replica (tests/health/test_patroni.py).
HEALTHY_LAG_BYTES = 16 * 1024 * 1024
SWITCHOVER_WAIT_SECONDS = 90


def read_cluster(environment: Environment, hosts: list[str]) -> tuple[str, dict]:
    """Patroni's view of the cluster (GET /cluster, open without password), from the first of
    `hosts` whose REST API answers: (that host, the answer)."""
    failures = []
    for name in hosts:
        patroni = environment.role_vars(name, ROLE)
        try:
            conn = connect(environment.connection_of(name))
        except Unreachable as error:
            failures.append(f"unreachable: {error}")
            continue
        try:
            with conn:
                answer = http_on_host(
                    conn, "GET", f"https://{name}:{patroni['patroni_restapi_port']}/cluster", cafile=_ca(patroni)
                )
        except Problem as error:
            failures.append(f"{name}: {error.message}")
            continue
        if answer.status == 200:
            return name, answer.json()
        failures.append(f"{name}: REST API answered {answer.status or 'nothing'}: {answer.body[:200]}")
    raise Problem("no member's REST API answered (see runbooks/PatroniApiDown.md): " + "; ".join(failures))


def _ca(patroni) -> str:
    return f"{patroni['__patroni_tls_dir']}/ca.crt"


def _lag(member: dict) -> str:
    lag = member.get("lag")
    if member.get("role") == "leader" or lag is None:
        return ""
    if isinstance(lag, int | float):
        return f"{lag / 1024 / 1024:.1f} MB"
    return str(lag)


def cluster_problems(cluster: dict, expected: list[str], synchronous: bool) -> list[str]:
    members = cluster.get("members", [])
    problems = []
    leaders = [m["name"] for m in members if m.get("role") == "leader"]
    if len(leaders) != 1:
        problems.append(f"{len(leaders)} leaders ({', '.join(leaders) or 'none'}): exactly one must lead")
    missing = sorted(set(expected) - {m["name"] for m in members})
    if missing:
        problems.append(f"not in the cluster: {', '.join(missing)}")
    for member in members:
        if member.get("role") == "leader":
            if member.get("state") != "running":
                problems.append(f"leader {member['name']} is {member.get('state')}")
            continue
        if member.get("state") not in ("streaming", "running"):
            problems.append(f"{member['name']} is {member.get('state')}, not streaming")
        lag = member.get("lag")
        if not isinstance(lag, int | float):
            problems.append(f"{member['name']}: lag {lag!r} (not replicating)")
        elif lag > HEALTHY_LAG_BYTES:
            problems.append(f"{member['name']} is {lag / 1024 / 1024:.1f} MB behind the leader")
    timelines = {m.get("timeline") for m in members if m.get("timeline") is not None}
    if len(timelines) > 1:
        problems.append(f"members on different timelines: {sorted(timelines)}")
    if synchronous and len(expected) > 1 and not any(m.get("role") == "sync_standby" for m in members):
        problems.append("synchronous replication is on but no member is sync_standby")
    return problems


def print_cluster(cluster: dict, source: str) -> None:
    print(f"Cluster {cluster.get('scope', '')} as member {source} reads it from the DCS:")
    rows = [
        [m["name"], m.get("host", ""), m.get("role", ""), m.get("state", ""), m.get("timeline", ""), _lag(m)]
        for m in sorted(cluster.get("members", []), key=lambda m: m["name"])
    ]
    print(table(["member", "host", "role", "state", "timeline", "lag"], rows))


@task(
    auto_shortflags=False,
    help={
        "env": "environment (stacks/<env>): lab, staging, prod",
        "host": "ask this db host (default: the first that answers)",
    },
)
def status(c, env="lab", host=None):
    """Read-only: the cluster's members, leader, state, timeline and replication lag."""
    no_fabric_hosts(c)
    environment = Environment(env)
    hosts = environment.hosts_for("db.status", [GROUP], host)
    source, cluster = read_cluster(environment, hosts)
    print_cluster(cluster, source)
    patroni = environment.role_vars(source, ROLE)
    leader = [m["name"] for m in cluster.get("members", []) if m.get("role") == "leader"]
    problems = cluster_problems(cluster, list(patroni["patroni_members"]), bool(patroni["patroni_synchronous_mode"]))
    verdict(problems, f"{leader[0] if leader else '?'} leads, every member replicates")


@task(
    auto_shortflags=False,
    help={
        "env": "environment (stacks/<env>): lab, staging, prod",
        "candidate": "the replica that takes over (default: Patroni picks the best one)",
        "yes": "do not ask for confirmation (needed in a non-interactive shell)",
        "dry_run": "print what would be done and change nothing",
    },
)
def switchover(c, env="lab", candidate=None, yes=False, dry_run=False):
    """Changes: hand the leadership to a replica (Patroni's POST /switchover, planned, no data lost)."""
    no_fabric_hosts(c)
    environment = Environment(env)
    hosts = environment.hosts_for("db.switchover", [GROUP], None)
    if candidate:
        environment.hosts_for("db.switchover --candidate", [GROUP], candidate)
    port = environment.value(hosts[0], ROLE, "patroni_restapi_port")
    target = candidate or "the replica Patroni picks (the synchronous standby when there is one)"
    plan = [
        f"read the cluster from the first db host that answers ({', '.join(hosts)})",
        f"POST https://<that host>:{port}/switchover {{leader: <the current leader>, candidate: {candidate or '-'}}}"
        " with the REST API password (patroni_restapi_password of the inventory)",
        f"wait up to {SWITCHOVER_WAIT_SECONDS} s until {target} leads and every member runs",
    ]

    def act() -> str:
        source, cluster = read_cluster(environment, hosts)
        print_cluster(cluster, source)
        members = {m["name"]: m for m in cluster.get("members", [])}
        leaders = [name for name, m in members.items() if m.get("role") == "leader"]
        if len(leaders) != 1:
            raise Problem(f"{len(leaders)} leaders: a switchover needs exactly one (runbooks/PatroniNoLeader.md)")
        leader = leaders[0]
        if candidate == leader:
            raise Refused(f"{candidate} already leads")
        if candidate and members.get(candidate, {}).get("state") not in ("streaming", "running"):
            raise Problem(f"{candidate} is not a healthy replica ({members.get(candidate, {}).get('state')})")
        patroni = environment.role_vars(source, ROLE)
        body = {"leader": leader} | ({"candidate": candidate} if candidate else {})
        with connect(environment.connection_of(source)) as conn:
            answer = http_on_host(
                conn,
                "POST",
                f"https://{source}:{patroni['patroni_restapi_port']}/switchover",
                body=body,
                cafile=_ca(patroni),
                basic_user=patroni["patroni_restapi_username"],
                secret={"value": patroni["patroni_restapi_password"]},
                timeout=60,
            )
        print(f"Patroni answered {answer.status}: {answer.body.strip()}")
        if answer.status != 200:
            raise Problem(f"the switchover was refused ({answer.status}): {answer.body.strip()[:300]}")
        deadline = time.monotonic() + SWITCHOVER_WAIT_SECONDS
        while True:
            time.sleep(3)
            source, cluster = read_cluster(environment, hosts)
            new = [m["name"] for m in cluster["members"] if m.get("role") == "leader"]
            settled = all(m.get("state") in ("running", "streaming") for m in cluster["members"])
            if new and new[0] != leader and (not candidate or new[0] == candidate) and settled:
                print_cluster(cluster, source)
                return f"{new[0]} leads (was {leader})"
            if time.monotonic() > deadline:
                print_cluster(cluster, source)
                raise Problem(f"no new leader after {SWITCHOVER_WAIT_SECONDS} s: see runbooks/PatroniNoLeader.md")

    change(env, "db.switchover", {"candidate": candidate}, plan, act, yes=yes, dry_run=dry_run)
