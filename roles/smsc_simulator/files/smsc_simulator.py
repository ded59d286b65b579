#!/usr/bin/env python3
"""Lab-only SMSC simulator: an SMPP 3.4 server that plays the operator for Kannel.

SMPP (default port 2775): bind_transmitter/receiver/transceiver against configured accounts,
submit_sm answered with a decimal message id, delivery receipts (deliver_sm, esm_class 0x04)
for submits that asked for one, enquire_link, unbind, generic_nack for anything else.
Receipts and injected MO messages wait in a queue until a receiver or transceiver of the same
system_id is bound, and are delivered again if the session goes away before acknowledging them.

Control API (HTTP + JSON, default port 8775): GET /health, GET /stats, GET /messages[?limit=N]
(each submit_sm, its part's text decoded), GET /texts[?limit=N] (whole messages: parts of a
concatenated one, by user data header or SAR parameters, joined and decoded),
POST /mo {"from", "to", "text"[, "system_id"]}, POST /fault {"mode": ...}, POST /reset.

PDUs are encoded and decoded with smpplib; this module only frames them by command_length.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import hashlib
import hmac
import itertools
import json
import logging
import signal
import struct
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from smpplib import consts, exceptions, smpp
from smpplib import gsm as smpplib_gsm
from smpplib import pdu as smpplib_pdu
from smpplib.client import SimpleSequenceGenerator

LOG = logging.getLogger("smsc_simulator")

HEADER = struct.Struct(">LLLL")
MAX_PDU_LENGTH = 64 * 1024  # far above any legal PDU; anything bigger is a broken stream
ESM_CLASS_RECEIPT = 0x04
ESM_CLASS_UDHI = 0x40
DATA_CODING_GSM = 0x00
DATA_CODING_UCS2 = 0x08
MAX_SHORT_MESSAGE = 254
MAX_DELIVERY_ATTEMPTS = 20
DUPLICATES_SHOWN = 100

BIND_TYPES = {"bind_transmitter": "transmitter", "bind_receiver": "receiver", "bind_transceiver": "transceiver"}
CAN_SUBMIT = frozenset({"transmitter", "transceiver"})
CAN_RECEIVE = frozenset({"receiver", "transceiver"})
FAULT_MODES = ("none", "drop_binds", "slow", "reject", "throttle")
COUNTERS = (
    "connections",
    "bind_failures",
    "unbinds",
    "enquire_links",
    "generic_nacks_sent",
    "submits_received",
    "submits_accepted",
    "submits_rejected",
    "submits_throttled",
    "unique_messages",
    "duplicates",
    "receipts_sent",
    "receipts_acknowledged",
    "receipts_failed",
    "receipts_dropped",
    "mo_injected",
    "mo_sent",
    "mo_acknowledged",
    "mo_failed",
    "mo_dropped",
)

# GSM 03.38, unpacked (one septet per octet), which is what Kannel sends with data_coding 0 unless
# alt-charset is set. The table is smpplib's (index < 0x80: the default alphabet; 0x80 + c: the
# extension character reached by ESC c; '`' fills codes without a character), with its two gaps
# filled after 3GPP TS 23.038: 0x5F is '\u00a7' (smpplib has a filler there) and ESC 0x0A the form feed.
_SMPPLIB_FILLER = "`"
GSM_BASIC = smpplib_gsm.GSM_CHARACTER_TABLE[:0x5F] + "\u00a7" + smpplib_gsm.GSM_CHARACTER_TABLE[0x60:0x80]
GSM_EXTENSION = {
    code - 0x80: char
    for code, char in enumerate(smpplib_gsm.GSM_CHARACTER_TABLE)
    if code >= 0x80 and char != _SMPPLIB_FILLER
} | {0x0A: "\f"}
GSM_ESCAPE = 0x1B
_GSM_ENCODE = {char: bytes([code]) for code, char in enumerate(GSM_BASIC) if code != GSM_ESCAPE}
_GSM_ENCODE |= {char: bytes([GSM_ESCAPE, code]) for code, char in GSM_EXTENSION.items()}
# Concatenation information elements of a user data header (3GPP TS 23.040 9.2.3.24).
IEI_CONCAT_8BIT_REF = 0x00
IEI_CONCAT_16BIT_REF = 0x08

# Requests are parsed with their own sequence source so parsing never consumes a session's numbers.
_PARSER_SEQUENCE = SimpleSequenceGenerator()


def gsm_encode(text: str) -> bytes:
    """Encode text in the unpacked GSM 03.38 alphabet; ValueError if a character has no code."""
    out = bytearray()
    for char in text:
        code = _GSM_ENCODE.get(char)
        if code is None:
            raise ValueError(f"character {char!r} is not in the GSM 03.38 alphabet")
        out += code
    return bytes(out)


def gsm_decode(data: bytes, strict: bool = False) -> str:
    """Text of unpacked GSM 03.38 septets; strict: ValueError for an escape that leads nowhere."""
    chars = []
    escaped = False
    for octet in data:
        if escaped:
            if strict and octet not in GSM_EXTENSION:
                raise ValueError(f"escape followed by 0x{octet:02x}, which the extension table lacks")
            chars.append(GSM_EXTENSION.get(octet, " "))
            escaped = False
        elif octet == GSM_ESCAPE:
            escaped = True
        else:
            chars.append(GSM_BASIC[octet & 0x7F])
    if escaped and strict:
        raise ValueError("ends with an escape whose character is missing")
    return "".join(chars)


@dataclass(frozen=True)
class Concat:
    """Where a part of a concatenated message belongs."""

    reference: int
    total: int
    sequence: int  # from 1
    carrier: str  # "udh" (a user data header) or "sar" (SMPP's sar_* parameters)

    def as_dict(self) -> dict:
        return {"reference": self.reference, "total": self.total, "sequence": self.sequence, "carrier": self.carrier}


def split_udh(data: bytes, esm_class: int) -> tuple[bytes, Concat | None]:
    """The user data without its header, and the concatenation the header declares, if any."""
    if not (esm_class & ESM_CLASS_UDHI and data):
        return data, None
    header, body = data[1 : 1 + data[0]], data[1 + data[0] :]
    concat = None
    position = 0
    while position + 2 <= len(header):
        iei, size = header[position], header[position + 1]
        value = header[position + 2 : position + 2 + size]
        if iei == IEI_CONCAT_8BIT_REF and size == 3:
            concat = Concat(value[0], value[1], value[2], "udh")
        elif iei == IEI_CONCAT_16BIT_REF and size == 4:
            concat = Concat(int.from_bytes(value[:2], "big"), value[2], value[3], "udh")
        position += 2 + size
    return body, concat


def sar_concat(request) -> Concat | None:
    """The concatenation declared by the SAR optional parameters, when all three are present."""
    values = [getattr(request, name, None) for name in ("sar_msg_ref_num", "sar_total_segments", "sar_segment_seqnum")]
    return Concat(*values, "sar") if all(value is not None for value in values) else None


def decode_user_data(data: bytes, data_coding: int, strict: bool = False) -> str:
    """Readable text of user data without a header; strict: ValueError where a character is cut."""
    if data_coding == DATA_CODING_UCS2:
        return data.decode("utf-16-be", errors="strict" if strict else "replace")
    if data_coding == DATA_CODING_GSM:
        return gsm_decode(data, strict)
    if data_coding == 0x01:
        return data.decode("ascii", errors="replace")
    return data.decode("latin-1")


def decode_text(data: bytes, data_coding: int, esm_class: int) -> str:
    """Readable text of a short message, without its user data header."""
    return decode_user_data(split_udh(data, esm_class)[0], data_coding)


def stands_alone(user_data: bytes, data_coding: int) -> bool:
    """A part a handset can show on its own: no character cut at either end."""
    try:
        decode_user_data(user_data, data_coding, strict=True)
    except ValueError:
        return False
    return True


def encode_text(text: str) -> tuple[bytes, int]:
    """GSM 03.38 when every character has a code (as an operator would), UCS-2 otherwise."""
    try:
        return gsm_encode(text), DATA_CODING_GSM
    except ValueError:
        return text.encode("utf-16-be"), DATA_CODING_UCS2


def text_field(value: bytes | str | None) -> str:
    """smpplib returns C-string fields as bytes; SMPP addresses are ASCII, latin-1 round-trips them."""
    if value is None:
        return ""
    return value.decode("latin-1") if isinstance(value, bytes) else value


def parse_pdu(raw: bytes):
    """Decode one framed PDU; raises exceptions.UnknownCommandError for unsupported command ids."""
    try:
        return smpp.parse_pdu(raw, client=_PARSER_SEQUENCE, allow_unknown_opt_params=True)
    except exceptions.UnknownCommandError:
        raise
    except (struct.error, KeyError, IndexError, ValueError, TypeError):
        # smpplib cannot place some optional parameters on some commands; the mandatory part is
        # all the simulator needs, so decode again without the optional parameters.
        command = smpplib_pdu.extract_command(raw)
        lenient = smpp.make_pdu(command, client=_PARSER_SEQUENCE, allow_unknown_opt_params=True)
        lenient.parse_optional_params = lambda data: None
        lenient.parse(raw)
        LOG.warning("%s: optional parameters could not be decoded and were ignored", command)
        return lenient


def local_stamp(moment: float) -> str:
    return time.strftime("%y%m%d%H%M", time.localtime(moment))


def iso_utc(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Config:
    accounts: dict[str, str]
    smpp_port: int = 2775
    control_port: int = 8775
    bind: str = "0.0.0.0"
    control_bind: str | None = None
    system_id: str = "SMSCSIM"
    receipt_delay: float = 0.2
    retry_delay: float = 1.0
    max_messages: int = 10000


@dataclass
class Message:
    """A submit_sm the simulator accepted."""

    id: str
    system_id: str
    source: str
    source_ton: int
    source_npi: int
    destination: str
    destination_ton: int
    destination_npi: int
    payload: bytes
    text: str
    data_coding: int
    esm_class: int
    registered_delivery: int
    received_at: float
    user_data: bytes = b""  # the payload without its user data header
    concat: Concat | None = None
    duplicate: bool = False

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "system_id": self.system_id,
            "source": self.source,
            "destination": self.destination,
            "text": self.text,
            "data_coding": self.data_coding,
            "esm_class": self.esm_class,
            "registered_delivery": self.registered_delivery,
            "received_at": iso_utc(self.received_at),
            "duplicate": self.duplicate,
            "part": self.concat.as_dict() if self.concat else None,
        }


def text_of(parts: list[Message]) -> dict:
    """One message as the handset shows it: its parts' user data joined, then decoded."""
    first = parts[0]
    return {
        "ids": [part.id for part in parts],
        "system_id": first.system_id,
        "source": first.source,
        "destination": first.destination,
        "data_coding": first.data_coding,
        "parts": len(parts),
        "concatenation": first.concat.carrier if first.concat and len(parts) > 1 else None,
        "text": decode_user_data(b"".join(part.user_data for part in parts), first.data_coding),
        "part_texts": [part.text for part in parts],
        "part_octets": [len(part.user_data) for part in parts],
        "parts_stand_alone": all(stands_alone(part.user_data, part.data_coding) for part in parts),
        "received_at": iso_utc(parts[-1].received_at),
    }


@dataclass
class Delivery:
    """A deliver_sm waiting for a receiver: a receipt or an injected MO message."""

    kind: str  # "receipts" or "mo": the prefix of its counters
    system_id: str
    fields: dict
    label: str
    attempts: int = 0


@dataclass
class Fault:
    mode: str = "none"
    delay_ms: int = 0
    status: int = consts.SMPP_ESME_RSYSERR
    rate: int = 0

    def as_dict(self) -> dict:
        result = {"mode": self.mode}
        if self.mode == "slow":
            result["delay_ms"] = self.delay_ms
        elif self.mode == "reject":
            result["status"] = self.status
        elif self.mode == "throttle":
            result["rate"] = self.rate
        return result


def int_param(body: dict, name: str, default: int, minimum: int) -> int:
    value = body.get(name, default)
    if isinstance(value, str):
        try:
            value = int(value, 0)
        except ValueError:
            raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def parse_fault(body: dict) -> Fault:
    mode = body.get("mode")
    if mode not in FAULT_MODES:
        raise ValueError(f"mode must be one of {', '.join(FAULT_MODES)}, got {mode!r}")
    if mode == "slow":
        return Fault(mode, delay_ms=int_param(body, "delay_ms", 1000, 0))
    if mode == "reject":
        return Fault(mode, status=int_param(body, "status", consts.SMPP_ESME_RSYSERR, 1))
    if mode == "throttle":
        return Fault(mode, rate=int_param(body, "rate", 1, 0))
    return Fault(mode)


class Stats:
    """Counters for /stats; reset by POST /reset."""

    def __init__(self, max_messages: int):
        self.max_messages = max_messages
        self.reset()

    def reset(self) -> None:
        self.counters: collections.Counter[str] = collections.Counter()
        self.binds: collections.Counter[str] = collections.Counter()
        self.by_source: collections.Counter[str] = collections.Counter()
        self.by_destination: collections.Counter[str] = collections.Counter()
        self.seen: collections.Counter[bytes] = collections.Counter()
        self.duplicates: dict[bytes, dict] = {}
        self.messages: collections.deque[Message] = collections.deque(maxlen=self.max_messages)
        # Whole messages, their parts reassembled; parts of unfinished ones wait in `assembling`.
        self.texts: collections.deque[dict] = collections.deque(maxlen=self.max_messages)
        self.assembling: dict[tuple, dict[int, Message]] = {}

    def record(self, message: Message) -> None:
        # A duplicate is the same (source, destination, short_message) accepted more than once.
        key = hashlib.blake2b(
            b"\0".join([message.source.encode(), message.destination.encode(), message.payload]), digest_size=16
        ).digest()
        self.seen[key] += 1
        count = self.seen[key]
        message.duplicate = count > 1
        self.counters["submits_accepted"] += 1
        self.counters["duplicates" if message.duplicate else "unique_messages"] += 1
        self.by_source[message.source] += 1
        self.by_destination[message.destination] += 1
        if message.duplicate:
            self.duplicates[key] = {
                "source": message.source,
                "destination": message.destination,
                "text": message.text,
                "count": count,
            }
        self.messages.append(message)
        self.assemble(message)

    def assemble(self, message: Message) -> None:
        """File a part under its message; the message becomes a text once every part is in."""
        concat = message.concat
        if concat is None or concat.total <= 1:
            self.texts.append(text_of([message]))
            return
        key = (message.system_id, message.source, message.destination, concat.reference, concat.total)
        parts = self.assembling.setdefault(key, {})
        parts[concat.sequence] = message
        if set(parts) == set(range(1, concat.total + 1)):
            del self.assembling[key]
            self.texts.append(text_of([parts[number] for number in sorted(parts)]))

    def incomplete(self) -> list[dict]:
        return [
            {"source": source, "destination": destination, "reference": reference, "total": total,
             "received": sorted(parts)}
            for (_, source, destination, reference, total), parts in self.assembling.items()
        ]  # fmt: skip


class Session:
    """One SMPP connection, from accept to close."""

    _numbers = itertools.count(1)

    def __init__(self, simulator: Simulator, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.simulator = simulator
        self.reader = reader
        self.writer = writer
        self.number = next(self._numbers)
        peer = writer.get_extra_info("peername") or ("?", 0)
        self.peer = f"{peer[0]}:{peer[1]}"
        self.bind_type: str | None = None
        self.system_id: str | None = None
        self.sequences = SimpleSequenceGenerator()
        self.inflight: dict[int, Delivery] = {}
        self.handlers = {
            "bind_transmitter": self.on_bind,
            "bind_receiver": self.on_bind,
            "bind_transceiver": self.on_bind,
            "submit_sm": self.on_submit,
            "enquire_link": self.on_enquire_link,
            "unbind": self.on_unbind,
            "deliver_sm_resp": self.on_deliver_resp,
            "generic_nack": self.on_generic_nack,
        }

    def __str__(self) -> str:
        return f"session {self.number} ({self.peer}, {self.system_id or '-'}, {self.bind_type or 'open'})"

    @property
    def receives(self) -> bool:
        return self.bind_type in CAN_RECEIVE and not self.writer.is_closing()

    def describe(self) -> dict:
        return {"id": self.number, "peer": self.peer, "system_id": self.system_id, "bind_type": self.bind_type}

    async def run(self) -> None:
        LOG.info("%s: connected", self)
        try:
            while not self.writer.is_closing():
                raw = await self.read_pdu()
                if raw is None:
                    break
                await self.handle(raw)
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
            LOG.info("%s: connection lost (%s)", self, type(exc).__name__)
        except Exception:
            LOG.exception("%s: closing after an unexpected error", self)
        finally:
            # close() still flushes a last response (a generic_nack, say); faults use abort().
            self.writer.close()
            self.simulator.session_closed(self)
            LOG.info("%s: closed", self)

    async def read_pdu(self) -> bytes | None:
        """One whole PDU, framed by command_length, however the bytes arrive."""
        try:
            head = await self.reader.readexactly(4)
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise
            return None
        (length,) = struct.unpack(">L", head)
        if not HEADER.size <= length <= MAX_PDU_LENGTH:
            # The stream cannot be re-synchronised after a bad length: say so and hang up.
            LOG.warning("%s: invalid command_length %d, closing", self, length)
            await self.send_nack(consts.SMPP_ESME_RINVCMDLEN, 0)
            return None
        return head + await self.reader.readexactly(length - 4)

    async def handle(self, raw: bytes) -> None:
        _, command_id, _, sequence = HEADER.unpack_from(raw)
        try:
            request = parse_pdu(raw)
        except exceptions.UnknownCommandError:
            LOG.warning("%s: unsupported command_id 0x%08x, generic_nack", self, command_id)
            await self.send_nack(consts.SMPP_ESME_RINVCMDID, sequence)
            return
        except Exception:
            LOG.exception("%s: undecodable PDU 0x%08x, generic_nack", self, command_id)
            await self.send_nack(consts.SMPP_ESME_RSYSERR, sequence)
            return
        handler = self.handlers.get(request.command)
        if handler is not None:
            await handler(request)
        elif request.is_response():
            LOG.debug("%s: ignoring %s", self, request.command)
        else:
            LOG.warning("%s: unsupported %s, generic_nack", self, request.command)
            await self.send_nack(consts.SMPP_ESME_RINVCMDID, sequence)

    async def respond(self, command: str, request, status: int = consts.SMPP_ESME_ROK, **fields) -> None:
        response = smpp.make_pdu(command, client=self.sequences, status=status, **fields)
        # make_pdu ignores sequence= when its client has a sequence of its own.
        response.sequence = request.sequence
        response.status = status
        await self.simulator.response_delay()
        await self.write(response)

    async def send_nack(self, status: int, sequence: int) -> None:
        nack = smpp.make_pdu("generic_nack", client=self.sequences, status=status)
        nack.sequence = sequence
        self.simulator.stats.counters["generic_nacks_sent"] += 1
        await self.simulator.response_delay()
        await self.write(nack)

    async def write(self, pdu) -> None:
        if self.writer.is_closing():
            return
        self.writer.write(pdu.generate())
        await self.writer.drain()

    def abort(self) -> None:
        """Drop the TCP connection at once, as a failing SMSC would."""
        if not self.writer.is_closing():
            self.writer.transport.abort()

    async def on_bind(self, request) -> None:
        command = f"{request.command}_resp"
        if self.bind_type is not None:
            await self.respond(command, request, consts.SMPP_ESME_RALYBND, system_id=self.simulator.config.system_id)
            return
        bind_type = BIND_TYPES[request.command]
        system_id = text_field(request.system_id)
        status = self.simulator.check_bind(system_id, text_field(request.password))
        if status != consts.SMPP_ESME_ROK:
            self.simulator.stats.counters["bind_failures"] += 1
            LOG.warning("%s: %s as %r refused with 0x%02x", self, request.command, system_id, status)
            await self.respond(command, request, status, system_id=self.simulator.config.system_id)
            if self.simulator.fault.mode == "drop_binds":
                self.abort()
            return
        await self.respond(command, request, system_id=self.simulator.config.system_id, sc_interface_version=0x34)
        # Bound only once the response is out: Kannel ignores a deliver_sm that comes before it.
        self.bind_type, self.system_id = bind_type, system_id
        self.simulator.stats.binds[bind_type] += 1
        LOG.info("%s: bound as %s", self, bind_type)
        self.simulator.pump(system_id)

    async def on_submit(self, request) -> None:
        if self.bind_type not in CAN_SUBMIT:
            await self.respond("submit_sm_resp", request, consts.SMPP_ESME_RINVBNDSTS)
            return
        status, message = self.simulator.accept_submit(self, request)
        await self.respond("submit_sm_resp", request, status, message_id=message.id if message else None)
        if message is not None and message.registered_delivery & 0x01:
            self.simulator.schedule_receipt(message)

    async def on_enquire_link(self, request) -> None:
        self.simulator.stats.counters["enquire_links"] += 1
        await self.respond("enquire_link_resp", request)

    async def on_unbind(self, request) -> None:
        self.simulator.stats.counters["unbinds"] += 1
        LOG.info("%s: unbind", self)
        await self.respond("unbind_resp", request)
        self.bind_type = None
        self.writer.close()

    async def on_deliver_resp(self, response) -> None:
        delivery = self.inflight.pop(response.sequence, None)
        if delivery is None:
            LOG.warning("%s: deliver_sm_resp for unknown sequence %d", self, response.sequence)
        elif response.status == consts.SMPP_ESME_ROK:
            self.simulator.stats.counters[f"{delivery.kind}_acknowledged"] += 1
            LOG.info("%s: %s acknowledged", self, delivery.label)
        else:
            self.simulator.delivery_failed(delivery, f"status 0x{response.status:02x}")

    async def on_generic_nack(self, response) -> None:
        delivery = self.inflight.pop(response.sequence, None)
        if delivery is not None:
            self.simulator.delivery_failed(delivery, f"generic_nack 0x{response.status:02x}")
        else:
            LOG.warning("%s: generic_nack 0x%02x for sequence %d", self, response.status, response.sequence)

    def deliver(self, delivery: Delivery) -> None:
        """Send a deliver_sm now; the session's reader collects the deliver_sm_resp."""
        pdu = smpp.make_pdu("deliver_sm", client=self.sequences, **delivery.fields)
        self.inflight[pdu.sequence] = delivery
        delivery.attempts += 1
        self.writer.write(pdu.generate())
        self.simulator.stats.counters[f"{delivery.kind}_sent"] += 1
        LOG.info("%s: sent %s (attempt %d)", self, delivery.label, delivery.attempts)


class Simulator:
    def __init__(self, config: Config):
        self.config = config
        self.stats = Stats(config.max_messages)
        self.fault = Fault()
        self.sessions: set[Session] = set()
        self.outbox: dict[str, collections.deque[Delivery]] = collections.defaultdict(collections.deque)
        self.started = time.time()
        # Decimal ids that keep growing across restarts, so Kannel's stored DLRs never collide.
        self.ids = itertools.count(time.time_ns() // 1000)
        self.mo_ids = itertools.count(1)
        self.accepted_times: collections.deque[float] = collections.deque()
        self.timers: set[asyncio.TimerHandle] = set()
        self.round_robin = itertools.count()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.smpp_server: asyncio.Server | None = None
        self.control_server: ControlServer | None = None
        self.smpp_port = 0
        self.control_port = 0

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.smpp_server = await asyncio.start_server(self.accept, self.config.bind, self.config.smpp_port)
        self.smpp_port = self.smpp_server.sockets[0].getsockname()[1]
        control_bind = self.config.control_bind or self.config.bind
        self.control_server = ControlServer((control_bind, self.config.control_port), self, self.loop)
        self.control_port = self.control_server.server_address[1]
        threading.Thread(target=self.control_server.serve_forever, args=(0.1,), daemon=True).start()
        LOG.info(
            "listening smpp=%s:%d control=%s:%d accounts=%d",
            self.config.bind,
            self.smpp_port,
            control_bind,
            self.control_port,
            len(self.config.accounts),
        )

    async def close(self) -> None:
        if self.control_server is not None:
            await asyncio.to_thread(self.control_server.shutdown)
            self.control_server.server_close()
        if self.smpp_server is not None:
            self.smpp_server.close()
        for session in list(self.sessions):
            session.abort()
        for timer in self.timers:
            timer.cancel()
        if self.smpp_server is not None:
            await self.smpp_server.wait_closed()
        # Let the session tasks run their cleanup before the loop goes away.
        await asyncio.sleep(0)

    async def accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(self, reader, writer)
        self.sessions.add(session)
        self.stats.counters["connections"] += 1
        await session.run()

    def session_closed(self, session: Session) -> None:
        self.sessions.discard(session)
        if session.inflight:
            # Never acknowledged: hand them to the next receiver, as a real SMSC retries.
            pending = [session.inflight[seq] for seq in sorted(session.inflight)]
            session.inflight.clear()
            for delivery in pending:
                LOG.info("%s: %s not acknowledged, queued again", session, delivery.label)
            self.outbox[session.system_id].extendleft(reversed(pending))
        if session.system_id is not None:
            self.pump(session.system_id)

    async def response_delay(self) -> None:
        if self.fault.mode == "slow" and self.fault.delay_ms:
            await asyncio.sleep(self.fault.delay_ms / 1000)

    def check_bind(self, system_id: str, password: str) -> int:
        if self.fault.mode == "drop_binds":
            return consts.SMPP_ESME_RBINDFAIL
        expected = self.config.accounts.get(system_id)
        if expected is None:
            return consts.SMPP_ESME_RBINDFAIL
        if not hmac.compare_digest(expected.encode(), password.encode()):
            return consts.SMPP_ESME_RINVPASWD
        return consts.SMPP_ESME_ROK

    def submit_fault_status(self) -> int:
        if self.fault.mode == "reject":
            self.stats.counters["submits_rejected"] += 1
            return self.fault.status
        if self.fault.mode == "throttle":
            now = time.monotonic()
            while self.accepted_times and now - self.accepted_times[0] >= 1.0:
                self.accepted_times.popleft()
            if len(self.accepted_times) >= self.fault.rate:
                self.stats.counters["submits_throttled"] += 1
                return consts.SMPP_ESME_RTHROTTLED
            self.accepted_times.append(now)
        return consts.SMPP_ESME_ROK

    def accept_submit(self, session: Session, request) -> tuple[int, Message | None]:
        self.stats.counters["submits_received"] += 1
        status = self.submit_fault_status()
        source, destination = text_field(request.source_addr), text_field(request.destination_addr)
        if status != consts.SMPP_ESME_ROK:
            LOG.info("submit from=%s to=%s answered 0x%02x (fault %s)", source, destination, status, self.fault.mode)
            return status, None
        message = self.message_from(session, request)
        self.stats.record(message)
        LOG.info(
            "submit id=%s from=%s to=%s dc=%d dlr=%d dup=%s text=%r",
            message.id,
            message.source,
            message.destination,
            message.data_coding,
            message.registered_delivery,
            message.duplicate,
            message.text,
        )
        return status, message

    def message_from(self, session: Session, request) -> Message:
        payload = request.short_message or b""
        if not payload and getattr(request, "message_payload", None):
            payload = request.message_payload
        data_coding, esm_class = request.data_coding or 0, request.esm_class or 0
        user_data, concat = split_udh(payload, esm_class)
        return Message(
            id=str(next(self.ids)),
            system_id=session.system_id or "",
            source=text_field(request.source_addr),
            source_ton=request.source_addr_ton or 0,
            source_npi=request.source_addr_npi or 0,
            destination=text_field(request.destination_addr),
            destination_ton=request.dest_addr_ton or 0,
            destination_npi=request.dest_addr_npi or 0,
            payload=payload,
            text=decode_user_data(user_data, data_coding),
            data_coding=data_coding,
            esm_class=esm_class,
            registered_delivery=request.registered_delivery or 0,
            received_at=time.time(),
            user_data=user_data,
            concat=concat or sar_concat(request),
        )

    def schedule_receipt(self, message: Message) -> None:
        def fire() -> None:
            self.timers.discard(timer)
            self.enqueue(receipt_for(message, time.time()))

        timer = self.loop.call_later(self.config.receipt_delay, fire)
        self.timers.add(timer)

    def enqueue(self, delivery: Delivery) -> None:
        self.outbox[delivery.system_id].append(delivery)
        self.pump(delivery.system_id)

    def pump(self, system_id: str) -> None:
        """Send what waits for system_id to its bound receivers, in turn."""
        queue = self.outbox.get(system_id)
        while queue:
            receivers = [s for s in self.sessions if s.system_id == system_id and s.receives]
            if not receivers:
                return
            receivers.sort(key=lambda s: s.number)
            receivers[next(self.round_robin) % len(receivers)].deliver(queue.popleft())

    def delivery_failed(self, delivery: Delivery, reason: str) -> None:
        self.stats.counters[f"{delivery.kind}_failed"] += 1
        if delivery.attempts >= MAX_DELIVERY_ATTEMPTS:
            LOG.warning("%s refused (%s) %d times, dropped", delivery.label, reason, delivery.attempts)
            self.stats.counters[f"{delivery.kind}_dropped"] += 1
            return
        LOG.warning("%s refused (%s), retrying in %.1fs", delivery.label, reason, self.config.retry_delay)

        def retry() -> None:
            self.timers.discard(timer)
            self.enqueue(delivery)

        timer = self.loop.call_later(self.config.retry_delay, retry)
        self.timers.add(timer)

    # Control API, always called on the event loop.

    def inject_mo(self, body: dict) -> dict:
        source, destination, text = body.get("from"), body.get("to"), body.get("text")
        for name, value in (("from", source), ("to", destination), ("text", text)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty string")
        system_id = body.get("system_id") or next(iter(self.config.accounts), "")
        if system_id not in self.config.accounts:
            raise ValueError(f"unknown system_id {system_id!r}")
        payload, data_coding = encode_text(text)
        number = next(self.mo_ids)
        fields = {
            "service_type": "",
            "source_addr_ton": int_param(body, "source_ton", 1, 0),
            "source_addr_npi": int_param(body, "source_npi", 1, 0),
            "source_addr": source,
            "dest_addr_ton": int_param(body, "destination_ton", 0, 0),
            "dest_addr_npi": int_param(body, "destination_npi", 0, 0),
            "destination_addr": destination,
            "esm_class": 0,
            "data_coding": data_coding,
        }
        # Past 254 octets short_message cannot carry it; SMPP 3.4 moves it to message_payload.
        fields["short_message" if len(payload) <= MAX_SHORT_MESSAGE else "message_payload"] = payload
        label = f"MO {number} from={source} to={destination}"
        self.stats.counters["mo_injected"] += 1
        LOG.info("%s injected for %s text=%r", label, system_id, text)
        self.enqueue(Delivery("mo", system_id, fields, label))
        return {"id": number, "system_id": system_id, "data_coding": data_coding, "queued": self.pending("mo")}

    def set_fault(self, body: dict) -> dict:
        self.fault = parse_fault(body)
        self.accepted_times.clear()
        LOG.warning("fault mode now %s", self.fault.as_dict())
        if self.fault.mode == "drop_binds":
            for session in list(self.sessions):
                session.abort()
        return self.fault.as_dict()

    def reset(self) -> dict:
        self.stats.reset()
        LOG.info("counters reset")
        return {"reset": True}

    def pending(self, kind: str) -> int:
        queued = sum(1 for queue in self.outbox.values() for d in queue if d.kind == kind)
        inflight = sum(1 for s in self.sessions for d in s.inflight.values() if d.kind == kind)
        return queued + inflight

    def snapshot(self) -> dict:
        counters = self.stats.counters
        bound = collections.Counter(s.bind_type for s in self.sessions if s.bind_type)
        return {
            "uptime_s": round(time.time() - self.started, 3),
            "fault": self.fault.as_dict(),
            "binds": {kind: self.stats.binds[kind] for kind in BIND_TYPES.values()},
            "bound": {kind: bound[kind] for kind in BIND_TYPES.values()},
            "sessions": [s.describe() for s in sorted(self.sessions, key=lambda s: s.number)],
            **{name: counters[name] for name in COUNTERS},
            "receipts_pending": self.pending("receipts"),
            "mo_pending": self.pending("mo"),
            "by_source": dict(self.stats.by_source),
            "by_destination": dict(self.stats.by_destination),
            "duplicate_messages": list(self.stats.duplicates.values())[:DUPLICATES_SHOWN],
        }

    def messages(self, limit: int | None) -> dict:
        records = latest(self.stats.messages, limit)
        return {"count": len(records), "messages": [m.as_dict() for m in records]}

    def texts(self, limit: int | None) -> dict:
        records = latest(self.stats.texts, limit)
        return {"count": len(records), "texts": records, "incomplete": self.stats.incomplete()}


def latest(records: collections.deque, limit: int | None) -> list:
    """The newest `limit` records (all of them when limit is None)."""
    if limit is None:
        return list(records)
    return list(records)[-limit:] if limit else []


def receipt_excerpt(text: str) -> str:
    """First 20 characters, keeping only those whose GSM code is their ASCII code.

    Kannel hands the receipt text to the dlr-url (%A) as raw bytes: a GSM '@' would arrive as NUL.
    """
    same = {c for c in text[:20] if c.isascii() and c.isprintable() and _GSM_ENCODE.get(c) == c.encode()}
    return "".join(c if c in same else "?" for c in text[:20])


def receipt_for(message: Message, done_at: float) -> Delivery:
    """The standard SMPP 3.4 appendix B receipt, as Kannel's handle_dlr parses it."""
    text = (
        f"id:{message.id} sub:001 dlvrd:001 submit date:{local_stamp(message.received_at)} "
        f"done date:{local_stamp(done_at)} stat:DELIVRD err:000 text:{receipt_excerpt(message.text)}"
    )
    fields = {
        "service_type": "",
        # The receipt travels back: from the handset to the short code that sent the message.
        "source_addr_ton": message.destination_ton,
        "source_addr_npi": message.destination_npi,
        "source_addr": message.destination,
        "dest_addr_ton": message.source_ton,
        "dest_addr_npi": message.source_npi,
        "destination_addr": message.source,
        "esm_class": ESM_CLASS_RECEIPT,
        "data_coding": DATA_CODING_GSM,
        "short_message": gsm_encode(text),
        "receipted_message_id": message.id,
        "message_state": consts.SMPP_MESSAGE_STATE_DELIVERED,
    }
    return Delivery("receipts", message.system_id, fields, f"receipt id={message.id} to={message.source}")


class ControlServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, simulator: Simulator, loop: asyncio.AbstractEventLoop):
        self.simulator = simulator
        self.loop = loop
        # HTTP callbacks from the gateways (delivery reports, citizens' replies), standing in
        # for the CFM service's endpoints so tests can see what the application would get.
        self.callbacks: collections.deque[dict] = collections.deque(maxlen=20000)
        self.callbacks_lock = threading.Lock()
        super().__init__(address, ControlHandler)

    def record_callback(self, kind: str, query: str) -> dict:
        entry = {key: values[0] for key, values in parse_qs(query, keep_blank_values=True).items()}
        entry.update(kind=kind, received_at=datetime.now(UTC).isoformat())
        with self.callbacks_lock:
            self.callbacks.append(entry)
        LOG.info("callback %s %s", kind, {k: v for k, v in entry.items() if k != "received_at"})
        return entry

    def list_callbacks(self, kind: str | None) -> list[dict]:
        with self.callbacks_lock:
            return [entry for entry in self.callbacks if kind is None or entry["kind"] == kind]

    def call(self, func, *args):
        """Run func on the event loop, which owns all simulator state."""

        async def invoke():
            return func(*args)

        return asyncio.run_coroutine_threadsafe(invoke(), self.loop).result(timeout=10)


class ControlHandler(BaseHTTPRequestHandler):
    server: ControlServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        simulator = self.server.simulator
        if url.path == "/health":
            self.reply(HTTPStatus.OK, {"status": "ok"})
        elif url.path == "/stats":
            self.reply(HTTPStatus.OK, self.server.call(simulator.snapshot))
        elif url.path == "/messages":
            self.guard(lambda: self.reply(HTTPStatus.OK, self.server.call(simulator.messages, self.limit(url.query))))
        elif url.path == "/texts":
            self.guard(lambda: self.reply(HTTPStatus.OK, self.server.call(simulator.texts, self.limit(url.query))))
        elif url.path in ("/callbacks/dlr", "/callbacks/mo"):
            self.reply(HTTPStatus.OK, self.server.record_callback(url.path.rsplit("/", 1)[1], url.query))
        elif url.path == "/callbacks":
            kind = parse_qs(url.query).get("kind", [None])[0]
            callbacks = self.server.list_callbacks(kind)
            self.reply(HTTPStatus.OK, {"count": len(callbacks), "callbacks": callbacks})
        else:
            self.reply(HTTPStatus.NOT_FOUND, {"error": f"no such resource {url.path}"})

    def do_POST(self) -> None:
        simulator = self.server.simulator
        routes = {"/mo": simulator.inject_mo, "/fault": simulator.set_fault, "/reset": self.reset}
        route = routes.get(urlsplit(self.path).path)
        body = self.guard(self.read_body)
        if body is None:
            return
        if route is None:
            self.reply(HTTPStatus.NOT_FOUND, {"error": f"no such resource {self.path}"})
            return
        self.guard(lambda: self.reply(HTTPStatus.OK, self.server.call(route, body)))

    def reset(self, body: dict) -> dict:
        with self.server.callbacks_lock:
            self.server.callbacks.clear()
        return self.server.simulator.reset()

    def guard(self, action):
        """action's result, or None once a 400 answer went out for its ValueError."""
        try:
            return action()
        except ValueError as exc:
            self.reply(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            return None

    @staticmethod
    def limit(query: str) -> int | None:
        values = parse_qs(query).get("limit")
        if not values:
            return None
        if not values[0].isdigit():
            raise ValueError("limit must be a non-negative integer")
        return int(values[0])

    def read_body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ValueError("body must be a JSON object")
        return body

    def reply(self, status: HTTPStatus, payload: dict) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args) -> None:
        LOG.debug("control %s " + format, self.client_address[0], *args)


def load_accounts(path: Path) -> dict[str, str]:
    data = json.loads(path.read_text())
    if isinstance(data, dict):
        data = data.get("accounts")
    if not isinstance(data, list) or not data:
        raise ValueError(f"{path}: expected a non-empty list of {{system_id, password}}")
    accounts = {}
    for entry in data:
        if not isinstance(entry, dict) or not isinstance(entry.get("system_id"), str) or not entry["system_id"]:
            raise ValueError(f"{path}: every account needs a system_id string, got {entry!r}")
        if not isinstance(entry.get("password"), str):
            raise ValueError(f"{path}: account {entry['system_id']!r} needs a password string")
        accounts[entry["system_id"]] = entry["password"]
    return accounts


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smpp-port", type=int, default=2775, help="SMPP port (0: any free port)")
    parser.add_argument("--control-port", type=int, default=8775, help="HTTP control port (0: any free port)")
    parser.add_argument("--bind", default="0.0.0.0", help="address the SMPP server listens on")
    parser.add_argument("--control-bind", help="address the control API listens on (default: --bind)")
    parser.add_argument("--accounts-file", type=Path, default=Path("/etc/smsc-simulator/accounts.json"))
    parser.add_argument("--system-id", default="SMSCSIM", help="system_id returned in bind responses")
    parser.add_argument("--receipt-delay", type=float, default=0.2, help="seconds from submit to receipt")
    parser.add_argument("--retry-delay", type=float, default=1.0, help="seconds before a refused deliver_sm is retried")
    parser.add_argument("--max-messages", type=int, default=10000, help="submits kept for GET /messages")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser.parse_args(argv)


async def serve(config: Config) -> None:
    simulator = Simulator(config)
    await simulator.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    LOG.info("stopping")
    await simulator.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(stream=sys.stdout, level=args.log_level, format="%(asctime)s %(levelname)s %(message)s")
    try:
        accounts = load_accounts(args.accounts_file)
    except (OSError, ValueError) as exc:
        LOG.error("cannot load accounts: %s", exc)
        return 2
    config = Config(
        accounts=accounts,
        smpp_port=args.smpp_port,
        control_port=args.control_port,
        bind=args.bind,
        control_bind=args.control_bind,
        system_id=args.system_id,
        receipt_delay=args.receipt_delay,
        retry_delay=args.retry_delay,
        max_messages=args.max_messages,
    )
    try:
        asyncio.run(serve(config))
    except OSError as exc:
        LOG.error("cannot listen: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
