"""Black-box HTTP/1.1 conformance of the phone listener, part two: bodies on the wire.

Firmware byte ranges and whole-file streaming, malformed and hostile request heads (framing
conflicts that enable request smuggling, oversized heads, NUL bytes, traversal, absolute-form
targets) and uploads (chunked bodies, `Expect: 100-continue`, the size cap). Same server set-up
and rules as test_phone_http_wire.py: RFC 9110/9112, every allowed answer accepted, today's
RFC violations of the aiohttp listener before issue 14 are written as the RFC wants them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator

import pytest

from tests.http_raw import Closed, RawClient, Response, chunked, exchange, request
from tests.integration.test_phone_http_wire import (
    AGENT,
    BODY_S,
    CONFIG,
    FIRMWARE,
    MAC,
    MODEL_FILE,
    SENTINEL,
    UA,
    Wire,
    fetch,
    wire_server,
)

UPLOAD = f"/{MAC}-local.cfg"  # a Yealink upload name the device may write
CAP = 256 << 10  # settings.max_upload_bytes by default
MARGIN_S = 5.0


@pytest.fixture(scope="module")
def wire(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wire]:
    yield from wire_server(tmp_path_factory.mktemp("wire_body"))


def ranged(spec: str) -> tuple[tuple[str, str], ...]:
    return (("Range", spec),)


def test_firmware_byte_ranges(wire: Wire) -> None:
    """206 with the exact bytes and Content-Range (first, suffix, open, clamped), then 416
    with `bytes */size` for a range past the end, all on one kept-alive connection."""
    image, size = wire.image, len(wire.image)
    cases = (
        ("bytes=0-99", 0, 99),
        ("bytes=-100", size - 100, size - 1),
        ("bytes=100-", 100, size - 1),
        (f"bytes={size - 10}-{size + 5000}", size - 10, size - 1),
    )
    with RawClient(wire.port) as client:
        for spec, first, last in cases:
            client.send(request("GET", FIRMWARE, ranged(spec)))
            answer = client.read_response()
            assert answer.status == 206, spec
            assert answer.header("Content-Range") == f"bytes {first}-{last}/{size}", spec
            assert answer.body == image[first : last + 1], spec
        client.send(request("GET", FIRMWARE, ranged(f"bytes={size}-")))
        past = client.read_response()
        assert past.status == 416
        assert past.header("Content-Range") == f"bytes */{size}"


def test_firmware_whole_file_head_and_etag(wire: Wire) -> None:
    """The whole image byte-identical with Accept-Ranges, then on the same connection: HEAD
    (its length, no body) and If-None-Match (304 with the ETag)."""
    size = len(wire.image)
    with RawClient(wire.port, timeout=30) as client:
        client.send(request("GET", FIRMWARE))
        whole = client.read_response()
        assert whole.status == 200
        assert hashlib.sha256(whole.body).digest() == hashlib.sha256(wire.image).digest()
        assert "bytes" in whole.tokens("Accept-Ranges")
        assert whole.header("Content-Length") in (None, str(size))
        etag = whole.header("ETag")
        assert etag
        client.send(request("HEAD", FIRMWARE) + request("GET", MODEL_FILE))
        head = client.read_response(head=True)
        assert (head.status, head.header("Content-Length")) == (200, str(size))
        assert head.header("ETag") == etag
        assert client.read_response().status == 200  # right after the head: no body sent
        client.send(
            request("GET", FIRMWARE, (("If-None-Match", etag),)) + request("GET", MODEL_FILE)
        )
        cached = client.read_response()
        assert (cached.status, cached.header("ETag")) == (304, etag)
        assert client.read_response().status == 200


def test_unknown_range_unit_is_ignored(wire: Wire) -> None:
    """RFC 9110 section 14.2: an origin server MUST ignore a Range with a unit it does not
    understand, and send the whole representation."""
    answer = fetch(wire, FIRMWARE, ranged("items=0-5"))
    assert (answer.status, answer.body) == (200, wire.image)


def test_two_ranges_are_served_or_ignored(wire: Wire) -> None:
    """RFC 9110 section 14.2: two ascending, satisfiable ranges are answered with 206 (both
    parts, or coalesced into one) or the Range is ignored (200); 416 says none overlap."""
    answer = fetch(wire, FIRMWARE, ranged("bytes=0-9,20-29"))
    assert answer.status in (200, 206)
    if answer.status == 200:
        assert answer.body == wire.image
    elif answer.header("Content-Range") is not None:
        assert answer.body == wire.image[:30]
    else:
        assert wire.image[:10] in answer.body
        assert wire.image[20:30] in answer.body


def refused_and_closed(wire: Wire, data: bytes, statuses: tuple[int, ...] = (400,)) -> Response:
    """Send `data`: the answer has one of `statuses`, and the server then closes."""
    with RawClient(wire.port) as client:
        client.send(data)
        answer = client.read_response()
        assert answer.status in statuses, (data[:80], answer.status)
        assert client.wait_closed(BODY_S + MARGIN_S) == b""
    return answer


@pytest.mark.parametrize(
    "data",
    [b"THIS IS NOT HTTP AT ALL\r\n\r\n", b"\x80\xff\xfe\x01 garbage\r\n\r\n"],
    ids=["text", "binary"],
)
def test_garbage_request_line(wire: Wire, data: bytes) -> None:
    """RFC 9112 section 2.2: 400, then close."""
    refused_and_closed(wire, data)


@pytest.mark.parametrize("line", [b"NoColonHere", b"Host : 127.0.0.1", b": empty-name"], ids=str)
def test_malformed_header_line(wire: Wire, line: bytes) -> None:
    """A field line without a colon, with a space before it (RFC 9112 section 5.1: MUST
    400), or without a name: 400; if the connection stays open it still speaks HTTP."""
    with RawClient(wire.port) as client:
        client.send(b"GET /y000000000066.cfg HTTP/1.1\r\nHost: 127.0.0.1\r\n" + line + b"\r\n\r\n")
        assert client.read_response().status == 400
        if client.is_open():
            client.send(request("GET", MODEL_FILE))
            assert client.read_response().status == 200


def test_content_length_with_chunked_smuggles_nothing(wire: Wire) -> None:
    """RFC 9112 section 6.3: Content-Length beside Transfer-Encoding is refused (400) or
    framed by the chunked coding and the connection closed after the answer. Either way the
    GET after the body is never answered. Both framings agree on where the body ends here,
    so only closing the connection keeps the smuggled request out."""
    carrier = (
        b"POST /y000000000066.cfg HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    )
    with RawClient(wire.port) as client:
        client.send(carrier + request("GET", CONFIG, AGENT))
        assert client.read_response().status >= 400  # a POST of a model file is never a success
        assert client.wait_closed(BODY_S + MARGIN_S) == b"", "the smuggled GET was answered"


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: 4\r\nContent-Length: 5",
        b"Content-Length: 4, 5",
        b"Content-Length: +4",
        b"Content-Length: 4x",
        b"Transfer-Encoding: gzip",
    ],
    ids=["two-lengths", "length-list", "signed", "suffix", "chunked-not-last"],
)
def test_ambiguous_body_framing_is_400_and_closed(wire: Wire, framing: bytes) -> None:
    """RFC 9112 section 6.3: an invalid Content-Length, or a Transfer-Encoding whose last
    coding is not chunked, MUST be answered 400 and the connection closed."""
    head = f"PUT {UPLOAD} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: {UA}\r\n".encode()
    refused_and_closed(wire, head + framing + b"\r\n\r\nabcde")


def head_too_large(wire: Wire, fields: list[tuple[str, str]]) -> None:
    """A head of `fields` is answered 400 or 431 (or cut off: a reset can eat the answer while
    our bytes are unread, RFC 9112 section 9.6) and closed; then another client is served."""
    with RawClient(wire.port) as client:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            client.send(request("GET", MODEL_FILE, fields))
        try:
            answer: Response | None = client.read_response()
        except Closed:
            answer = None
        if answer is not None:
            assert answer.status in (400, 431), answer.status
            client.wait_closed(BODY_S + MARGIN_S)
    assert fetch(wire, MODEL_FILE).status == 200


def test_one_huge_header_line(wire: Wire) -> None:
    head_too_large(wire, [("X-Big", "a" * (70 << 10))])


def test_head_over_64_kib_in_many_lines(wire: Wire) -> None:
    """80 fields of 1 KiB each: a head over 64 KiB is refused whatever its shape."""
    head_too_large(wire, [(f"X-F{n}", "b" * 1024) for n in range(80)])


def test_nul_in_the_target(wire: Wire) -> None:
    refused_and_closed(wire, b"GET /a\x00b.cfg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert fetch(wire, "/a%00b.cfg").status in (400, 404)


@pytest.mark.parametrize(
    "target",
    [
        "/../sentinel.txt",
        "/%2e%2e/sentinel.txt",
        "/..%2fsentinel.txt",
        "/%2E%2E%2Fsentinel.txt",
        "/..%5csentinel.txt",
        "/firmware/../sentinel.txt",
        "/prov/../../sentinel.txt",
        f"{FIRMWARE}/../../sentinel.txt",
        "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "//etc/passwd",
        "/%2fetc%2fpasswd",
    ],
)
def test_traversal_never_leaves_the_served_tree(wire: Wire, target: str) -> None:
    answer = fetch(wire, target)
    assert answer.status in (400, 404), answer.status
    assert SENTINEL.encode() not in answer.body
    assert b"root:" not in answer.body


def test_absolute_form_target(wire: Wire) -> None:
    """RFC 9112 section 3.2.2: absolute-form is served like origin-form (or refused, 400)."""
    plain = fetch(wire, CONFIG, AGENT)
    for target in (f"http://127.0.0.1{CONFIG}", f"http://127.0.0.1:{wire.port}{CONFIG}"):
        answer = fetch(wire, target, AGENT)
        assert answer.status in (200, 400), target
        if answer.status == 200:
            assert answer.body == plain.body


def stored(wire: Wire) -> bytes:
    answer = fetch(wire, UPLOAD, AGENT)
    assert answer.status == 200
    return answer.body


def test_chunked_upload_is_stored(wire: Wire) -> None:
    parts = [b"a = 1\n", os.urandom(8).hex().encode() + b"\n", b"c = 3\n" * 100]
    headers = (*AGENT, ("Transfer-Encoding", "chunked"))
    answer = exchange(wire.port, request("PUT", UPLOAD, headers) + chunked(parts))
    assert answer.status == 201
    assert stored(wire) == b"".join(parts)


def test_expect_continue_on_an_admitted_upload(wire: Wire) -> None:
    """HTTP/1.1: `100 Continue` comes before the body is sent, then the final answer.
    HTTP/1.0: the expectation is ignored (RFC 9110 section 10.1.1), no 100 is sent."""
    body = b"expected = " + os.urandom(8).hex().encode() + b"\n"
    headers = (*AGENT, ("Expect", "100-continue"), ("Content-Length", str(len(body))))
    with RawClient(wire.port) as client:
        client.send(request("PUT", UPLOAD, headers))
        interim = client.read_response()
        assert (interim.version, interim.status) == ("HTTP/1.1", 100)
        client.send(body)
        assert client.read_response().status == 201
    assert stored(wire) == body
    old = request("PUT", UPLOAD, headers, body[::-1], version="HTTP/1.0", host=None)
    assert exchange(wire.port, old).status == 201
    assert stored(wire) == body[::-1]


def test_upload_over_the_cap_is_413_and_closed(wire: Wire) -> None:
    before = b"kept = 1\n"
    assert exchange(wire.port, request("PUT", UPLOAD, AGENT, before)).status == 201
    headers = (*AGENT, ("Content-Length", str(CAP + (44 << 10))))
    with RawClient(wire.port) as client:
        client.send(request("PUT", UPLOAD, headers))  # the head only: the answer needs no body
        assert client.read_response().status == 413
        assert client.wait_closed(BODY_S + MARGIN_S) == b""
    assert stored(wire) == before


@pytest.mark.parametrize(
    ("target", "agent", "length", "statuses"),
    [
        (UPLOAD, UA, CAP + 1, (413,)),
        ("/001565ffffff-local.cfg", UA.replace("aa:bb:cc", "ff:ff:ff"), 5, (401, 403, 404)),
    ],
    ids=["over-cap", "unknown-device"],
)
def test_refused_upload_gets_no_continue(
    wire: Wire, target: str, agent: str, length: int, statuses: tuple[int, ...]
) -> None:
    """A refusal decided from the head comes instead of `100 Continue`, not after it."""
    headers = (("User-Agent", agent), ("Expect", "100-continue"), ("Content-Length", str(length)))
    with RawClient(wire.port) as client:
        client.send(request("PUT", target, headers))  # no body: it may only follow a 100
        assert client.read_response().status in statuses
