"""The sendsms guard's text check (roles/kannel/files/sms_text_guard.lua), run in Lua 5.3 as
Debian's HAProxy runs it: the coding it picks, the parts it counts, what it refuses and how it
rewrites the request."""

from __future__ import annotations

import importlib.util
import random
import sys
import urllib.parse
from pathlib import Path

import pytest
from lupa.lua53 import LuaRuntime

REPO = Path(__file__).resolve().parents[2]
GUARD = REPO / "roles/kannel/files/sms_text_guard.lua"
SIMULATOR = REPO / "roles/smsc_simulator/files/smsc_simulator.py"

KHMER = "សូមអរគុណសម្រាប់ការមកពិនិត្យសុខភាព"  # "thank you for coming for a health check"
EMOJI = "\U0001f600"


def load_simulator():
    spec = importlib.util.spec_from_file_location("smsc_simulator_for_guard", SIMULATOR)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def lua():
    return LuaRuntime(unpack_returned_tuples=True)


@pytest.fixture(scope="module")
def guard(lua):
    return lua.execute(GUARD.read_text())


def as_dict(table) -> dict:
    return {key: value for key, value in table.items()}


def measure(lua, guard, text: str, encoding: str | None = None) -> dict | None:
    codes = guard.code_points(text.encode())
    if not isinstance(codes, tuple):
        codes = (codes,)
    assert codes[0] is not None, f"not UTF-8 to the guard: {text!r}"
    result = guard.measure(codes[0], encoding)
    if isinstance(result, tuple):
        result = result[0]
    return None if result is None else as_dict(result)


def check(guard, params: dict | str, max_parts: int = 1) -> dict:
    query = params if isinstance(params, str) else urllib.parse.urlencode(params)
    return as_dict(guard.check(query, max_parts, "cfm"))


# The GSM table


def test_gsm_table_is_the_one_the_simulator_decodes_with(guard):
    """Two tables written apart (the guard's in Lua, the simulator's from smpplib's) must agree."""
    simulator = load_simulator()
    septets = {int(code): int(width) for code, width in guard.GSM_SEPTETS.items()}
    basic = {ord(char) for code, char in enumerate(simulator.GSM_BASIC) if code != simulator.GSM_ESCAPE}
    extension = {ord(char) for char in simulator.GSM_EXTENSION.values()}
    assert {code for code, width in septets.items() if width == 1} == basic
    assert {code for code, width in septets.items() if width == 2} == extension
    assert len(basic) == 127 and len(extension) == 10


# Counting what the network counts


@pytest.mark.parametrize(
    ("text", "encoding", "units", "parts"),
    [
        ("Thank you for your visit", "gsm", 24, 1),
        ("a" * 160, "gsm", 160, 1),
        ("a" * 161, "gsm", 161, 2),
        ("a" * 158 + "€", "gsm", 160, 1),  # an extension character takes two septets
        ("a" * 159 + "€", "gsm", 161, 2),
        ("a" * 306, "gsm", 306, 2),
        ("a" * 307, "gsm", 307, 3),
        # an escape and its character stay in one part: 152 + 2 does not fit in 153
        ("a" * 152 + "€" + "a" * 152, "gsm", 306, 3),
        ("{[|]}" * 32, "gsm", 320, 3),
        ("@£$¥ èéùìò Ç Ø Å Δ_ΦΓΛΩΠΨΣΘΞ ÆæßÉ ¤ ¡ ÄÖÑÜ§ ¿ äöñüà", "gsm", 51, 1),
        ("Très bien: à bientôt", "ucs2", 20, 1),  # ô is not in GSM 03.38
        ("Ke a leboha haholo, ntate", "gsm", 25, 1),  # Sesotho in plain Latin letters
        ("Ho lokile, 'mê", "ucs2", 14, 1),  # ê needs UCS-2
        ("ç", "ucs2", 1, 1),  # GSM has only the capital Ç
        ("`", "ucs2", 1, 1),
        ("ក" * 70, "ucs2", 70, 1),
        ("ក" * 71, "ucs2", 71, 2),
        ("ក" * 134, "ucs2", 134, 2),
        ("ក" * 135, "ucs2", 135, 3),
        (KHMER, "ucs2", len(KHMER), 1),
        (EMOJI * 35, "ucs2", 70, 1),  # a character beyond the BMP is two UTF-16 units
        ("Thank you អរគុណ 👍", "ucs2", 18, 1),
    ],
)
def test_coding_units_and_parts(lua, guard, text, encoding, units, parts):
    measured = measure(lua, guard, text)
    assert (measured["encoding"], measured["units"], measured["parts"]) == (encoding, units, parts)
    assert measured.get("per_part") == (67 if encoding == "ucs2" and parts > 1 else None)


@pytest.mark.parametrize(
    ("text", "per_part", "parts"),
    [
        ("ក" * 150, 67, 3),  # no character beyond the BMP: Kannel's own 67
        (EMOJI * 36, 66, 2),  # 67 would cut the 34th emoji
        ("a" * 66 + EMOJI + "a" * 10, 66, 2),
        ("a" * 66 + EMOJI + "a" * 66, 66, 3),
        ("a" * 67 + EMOJI + "a" * 66, 67, 3),  # the emoji starts part 2 whole
        ("ab" + EMOJI * 99, 66, 4),  # every even offset starts an emoji
        ("a" * 66 + EMOJI + "a" * 63 + EMOJI + "a" * 10, 65, 3),  # 67 and 66 would each cut one
    ],
)
def test_ucs2_parts_never_cut_a_character(lua, guard, text, per_part, parts):
    measured = measure(lua, guard, text)
    assert (measured["per_part"], measured["parts"]) == (per_part, parts)
    encoded = text.encode("utf-16-be")
    for boundary in range(per_part, len(encoded) // 2, per_part):
        assert not 0xDC00 <= int.from_bytes(encoded[2 * boundary : 2 * boundary + 2], "big") <= 0xDFFF


def test_a_text_no_equal_part_size_can_split_is_refused(guard):
    # "a" then emoji: every even offset past 1 is an emoji's second half, and with three parts or
    # more one boundary is always even
    decision = check(guard, {"username": "cfm", "text": "a" + EMOJI * 100}, max_parts=5)
    assert decision["status"] == 400
    assert "cannot be split into parts without cutting a character" in decision["message"]


@pytest.mark.parametrize(
    ("per_part", "udh"),
    [(67, None), (66, "%02%80%00"), (65, "%04%80%02%00%00"), (60, "%0E%80%0C" + "%00" * 12)],
)
def test_padding_header_leaves_kannel_per_part_units(guard, per_part, udh):
    assert guard.padding_udh(per_part) == udh
    if udh:
        header = urllib.parse.unquote_to_bytes(udh)
        assert header[0] == len(header) - 1  # the UDHL octet counts what follows
        # Kannel: 140 octets less the header, its 5-octet concatenation element included
        assert (140 - len(header) - 5) // 2 == per_part


def test_padding_travels_as_udh_and_a_callers_udh_never_does(guard):
    decision = check(guard, {"username": "cfm", "text": EMOJI * 36}, max_parts=2)
    assert decision["query"].endswith("&coding=2&charset=UTF-8&udh=%02%80%00")
    assert decision["parts"] == 2


def test_units_agree_with_python_codecs_on_random_texts(lua, guard):
    simulator = load_simulator()
    alphabet = simulator.GSM_BASIC.replace("\x1b", "") + "".join(simulator.GSM_EXTENSION.values())
    others = KHMER + "ôêšç`" + EMOJI + "\U0001f44d\u20b9"
    rng = random.Random(20261129)
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 400)))
        if rng.random() < 0.5:
            text = "".join(rng.choice(alphabet + others) for _ in range(rng.randint(1, 200)))
        result = measure(lua, guard, text)
        try:
            septets = len(simulator.gsm_encode(text))
        except ValueError:
            assert result["encoding"] == "ucs2", text
            assert result["units"] == len(text.encode("utf-16-be")) // 2
        else:
            assert (result["encoding"], result["units"]) == ("gsm", septets), text


def test_forced_gsm_names_the_first_character_it_cannot_carry(lua, guard):
    codes = guard.code_points("ok ក".encode())
    assert guard.measure(codes, "gsm") == (None, 4)
    assert as_dict(guard.measure(codes, "ucs2"))["parts"] == 1
    assert as_dict(guard.measure(guard.code_points(b"abc"), "ucs2")) == {"encoding": "ucs2", "units": 3, "parts": 1}


@pytest.mark.parametrize("raw", [b"\xe1\x9e", b"\xff", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"])
def test_invalid_utf8_surrogates_and_values_past_u10ffff_are_not_text(guard, raw):
    assert guard.code_points(raw)[0] is None


# Decisions on whole requests


def test_gsm_text_is_sent_as_gsm_with_the_charset_stated(guard):
    decision = check(guard, {"username": "cfm", "to": "85512000001", "text": "Rate us: 1-5 €"})
    assert (decision["encoding"], decision["parts"]) == ("gsm", 1)
    assert decision["query"] == "username=cfm&to=85512000001&text=Rate+us%3A+1-5+%E2%82%AC&coding=0&charset=UTF-8"


def test_khmer_without_coding_is_switched_to_ucs2(guard):
    decision = check(guard, {"username": "cfm", "text": KHMER})
    assert decision["encoding"] == "ucs2"
    assert decision["query"].endswith("&coding=2&charset=UTF-8")
    assert urllib.parse.parse_qs(decision["query"])["text"] == [KHMER]


def test_the_callers_other_fields_pass_untouched_and_coding_is_not_doubled(guard):
    query = "username=cfm&password=p%26w&coding=&dlr-mask=31&dlr-url=http%3A%2F%2Fx%2F%3Fa%3D1&text=hi&charset=utf-8"
    decision = check(guard, query)
    assert decision["query"] == "username=cfm&password=p%26w&dlr-mask=31&dlr-url=http%3A%2F%2Fx%2F%3Fa%3D1&text=hi" + (
        "&coding=0&charset=UTF-8"
    )


def test_coding_2_is_honoured_for_gsm_text(guard):
    decision = check(guard, {"username": "cfm", "text": "a" * 71, "coding": "2"}, max_parts=2)
    assert (decision["encoding"], decision["units"], decision["parts"]) == ("ucs2", 71, 2)


@pytest.mark.parametrize(
    ("params", "fragments"),
    [
        ({"username": "cfm"}, ["text is missing or empty"]),
        ({"username": "cfm", "text": ""}, ["text is missing or empty"]),
        ("username=cfm&text=%zz", ["not URL-encoded correctly"]),
        ("username=cfm&text=abc%E", ["not URL-encoded correctly"]),
        ("username=cfm&text=%E1%9E", ["not valid UTF-8"]),
        ({"username": "cfm", "text": "hi", "charset": "ISO-8859-1"}, ["charset=ISO-8859-1", "UTF-8"]),
        ({"username": "cfm", "text": "hi", "coding": "1"}, ["coding=1", "Leave coding= out"]),
        ({"username": "cfm", "text": "hi", "coding": "7"}, ["coding=7", "0 (GSM 7-bit) or 2 (UCS-2)"]),
        ({"username": "cfm", "text": "hi", "udh": "%06%05%04"}, ["udh="]),
        (
            {"username": "cfm", "text": "Sous: ក", "coding": "0"},
            ["'ក' (U+1780), character 7", "would show '?'", "coding=2"],
        ),
    ],
    ids=[
        "missing",
        "empty",
        "bad-escape",
        "cut-escape",
        "not-utf8",
        "other-charset",
        "8-bit",
        "unknown-coding",
        "udh",
        "khmer-as-gsm",
    ],
)
def test_refused_with_400_naming_the_fix(guard, params, fragments):
    decision = check(guard, params)
    assert decision["status"] == 400
    assert decision["message"].startswith("Refused: ")
    for fragment in fragments:
        assert fragment in decision["message"]


@pytest.mark.parametrize(
    ("text", "max_parts", "needed", "units"),
    [
        ("ក" * 71, 1, 2, "71 UCS-2 code units"),
        ("a" * 159 + "€", 1, 2, "161 GSM 7-bit septets"),
        ("ក" * 202, 3, 4, "202 UCS-2 code units"),
    ],
)
def test_too_long_is_413_with_parts_needed_and_allowed(guard, text, max_parts, needed, units):
    decision = check(guard, {"username": "cfm", "text": text}, max_parts)
    assert decision["status"] == 413
    message = decision["message"]
    assert f"needs {needed} parts ({units}" in message
    assert f"account cfm allows {max_parts} (max_messages)" in message


# The HAProxy action


ACTION_HARNESS = """
local guard, query, vars = ...
local txn = { f = {}, http = {}, vars = vars }
function txn.f:query() return query end
function txn.http:req_set_query(q) txn.rewritten = q end
function txn:get_var(name) return self.vars[name] end
function txn:set_var(name, value) self.vars[name] = value end
guard.action(txn)
return txn
"""


def run_action(lua, guard, query: str, variables: dict):
    table = lua.table_from(variables)
    txn = lua.execute(ACTION_HARNESS, guard, query, table)
    return txn.rewritten, as_dict(txn.vars)


def test_action_rewrites_a_known_accounts_request(lua, guard):
    rewritten, variables = run_action(
        lua, guard, "username=cfm&text=%E1%9E%80", {"txn.sms_max_parts": 1, "txn.sms_account": "cfm"}
    )
    assert rewritten == "username=cfm&text=%E1%9E%80&coding=2&charset=UTF-8"
    assert (variables["txn.sms_coding"], variables["txn.sms_parts"]) == ("UCS-2", 1)


def test_action_sets_the_refusal_for_haproxy_to_return(lua, guard):
    rewritten, variables = run_action(lua, guard, "username=cfm", {"txn.sms_max_parts": 1, "txn.sms_account": "cfm"})
    assert rewritten is None
    assert variables["txn.sms_refusal_status"] == 400
    assert "missing or empty" in variables["txn.sms_refusal"]


def test_action_leaves_unknown_accounts_to_smsbox(lua, guard):
    rewritten, variables = run_action(lua, guard, "username=nobody", {})
    assert rewritten is None and variables == {}
