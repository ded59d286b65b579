"""Citizens receive exactly the text that was sent, in Khmer as in English (lab).

Every case goes through both gateways' guards with plain urllib, as an application would send it.
An accepted text must reach the SMSC simulator in the coding and number of parts the network
counts, every part readable on its own, and joined back into exactly the text sent; a refused one
must say why and send nothing."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import pytest
from sms_lab import Lab, wait_until

GSM, UCS2 = 0, 8
NODES = ["sms1", "sms2"]
# the lab's cfm account allows 3 parts (stacks/lab/group_vars/sms_gateway/kannel.yml)
KHMER_67 = "សូមអរគុណសម្រាប់ការមកពិនិត្យសុខភាពនៅមណ្ឌលសុខភាពកំពង់ចាម។ សូមវាយតម្លៃសេវា"[:67]


@dataclass(frozen=True)
class Case:
    name: str
    params: dict  # sendsms fields besides the account's; text=None leaves text out
    status: int
    parts: int = 0
    coding: int = GSM
    refusal: str = ""  # a fragment of the refusal's message


CASES = [
    Case("plain-gsm", {"text": "Thank you for visiting Kampong Cham health centre. Rate us 1-5 by reply."}, 202, 1),
    Case("gsm-extension-160", {"text": "x" * 150 + "€[]{}"}, 202, 1),  # 150 + 5 x 2 = 160 septets
    Case("gsm-extension-161", {"text": "x" * 151 + "€[]{}"}, 202, 2),
    Case("gsm-escape-at-part-boundary", {"text": "y" * 152 + "€" + "y" * 20}, 202, 2),
    Case("khmer-70", {"text": (KHMER_67 + "សុខ")[:70]}, 202, 1, UCS2),
    Case("khmer-71", {"text": (KHMER_67 + "សុខភាព")[:71]}, 202, 2, UCS2),
    Case("khmer-3-parts-of-67", {"text": KHMER_67 * 3}, 202, 3, UCS2),
    Case("khmer-too-long", {"text": KHMER_67 * 3 + "។"}, 413, refusal="needs 4 parts"),
    Case("khmer-forced-gsm", {"text": KHMER_67, "coding": "0"}, 400, refusal="U+179F"),
    Case("sesotho-gsm", {"text": "Ke a leboha ka ketelo ea hau sepetlele. Re fe maikutlo a hau."}, 202, 1),
    Case("sesotho-accented", {"text": "Ho lokile, 'mê. Rea leboha ka tšebeletso."}, 202, 1, UCS2),
    Case("french-accents", {"text": "Merci de votre visite. Évaluez le service reçu : à bientôt !"}, 202, 1, UCS2),
    Case("french-gsm-letters", {"text": "Très utile, à la prochaine. Évaluez-nous: 1 à 5"}, 202, 1),
    Case("emoji", {"text": "Thank you 👍🙏 see you soon"}, 202, 1, UCS2),
    # Kannel cuts UCS-2 every 67 units: here inside the emoji, so the guard makes it cut at 66
    Case("emoji-at-part-boundary", {"text": "z" * 66 + "😀" + "z" * 10}, 202, 2, UCS2),
    Case("emoji-multipart", {"text": "Merci 🙏 " + "ការពិនិត្យ 👍 " * 9}, 202, 3, UCS2),
    Case("emoji-unsplittable", {"text": "a" + "😀" * 90}, 400, refusal="without cutting a character"),
    Case("mixed-scripts", {"text": "Visit 12 ការពិនិត្យ OK, €5 paid — ជំរាបសួរ"}, 202, 1, UCS2),
    Case("empty-text", {"text": ""}, 400, refusal="missing or empty"),
    Case("missing-text", {"text": None}, 400, refusal="missing or empty"),
]


@dataclass
class Sent:
    case: Case
    node: str
    to: str
    status: int
    body: str
    headers: dict
    arrived: dict | None = None  # the whole text at the SMSC


@pytest.fixture(scope="module")
def sent(lab_running) -> dict[tuple[str, str], Sent]:
    """Every case through every node, each to a number of its own; then wait for the accepted."""
    lab = Lab()
    lab.simulator("POST", "/fault", {"mode": "none"})
    assert wait_until(lambda: all(lab.ready(node) for node in NODES), 90), "gateways not ready"
    results = {}
    for node in NODES:
        for case in CASES:
            to = "8551" + "".join(secrets.choice("0123456789") for _ in range(7))
            status, body, headers = lab.sendsms_query(node, {**case.params, "to": to})
            results[(case.name, node)] = Sent(case, node, to, status, body, headers)
    accepted = {s.to for s in results.values() if s.status == 202}

    def all_arrived():
        texts = {t["destination"]: t for t in lab.whole_texts() if t["destination"] in accepted}
        return texts if len(texts) == len(accepted) else None

    texts = wait_until(all_arrived, 60, 0.5) or {}
    time.sleep(2)  # a refused request that slipped through would have arrived with the others
    late = {t["destination"]: t for t in lab.whole_texts()}
    for result in results.values():
        result.arrived = texts.get(result.to) or late.get(result.to)
    return results


@pytest.mark.parametrize("node", NODES)
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_text_arrives_exactly_as_sent_or_is_refused_with_a_reason(sent, case, node):
    result = sent[(case.name, node)]
    assert result.status == case.status, (result.status, result.body)
    if case.status != 202:
        assert case.refusal in result.body, result.body
        assert result.body.startswith("Refused: "), result.body
        assert result.arrived is None, f"a refused text reached the SMSC: {result.arrived}"
        return
    assert result.headers.get("x-sms-parts") == str(case.parts), result.headers
    arrived = result.arrived
    assert arrived is not None, f"accepted ({result.body.strip()}) but never reached the SMSC"
    assert arrived["text"] == case.params["text"], f"sent {case.params['text']!r}, the SMSC got {arrived['text']!r}"
    assert arrived["parts"] == case.parts, arrived
    assert arrived["data_coding"] == case.coding, arrived
    assert arrived["parts_stand_alone"], f"a part cuts a character in two: {arrived['part_texts']}"
    # user data of a concatenated part: 153 septets or 134 octets (67 UCS-2 units) beside its header
    if case.parts > 1:
        assert max(arrived["part_octets"]) <= (153 if case.coding == GSM else 134), arrived["part_octets"]
