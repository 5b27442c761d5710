"""Phone-side counters and sampled logs (no per-request access log)."""

from __future__ import annotations

import json
import logging

import pytest

from provisiond.domain.phone import Outcome, PhoneRequest, PhoneResponse
from provisiond.provisioning.stats import PhoneStats

REQUEST = PhoneRequest("http", "GET", "001565aabbcc.cfg", "Yealink SIP-T46S", "192.0.2.1")


def test_counts_by_protocol_outcome_and_vendor() -> None:
    stats = PhoneStats(sample_every=0)
    stats.record(REQUEST, PhoneResponse(Outcome.OK, vendor="yealink"), "yealink")
    stats.record(REQUEST, PhoneResponse(Outcome.NOT_FOUND), None)
    stats.record(REQUEST, PhoneResponse(Outcome.OK, vendor="yealink"), "yealink")
    assert stats.requests == {("http", "ok"): 2, ("http", "not_found"): 1}
    assert stats.served == {("http", "yealink"): 2}


def test_one_request_in_n_is_logged_as_json(caplog: pytest.LogCaptureFixture) -> None:
    stats = PhoneStats(sample_every=10)
    with caplog.at_level(logging.INFO, logger="provisiond.phone"):
        for _ in range(25):
            stats.record(REQUEST, PhoneResponse(Outcome.OK), "yealink")
    lines = [json.loads(r.getMessage()) for r in caplog.records]
    assert [line["seen"] for line in lines] == [10, 20]
    assert lines[0]["path"] == "001565aabbcc.cfg"
    assert lines[0]["outcome"] == "ok"
