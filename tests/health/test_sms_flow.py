"""Messages flow both ways through a gateway node: sendsms -> SMSC -> delivery report back to the
CFM URL, and a citizen's reply -> the MO URL. Needs the lab's SMSC simulator, so it only runs
where the inventory has one (it sends real messages: never against production)."""

from __future__ import annotations

import json
import urllib.parse
import uuid

import pytest

from tests.host_checks import host_http, wait_for

testinfra_hosts = ["ansible://sms_gateway"]

SHORT_CODE = "1279"
CITIZEN = "85512000001"


@pytest.fixture
def kannel(role_vars):
    return role_vars("kannel")


@pytest.fixture
def simulator_url(kannel):
    # the simulator answers where the gateway sends its callbacks
    return kannel["kannel_mo_url"].split("/callbacks/")[0]


def sendsms(host, kannel, text: str, to: str = CITIZEN) -> tuple[int, str]:
    user = kannel["kannel_sendsms_users"][0]
    query = urllib.parse.urlencode(
        {"username": user["username"], "password": user["password"], "from": SHORT_CODE, "to": to, "text": text,
         "dlr-mask": "31"}
    )  # fmt: skip
    return host_http(host, "GET", f"http://127.0.0.1:{kannel['kannel_sendsms_port']}/cgi-bin/sendsms?{query}")


def test_message_reaches_the_smsc_and_its_delivery_report_comes_back(host, kannel, simulator_url):
    text = f"health {uuid.uuid4().hex[:12]}"
    status, body = sendsms(host, kannel, text)
    assert status == 202 and "Accepted" in body, (status, body)

    def submitted():
        messages = json.loads(host_http(host, "GET", f"{simulator_url}/messages")[1])["messages"]
        return [m for m in messages if m["text"] == text]

    received = wait_for("the submit at the SMSC", submitted)
    assert len(received) == 1 and received[0]["source"] == SHORT_CODE and received[0]["destination"] == CITIZEN

    def delivered():
        reports = json.loads(host_http(host, "GET", f"{simulator_url}/callbacks?kind=dlr")[1])["callbacks"]
        return [
            r
            for r in reports
            if r.get("from") == CITIZEN and r.get("smsc_msgid") == received[0]["id"] and r.get("type") == "1"
        ]

    wait_for("the delivery report at the DLR URL", delivered)


def test_khmer_text_reaches_the_smsc_as_ucs2_and_intact(host, kannel, simulator_url):
    # the guard picks UCS-2 for a text GSM 03.38 cannot hold; Kannel alone would send '?'s
    to = f"8551{uuid.uuid4().int % 10**7:07d}"
    text = "សូមអរគុណ " + uuid.uuid4().hex[:8]
    status, body = sendsms(host, kannel, text, to=to)
    assert status == 202, (status, body)

    def arrived():
        texts = json.loads(host_http(host, "GET", f"{simulator_url}/texts")[1])["texts"]
        return [t for t in texts if t["destination"] == to]

    [received] = wait_for("the Khmer text at the SMSC", arrived)
    assert (received["text"], received["data_coding"], received["parts"]) == (text, 8, 1)


def test_citizen_reply_reaches_the_mo_url(host, simulator_url):
    text = f"reply {uuid.uuid4().hex[:12]}"
    status, body = host_http(host, "POST", f"{simulator_url}/mo", {"from": CITIZEN, "to": SHORT_CODE, "text": text})
    assert status in (200, 202), body

    def arrived():
        replies = json.loads(host_http(host, "GET", f"{simulator_url}/callbacks?kind=mo")[1])["callbacks"]
        return [
            r
            for r in replies
            if r.get("text") == text and r.get("from", "").lstrip("+") == CITIZEN and r.get("to") == SHORT_CODE
        ]

    wait_for("the reply at the MO URL", arrived)


@pytest.mark.parametrize(
    ("change", "expected_status"),
    [
        ({"password": "wrong-password"}, 403),
        ({"username": ""}, 403),
        ({"to": "not-a-number"}, 400),
        # Kannel alone would cut it to max_messages parts and send them; the guard refuses it
        ({"text": "x" * 800}, 413),
        # GSM 7-bit asked for a text it cannot carry: refused rather than sent as '?'
        ({"text": " ក", "coding": "0"}, 400),
    ],
    ids=["wrong-password", "no-credentials", "malformed-number", "oversized-text", "khmer-as-gsm"],
)
def test_bad_sendsms_requests_are_refused_and_send_nothing(host, kannel, simulator_url, change, expected_status):
    marker = f"refused {uuid.uuid4().hex[:12]}"
    user = kannel["kannel_sendsms_users"][0]
    params = {"username": user["username"], "password": user["password"], "from": SHORT_CODE, "to": CITIZEN,
              **change}  # fmt: skip
    params["text"] = marker + params.get("text", "")
    status, body = host_http(
        host,
        "GET",
        f"http://127.0.0.1:{kannel['kannel_sendsms_port']}/cgi-bin/sendsms?{urllib.parse.urlencode(params)}",
    )
    assert status == expected_status, (status, body)
    # A valid message sent after it is a fence: the node has one link to the SMSC and sends in
    # order, so once the fence is there, anything the refused request had queued would be too.
    # (A fixed 2 s pause made this check the slowest of a gateway's health run.)
    fence = f"fence {uuid.uuid4().hex[:12]}"
    assert sendsms(host, kannel, fence)[0] == 202

    def fence_arrived():
        messages = json.loads(host_http(host, "GET", f"{simulator_url}/messages")[1])["messages"]
        return messages if any(m["text"] == fence for m in messages) else None

    messages = wait_for("the fence message at the SMSC", fence_arrived)
    assert not [m for m in messages if m["text"].startswith(marker)]
