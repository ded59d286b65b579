"""The SMS tier loses nothing when bearerbox is killed or the operator's link drops (lab)."""

from __future__ import annotations

import time
import uuid

import pytest
from sms_lab import Lab, kill_bearerbox_mid_burst, loss_and_duplicates, send_burst, wait_until


@pytest.fixture
def lab(lab_running):
    lab = Lab()
    lab.simulator("POST", "/fault", {"mode": "none"})
    lab.simulator("POST", "/reset")
    assert wait_until(lambda: lab.ready("sms1") and lab.ready("sms2"), 90), "gateways not ready"
    yield lab
    lab.simulator("POST", "/fault", {"mode": "none"})


def test_sigkill_of_bearerbox_mid_burst_loses_no_accepted_message(lab):
    result = kill_bearerbox_mid_burst(lab, "sms1")
    print(f"\nkill test: {result}")
    assert result["killed_after"] < result["accepted"], f"the kill came after the burst: {result}"
    assert result["lost"] == 0, f"accepted messages never reached the SMSC: {result['lost_examples']}"
    assert wait_until(lambda: lab.ready("sms1"), 90), "bearerbox and smsbox did not come back"


def test_link_down_queues_then_drains(lab):
    prefix = f"down-{uuid.uuid4().hex[:8]}-"
    lab.simulator("POST", "/fault", {"mode": "drop_binds"})
    assert wait_until(lambda: not lab.link_online("sms1"), 30), "the exporter never showed the link down"

    accepted = send_burst(lab, ["sms1"], [f"{prefix}{i:03d}" for i in range(40)], workers=4)
    assert len(accepted) == 40, "sendsms must accept messages while the link is down (they queue)"
    assert wait_until(lambda: lab.queued("sms1") >= 40, 20), f"queue shows {lab.queued('sms1')}, expected 40"
    time.sleep(60)  # the link stays down for a minute
    assert not lab.link_online("sms1") and lab.queued("sms1") >= 40
    assert not [t for t in lab.received_texts() if t.startswith(prefix)], "sent while the link was down?"

    lab.simulator("POST", "/fault", {"mode": "none"})
    assert wait_until(lambda: lab.link_online("sms1"), 60), "link did not come back"
    assert wait_until(lambda: lab.queued("sms1") == 0, 60), f"queue did not drain: {lab.queued('sms1')}"
    lost, duplicates = loss_and_duplicates(accepted, lab.received_texts(), prefix)
    assert lost == [] and duplicates == 0, (lost, duplicates)
