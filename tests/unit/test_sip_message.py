"""The resync NOTIFY on the wire: building, parsing responses, vendor events, timer E/F."""

from __future__ import annotations

import contextlib
import dataclasses
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisiond.provisioning.vendors import default_templates_root, load_vendors
from provisiond.sip.events import notify_body, subscription_state
from provisiond.sip.message import (
    NotifyRequest,
    SipParseError,
    check_event,
    new_branch,
    new_call_id,
    new_tag,
    parse_response,
    uri_user,
)
from provisiond.sip.timers import next_interval, send_offsets, timer_f

BRANCH = "z9hG4bK" + "ab" * 12


def request(**changes: object) -> NotifyRequest:
    base = NotifyRequest(
        target_host="192.0.2.10",
        target_port=5060,
        local_host="198.51.100.1",
        local_port=40000,
        user="201",
        event="check-sync",
        call_id="c0ffee@198.51.100.1",
        from_tag="7a9",
        cseq=1,
        branch=BRANCH,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def split(datagram: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = datagram.partition(b"\r\n\r\n")
    first, *lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return first, headers, body


# -- building ----------------------------------------------------------------------------


def test_every_header_is_present_in_order() -> None:
    first, headers, body = split(request().encode())
    assert first == "NOTIFY sip:201@192.0.2.10:5060 SIP/2.0"
    assert list(headers) == [
        "Via",
        "Max-Forwards",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Contact",
        "Event",
        "Subscription-State",
        "User-Agent",
        "Content-Length",
    ]
    assert headers["Via"] == f"SIP/2.0/UDP 198.51.100.1:40000;branch={BRANCH};rport"
    assert headers["Max-Forwards"] == "70"
    assert headers["From"] == "<sip:provisiond@198.51.100.1>;tag=7a9"
    assert headers["To"] == "<sip:201@192.0.2.10:5060>"
    assert headers["Call-ID"] == "c0ffee@198.51.100.1"
    assert headers["CSeq"] == "1 NOTIFY"
    assert headers["Contact"] == "<sip:provisiond@198.51.100.1:40000>"
    assert headers["Event"] == "check-sync"
    assert headers["Subscription-State"] == "terminated"
    assert headers["User-Agent"] == "provisiond"
    assert headers["Content-Length"] == "0"
    assert body == b""


def test_every_line_ends_in_crlf_and_the_head_in_a_blank_line() -> None:
    datagram = request().encode()
    assert datagram.endswith(b"\r\n\r\n")
    assert b"\n" not in datagram.replace(b"\r\n", b"")
    assert b"\r" not in datagram.replace(b"\r\n", b"")


def test_content_length_counts_the_body_bytes() -> None:
    body = "action=restart\r\nnoté\r\n"  # a non-ASCII byte makes characters != bytes
    _, headers, sent = split(request(content_type="text/plain", body=body).encode())
    assert headers["Content-Type"] == "text/plain"
    assert int(headers["Content-Length"]) == len(body.encode()) == len(sent)
    assert sent == body.encode()


def test_authorization_goes_before_content_length() -> None:
    _, headers, _ = split(request(authorization=("Authorization", 'Digest a="b"')).encode())
    assert headers["Authorization"] == 'Digest a="b"'
    assert list(headers)[-2:] == ["Authorization", "Content-Length"]


def test_ipv6_addresses_are_bracketed() -> None:
    first, headers, _ = split(
        request(target_host="2001:db8::10", local_host="2001:db8::1").encode()
    )
    assert first == "NOTIFY sip:201@[2001:db8::10]:5060 SIP/2.0"
    assert headers["Via"].startswith("SIP/2.0/UDP [2001:db8::1]:40000;")
    assert "@[2001:db8::1]" in new_call_id("2001:db8::1")


def test_no_user_part_without_user_or_mac() -> None:
    first, _, _ = split(request(user=None).encode())
    assert first == "NOTIFY sip:192.0.2.10:5060 SIP/2.0"


def test_branches_carry_the_magic_cookie_and_are_unique() -> None:
    branches = {new_branch() for _ in range(1000)}
    assert len(branches) == 1000
    assert all(re.fullmatch(r"z9hG4bK[0-9a-f]{24}", b) for b in branches)
    assert len({new_tag() for _ in range(1000)}) == 1000
    assert len({new_call_id("192.0.2.1") for _ in range(1000)}) == 1000


def test_a_branch_without_the_cookie_is_refused() -> None:
    with pytest.raises(ValueError, match="z9hG4bK"):
        request(branch="abc").encode()


@pytest.mark.parametrize(
    "change",
    [
        {"event": "check-sync\r\nX-Evil: 1"},
        {"event": "check sync"},
        {"authorization": ("Authorization", "Digest\r\nX: 1")},
        {"call_id": "a\nb"},
    ],
)
def test_header_injection_is_refused(change: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"control character|not a valid SIP Event"):
        request(**change).encode()


def test_uri_user_prefers_the_account_then_the_mac() -> None:
    assert uri_user("201", "00:15:65:aa:bb:cc") == "201"
    assert uri_user(None, "00-15-65-AA-BB-CC") == "001565aabbcc"
    assert uri_user(None, "0015.65aa.bbcc") == "001565aabbcc"
    assert uri_user(None, None) is None
    with pytest.raises(ValueError, match="user part"):
        uri_user("a b", None)
    with pytest.raises(ValueError, match="user part"):
        uri_user("x@y", None)
    with pytest.raises(ValueError, match="not a MAC"):
        uri_user(None, "00:15:65")


# -- vendor events -----------------------------------------------------------------------


def test_every_vendor_names_a_valid_resync_and_a_distinct_reboot_event() -> None:
    """The events are vendor data (vendor.toml): valid headers ("" where the vendor has no
    such NOTIFY, never both), and never the same, so a resync cannot reboot a phone by
    accident."""
    for vendor in load_vendors(default_templates_root()):
        events = [e for e in (vendor.resync_event, vendor.reboot_event) if e]
        assert events, vendor.id
        assert [check_event(e) for e in events] == events, vendor.id
        if vendor.resync_event != "service-control":  # the body carries the action there
            assert vendor.resync_event != vendor.reboot_event, vendor.id


def test_an_invalid_event_is_refused() -> None:
    with pytest.raises(ValueError, match="not a valid SIP Event"):
        notify_body("check-sync\r\nX-Evil: 1", False)


def test_service_control_carries_the_action_in_a_body() -> None:
    assert notify_body("service-control", False) == ("text/plain", "action=restart\r\n")
    assert notify_body("service-control", True) == ("text/plain", "action=reset\r\n")
    assert notify_body("check-sync;reboot=true", True) is None
    assert subscription_state("service-control") == "active"
    assert subscription_state("check-sync;reboot=false") == "terminated"


# -- parsing responses -------------------------------------------------------------------


OK = (
    "SIP/2.0 200 OK\r\n"
    f"Via: SIP/2.0/UDP 198.51.100.1:40000;branch={BRANCH};rport=40000;received=10.0.0.1\r\n"
    "From: <sip:provisiond@198.51.100.1>;tag=7a9\r\n"
    "To: <sip:201@192.0.2.10:5060>;tag=99\r\n"
    "Call-ID: c0ffee@198.51.100.1\r\n"
    "CSeq: 1 NOTIFY\r\n"
    "Content-Length: 0\r\n"
    "\r\n"
)


def test_parse_a_plain_response() -> None:
    response = parse_response(OK.encode())
    assert (response.status, response.reason) == (200, "OK")
    assert response.top_via_branch == BRANCH
    assert response.cseq == (1, "NOTIFY")
    assert response.header("call-id") == "c0ffee@198.51.100.1"
    assert response.header("TO") == "<sip:201@192.0.2.10:5060>;tag=99"
    assert response.body == b""


def test_parse_compact_forms_any_case_folded_lines_and_bare_lf() -> None:
    text = (
        "SIP/2.0 481 Subscription does not exist\n"
        f"v: SIP/2.0/UDP 198.51.100.1:40000\n ;branch={BRANCH}\n"
        "f: <sip:provisiond@198.51.100.1>;tag=7a9\n"
        "T: <sip:201@192.0.2.10:5060>;tag=1\n"
        "i: c0ffee@198.51.100.1\n"
        "cseq:   1   notify\n"
        'WWW-authenticate: Digest realm="r",\n\tnonce="n"\n'
        "l: 4\n"
        "\n"
        "bodyEXTRA"
    )
    response = parse_response(text.encode())
    assert response.status == 481
    assert response.reason == "Subscription does not exist"
    assert response.top_via_branch == BRANCH
    assert response.cseq == (1, "NOTIFY")
    assert response.header("i") == response.header("Call-ID") == "c0ffee@198.51.100.1"
    assert response.header("www-authenticate") == 'Digest realm="r", nonce="n"'
    assert response.body == b"body"


def test_the_topmost_via_is_the_first_value() -> None:
    text = OK.replace(
        "Via: ",
        f"Via: SIP/2.0/UDP 10.0.0.1;branch={BRANCH}, SIP/2.0/UDP p;branch=z9hG4bKother\r\nVia: ",
    )
    response = parse_response(text.encode())
    assert response.top_via_branch == BRANCH
    assert len(response.header_values("via")) == 3


def test_several_challenges_are_kept_apart() -> None:
    text = OK.replace(
        "Content-Length: 0",
        'WWW-Authenticate: Digest realm="a", nonce="1", algorithm=SHA-256\r\n'
        'WWW-Authenticate: Digest realm="a", nonce="2", algorithm=MD5\r\n'
        "Content-Length: 0",
    )
    values = parse_response(text.encode()).header_values("WWW-Authenticate")
    assert [v.endswith(a) for v, a in zip(values, ["SHA-256", "MD5"], strict=True)] == [
        True,
        True,
    ]


@pytest.mark.parametrize(
    "datagram",
    [
        b"",
        b"\r\n\r\n",
        b"garbage",
        b"\x00\xff\xfe",
        OK.replace("SIP/2.0 200 OK", "NOTIFY sip:a@b SIP/2.0").encode(),  # a request
        OK.replace("SIP/2.0 200", "SIP/2.0 999").encode(),
        OK.replace("SIP/2.0 200", "SIP/3.0 200").encode(),
        OK.replace("SIP/2.0 200 OK", "SIP/2.0 2000 OK").encode(),
        re.sub(r"Via: [^\r]*\r\n", "", OK).encode(),  # no Via
        OK.replace(f";branch={BRANCH}", "").encode(),  # no branch
        OK.replace("CSeq: 1 NOTIFY", "CSeq: one NOTIFY").encode(),
        re.sub(r"CSeq: [^\r]*\r\n", "", OK).encode(),  # no CSeq
        OK.replace("Content-Length: 0", "Content-Length: 10").encode(),  # truncated body
        OK.replace("Content-Length: 0", "Content-Length: -1").encode(),
        OK.replace("Call-ID: ", "Call-ID ").encode(),  # no colon
        OK.replace("Call-ID:", "Call ID:").encode(),  # not a token
        ("  folded first\r\n" + OK).encode(),  # status line not first
        b"SIP/2.0 200 OK\r\n" + b"X: 1\r\n" * 200,  # too many headers
        b"SIP/2.0 200 OK\r\n" + b"x" * 70_000,
    ],
)
def test_malformed_datagrams_are_refused(datagram: bytes) -> None:
    with pytest.raises(SipParseError):
        parse_response(datagram)


@given(st.binary(max_size=600))
def test_parsing_arbitrary_bytes_only_ever_raises_parse_errors(data: bytes) -> None:
    with contextlib.suppress(SipParseError):
        parse_response(data)


@given(st.text(max_size=300))
def test_parsing_mutated_responses_only_ever_raises_parse_errors(noise: str) -> None:
    cut = len(noise) % len(OK)
    with contextlib.suppress(SipParseError):
        parse_response((OK[:cut] + noise + OK[cut:]).encode())


# -- timers ------------------------------------------------------------------------------


def test_retransmissions_follow_timer_e_until_timer_f() -> None:
    # RFC 3261 defaults: T1 0.5 s, T2 4 s, F = 64*T1 = 32 s.
    assert timer_f(0.5) == 32
    assert send_offsets(0.5, 4.0, 32) == [0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    # The integration test's short timers: 7 sends before F = 4.2 s.
    assert len(send_offsets(0.2, 0.8, 4.2)) == 7


def test_timer_e_doubles_while_trying_and_is_t2_once_proceeding() -> None:
    assert next_interval(0.5, t2=4.0, proceeding=False) == 1.0
    assert next_interval(4.0, t2=4.0, proceeding=False) == 4.0
    assert next_interval(0.5, t2=4.0, proceeding=True) == 4.0


@pytest.mark.parametrize(("t1", "t2", "timeout"), [(0, 4, 32), (1, 0.5, 32), (0.5, 4, 0)])
def test_invalid_timers_are_refused(t1: float, t2: float, timeout: float) -> None:
    with pytest.raises(ValueError, match="T1"):
        send_offsets(t1, t2, timeout)
