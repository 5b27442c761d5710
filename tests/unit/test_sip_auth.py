"""Digest answers to a phone's challenge: RFC example vectors, choice, and odd challenges."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from provisiond.provisioning.digest import DigestAuth, parse_authorization
from provisiond.sip.auth import (
    DigestChallenge,
    authorization,
    choose_challenge,
    digest_response,
    parse_challenge,
)

# RFC 7616 section 3.9.1
RFC7616 = (
    'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, '
    'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
    'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
)
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"


def rfc7616(algorithm: str) -> str:
    challenge = parse_challenge(RFC7616)
    assert challenge is not None
    return digest_response(
        dataclasses.replace(challenge, algorithm=algorithm),
        username="Mufasa",
        password="Circle of Life",
        method="GET",
        uri="/dir/index.html",
        qop="auth",
        cnonce=RFC7616_CNONCE,
        nc="00000001",
    )


def test_rfc7616_example_sha256() -> None:
    assert rfc7616("SHA-256") == "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"


def test_rfc7616_example_md5() -> None:
    assert rfc7616("MD5") == "8ca523f5e9506fed4657c9700eebdbec"


def test_rfc2617_example_and_the_header_we_send() -> None:
    challenge = parse_challenge(
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    assert challenge is not None
    value = authorization(
        challenge,
        username="Mufasa",
        password="Circle Of Life",
        method="GET",
        uri="/dir/index.html",
        cnonce="0a4f113b",
    )
    params = parse_authorization(value)
    assert params["response"] == "6629fae49393a05397450978507c4ef1"
    assert params["qop"] == "auth"
    assert params["nc"] == "00000001"
    assert params["cnonce"] == "0a4f113b"
    assert params["opaque"] == "5ccc069c403ebaf9f0171e9517f40e41"
    assert params["algorithm"] == "MD5"
    assert params["uri"] == "/dir/index.html"


def test_without_qop_the_rfc2069_form_is_used() -> None:
    challenge = DigestChallenge(realm="r", nonce="n")
    value = authorization(challenge, username="u", password="p", method="NOTIFY", uri="sip:x")
    params = parse_authorization(value)

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    expected = md5(f"{md5('u:r:p')}:n:{md5('NOTIFY:sip:x')}")
    assert params["response"] == expected
    assert "qop" not in params
    assert "nc" not in params


def test_auth_int_hashes_the_body_when_it_is_all_that_is_offered() -> None:
    challenge = parse_challenge('Digest realm="r", nonce="n", qop="auth-int"')
    assert challenge is not None
    params = parse_authorization(
        authorization(
            challenge,
            username="u",
            password="p",
            method="NOTIFY",
            uri="sip:x",
            body=b"action=reset\r\n",
            cnonce="c",
        )
    )

    def md5(text: str | bytes) -> str:
        return hashlib.md5(text.encode() if isinstance(text, str) else text).hexdigest()

    a2 = md5(f"NOTIFY:sip:x:{md5(b'action=reset' + bytes([13, 10]))}")
    assert params["qop"] == "auth-int"
    assert params["response"] == md5(f"{md5('u:r:p')}:n:00000001:c:auth-int:{a2}")


def test_sess_variant_and_userhash() -> None:
    challenge = parse_challenge(
        'Digest realm="r", nonce="n", qop=auth, algorithm=SHA-256-sess, userhash=true'
    )
    assert challenge is not None
    assert (challenge.algorithm, challenge.session, challenge.userhash) == ("SHA-256", True, True)
    params = parse_authorization(
        authorization(challenge, username="u", password="p", method="NOTIFY", uri="s", cnonce="c")
    )

    def sha(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    ha1 = sha(f"{sha('u:r:p')}:n:c")
    assert params["response"] == sha(f"{ha1}:n:00000001:c:auth:{sha('NOTIFY:s')}")
    assert params["algorithm"] == "SHA-256-sess"
    assert params["username"] == sha("u:r")
    assert params["userhash"] == "true"


def test_the_strongest_challenge_is_chosen() -> None:
    chosen = choose_challenge(
        [
            'Digest realm="r", nonce="1", algorithm=MD5',
            "Basic realm=r",
            'Digest realm="r", nonce="2", algorithm=SHA-256',
            'Digest realm="r", nonce="3", algorithm=SHA3-512',
        ]
    )
    assert chosen is not None
    assert (chosen.nonce, chosen.algorithm) == ("2", "SHA-256")


@pytest.mark.parametrize(
    "value",
    [
        'Basic realm="r"',
        'Digest nonce="n"',  # no realm
        'Digest realm="r"',  # no nonce
        'Digest realm="r", nonce="n", algorithm=SHA3-512',
        'Digest realm="r", nonce="n", qop="auth-conf"',
        'Digest realm="r" nonce="n"',  # missing comma
        'Digest realm="r, nonce="n"',  # unterminated quote
        "Digest",
        "",
    ],
)
def test_challenges_we_cannot_answer(value: str) -> None:
    assert parse_challenge(value) is None
    assert choose_challenge([value]) is None


def test_quoted_values_are_unescaped_and_requoted() -> None:
    challenge = parse_challenge(r'Digest realm="a \"quoted\" realm", nonce="n\\1", qop=auth')
    assert challenge is not None
    assert challenge.realm == 'a "quoted" realm'
    assert challenge.nonce == "n\\1"
    params = parse_authorization(
        authorization(challenge, username='u"1', password="p", method="NOTIFY", uri="sip:x")
    )
    assert params["realm"] == 'a "quoted" realm'
    assert params["username"] == 'u"1'


@pytest.mark.parametrize("algorithms", [("SHA-256", "MD5"), ("MD5",), ("SHA-256-sess",)])
def test_answers_verify_against_our_own_digest_server(algorithms: tuple[str, ...]) -> None:
    """An independent implementation (the phone-facing HTTP digest) accepts our answers."""
    server = DigestAuth("phone", algorithms=algorithms)
    challenge = choose_challenge(server.challenges())
    assert challenge is not None
    assert challenge.algorithm == algorithms[0].upper().removesuffix("-SESS")
    uri = "sip:201@192.0.2.10:5060"
    value = authorization(challenge, username="201", password="pw", method="NOTIFY", uri=uri)
    result = server.verify("NOTIFY", value, {"201": "pw"}.get, uri=uri)
    assert result.ok, result.reason
    wrong = authorization(challenge, username="201", password="nope", method="NOTIFY", uri=uri)
    assert not server.verify("NOTIFY", wrong, {"201": "pw"}.get, uri=uri).ok


def test_sha512_256_when_the_local_openssl_has_it() -> None:
    value = 'Digest realm="r", nonce="n", qop=auth, algorithm=SHA-512-256'
    try:
        hashlib.new("sha512_256")
    except ValueError:
        assert parse_challenge(value) is None
        return
    challenge = choose_challenge(['Digest realm="r", nonce="m", algorithm=SHA-256', value])
    assert challenge is not None
    assert challenge.algorithm == "SHA-512-256"
    params = parse_authorization(
        authorization(challenge, username="u", password="p", method="NOTIFY", uri="s", cnonce="c")
    )

    def h(text: str) -> str:
        return hashlib.new("sha512_256", text.encode()).hexdigest()

    assert params["response"] == h(f"{h('u:r:p')}:n:00000001:c:auth:{h('NOTIFY:s')}")
