"""HTTP Digest (RFC 7616): the RFC's example, nonces, replays, and hostile headers."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisiond.provisioning.digest import (
    NO_CREDENTIALS,
    DigestAuth,
    DigestResult,
    compute_response,
    parse_authorization,
)

# RFC 7616 section 3.9.1
REALM = "http-auth@example.org"
USER = "Mufasa"
PASSWORD = "Circle of Life"
URI = "/dir/index.html"
RFC_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"


class FakeClock:
    """A wall clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def passwords(username: str) -> str | None:
    return {USER: PASSWORD}.get(username)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def auth(clock: FakeClock) -> DigestAuth:
    return DigestAuth(REALM, secret=b"k" * 32, clock=clock)


def _challenge(auth: DigestAuth, index: int = 0) -> dict[str, str]:
    return parse_authorization(auth.challenges()[index])


def _header(
    auth: DigestAuth,
    *,
    nonce: str | None = None,
    algorithm: str = "SHA-256",
    password: str = PASSWORD,
    nc: str = "00000001",
    uri: str = URI,
    method: str = "GET",
    username: str = USER,
) -> str:
    """An Authorization header as a client computes it."""
    challenge = _challenge(auth)
    nonce = nonce or challenge["nonce"]
    response = compute_response(
        algorithm, username, REALM, password, method, uri, nonce, nc, CNONCE
    )
    return (
        f'Digest username="{username}", realm="{REALM}", uri="{uri}", '
        f'algorithm={algorithm}, nonce="{nonce}", nc={nc}, cnonce="{CNONCE}", qop=auth, '
        f'response="{response}", opaque="{challenge["opaque"]}"'
    )


def _verify(auth: DigestAuth, header: str | None, uri: str = URI) -> DigestResult:
    return auth.verify("GET", header, passwords, uri=uri)


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc_7616_example_response(algorithm: str, expected: str) -> None:
    got = compute_response(
        algorithm, USER, REALM, PASSWORD, "GET", URI, RFC_NONCE, "00000001", CNONCE
    )
    assert got == expected


def test_rfc_example_header_parses(auth: DigestAuth) -> None:
    header = (
        f'Digest username="{USER}", realm="{REALM}", uri="{URI}", algorithm=SHA-256, '
        f'nonce="{RFC_NONCE}", nc=00000001, cnonce="{CNONCE}", qop=auth, '
        'response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1", '
        f'opaque="{RFC_OPAQUE}"'
    )
    params = parse_authorization(header)
    assert params["nonce"] == RFC_NONCE
    assert params["qop"] == "auth"
    # the RFC's nonce was not issued by us: refused, not stale
    result = _verify(auth, header.replace(RFC_OPAQUE, _challenge(auth)["opaque"]))
    assert (result.ok, result.stale, result.reason) == (
        False,
        False,
        "nonce not issued by this server",
    )
    assert result.failed


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5", "SHA-256-sess", "MD5-sess", "md5"])
def test_rfc_inputs_with_our_nonce_are_accepted(auth: DigestAuth, algorithm: str) -> None:
    result = _verify(auth, _header(auth, algorithm=algorithm))
    assert result.ok, result.reason
    assert result.username == USER
    assert result.algorithm is not None
    assert result.algorithm.upper() == algorithm.upper()


def test_algorithm_absent_means_md5(auth: DigestAuth) -> None:
    header = _header(auth, algorithm="MD5").replace("algorithm=MD5, ", "")
    assert _verify(auth, header).ok


def test_challenges_sha256_first_then_md5(auth: DigestAuth) -> None:
    values = auth.challenges()
    assert [parse_authorization(v)["algorithm"] for v in values] == ["SHA-256", "MD5"]
    for value in values:
        assert value.startswith('Digest realm="http-auth@example.org", qop="auth", algorithm=')
        params = parse_authorization(value)
        assert params["stale"] == "false"
        assert params["nonce"]
        assert params["opaque"]
    assert parse_authorization(values[0])["nonce"] == parse_authorization(values[1])["nonce"]
    assert all("stale=true" in v for v in auth.challenges(stale=True))
    assert _challenge(auth)["nonce"] != _challenge(auth)["nonce"]


def test_realm_is_quoted_in_challenges() -> None:
    auth = DigestAuth('a "quoted" \\ realm')
    assert parse_authorization(auth.challenges()[0])["realm"] == 'a "quoted" \\ realm'


def test_wrong_password(auth: DigestAuth) -> None:
    result = _verify(auth, _header(auth, password="circle of life"))
    assert (result.ok, result.stale, result.reason) == (False, False, "wrong credentials")
    assert result.username == USER
    assert result.failed


def test_unknown_user(auth: DigestAuth) -> None:
    result = _verify(auth, _header(auth, username="Scar"))
    assert (result.ok, result.stale, result.reason) == (False, False, "wrong credentials")
    assert result.failed


def test_unknown_user_with_an_empty_password_guess(auth: DigestAuth) -> None:
    """Unknown users are checked against an empty password only to spend the same time."""
    result = _verify(auth, _header(auth, username="Scar", password=""))
    assert (result.ok, result.reason) == (False, "wrong credentials")


def test_uri_must_equal_the_request_target(auth: DigestAuth) -> None:
    header = _header(auth)
    assert _verify(auth, header, uri="/dir/other.html").reason == (
        "uri differs from the request target"
    )
    # a header computed for another target, relabelled with ours, does not match
    forged = _header(auth, uri="/dir/other.html").replace("/dir/other.html", URI, 1)
    assert _verify(auth, forged).reason == "wrong credentials"


def test_method_is_part_of_the_digest(auth: DigestAuth) -> None:
    header = _header(auth, method="HEAD")
    assert auth.verify("HEAD", header, passwords, uri=URI).ok
    assert not auth.verify("GET", _header(auth, method="HEAD"), passwords, uri=URI).ok


def test_replayed_nonce_count_is_refused(auth: DigestAuth) -> None:
    nonce = _challenge(auth)["nonce"]
    first = _header(auth, nonce=nonce, nc="00000001")
    assert _verify(auth, first).ok
    replay = _verify(auth, first)
    assert (replay.ok, replay.stale) == (False, True)
    assert "replay" in replay.reason
    assert not replay.failed
    assert _verify(auth, _header(auth, nonce=nonce, nc="00000002")).ok
    assert _verify(auth, _header(auth, nonce=nonce, nc="0000000a")).ok
    assert not _verify(auth, _header(auth, nonce=nonce, nc="00000005")).ok


def test_expired_nonce_is_stale_only_with_the_right_password(
    auth: DigestAuth, clock: FakeClock
) -> None:
    header = _header(auth)
    wrong = _header(auth, password="nope", nonce=parse_authorization(header)["nonce"])
    clock.now += 300
    stale = _verify(auth, header)
    assert (stale.ok, stale.stale, stale.reason) == (False, True, "nonce expired")
    assert not stale.failed
    refused = _verify(auth, wrong)
    assert (refused.ok, refused.stale) == (False, False)


def test_nonce_just_before_expiry_is_fresh(auth: DigestAuth, clock: FakeClock) -> None:
    header = _header(auth)
    clock.now += 299.9
    assert _verify(auth, header).ok


@pytest.mark.parametrize(
    "tamper",
    [
        lambda n: ("A" if n[0] != "A" else "B") + n[1:],  # expiry altered
        lambda n: n[:-1] + ("A" if n[-1] != "A" else "B"),  # signature altered
        lambda n: n[:-4],  # truncated
        lambda n: n + "AAAA",  # extended
        lambda n: n.replace("-", "+").replace("_", "/") + "!",  # not base64url
        lambda n: "é" * len(n),  # not ASCII
    ],
)
def test_forged_nonce(auth: DigestAuth, tamper: Callable[[str], str]) -> None:
    nonce = tamper(_challenge(auth)["nonce"])
    result = _verify(auth, _header(auth, nonce=nonce))
    assert (result.ok, result.stale) == (False, False)
    assert result.reason == "nonce not issued by this server"


def test_nonce_of_another_secret_or_realm(clock: FakeClock) -> None:
    ours = DigestAuth(REALM, secret=b"a" * 32, clock=clock)
    other = DigestAuth(REALM, secret=b"b" * 32, clock=clock)
    other_realm = DigestAuth("elsewhere", secret=b"a" * 32, clock=clock)
    for issuer in (other, other_realm):
        nonce = _challenge(issuer)["nonce"]
        assert _verify(ours, _header(ours, nonce=nonce)).reason == (
            "nonce not issued by this server"
        )


def test_random_secret_per_instance() -> None:
    first, second = DigestAuth(REALM), DigestAuth(REALM)
    nonce = _challenge(first)["nonce"]
    assert _verify(first, _header(first, nonce=nonce)).ok
    assert not _verify(second, _header(second, nonce=nonce)).ok


def test_algorithm_not_offered_is_refused(clock: FakeClock) -> None:
    sha_only = DigestAuth(REALM, secret=b"k" * 32, clock=clock, algorithms=("SHA-256",))
    assert [parse_authorization(c)["algorithm"] for c in sha_only.challenges()] == ["SHA-256"]
    assert _verify(sha_only, _header(sha_only, algorithm="SHA-256-sess")).ok
    result = _verify(sha_only, _header(sha_only, algorithm="MD5"))
    assert result.reason == "algorithm 'MD5' is not offered"


def test_opaque_is_optional_but_must_match(auth: DigestAuth) -> None:
    header = _header(auth)
    opaque = parse_authorization(header)["opaque"]
    assert _verify(auth, header.replace(f', opaque="{opaque}"', "")).ok
    assert _verify(auth, _header(auth).replace(opaque, "x" + opaque[1:])).reason == "wrong opaque"


def test_nonce_table_is_bounded_and_eviction_keeps_replays_out(clock: FakeClock) -> None:
    auth = DigestAuth(REALM, secret=b"k" * 32, clock=clock, max_nonces=3)
    first = _header(auth)
    assert _verify(auth, first).ok
    for _ in range(3):  # three later nonces push the first out of the table
        clock.now += 1
        assert _verify(auth, _header(auth)).ok
    assert len(auth._seen) == 3
    again = _verify(auth, first)
    assert (again.ok, again.stale) == (False, True)
    assert "forgotten" in again.reason


def test_parser_accepts_escapes_commas_any_order_and_tokens() -> None:
    header = (
        'DIGEST  nc=00000001 , Username = "Mu\\"fa,sa" ,,qop=auth,'
        'cnonce="a,b=c", realm="r\\\\x",response="ab", uri="/a?b=c,d"'
    )
    assert parse_authorization(header) == {
        "nc": "00000001",
        "username": 'Mu"fa,sa',
        "qop": "auth",
        "cnonce": "a,b=c",
        "realm": "r\\x",
        "response": "ab",
        "uri": "/a?b=c,d",
    }


def test_username_with_escapes_is_verified(clock: FakeClock) -> None:
    auth = DigestAuth(REALM, secret=b"k" * 32, clock=clock)
    name = 'a"b\\c,d'
    nonce = _challenge(auth)["nonce"]
    response = compute_response("MD5", name, REALM, "pw", "GET", URI, nonce, "00000001", CNONCE)
    header = (
        'Digest username="a\\"b\\\\c,d", realm="http-auth@example.org", uri="/dir/index.html", '
        f'nonce="{nonce}", nc=00000001, cnonce="{CNONCE}", qop=auth, response="{response}"'
    )
    result = auth.verify("GET", header, lambda u: "pw" if u == name else None, uri=URI)
    assert result.ok, result.reason
    assert result.username == name


MALFORMED = [
    ("", NO_CREDENTIALS),
    ("   ", NO_CREDENTIALS),
    ("Digest", "missing"),
    ("Digest   ", "missing"),
    ("Basic TXVmYXNhOkNpcmNsZSBvZiBMaWZl", "not Digest"),
    ('username="Mufasa", realm="x"', "not Digest"),
    ('"Digest" username="x"', "no scheme"),
    ('Digest username="Mufasa', "unterminated"),
    ('Digest username="Mufasa\\', "unterminated"),
    ('Digest username="Mu\x00fasa"', "unterminated"),
    ('Digest username="a" realm="b"', "expected a comma"),
    ("Digest username=Mu fasa", "expected a comma"),
    ("Digest =value", "expected a parameter name"),
    ("Digest username", "has no value"),
    ("Digest username=", "expected a value"),
    ('Digest username="a", username="b"', "given twice"),
    ('Digestusername="a"', "not Digest"),
    ('Digest\x00username="a"', "no space after the scheme"),
    ('Digest username="' + "x" * 10_240 + '"', "too long"),
    ("Digest " + ", ".join(f"p{i}=v" for i in range(30)), "too many parameters"),
    ('Digest username="Mufasa", realm="http-auth@example.org"', "missing"),
]


def _complete(auth: DigestAuth, **changes: str) -> str:
    """A well-formed header, every value quoted, some changed ("<drop>" removes one)."""
    params = parse_authorization(_header(auth))
    params.update(changes)
    return "Digest " + ", ".join(f'{k}="{v}"' for k, v in params.items() if v != "<drop>")


@pytest.mark.parametrize(("header", "reason"), MALFORMED)
def test_malformed_headers(auth: DigestAuth, header: str, reason: str) -> None:
    result = _verify(auth, header)
    assert (result.ok, result.stale) == (False, False)
    assert reason in result.reason


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"response": "<drop>"}, "missing response"),
        ({"nonce": "<drop>"}, "missing nonce"),
        ({"nc": "<drop>"}, "missing nc"),
        ({"cnonce": "<drop>"}, "missing cnonce"),
        ({"qop": "<drop>"}, "missing qop"),
        ({"uri": "<drop>"}, "missing uri"),
        ({"qop": "auth-int"}, "qop 'auth-int' is not supported"),
        ({"nc": "1"}, "nc is not 8 hex digits"),
        ({"nc": "0000000g"}, "nc is not 8 hex digits"),
        ({"cnonce": ""}, "empty cnonce"),
        ({"response": "not-hex"}, "response is not a hex digest"),
        ({"response": "é" * 32}, "response is not a hex digest"),
        ({"realm": "other"}, "wrong realm"),
        ({"algorithm": "SHA-512-256"}, "is not offered"),
        ({"userhash": "true"}, "userhash"),
        ({"username*": "UTF-8''J%C3%A4s%C3%B8n"}, "userhash"),
    ],
)
def test_incomplete_or_unsupported_fields(
    auth: DigestAuth, changes: dict[str, str], reason: str
) -> None:
    result = _verify(auth, _complete(auth, **changes))
    assert (result.ok, result.stale) == (False, False)
    assert reason in result.reason


def test_every_value_quoted_still_verifies(auth: DigestAuth) -> None:
    """Python's urllib quotes algorithm; some phones quote nc and qop too."""
    assert _verify(auth, _complete(auth)).ok


@given(st.text(max_size=300))
def test_arbitrary_text_never_raises(text: str) -> None:
    auth = DigestAuth(REALM, secret=b"k" * 32)
    for header in (text, "Digest " + text, 'Digest username="' + text):
        result = auth.verify("GET", header, passwords, uri=URI)
        assert not result.ok
        assert result.reason


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"realm": ""}, "realm"),
        ({"realm": "a\r\nb"}, "realm"),
        ({"realm": "ok", "algorithms": ("SHA-1",)}, "unsupported"),
        ({"realm": "ok", "algorithms": ()}, "unsupported"),
    ],
)
def test_configuration_errors_raise(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DigestAuth(**kwargs)  # type: ignore[arg-type]
