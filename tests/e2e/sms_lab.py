"""Talking to the lab's SMS tier from the controller: sendsms on the gateways, the simulator's
control API, the exporters. Used by the reliability tests and by bench_sms_gateway.py.

All traffic goes to the lab's own containers (their addresses on the lab network)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SHORT_CODE = "1279"
CITIZEN_PREFIX = "855120"


def _hosts() -> dict[str, dict]:
    inventory = yaml.safe_load((REPO / "stacks/lab/hosts.yml").read_text())
    return {name: v for group in inventory["all"]["children"].values() for name, v in group["hosts"].items()}


def _secret(name: str) -> str:
    path = REPO / ".lab/secrets" / name
    if not path.exists():
        raise RuntimeError(f"{path} missing: bring the lab up and converge it first (make lab)")
    return path.read_text().split()[0]


@dataclass
class Lab:
    hosts: dict[str, dict] = field(default_factory=_hosts)

    def address(self, host: str) -> str:
        return self.hosts[host]["private_address"]

    # --- HTTP -------------------------------------------------------------------------------
    @staticmethod
    def request(
        method: str, url: str, body: dict | None = None, timeout: float = 15, auth: tuple[str, str] | None = None
    ) -> tuple[int, str, dict]:
        """(status, body, headers with lower-case names); status 0 when no answer came. `auth`:
        (user, password) for HTTP basic auth."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read().decode(), {k.lower(): v for k, v in response.headers.items()}
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(), {k.lower(): v for k, v in error.headers.items()}
        except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
            return 0, str(error), {}

    def http(
        self, method: str, url: str, body: dict | None = None, timeout: float = 15, auth: tuple[str, str] | None = None
    ) -> tuple[int, str]:
        return self.request(method, url, body, timeout, auth)[:2]

    @staticmethod
    def web_login(service: str) -> tuple[str, str]:
        """The kit's account (govops) on the lab's Prometheus or Alertmanager (stacks/lab/group_vars/monitoring)."""
        return "govops", _secret(f"{service}_web_govops")

    # --- the gateways -----------------------------------------------------------------------
    def sendsms_query(self, node: str, params: dict) -> tuple[int, str, dict]:
        """sendsms on a node's guard as the lab's CFM account; `params` add to or replace its fields
        (a value of None leaves the field out)."""
        fields = {"username": "cfm", "password": _secret("sendsms_password"), "from": SHORT_CODE, **params}
        query = urllib.parse.urlencode({name: value for name, value in fields.items() if value is not None})
        return self.request("GET", f"http://{self.address(node)}:13013/cgi-bin/sendsms?{query}")

    def sendsms(self, node: str, text: str, to: str, dlr_mask: int = 0) -> tuple[int, str]:
        params = {"to": to, "text": text}
        if dlr_mask:
            params["dlr-mask"] = str(dlr_mask)
        return self.sendsms_query(node, params)[:2]

    def metrics(self, node: str) -> dict[str, float]:
        """The exporter's samples, keyed by the whole series line (name and labels)."""
        status, text = self.http("GET", f"http://{self.address(node)}:9390/metrics")
        if status != 200:
            raise RuntimeError(f"exporter on {node}: {status} {text[:200]}")
        samples = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                series, _, value = line.rpartition(" ")
                samples[series] = float(value)
        return samples

    def link_online(self, node: str) -> bool:
        return all(v == 1.0 for k, v in self.metrics(node).items() if k.startswith("kannel_smsc_online{"))

    def ready(self, node: str) -> bool:
        """The link is bound and an smsbox is connected to bearerbox (sendsms works)."""
        samples = self.metrics(node)
        boxes = [v for k, v in samples.items() if k.startswith("kannel_box_connected{") and 'type="smsbox"' in k]
        return self.link_online(node) and boxes and all(v == 1.0 for v in boxes)

    def queued(self, node: str) -> float:
        """Messages waiting in bearerbox for the SMSC (its store)."""
        return self.metrics(node).get("kannel_sms_store_size", 0.0)

    def podman(self, *args: str) -> None:
        subprocess.run(["podman", *args], check=True, capture_output=True, timeout=60)

    def cpu_seconds(self, node: str, programs: tuple[str, ...]) -> dict[str, float]:
        """CPU time (user + system) that the node's processes of each program have used so far."""
        script = (
            "for p in $0 $@; do for pid in $(pidof $p); do echo $p $(cut -d' ' -f14,15 /proc/$pid/stat); done; done"
        )
        out = subprocess.run(
            ["podman", "exec", f"govops-lab-{node}", "sh", "-c", script, *programs],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
        ticks = os.sysconf("SC_CLK_TCK")
        used = dict.fromkeys(programs, 0.0)
        for line in out.splitlines():
            program, user, system = line.split()
            used[program] += (int(user) + int(system)) / ticks
        return used

    # --- the simulator ----------------------------------------------------------------------
    def simulator(self, method: str, path: str, body: dict | None = None):
        status, text = self.http(method, f"http://{self.address('smsc1')}:8775{path}", body)
        if status != 200:
            raise RuntimeError(f"simulator {method} {path}: {status} {text[:200]}")
        return json.loads(text)

    def received_texts(self) -> list[str]:
        return [m["text"] for m in self.simulator("GET", "/messages")["messages"]]

    def whole_texts(self) -> list[dict]:
        """Messages as handsets show them: a concatenated message's parts joined (GET /texts)."""
        return self.simulator("GET", "/texts")["texts"]


def send_burst(lab: Lab, nodes: list[str], texts: list[str], workers: int = 16, dlr_mask: int = 0) -> dict[str, float]:
    """Send each text through the nodes in turn; return text -> send time for those sendsms accepted."""

    def one(index_text):
        index, text = index_text
        sent_at = time.time()
        status, _ = lab.sendsms(nodes[index % len(nodes)], text, f"{CITIZEN_PREFIX}{index % 100000:05d}", dlr_mask)
        return text, sent_at, status

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(one, enumerate(texts)))
    return {text: sent_at for text, sent_at, status in results if status == 202}


def wait_until(probe, timeout: float, interval: float = 1.0):
    """probe() until it returns something truthy, for at most timeout seconds; returns the last result."""
    deadline = time.monotonic() + timeout
    result = probe()
    while not result and time.monotonic() < deadline:
        time.sleep(interval)
        result = probe()
    return result


def loss_and_duplicates(accepted: dict[str, float], received: list[str], prefix: str) -> tuple[list[str], int]:
    ours = [t for t in received if t.startswith(prefix)]
    counts: dict[str, int] = {}
    for text in ours:
        counts[text] = counts.get(text, 0) + 1
    lost = [t for t in accepted if t not in counts]
    duplicates = sum(n - 1 for n in counts.values() if n > 1)
    return lost, duplicates


def kill_bearerbox_mid_burst(lab: Lab, node: str, messages: int = 1500, kill_at: int = 200) -> dict:
    """SIGKILL bearerbox once the SMSC has seen kill_at messages of a burst; count what was lost."""
    prefix = f"kill-{uuid.uuid4().hex[:8]}-"
    killed_after: list[int] = []

    def arrived() -> int:
        return len([t for t in lab.received_texts() if t.startswith(prefix)])

    def kill():
        wait_until(lambda: arrived() >= kill_at, 60, 0.2)
        killed_after.append(arrived())
        lab.podman("exec", f"govops-lab-{node}", "systemctl", "kill", "--signal=SIGKILL", "kannel-bearerbox.service")

    killer = threading.Thread(target=kill)
    killer.start()
    accepted = send_burst(lab, [node], [f"{prefix}{i:05d}" for i in range(messages)], workers=8)
    killer.join()
    wait_until(lambda: not loss_and_duplicates(accepted, lab.received_texts(), prefix)[0], 120)
    lost, duplicates = loss_and_duplicates(accepted, lab.received_texts(), prefix)
    return {
        "sent": messages,
        "killed_after": killed_after[0] if killed_after else messages,
        "accepted": len(accepted),
        "lost": len(lost),
        "duplicated": duplicates,
        "lost_examples": lost[:5],
    }
