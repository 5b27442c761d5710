"""Black-box HTTP/1.1 conformance of the phone listener: what phones and attackers see on the wire.

Written against RFC 9110/9112, not against any implementation, so that a rewrite of the phone
HTTP layer is checked by tests that do not share its code or its assumptions. A real
`provisiond serve` process per module (tests/serve_process.py) is spoken to in raw bytes
(tests/http_raw.py): pipelining, HEAD framing, conditional requests, Date and framing of every
response, connection persistence, Host rules, methods, query strings. Bodies, ranges, uploads
and malformed input are in test_phone_http_wire_body.py, which reuses `wire_server`.

Where the RFC allows several answers each one is accepted. Behaviour that breaks the RFC today
is written as the RFC wants it (the aiohttp listener before issue 14 failed ten of these).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

import pytest

from tests.http_raw import RawClient, Response, exchange, request
from tests.serve_process import run_cli, serve

MAC = "001565aabbcc"
UA = "Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:cc"
AGENT = (("User-Agent", UA),)
PASSWORD = "s3cretPassw0rd"
CONFIG = f"/{MAC}.cfg"
MODEL_FILE = "/y000000000066.cfg"  # the T46S model file: served to anyone not banned
UNKNOWN = "/no-such-file.txt"
FIRMWARE_NAME = "T46S-66.86.0.15.rom"
FIRMWARE = f"/{FIRMWARE_NAME}"
SENTINEL = "wire-test-sentinel-7f3a\n"  # a file beside the firmware dir: never to be served
BODY_S = 2.0  # PROVISIOND_HTTP_BODY_TIMEOUT_S: a refused upload's lingering is bounded by it
CLOSE = (("Connection", "close"),)
IMF_FIXDATE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"\d{4} \d\d:\d\d:\d\d GMT"
)


@dataclass(frozen=True)
class Wire:
    """The server under test: its phone port, data dir and the firmware image it serves."""

    port: int
    data_dir: Path
    image: bytes


def wire_server(tmp: Path) -> Iterator[Wire]:
    """A server with the T46S device, a 300 KB unlisted firmware image, a sentinel file next
    to the firmware dir, bans out of reach (many 404s come from one source) and a short body
    timeout. At the end: the process still runs and logged no traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISIOND_")}
    env["PROVISIOND_DATA_DIR"] = str(tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    run_cli(env, "db", "upgrade")
    run_cli(env, "keys", "init")
    run_cli(
        env,
        *("device", "create", "--extension", "200", "--model", "yealink-t46s"),
        *("--mac", MAC, "--sip-password", PASSWORD),
    )
    firmware = tmp / "firmware"
    firmware.mkdir()
    image = os.urandom(300_000)
    (firmware / FIRMWARE_NAME).write_bytes(image)
    (tmp / "sentinel.txt").write_text(SENTINEL, encoding="ascii")
    settings = {
        "PROVISIOND_FIRMWARE_DIR": str(firmware),
        "PROVISIOND_HTTP_BODY_TIMEOUT_S": str(BODY_S),
        "PROVISIOND_BAN_UNKNOWN_PER_SOURCE": "1000000",
        "PROVISIOND_BAN_UNKNOWN_PER_PREFIX": "1000000",
        "PROVISIOND_BAN_AUTH_FAILURES": "1000000",
    }
    with serve(tmp, settings) as server:
        yield Wire(server.phone_port, tmp, image)
        assert server.process.poll() is None, "the server died during the module"
        assert "Traceback" not in server.log_path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def wire(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wire]:
    yield from wire_server(tmp_path_factory.mktemp("wire"))


def fetch(wire: Wire, target: str, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    """GET `target` on a fresh connection."""
    return exchange(wire.port, request("GET", target, headers))


def assert_fresh_date(response: Response) -> None:
    """One Date field, in IMF-fixdate (RFC 9110 section 5.6.7), within 5 s of now."""
    dates = response.values("Date")
    assert len(dates) == 1, response.headers
    assert IMF_FIXDATE.fullmatch(dates[0]), dates[0]
    skew = abs((parsedate_to_datetime(dates[0]) - datetime.now(UTC)).total_seconds())
    assert skew <= 5, dates[0]


def test_pipelined_requests_are_answered_in_order(wire: Wire) -> None:
    """Three GETs in one write: three answers in order, and the connection stays usable."""
    alone = [fetch(wire, CONFIG, AGENT), fetch(wire, MODEL_FILE), fetch(wire, UNKNOWN)]
    assert [r.status for r in alone] == [200, 200, 404]
    assert PASSWORD.encode() in alone[0].body  # the device's own file, not the model's
    with RawClient(wire.port) as client:
        client.send(
            request("GET", CONFIG, AGENT) + request("GET", MODEL_FILE) + request("GET", UNKNOWN)
        )
        answers = [client.read_response() for _ in range(3)]
        assert [r.status for r in answers] == [200, 200, 404]
        assert [r.body for r in answers] == [r.body for r in alone]
        assert answers[0].header("ETag") == alone[0].header("ETag")
        assert client.is_open()
        client.send(request("GET", MODEL_FILE))
        fourth = client.read_response()
        assert (fourth.status, fourth.body) == (200, alone[1].body)


@pytest.mark.parametrize("target", [CONFIG, MODEL_FILE, UNKNOWN])
def test_head_is_get_without_the_body(wire: Wire, target: str) -> None:
    """HEAD: the GET's status, length and validator; the next pipelined answer follows the
    head immediately (a body byte in between would break its status line)."""
    full = fetch(wire, target, AGENT)
    with RawClient(wire.port) as client:
        client.send(request("HEAD", target, AGENT) + request("GET", MODEL_FILE))
        head = client.read_response(head=True)
        after = client.read_response()
    assert head.status == full.status
    assert head.header("ETag") == full.header("ETag")
    if full.status == 200 or head.header("Content-Length") is not None:
        assert head.header("Content-Length") == str(len(full.body))
    assert (after.status, after.body) == (200, fetch(wire, MODEL_FILE).body)


def not_modified(wire: Wire, target: str, headers: tuple[tuple[str, str], ...]) -> Response:
    """A conditional request pipelined before a GET of the model file: its answer, checked to
    carry no body (the model file's answer must start right after its head)."""
    with RawClient(wire.port) as client:
        client.send(request("GET", target, headers) + request("GET", MODEL_FILE))
        answer = client.read_response()
        assert client.read_response().status == 200
    return answer


def test_if_none_match(wire: Wire) -> None:
    first = fetch(wire, CONFIG, AGENT)
    etag, modified = first.header("ETag"), first.header("Last-Modified")
    assert etag
    assert modified
    for value in (etag, "*", f'"nope", {etag}', f'"a","b" , {etag}'):
        answer = not_modified(wire, CONFIG, (*AGENT, ("If-None-Match", value)))
        assert answer.status == 304, value
        assert answer.header("ETag") == etag  # RFC 9110 section 15.4.5
        assert_fresh_date(answer)
    other = fetch(wire, CONFIG, (*AGENT, ("If-None-Match", '"nope"')))
    assert (other.status, other.body) == (200, first.body)
    # If-None-Match present: If-Modified-Since is ignored (RFC 9110 section 13.1.3).
    both = fetch(
        wire, CONFIG, (*AGENT, ("If-None-Match", '"nope"'), ("If-Modified-Since", modified))
    )
    assert (both.status, both.body) == (200, first.body)


def test_if_modified_since(wire: Wire) -> None:
    first = fetch(wire, CONFIG, AGENT)
    modified = first.header("Last-Modified")
    assert modified
    assert IMF_FIXDATE.fullmatch(modified)
    stamp = parsedate_to_datetime(modified)
    # The device was made before the server started: one second later is still in the past.
    for since in (stamp, stamp + timedelta(seconds=1)):
        value = format_datetime(since, usegmt=True)
        answer = not_modified(wire, CONFIG, (*AGENT, ("If-Modified-Since", value)))
        assert answer.status == 304, value
    for value in (
        format_datetime(stamp - timedelta(days=1), usegmt=True),
        "garbage",
        "Sun, 99 Nov 1994 08:49:37 GMT",
    ):
        answer = fetch(wire, CONFIG, (*AGENT, ("If-Modified-Since", value)))
        assert (answer.status, answer.body) == (200, first.body), value


def test_if_none_match_uses_weak_comparison(wire: Wire) -> None:
    """RFC 9110 section 13.1.2: If-None-Match compares weakly, so W/"x" matches "x"."""
    etag = fetch(wire, CONFIG, AGENT).header("ETag")
    assert etag
    assert not etag.startswith("W/")
    assert not_modified(wire, CONFIG, (*AGENT, ("If-None-Match", f"W/{etag}"))).status == 304


def test_head_with_matching_etag_is_304(wire: Wire) -> None:
    """RFC 9110 section 13.1.2: a false If-None-Match on GET *or HEAD* MUST give 304."""
    etag = fetch(wire, CONFIG, AGENT).header("ETag")
    assert etag
    with RawClient(wire.port) as client:
        client.send(request("HEAD", CONFIG, (*AGENT, ("If-None-Match", etag))))
        assert client.read_response(head=True).status == 304


def test_date_and_exact_framing_on_every_response(wire: Wire) -> None:
    """200, 304, 404 and 400 each carry a fresh Date; a body is framed exactly (nothing
    follows it before the close); config and model files say Cache-Control: no-cache."""
    etag = fetch(wire, CONFIG, AGENT).header("ETag")
    assert etag
    cases = (
        (200, request("GET", CONFIG, AGENT + CLOSE)),
        (200, request("GET", MODEL_FILE, CLOSE)),
        (304, request("GET", CONFIG, (*AGENT, ("If-None-Match", etag), *CLOSE))),
        (404, request("GET", UNKNOWN, CLOSE)),
        (400, b"GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\nno colon here\r\n\r\n"),
    )
    for status, data in cases:
        with RawClient(wire.port) as client:
            client.send(data)
            answer = client.read_response()
            assert answer.status == status, data
            assert_fresh_date(answer)
            if status != 304:
                assert answer.framing in ("length", "chunked"), (status, answer.headers)
            if answer.framing == "length":
                assert answer.header("Content-Length") == str(len(answer.body))
            assert client.wait_closed(5) == b"", f"bytes after the {status} answer"
            if status == 200:
                assert "no-cache" in answer.tokens("Cache-Control"), data


def test_http10_is_served_and_closed(wire: Wire) -> None:
    """HTTP/1.0 without Host is served; without keep-alive the server closes after it."""
    expected = fetch(wire, MODEL_FILE).body
    with RawClient(wire.port) as client:
        client.send(b"GET " + MODEL_FILE.encode() + b" HTTP/1.0\r\n\r\n")
        answer = client.read_response()
        assert answer.version in ("HTTP/1.0", "HTTP/1.1")
        assert (answer.status, answer.body) == (200, expected)
        assert client.wait_closed(5) == b""


def test_http10_keep_alive_is_honoured_or_refused_clearly(wire: Wire) -> None:
    """RFC 9112 appendix C.2.2: a 1.0 connection persists only if the answer says keep-alive."""
    expected = fetch(wire, MODEL_FILE).body
    ask = b"GET " + MODEL_FILE.encode() + b" HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
    with RawClient(wire.port) as client:
        client.send(ask)
        answer = client.read_response()
        assert (answer.status, answer.body) == (200, expected)
        if client.is_open(0.5):
            assert "keep-alive" in answer.tokens("Connection")
            client.send(ask)
            assert client.read_response().body == expected
        else:
            assert "keep-alive" not in answer.tokens("Connection")


def test_connection_close_ends_the_connection(wire: Wire) -> None:
    """RFC 9112 section 9.6: after answering a request with "close", the server closes."""
    with RawClient(wire.port) as client:
        client.send(request("GET", MODEL_FILE, CLOSE))
        assert client.read_response().status == 200
        assert client.wait_closed(5) == b""


def test_request_after_close_is_not_processed(wire: Wire) -> None:
    """RFC 9112 section 9.6: the request with "close" gets its answer; one pipelined behind it
    is not processed (not answered), and the connection is closed."""
    with RawClient(wire.port) as client:
        client.send(request("GET", MODEL_FILE, CLOSE) + request("GET", CONFIG, AGENT))
        assert client.read_response().status == 200
        assert client.wait_closed(5) == b""


def test_host_rules(wire: Wire) -> None:
    """RFC 9112 section 3.2: an HTTP/1.1 request without Host, or with two, MUST get 400."""
    missing = exchange(wire.port, request("GET", MODEL_FILE, host=None))
    doubled = exchange(wire.port, request("GET", MODEL_FILE, (("Host", "127.0.0.2"),)))
    assert (missing.status, doubled.status) == (400, 400)


@pytest.mark.parametrize("method", ["OPTIONS", "DELETE", "PATCH", "TRACE"])
def test_other_methods_are_not_allowed(wire: Wire, method: str) -> None:
    with RawClient(wire.port) as client:
        client.send(request(method, CONFIG, AGENT))
        assert client.read_response().status == 405
        if client.is_open():  # kept open: the next request is read as a request
            client.send(request("GET", MODEL_FILE))
            assert client.read_response().status == 200


def test_405_lists_the_allowed_methods(wire: Wire) -> None:
    """RFC 9110 section 15.5.6: a 405 MUST carry Allow."""
    for method in ("DELETE", "PUT"):
        answer = exchange(
            wire.port, request(method, CONFIG, AGENT, b"x" if method == "PUT" else b"")
        )
        assert answer.status == 405, method
        allowed = answer.tokens("Allow")
        assert "get" in allowed, answer.headers
        assert method.lower() not in allowed, answer.headers


def test_lowercase_method_is_not_get(wire: Wire) -> None:
    """Methods are case-sensitive (RFC 9110 section 9.1): "get" is an unknown method."""
    answer = exchange(wire.port, request("get", MODEL_FILE))
    assert answer.status in (400, 405, 501), answer.status


def test_connect_opens_no_tunnel(wire: Wire) -> None:
    """CONNECT is refused (not 2xx, not 500) and the connection speaks HTTP afterwards."""
    with RawClient(wire.port) as client:
        client.send(b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n")
        answer = client.read_response()
        assert 400 <= answer.status < 500 or answer.status == 501, answer.status
        if client.is_open():
            client.send(request("GET", MODEL_FILE))
            assert client.read_response().status == 200


def test_connect_status(wire: Wire) -> None:
    """Not a proxy: 400 (authority-form to an origin), 405 or 501 (RFC 9110 section 9.1)."""
    answer = exchange(wire.port, b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n")
    assert answer.status in (400, 405, 501)


def test_query_string_does_not_change_the_file(wire: Wire) -> None:
    """A query is served as the path without it, or refused the same way for any query."""
    plain = fetch(wire, CONFIG, AGENT)
    answers = [fetch(wire, CONFIG + q, AGENT) for q in ("?x=1", "?", "?../sentinel.txt")]
    statuses = {a.status for a in answers}
    assert len(statuses) == 1, statuses  # consistent
    assert statuses <= {200, 400, 404}, statuses
    for answer in answers:
        assert SENTINEL.encode() not in answer.body
        if answer.status == 200:
            assert (answer.body, answer.header("ETag")) == (plain.body, plain.header("ETag"))


def test_keep_alive_survives_200_requests(wire: Wire) -> None:
    expected = fetch(wire, MODEL_FILE).body
    deadline = time.monotonic() + 60
    with RawClient(wire.port) as client:
        for number in range(200):
            assert time.monotonic() < deadline, f"only {number} requests in 60 s"
            client.send(request("GET", MODEL_FILE if number % 2 else UNKNOWN))
            answer = client.read_response()
            assert answer.status == (200 if number % 2 else 404), number
            if number % 2:
                assert answer.body == expected
        assert client.is_open()


@pytest.mark.parametrize("line", [b"GET /y000000000066.cfg HTTP/2.0", b"GET /y000000000066.cfg"])
def test_unsupported_versions_are_not_echoed(wire: Wire, line: bytes) -> None:
    """An HTTP/1.1 server answers in HTTP/1.x (RFC 9110 section 6.2): a 2.0 or 0.9 request
    line gets 400/505, or an HTTP/1.1 answer; never an "HTTP/2.0 ..." or "HTTP/0.9 ..." line."""
    with RawClient(wire.port) as client:
        client.send(line + b"\r\nHost: 127.0.0.1\r\n\r\n")
        answer = client.read_response()
    assert answer.version in ("HTTP/1.1", "HTTP/1.0"), answer.version
    assert answer.status in (200, 400, 505)
