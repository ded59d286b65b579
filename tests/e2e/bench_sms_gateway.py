"""Benchmark of the lab's SMS tier: throughput through one and both gateway nodes (sendsms to the
SMSC), in GSM 7-bit and in Khmer (UCS-2), the CPU time per message of the guard (HAProxy and its
text check), smsbox and bearerbox, sendsms-to-delivery-report latency, and loss in the bearerbox
kill test.

Usage (lab up and converged): make bench-sms   [MESSAGES=1000 RUNS=3]
       python bench_sms_gateway.py --soak SECONDS --messages 500   (load only, for make soak)
All traffic goes to the lab's containers; every loop is bounded."""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from datetime import datetime

from sms_lab import Lab, kill_bearerbox_mid_burst, send_burst, wait_until

KHMER = " សូមអរគុណសម្រាប់ការមកពិនិត្យសុខភាព"  # UCS-2: what most CFM messages are
PROGRAMS = ("haproxy", "smsbox", "bearerbox")


def throughput(lab: Lab, nodes: list[str], messages: int, suffix: str = "") -> float:
    """Messages per second from the first sendsms to the last arrival at the SMSC."""
    prefix = f"bench-{uuid.uuid4().hex[:8]}-"
    start = time.time()
    accepted = send_burst(lab, nodes, [f"{prefix}{i:05d}{suffix}" for i in range(messages)], workers=16)

    def all_arrived():
        return len({t for t in lab.received_texts() if t.startswith(prefix)}) >= len(accepted)

    if not wait_until(all_arrived, 300, 0.5):
        raise RuntimeError("not every accepted message reached the SMSC within 300 s")
    return len(accepted) / (time.time() - start)


def dlr_latency(lab: Lab, messages: int) -> list[float]:
    """Seconds from sendsms to the delivery report (type 1, delivered) at the DLR URL."""
    prefix = f"dlr-{uuid.uuid4().hex[:8]}-"
    sent = send_burst(lab, ["sms1", "sms2"], [f"{prefix}{i:05d}" for i in range(messages)], workers=4, dlr_mask=1)

    def reports():
        by_smsc_id = {m["id"]: m["text"] for m in lab.simulator("GET", "/messages")["messages"]}
        done = {}
        for callback in lab.simulator("GET", "/callbacks?kind=dlr")["callbacks"]:
            text = by_smsc_id.get(callback.get("smsc_msgid"), "")
            if callback.get("type") == "1" and text in sent:
                done[text] = datetime.fromisoformat(callback["received_at"]).timestamp()
        return done if len(done) >= len(sent) else None

    done = wait_until(reports, 120, 1.0)
    if not done:
        raise RuntimeError("not every delivery report arrived within 120 s")
    return [done[text] - sent[text] for text in sent]


def soak(lab: Lab, seconds: float, messages: int) -> list[float]:
    """Bursts through both nodes, one after another, until `seconds` have passed: load for the
    soak (make soak). Clearing the simulator's lists before each keeps its answers short."""
    rates = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        lab.simulator("POST", "/reset")
        rates.append(throughput(lab, ["sms1", "sms2"], messages))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--soak", type=float, metavar="SECONDS", help="only send bursts of MESSAGES for this long")
    args = parser.parse_args()
    lab = Lab()
    lab.simulator("POST", "/fault", {"mode": "none"})
    if not wait_until(lambda: lab.ready("sms1") and lab.ready("sms2"), 90):
        raise SystemExit("the gateways are not ready (make lab)")
    if args.soak:
        rates = soak(lab, args.soak, args.messages)
        print(f"soak: {len(rates)} bursts of {args.messages}, median {statistics.median(rates):.0f} msg/s")
        return

    before = lab.cpu_seconds("sms1", PROGRAMS)
    one = [throughput(lab, ["sms1"], args.messages) for _ in range(args.runs)]
    after = lab.cpu_seconds("sms1", PROGRAMS)
    khmer = [throughput(lab, ["sms1"], args.messages, KHMER) for _ in range(args.runs)]
    after_khmer = lab.cpu_seconds("sms1", PROGRAMS)
    both = [throughput(lab, ["sms1", "sms2"], args.messages) for _ in range(args.runs)]
    latencies = sorted(x for _ in range(args.runs) for x in dlr_latency(lab, 200))
    kills = []
    for _ in range(args.runs):
        kills.append(kill_bearerbox_mid_burst(lab, "sms1"))
        wait_until(lambda: lab.ready("sms1"), 90)

    print(f"throughput, one node  : median {statistics.median(one):.0f} msg/s  runs {[round(x) for x in one]}")
    print(f"throughput, one, Khmer: median {statistics.median(khmer):.0f} msg/s  runs {[round(x) for x in khmer]}")
    print(f"throughput, both nodes: median {statistics.median(both):.0f} msg/s  runs {[round(x) for x in both]}")
    sent = args.messages * args.runs
    for label, start, end in (("GSM  ", before, after), ("Khmer", after, after_khmer)):
        costs = "  ".join(f"{p} {(end[p] - start[p]) * 1e6 / sent:.0f}" for p in PROGRAMS)
        print(f"CPU per message, {label}: {costs} (microseconds on sms1)")
    p50, p95 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.95)]
    print(f"sendsms -> DLR        : p50 {p50 * 1000:.0f} ms  p95 {p95 * 1000:.0f} ms  ({len(latencies)} reports)")
    for result in kills:
        print(
            f"kill test             : sent {result['sent']}, killed after {result['killed_after']}, "
            f"accepted {result['accepted']}, lost {result['lost']}, duplicated {result['duplicated']}"
        )


if __name__ == "__main__":
    main()
