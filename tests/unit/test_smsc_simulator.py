"""The lab SMSC simulator speaks SMPP 3.4 the way Kannel's smsc_smpp expects, and its control API tells the truth."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import queue
import re
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from smpplib import consts, exceptions, smpp
from smpplib import gsm as smpplib_gsm
from smpplib.client import Client

MODULE = Path(__file__).resolve().parents[2] / "roles/smsc_simulator/files/smsc_simulator.py"
spec = importlib.util.spec_from_file_location("smsc_simulator", MODULE)
sim = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = sim  # dataclasses look their module up by name
spec.loader.exec_module(sim)

ACCOUNTS = {"kannel": "s3cret", "other": "pw2"}
SHORT_CODE = "1234"
CITIZEN = "85512345678"
TIMEOUT = 5.0
RECEIPT = re.compile(
    r"^id:(?P<id>\d+) sub:001 dlvrd:001 submit date:\d{10} done date:\d{10} stat:DELIVRD err:000 text:(?P<text>.*)$"
)


class Harness:
    """The simulator on its own event loop thread, on 127.0.0.1 and free ports."""

    def __init__(self, **overrides):
        config = sim.Config(
            accounts=dict(ACCOUNTS),
            smpp_port=0,
            control_port=0,
            bind="127.0.0.1",
            receipt_delay=0.05,
            retry_delay=0.1,
            **overrides,
        )
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.simulator = sim.Simulator(config)
        self.run(self.simulator.start())
        self.clients: list[Client] = []

    def run(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=TIMEOUT)

    def stop(self) -> None:
        for client in self.clients:
            close(client)
        self.run(self.simulator.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(TIMEOUT)
        self.loop.close()

    def client(self) -> Client:
        client = Client("127.0.0.1", self.simulator.smpp_port, timeout=TIMEOUT, allow_unknown_opt_params=True)
        client.connect()
        self.clients.append(client)
        return client

    def bound(self, bind_type: str = "transceiver", system_id: str = "kannel") -> Client:
        client = self.client()
        getattr(client, f"bind_{bind_type}")(system_id=system_id, password=ACCOUNTS[system_id])
        return client

    def api(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.simulator.control_port}{path}", data=data, method=method
        )
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def stats(self) -> dict:
        status, stats = self.api("GET", "/stats")
        assert status == 200
        return stats

    def wait_stats(self, predicate) -> dict:
        deadline = time.monotonic() + TIMEOUT
        while True:
            stats = self.stats()
            if predicate(stats):
                return stats
            assert time.monotonic() < deadline, f"condition never met, last stats: {stats}"
            time.sleep(0.02)


def close(client: Client) -> None:
    if client._socket is not None:
        client.disconnect()


@pytest.fixture
def harness():
    running = Harness()
    yield running
    running.stop()


def submit(client: Client, text: str = "hello", source: str = SHORT_CODE, destination: str = CITIZEN, **fields):
    client.send_message(
        source_addr_ton=0,
        source_addr_npi=0,
        source_addr=source,
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr=destination,
        short_message=sim.gsm_encode(text),
        **fields,
    )
    response = client.read_pdu()
    assert response.command == "submit_sm_resp"
    return response


def read(client: Client, command: str):
    pdu = client.read_pdu()
    assert pdu.command == command, f"expected {command}, got {pdu.command} status 0x{pdu.status:x}"
    return pdu


def ack(client: Client, deliver, status: int = consts.SMPP_ESME_ROK) -> None:
    response = smpp.make_pdu("deliver_sm_resp", client=client, status=status)
    response.sequence = deliver.sequence
    client.send_pdu(response)


def send_raw(client: Client, data: bytes) -> None:
    client._socket.sendall(data)


def expect_closed(client: Client) -> None:
    with pytest.raises(exceptions.ConnectionError):
        client.read_pdu()


# Text codecs


def test_gsm_alphabet_round_trips_and_falls_back_to_ucs2():
    assert len(sim.GSM_BASIC) == 128
    text = "Hello @ 5$ _ {x} €10 ÄÖ § \f"
    assert sim.gsm_decode(sim.gsm_encode(text)) == text
    assert sim.encode_text("Yes")[1] == sim.DATA_CODING_GSM
    payload, coding = sim.encode_text("សួស្តី")
    assert coding == sim.DATA_CODING_UCS2
    assert sim.decode_text(payload, coding, 0) == "សួស្តី"
    assert sim.receipt_excerpt("Hi @ $5 ល្អ, thanks a lot") == "Hi ? ?5 ???, thanks "
    udh = bytes([5, 0, 3, 7, 2, 1])
    assert sim.decode_text(udh + sim.gsm_encode("part one"), 0, sim.ESM_CLASS_UDHI) == "part one"


def test_gsm_table_is_smpplibs_with_its_two_gaps_filled():
    # 3GPP TS 23.038: 0x5F is the section sign, ESC 0x0A the form feed; smpplib has neither.
    table = smpplib_gsm.GSM_CHARACTER_TABLE
    assert [code for code in range(0x80) if sim.GSM_BASIC[code] != table[code]] == [0x5F]
    assert sim.GSM_BASIC[0x5F] == "\u00a7"
    assert sim.gsm_decode(bytes([0x1B, 0x0A])) == "\f"
    with pytest.raises(ValueError, match="'`'"):
        sim.gsm_encode("`")  # smpplib's filler is not a GSM character
    assert sim.gsm_encode("€[]") == smpplib_gsm.gsm_encode("€[]")


def test_a_part_that_cuts_a_character_is_told_apart():
    assert sim.stands_alone(sim.gsm_encode("a€"), sim.DATA_CODING_GSM)
    assert not sim.stands_alone(sim.gsm_encode("a€")[:-1], sim.DATA_CODING_GSM)  # ends in the escape
    emoji = "\U0001f600".encode("utf-16-be")
    assert sim.stands_alone(emoji, sim.DATA_CODING_UCS2)
    assert not sim.stands_alone(emoji[:2], sim.DATA_CODING_UCS2)
    assert not sim.stands_alone(emoji[2:], sim.DATA_CODING_UCS2)


# Binds


@pytest.mark.parametrize("bind_type", ["transmitter", "receiver", "transceiver"])
def test_each_bind_type_is_accepted_and_counted(harness, bind_type):
    client = harness.client()
    response = getattr(client, f"bind_{bind_type}")(system_id="kannel", password="s3cret")
    assert response.command == f"bind_{bind_type}_resp"
    assert response.status == consts.SMPP_ESME_ROK
    assert response.system_id == b"SMSCSIM"
    stats = harness.stats()
    assert stats["binds"][bind_type] == 1
    assert stats["bound"][bind_type] == 1
    assert stats["sessions"][0]["system_id"] == "kannel"


def test_wrong_credentials_are_refused(harness):
    with pytest.raises(exceptions.PDUError) as wrong_password:
        harness.client().bind_transceiver(system_id="kannel", password="nope")
    assert wrong_password.value.args[1] == consts.SMPP_ESME_RINVPASWD
    with pytest.raises(exceptions.PDUError) as unknown:
        harness.client().bind_transmitter(system_id="stranger", password="s3cret")
    assert unknown.value.args[1] == consts.SMPP_ESME_RBINDFAIL
    stats = harness.stats()
    assert stats["bind_failures"] == 2
    assert stats["binds"] == {"transmitter": 0, "receiver": 0, "transceiver": 0}


def test_second_bind_on_a_bound_session_is_refused(harness):
    client = harness.bound("transmitter")
    client.state = consts.SMPP_CLIENT_STATE_OPEN  # let the library send a second bind
    with pytest.raises(exceptions.PDUError) as again:
        client.bind_transmitter(system_id="kannel", password="s3cret")
    assert again.value.args[1] == consts.SMPP_ESME_RALYBND


def test_submit_needs_a_transmitting_bind(harness):
    unbound = harness.client()
    request = smpp.make_pdu("submit_sm", client=unbound, source_addr=SHORT_CODE, destination_addr=CITIZEN)
    send_raw(unbound, request.generate())
    response = read(unbound, "submit_sm_resp")
    assert (response.status, response.sequence) == (consts.SMPP_ESME_RINVBNDSTS, request.sequence)
    receiver = harness.bound("receiver")
    request = smpp.make_pdu("submit_sm", client=receiver, source_addr=SHORT_CODE, destination_addr=CITIZEN)
    send_raw(receiver, request.generate())
    assert read(receiver, "submit_sm_resp").status == consts.SMPP_ESME_RINVBNDSTS
    assert harness.stats()["submits_received"] == 0


# Submits and receipts


def test_submit_answers_with_unique_message_ids_and_is_listed(harness):
    client = harness.bound("transmitter")
    first = submit(client, "Thank you for your visit")
    second = submit(client, "Please rate the service", data_coding=0)
    assert first.status == second.status == consts.SMPP_ESME_ROK
    ids = [first.message_id.decode(), second.message_id.decode()]
    assert all(i.isdigit() for i in ids)
    assert ids[0] != ids[1]
    status, listed = harness.api("GET", "/messages")
    assert status == 200
    assert [m["id"] for m in listed["messages"]] == ids
    message = listed["messages"][0]
    assert message["source"] == SHORT_CODE
    assert message["destination"] == CITIZEN
    assert message["text"] == "Thank you for your visit"
    assert message["data_coding"] == 0
    assert message["received_at"].endswith("Z")
    assert harness.api("GET", "/messages?limit=1")[1]["messages"][0]["id"] == ids[1]


def test_ucs2_submit_is_decoded(harness):
    client = harness.bound("transmitter")
    client.send_message(
        source_addr=SHORT_CODE, destination_addr=CITIZEN, short_message="អរគុណ".encode("utf-16-be"), data_coding=8
    )
    assert read(client, "submit_sm_resp").status == consts.SMPP_ESME_ROK
    assert harness.api("GET", "/messages")[1]["messages"][0]["text"] == "អរគុណ"


# Whole texts (GET /texts)


def submit_parts(client: Client, parts: list[bytes], data_coding: int, esm_class: int, **fields) -> None:
    for part in parts:
        client.send_message(
            source_addr=SHORT_CODE,
            destination_addr=CITIZEN,
            short_message=part,
            data_coding=data_coding,
            esm_class=esm_class,
            **fields,
        )
        assert read(client, "submit_sm_resp").status == consts.SMPP_ESME_ROK


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("ការពិនិត្យសុខភាព " * 10, consts.SMPP_ENCODING_ISO10646),
        ("Thank you for visiting the health centre today. " * 5, consts.SMPP_ENCODING_DEFAULT),
    ],
    ids=["khmer-ucs2", "gsm"],
)
def test_parts_with_a_user_data_header_become_one_text(harness, text, encoding):
    parts, data_coding, esm_class = smpplib_gsm.make_parts(text, encoding)
    assert len(parts) > 1 and esm_class == consts.SMPP_GSMFEAT_UDHI
    client = harness.bound("transmitter")
    submit_parts(client, parts, data_coding, esm_class)
    status, texts = harness.api("GET", "/texts")
    assert status == 200 and texts["incomplete"] == []
    [whole] = texts["texts"]
    assert whole["text"] == text
    assert whole["parts"] == len(parts)
    assert whole["concatenation"] == "udh"
    assert "".join(whole["part_texts"]) == text
    assert whole["parts_stand_alone"] is True
    messages = harness.api("GET", "/messages")[1]["messages"]
    assert [m["part"]["sequence"] for m in messages] == list(range(1, len(parts) + 1))
    assert [m["id"] for m in messages] == whole["ids"]


def test_parts_with_sar_parameters_become_one_text_in_any_order(harness):
    halves = ["Your feedback ", "matters to us"]
    client = harness.bound("transmitter")
    for number in (2, 1):
        submit_parts(
            client,
            [sim.gsm_encode(halves[number - 1])],
            0,
            0,
            sar_msg_ref_num=4242,
            sar_total_segments=2,
            sar_segment_seqnum=number,
        )
    [whole] = harness.api("GET", "/texts")[1]["texts"]
    assert (whole["text"], whole["parts"], whole["concatenation"]) == ("".join(halves), 2, "sar")


def test_a_character_cut_between_parts_is_reassembled_but_flagged(harness):
    text = "\U0001f600" * 40  # 160 octets of UCS-2: smpplib cuts at 134, inside the 34th emoji
    parts, data_coding, esm_class = smpplib_gsm.make_parts(text, consts.SMPP_ENCODING_ISO10646)
    client = harness.bound("transmitter")
    submit_parts(client, parts, data_coding, esm_class)
    [whole] = harness.api("GET", "/texts")[1]["texts"]
    assert whole["text"] == text
    assert whole["parts_stand_alone"] is False
    assert whole["part_octets"] == [134, 26]


def test_a_message_missing_a_part_is_listed_as_incomplete(harness):
    parts, data_coding, esm_class = smpplib_gsm.make_parts("x" * 200)
    client = harness.bound("transmitter")
    submit_parts(client, parts[:1], data_coding, esm_class)
    status, texts = harness.api("GET", "/texts")
    assert status == 200
    assert texts["texts"] == []
    [waiting] = texts["incomplete"]
    assert (waiting["total"], waiting["received"]) == (2, [1])
    submit_parts(client, parts[1:], data_coding, esm_class)
    texts = harness.api("GET", "/texts")[1]
    assert (texts["count"], texts["incomplete"]) == (1, [])
    assert texts["texts"][0]["text"] == "x" * 200


def test_receipt_waits_for_a_separate_receiver_of_the_same_account(harness):
    transmitter = harness.bound("transmitter")
    other = harness.bound("receiver", system_id="other")
    message_id = submit(transmitter, "Your feedback matters to us", registered_delivery=1).message_id.decode()
    harness.wait_stats(lambda s: s["receipts_pending"] == 1)
    receiver = harness.bound("receiver")
    deliver = read(receiver, "deliver_sm")
    assert deliver.esm_class == sim.ESM_CLASS_RECEIPT
    assert deliver.receipted_message_id == message_id.encode()
    assert deliver.message_state == consts.SMPP_MESSAGE_STATE_DELIVERED
    # Kannel looks the DLR up by the receipt's source, which is the handset the message went to.
    assert deliver.source_addr == CITIZEN.encode()
    assert deliver.destination_addr == SHORT_CODE.encode()
    receipt = RECEIPT.match(deliver.short_message.decode())
    assert receipt is not None, deliver.short_message
    assert receipt["id"] == message_id
    assert receipt["text"] == "Your feedback matter"
    ack(receiver, deliver)
    stats = harness.wait_stats(lambda s: s["receipts_acknowledged"] == 1)
    assert stats["receipts_sent"] == 1
    assert stats["receipts_pending"] == 0
    other._socket.settimeout(0.1)
    with pytest.raises(TimeoutError):
        other.read_pdu()  # the other account's receiver never sees it


def test_receipt_on_a_transceiver_only_when_asked_for(harness):
    client = harness.bound("transceiver")
    unasked = submit(client, "no receipt please", registered_delivery=0)
    asked = submit(client, "receipt please", registered_delivery=1)
    deliver = read(client, "deliver_sm")
    assert deliver.receipted_message_id == asked.message_id
    assert unasked.message_id != asked.message_id
    ack(client, deliver)
    stats = harness.wait_stats(lambda s: s["receipts_acknowledged"] == 1)
    assert stats["receipts_sent"] == 1
    assert stats["submits_accepted"] == 2


def test_unacknowledged_receipt_goes_to_the_next_receiver(harness):
    transmitter = harness.bound("transmitter")
    first = harness.bound("receiver")
    message_id = submit(transmitter, registered_delivery=1).message_id
    assert read(first, "deliver_sm").receipted_message_id == message_id
    close(first)  # vanishes without deliver_sm_resp
    second = harness.bound("receiver")
    again = read(second, "deliver_sm")
    assert again.receipted_message_id == message_id
    ack(second, again)
    stats = harness.wait_stats(lambda s: s["receipts_acknowledged"] == 1)
    assert stats["receipts_sent"] == 2


# MO


def test_mo_injection_reaches_a_bound_receiver(harness):
    status, queued = harness.api("POST", "/mo", {"from": CITIZEN, "to": SHORT_CODE, "text": "Yes, 5 stars @ clinic"})
    assert status == 200
    assert queued["queued"] == 1
    receiver = harness.bound("receiver")
    deliver = read(receiver, "deliver_sm")
    assert deliver.esm_class == 0
    assert deliver.data_coding == sim.DATA_CODING_GSM
    assert (deliver.source_addr, deliver.destination_addr) == (CITIZEN.encode(), SHORT_CODE.encode())
    assert sim.gsm_decode(deliver.short_message) == "Yes, 5 stars @ clinic"
    ack(receiver, deliver)
    harness.api("POST", "/mo", {"from": CITIZEN, "to": SHORT_CODE, "text": "ល្អណាស់"})
    deliver = read(receiver, "deliver_sm")
    assert deliver.data_coding == sim.DATA_CODING_UCS2
    assert deliver.short_message.decode("utf-16-be") == "ល្អណាស់"
    ack(receiver, deliver)
    stats = harness.wait_stats(lambda s: s["mo_acknowledged"] == 2)
    assert (stats["mo_injected"], stats["mo_sent"], stats["mo_pending"]) == (2, 2, 0)


def test_refused_mo_is_retried(harness):
    receiver = harness.bound("transceiver")
    harness.api("POST", "/mo", {"from": CITIZEN, "to": SHORT_CODE, "text": "retry me"})
    ack(receiver, read(receiver, "deliver_sm"), status=consts.SMPP_ESME_RX_T_APPN)
    again = read(receiver, "deliver_sm")
    assert sim.gsm_decode(again.short_message) == "retry me"
    ack(receiver, again)
    stats = harness.wait_stats(lambda s: s["mo_acknowledged"] == 1)
    assert (stats["mo_failed"], stats["mo_sent"]) == (1, 2)


def test_mo_input_is_checked(harness):
    assert harness.api("POST", "/mo", {"from": CITIZEN, "text": "x"})[0] == 400
    assert harness.api("POST", "/mo", {"from": CITIZEN, "to": SHORT_CODE, "text": "x", "system_id": "nobody"})[0] == 400
    assert harness.stats()["mo_injected"] == 0


# Session housekeeping


def test_enquire_link_is_answered_before_and_after_bind(harness):
    client = harness.client()

    def enquire_link() -> None:
        request = smpp.make_pdu("enquire_link", client=client)
        send_raw(client, request.generate())
        response = read(client, "enquire_link_resp")
        assert (response.status, response.sequence) == (consts.SMPP_ESME_ROK, request.sequence)

    enquire_link()
    client.bind_transceiver(system_id="kannel", password="s3cret")
    enquire_link()
    assert harness.stats()["enquire_links"] == 2


def test_unbind_is_answered_and_the_session_closed(harness):
    client = harness.bound("transceiver")
    response = client.unbind()
    assert (response.command, response.status) == ("unbind_resp", consts.SMPP_ESME_ROK)
    expect_closed(client)
    stats = harness.wait_stats(lambda s: not s["sessions"])
    assert stats["unbinds"] == 1


def test_unknown_commands_get_generic_nack(harness):
    client = harness.bound("transceiver")
    send_raw(client, struct.pack(">LLLL", 16, 0x00000008, 0, 77))  # cancel_sm: not offered by this SMSC
    nack = read(client, "generic_nack")
    assert (nack.status, nack.sequence) == (consts.SMPP_ESME_RINVCMDID, 77)
    send_raw(client, struct.pack(">LLLL", 16, 0x000000FF, 0, 78))  # no such command at all
    assert read(client, "generic_nack").sequence == 78
    assert harness.stats()["generic_nacks_sent"] == 2


def test_invalid_command_length_is_nacked_and_closed(harness):
    client = harness.client()
    send_raw(client, struct.pack(">LLLL", 8, 0x00000015, 0, 1))
    assert read(client, "generic_nack").status == consts.SMPP_ESME_RINVCMDLEN
    expect_closed(client)


def test_pdus_split_across_reads_and_pipelined(harness):
    client = harness.bound("transceiver")
    submit_sm = smpp.make_pdu(
        "submit_sm", client=client, source_addr=SHORT_CODE, destination_addr=CITIZEN, short_message=b"split"
    )
    enquire = smpp.make_pdu("enquire_link", client=client)
    data = submit_sm.generate() + enquire.generate()
    for offset in range(0, len(data), 3):
        send_raw(client, data[offset : offset + 3])
        time.sleep(0.002)
    assert read(client, "submit_sm_resp").sequence == submit_sm.sequence
    assert read(client, "enquire_link_resp").sequence == enquire.sequence
    assert harness.api("GET", "/messages")[1]["messages"][0]["text"] == "split"


def test_client_vanishing_mid_pdu_leaves_the_simulator_serving(harness):
    client = harness.client()
    bind = smpp.make_pdu("bind_transceiver", client=client, system_id="kannel", password="s3cret")
    send_raw(client, bind.generate()[:10])
    close(client)
    harness.wait_stats(lambda s: s["connections"] == 1 and not s["sessions"])
    assert submit(harness.bound("transceiver")).status == consts.SMPP_ESME_ROK


def test_concurrent_sessions(harness):
    clients = [harness.bound("transceiver") for _ in range(4)]
    errors = []

    def work(index, client):
        try:
            for n in range(5):
                assert submit(client, f"client {index} message {n}").status == consts.SMPP_ESME_ROK
        except Exception as exc:  # reported below; pytest does not see thread failures
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i, c)) for i, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert not errors
    stats = harness.stats()
    assert (stats["submits_accepted"], stats["unique_messages"], stats["duplicates"]) == (20, 20, 0)
    ids = [m["id"] for m in harness.api("GET", "/messages")[1]["messages"]]
    assert len(set(ids)) == 20


# Stats


def test_stats_count_duplicates_and_reset_clears_them(harness):
    client = harness.bound("transmitter")
    submit(client, "same text")
    submit(client, "same text")
    submit(client, "same text", destination="85599999999")
    stats = harness.stats()
    assert (stats["submits_received"], stats["unique_messages"], stats["duplicates"]) == (3, 2, 1)
    assert stats["by_source"] == {SHORT_CODE: 3}
    assert stats["by_destination"] == {CITIZEN: 2, "85599999999": 1}
    assert stats["duplicate_messages"] == [
        {"source": SHORT_CODE, "destination": CITIZEN, "text": "same text", "count": 2}
    ]
    assert [m["duplicate"] for m in harness.api("GET", "/messages")[1]["messages"]] == [False, True, False]
    assert harness.api("POST", "/reset") == (200, {"reset": True})
    stats = harness.stats()
    assert (stats["submits_received"], stats["unique_messages"], stats["duplicates"]) == (0, 0, 0)
    assert stats["by_source"] == {}
    assert harness.api("GET", "/messages")[1]["count"] == 0
    submit(client, "same text")
    assert harness.stats()["duplicates"] == 0


def test_control_api_rejects_bad_requests(harness):
    assert harness.api("GET", "/nothing")[0] == 404
    assert harness.api("GET", "/messages?limit=x")[0] == 400
    assert harness.api("GET", "/health") == (200, {"status": "ok"})
    request = urllib.request.Request(
        f"http://127.0.0.1:{harness.simulator.control_port}/fault", data=b"{not json", method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=TIMEOUT)
    assert error.value.code == 400


# Faults


def test_fault_drop_binds_closes_sessions_and_refuses_binds_until_none(harness):
    client = harness.bound("transceiver")
    assert harness.api("POST", "/fault", {"mode": "drop_binds"}) == (200, {"mode": "drop_binds"})
    expect_closed(client)
    refused = harness.client()
    with pytest.raises(exceptions.PDUError) as error:
        refused.bind_transceiver(system_id="kannel", password="s3cret")
    assert error.value.args[1] == consts.SMPP_ESME_RBINDFAIL
    expect_closed(refused)
    harness.api("POST", "/fault", {"mode": "none"})
    assert submit(harness.bound("transceiver")).status == consts.SMPP_ESME_ROK


def test_fault_slow_delays_every_response(harness):
    client = harness.bound("transceiver")
    assert harness.api("POST", "/fault", {"mode": "slow", "delay_ms": 300}) == (
        200,
        {"mode": "slow", "delay_ms": 300},
    )

    def round_trip() -> float:
        started = time.monotonic()
        send_raw(client, smpp.make_pdu("enquire_link", client=client).generate())
        read(client, "enquire_link_resp")
        return time.monotonic() - started

    assert round_trip() >= 0.3
    started = time.monotonic()
    assert submit(client).status == consts.SMPP_ESME_ROK
    assert time.monotonic() - started >= 0.3
    harness.api("POST", "/fault", {"mode": "none"})
    assert round_trip() < 0.25


def test_fault_reject_answers_submits_with_an_error(harness):
    client = harness.bound("transceiver")
    harness.api("POST", "/fault", {"mode": "reject"})
    response = submit(client, registered_delivery=1)
    assert response.status == consts.SMPP_ESME_RSYSERR
    harness.api("POST", "/fault", {"mode": "reject", "status": "0x0B"})
    assert submit(client).status == consts.SMPP_ESME_RINVDSTADR
    stats = harness.stats()
    assert (stats["submits_received"], stats["submits_rejected"], stats["submits_accepted"]) == (2, 2, 0)
    assert harness.api("GET", "/messages")[1]["count"] == 0
    harness.api("POST", "/fault", {"mode": "none"})
    assert submit(client).status == consts.SMPP_ESME_ROK


def test_fault_throttle_limits_submits_per_second(harness):
    client = harness.bound("transceiver")
    harness.api("POST", "/fault", {"mode": "throttle", "rate": 2})
    statuses = [submit(client, f"burst {n}").status for n in range(5)]
    assert statuses == [0, 0, consts.SMPP_ESME_RTHROTTLED, consts.SMPP_ESME_RTHROTTLED, consts.SMPP_ESME_RTHROTTLED]
    stats = harness.stats()
    assert (stats["submits_accepted"], stats["submits_throttled"]) == (2, 3)
    assert stats["fault"] == {"mode": "throttle", "rate": 2}


@pytest.mark.parametrize(
    "body",
    [{"mode": "explode"}, {}, {"mode": "slow", "delay_ms": -1}, {"mode": "throttle", "rate": "many"}],
)
def test_fault_input_is_checked(harness, body):
    status, answer = harness.api("POST", "/fault", body)
    assert status == 400
    assert "error" in answer
    assert harness.stats()["fault"] == {"mode": "none"}


# The command line, as systemd runs it


def test_command_line_serves_until_terminated(tmp_path):
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps([{"system_id": "kannel", "password": "s3cret"}]))
    command = [sys.executable, str(MODULE), "--smpp-port", "0", "--control-port", "0", "--bind", "127.0.0.1"]
    process = subprocess.Popen(
        [*command, "--accounts-file", str(accounts), "--receipt-delay", "0.01"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()

    def wait_line(pattern: str) -> re.Match:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            try:
                match = re.search(pattern, lines.get(timeout=0.1))
            except queue.Empty:
                continue
            if match:
                return match
        raise AssertionError(f"no log line matched {pattern!r}")

    try:
        ports = wait_line(r"listening smpp=127\.0\.0\.1:(\d+) control=127\.0\.0\.1:(\d+) accounts=1")
        client = Client("127.0.0.1", int(ports[1]), timeout=TIMEOUT, allow_unknown_opt_params=True)
        client.connect()
        client.bind_transceiver(system_id="kannel", password="s3cret")
        wait_line(r"bound as transceiver")
        message_id = submit(client, "from the CLI", registered_delivery=1).message_id.decode()
        wait_line(rf"submit id={message_id} from={SHORT_CODE} to={CITIZEN}")
        ack(client, read(client, "deliver_sm"))
        wait_line(rf"receipt id={message_id} to={SHORT_CODE} acknowledged")
        with urllib.request.urlopen(f"http://127.0.0.1:{ports[2]}/stats", timeout=TIMEOUT) as response:
            assert json.loads(response.read())["submits_accepted"] == 1
        close(client)
    finally:
        process.terminate()
        assert process.wait(timeout=TIMEOUT) == 0


def test_command_line_refuses_a_bad_accounts_file(tmp_path):
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps([{"password": "no system id"}]))
    result = subprocess.run(
        [sys.executable, str(MODULE), "--smpp-port", "0", "--control-port", "0", "--accounts-file", str(accounts)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 2
    assert "system_id" in result.stdout


def test_callbacks_from_the_gateways_are_recorded_by_kind_and_cleared_by_reset(harness):
    assert harness.api("GET", "/callbacks/dlr?type=1&id=abc&to=85512000001")[0] == 200
    assert harness.api("GET", "/callbacks/mo?from=85512000001&to=1279&text=hello%20there")[0] == 200
    status, dlrs = harness.api("GET", "/callbacks?kind=dlr")
    assert status == 200 and dlrs["count"] == 1
    assert {k: v for k, v in dlrs["callbacks"][0].items() if k != "received_at"} == {
        "kind": "dlr", "type": "1", "id": "abc", "to": "85512000001"
    }  # fmt: skip
    _, replies = harness.api("GET", "/callbacks?kind=mo")
    assert replies["callbacks"][0]["text"] == "hello there"
    assert harness.api("GET", "/callbacks")[1]["count"] == 2
    harness.api("POST", "/reset")
    assert harness.api("GET", "/callbacks")[1]["count"] == 0
