"""The phone HTTPS listener's TLS over real sockets: curl and Python's ssl client against an
aiohttp app on 127.0.0.1 with `server_ssl_context`, whose handler answers `peer_macs`.

What Debian 12's OpenSSL 3.0 allows was probed first (see provisiond.frontends.tls): TLS 1.0
and 1.1 do work at ``@SECLEVEL=0``, so the legacy tests negotiate them for real; 3DES and RC4
are not built in, so no client here can offer them and they are not tested.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import ssl
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from provisiond.frontends.tls import (
    LEGACY_SUITES,
    TlsConfigError,
    legacy_support,
    peer_macs,
    server_ssl_context,
)
from tests.tls_material import CLIENT_MAC, Pki, make_pki

TIMEOUT = 20.0


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """One PKI for the module (RSA key generation is the slow part)."""
    return make_pki(tmp_path_factory.mktemp("pki"))


@dataclass
class Server:
    """A running HTTPS test app; `seen` holds the MACs of every request that got through."""

    port: int
    seen: list[list[str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/macs"


@contextlib.asynccontextmanager
async def https_server(ctx: ssl.SSLContext) -> AsyncIterator[Server]:
    """aiohttp on 127.0.0.1:0 with `ctx`; GET /macs answers the peer MACs and the TLS used."""
    server = Server(port=0)

    async def macs(request: web.Request) -> web.Response:
        found = sorted(peer_macs(request.transport))
        server.seen.append(found)
        assert request.transport is not None
        tls = request.transport.get_extra_info("ssl_object")
        return web.json_response(
            {"macs": found, "version": tls.version(), "cipher": tls.cipher()[0]}
        )

    app = web.Application()
    app.router.add_get("/macs", macs)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    server.port = runner.addresses[0][1]
    try:
        yield server
    finally:
        await runner.cleanup()


# --- clients -----------------------------------------------------------------------------


def _curl_path() -> str:
    """curl's path, or a failing test that says what to install (never a skip)."""
    path = shutil.which("curl")
    if path is None:
        pytest.fail("these tests need curl: apt-get install curl")
    return path


async def curl(server: Server, pki: Pki, *options: str) -> tuple[int, dict[str, Any] | None, str]:
    """Run curl against the server: (exit code, JSON answer or None, stderr)."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    process = await asyncio.create_subprocess_exec(
        _curl_path(),
        *("-sS", "--max-time", "15", "--cacert", str(pki.ca_cert), *options, server.url),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
    code = process.returncode
    assert code is not None
    return code, (json.loads(out) if code == 0 else None), err.decode(errors="replace")


def client_context(
    pki: Pki,
    *,
    versions: tuple[ssl.TLSVersion, ssl.TLSVersion] | None = None,
    ciphers: str = "DEFAULT",
    cert: tuple[Path, Path] | None = None,
) -> ssl.SSLContext:
    """A Python ssl client at security level 0, so that only the *server* can refuse."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=pki.ca_cert)
    ctx.set_ciphers(f"{ciphers}:@SECLEVEL=0")
    if versions is not None:
        with warnings.catch_warnings():  # Python deprecates naming TLS 1.0/1.1; we mean it
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version, ctx.maximum_version = versions
    if cert is not None:
        ctx.load_cert_chain(*cert)
    return ctx


async def fetch(server: Server, ctx: ssl.SSLContext) -> dict[str, Any]:
    """GET /macs with Python's ssl client; raises OSError when the server refuses."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", server.port, ssl=ctx, server_hostname="localhost"),
        TIMEOUT,
    )
    try:
        writer.write(b"GET /macs HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = await asyncio.wait_for(reader.read(), TIMEOUT)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise ConnectionError(f"no answer: {data[:80]!r}")
    answer: dict[str, Any] = json.loads(body)
    return answer


TLS10 = (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1)
TLS11 = (ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1_1)
TLS12 = (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2)
REFUSED = (ssl.SSLError, ConnectionError)


# --- client certificates over curl -------------------------------------------------------


async def test_curl_without_client_certificate_gets_through_with_no_mac(pki: Pki) -> None:
    ctx = server_ssl_context(pki.server_cert, pki.server_key, client_ca=pki.ca_cert)
    async with https_server(ctx) as server:
        code, answer, err = await curl(server, pki)
    assert code == 0, err
    assert answer is not None
    assert answer["macs"] == []
    assert answer["version"] == "TLSv1.3"


async def test_curl_with_phone_certificate_presents_its_mac(pki: Pki) -> None:
    ctx = server_ssl_context(pki.server_cert, pki.server_key, client_ca=pki.ca_cert)
    async with https_server(ctx) as server:
        code, answer, err = await curl(
            server, pki, "--cert", str(pki.client_cert), "--key", str(pki.client_key)
        )
    assert code == 0, err
    assert answer is not None
    assert answer["macs"] == [CLIENT_MAC]


async def test_certificate_from_another_ca_is_refused_and_never_reaches_the_handler(
    pki: Pki,
) -> None:
    """OpenSSL aborts the handshake on a certificate that does not verify, even when client
    certificates are optional: such a phone gets nothing, not even common files."""
    ctx = server_ssl_context(pki.server_cert, pki.server_key, client_ca=pki.ca_cert)
    async with https_server(ctx) as server:
        code, _, err = await curl(
            server, pki, "--cert", str(pki.foreign_cert), "--key", str(pki.foreign_key)
        )
        # TLS 1.3: the server verifies after the client's Finished and drops the connection,
        # so curl reports an empty reply (52) rather than a handshake error.
        assert code != 0, err
        assert server.seen == []
        # The same listener still serves a phone without a certificate afterwards.
        code, _, err = await curl(server, pki)
        assert code == 0, err
        assert server.seen == [[]]


async def test_without_client_ca_no_certificate_is_requested(pki: Pki) -> None:
    ctx = server_ssl_context(pki.server_cert, pki.server_key)
    async with https_server(ctx) as server:
        code, answer, err = await curl(
            server, pki, "--cert", str(pki.client_cert), "--key", str(pki.client_key)
        )
    assert code == 0, err
    assert answer is not None
    assert answer["macs"] == []


# Subjects as vendors issue them; what Python's getpeercert() renders must still yield the MAC.
VENDOR_CERTIFICATES = [
    pytest.param(
        [
            (NameOID.ORGANIZATIONAL_UNIT_NAME, "CP-8841-3PCC"),
            (NameOID.LOCALITY_NAME, "88012BA01234"),
            (NameOID.STATE_OR_PROVINCE_NAME, "000e08abcdef"),
        ],
        (),
        ["000e08abcdef"],
        id="cisco-mpp-S-attribute",
    ),
    pytest.param(
        [(NameOID.COMMON_NAME, "CP-7961G-SEP001122AABBCC")], (), ["001122aabbcc"], id="cisco-mic"
    ),
    pytest.param([(NameOID.COMMON_NAME, "snom 000413922D24")], (), ["000413922d24"], id="snom"),
    pytest.param(
        [(NameOID.COMMON_NAME, "Yealink"), (NameOID.SERIAL_NUMBER, "80:5E:C0:11:22:33")],
        (),
        ["805ec0112233"],
        id="serial-number-attribute",
    ),
    pytest.param([(NameOID.USER_ID, "000b82aabbcc")], (), ["000b82aabbcc"], id="uid-attribute"),
    pytest.param(
        [(NameOID.COMMON_NAME, "phone")],
        ("urn:dev:mac:001565aabbcc",),
        ["001565aabbcc"],
        id="san-uri",
    ),
    pytest.param(
        [(NameOID.COMMON_NAME, "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3")],
        (),
        [],
        id="fingerprint-is-not-a-mac",
    ),
]


@pytest.mark.parametrize(("subject", "san_uri", "expected"), VENDOR_CERTIFICATES)
async def test_vendor_subjects_end_to_end(
    pki: Pki, subject: list[Any], san_uri: tuple[str, ...], expected: list[str]
) -> None:
    cert = pki.issue_client(f"vendor-{len(subject)}-{expected}", subject, san_uri=san_uri)
    ctx = server_ssl_context(pki.server_cert, pki.server_key, client_ca=pki.ca_cert)
    async with https_server(ctx) as server:
        answer = await fetch(server, client_context(pki, cert=cert))
    assert answer["macs"] == expected


@pytest.mark.parametrize("bundle", ["intermediate-only", "root-only"])
async def test_chains_verify_with_intermediate_or_root_in_the_bundle(pki: Pki, bundle: str) -> None:
    """A bundle holding only a vendor's device-issuing (intermediate) CA is a trust anchor
    (partial chains allowed); holding only the root works when the phone sends its chain."""
    intermediate = pki.issue_intermediate(f"vendor-{bundle}")
    leaf, key = pki.issue_client(
        f"chained-{bundle}", [(NameOID.COMMON_NAME, CLIENT_MAC)], issuer=intermediate
    )
    if bundle == "intermediate-only":
        client_ca, presented = intermediate[0], leaf
    else:
        client_ca, presented = pki.ca_cert, leaf.with_suffix(".chain.crt")
        presented.write_bytes(leaf.read_bytes() + intermediate[0].read_bytes())
    ctx = server_ssl_context(pki.server_cert, pki.server_key, client_ca=client_ca)
    async with https_server(ctx) as server:
        answer = await fetch(server, client_context(pki, cert=(presented, key)))
    assert answer["macs"] == [CLIENT_MAC]


def _two_connections(port: int, ctx: ssl.SSLContext) -> list[tuple[bool | None, bytes]]:
    """Blocking client (run in a thread): connect twice, the second time resuming the first
    session; returns (resumed, body) for each."""
    session: ssl.SSLSession | None = None
    results = []
    for _ in range(2):
        with (
            socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw,
            ctx.wrap_socket(raw, server_hostname="localhost", session=session) as tls,
        ):
            tls.sendall(b"GET /macs HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            data = b""
            for _chunk in range(1000):  # bounded; the server closes after one answer
                chunk = tls.recv(65536)
                if not chunk:
                    break
                data += chunk
            results.append((tls.session_reused, data.partition(b"\r\n\r\n")[2]))
            session = tls.session
    return results


@pytest.mark.parametrize("version", [TLS12, (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_3)])
async def test_resumed_session_keeps_the_mac(
    pki: Pki, version: tuple[ssl.TLSVersion, ssl.TLSVersion]
) -> None:
    """A phone resuming its session (tickets) still presents its certificate's MAC."""
    ctx = server_ssl_context(pki.server_cert, pki.server_key, client_ca=pki.ca_cert)
    client = client_context(pki, versions=version, cert=(pki.client_cert, pki.client_key))
    async with https_server(ctx) as server:
        results = await asyncio.to_thread(_two_connections, server.port, client)
    assert [resumed for resumed, _ in results] == [False, True]
    for _, body in results:
        assert json.loads(body)["macs"] == [CLIENT_MAC]


# --- protocol versions and suites ----------------------------------------------------------


async def test_curl_tls11_refused_by_modern_accepted_by_legacy(pki: Pki) -> None:
    old_curl = ("--tlsv1.0", "--tls-max", "1.1", "--ciphers", "DEFAULT:@SECLEVEL=0")
    async with https_server(server_ssl_context(pki.server_cert, pki.server_key)) as server:
        code, _, err = await curl(server, pki, *old_curl)
        assert code != 0
        assert server.seen == []
    legacy = server_ssl_context(pki.server_cert, pki.server_key, legacy=True)
    async with https_server(legacy) as server:
        code, answer, err = await curl(server, pki, *old_curl)
    assert code == 0, err
    assert answer is not None
    assert answer["version"] == "TLSv1.1"


# (what the client offers, TLS versions, modern answer, legacy answer) — None means refused.
HANDSHAKES = [
    pytest.param("DEFAULT", None, "TLSv1.3", "TLSv1.3", id="default-client"),
    pytest.param("DEFAULT", TLS12, "TLSv1.2", "TLSv1.2", id="tls12-default"),
    pytest.param("AES128-SHA", TLS12, None, "TLSv1.2", id="tls12-rsa-kx-cbc"),
    pytest.param("ECDHE-RSA-AES128-SHA", TLS12, None, "TLSv1.2", id="tls12-ecdhe-cbc"),
    pytest.param("AES128-GCM-SHA256", TLS12, None, "TLSv1.2", id="tls12-rsa-kx-gcm"),
    pytest.param("DEFAULT", TLS11, None, "TLSv1.1", id="tls11"),
    pytest.param("AES128-SHA", TLS10, None, "TLSv1", id="tls10-rsa-kx-cbc"),
    pytest.param("ECDHE-RSA-AES256-SHA", TLS10, None, "TLSv1", id="tls10-ecdhe-cbc"),
]


@pytest.mark.parametrize("legacy", [False, True], ids=["modern", "legacy"])
@pytest.mark.parametrize(("ciphers", "versions", "modern", "old"), HANDSHAKES)
async def test_handshakes(
    pki: Pki,
    legacy: bool,
    ciphers: str,
    versions: tuple[ssl.TLSVersion, ssl.TLSVersion] | None,
    modern: str | None,
    old: str | None,
) -> None:
    expected = old if legacy else modern
    ctx = server_ssl_context(pki.server_cert, pki.server_key, legacy=legacy)
    client = client_context(pki, versions=versions, ciphers=ciphers)
    async with https_server(ctx) as server:
        if expected is None:
            with pytest.raises(REFUSED):
                await fetch(server, client)
            assert server.seen == []
        else:
            answer = await fetch(server, client)
            assert answer["version"] == expected
            if ciphers != "DEFAULT":
                assert answer["cipher"] == ciphers


async def test_modern_tls12_is_ecdhe_aead(pki: Pki) -> None:
    ctx = server_ssl_context(pki.server_cert, pki.server_key)
    for cipher in ctx.get_ciphers():
        if cipher["protocol"] != "TLSv1.3":
            assert cipher["kea"] == "kx-ecdhe", cipher
            assert cipher["aead"], cipher
    assert ctx.options & ssl.OP_NO_COMPRESSION
    assert ctx.minimum_version is ssl.TLSVersion.TLSv1_2


async def test_server_order_wins(pki: Pki) -> None:
    """A legacy listener still picks the best suite the phone offers, not the phone's first."""
    ctx = server_ssl_context(pki.server_cert, pki.server_key, legacy=True)
    client = client_context(pki, versions=TLS12, ciphers="AES128-SHA:ECDHE-RSA-AES128-GCM-SHA256")
    async with https_server(ctx) as server:
        answer = await fetch(server, client)
    assert answer["cipher"] == "ECDHE-RSA-AES128-GCM-SHA256"


async def test_old_1024_bit_factory_certificate_needs_legacy(pki: Pki) -> None:
    """Security level 2 refuses a 1024-bit RSA client key (old SPA/Polycom certificates);
    legacy mode verifies it and the MAC gets through."""
    cert = pki.issue_client("rsa1024", [(NameOID.COMMON_NAME, CLIENT_MAC)], key_type="rsa1024")
    client = client_context(pki, cert=cert)
    modern = server_ssl_context(pki.server_cert, pki.server_key, client_ca=pki.ca_cert)
    async with https_server(modern) as server:
        with pytest.raises(REFUSED):
            await fetch(server, client)
        assert server.seen == []
    legacy = server_ssl_context(pki.server_cert, pki.server_key, client_ca=pki.ca_cert, legacy=True)
    async with https_server(legacy) as server:
        answer = await fetch(server, client)
    assert answer["macs"] == [CLIENT_MAC]


def test_legacy_support_reports_this_openssl() -> None:
    support = legacy_support()
    assert set(support.suites) | set(support.missing) == set(LEGACY_SUITES)
    assert not set(support.suites) & set(support.missing)
    # Debian 12's OpenSSL 3.0 (probed when this was written): TLS 1.0 and RSA key exchange.
    assert support.minimum_version is ssl.TLSVersion.TLSv1
    assert "AES128-SHA" in support.suites


def test_peer_macs_without_transport_or_certificate() -> None:
    class Plain:
        def get_extra_info(self, name: str, default: Any = None) -> Any:
            return default

    assert peer_macs(None) == frozenset()
    assert peer_macs(Plain()) == frozenset()


# --- configuration errors ------------------------------------------------------------------


def _encrypted_copy(key: Path, target: Path) -> Path:
    loaded = serialization.load_pem_private_key(key.read_bytes(), password=None)
    target.write_bytes(
        loaded.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    return target


def test_configuration_errors_name_the_file(pki: Pki, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a PEM file\n")
    missing = tmp_path / "missing.pem"
    _, other_rsa_key = pki.issue_client("other-rsa", [(NameOID.COMMON_NAME, "x")], key_type="rsa")
    cases: list[tuple[Path, Path, Path | None, Path, str]] = [
        (missing, pki.server_key, None, missing, "No such file"),
        (pki.server_cert, missing, None, missing, "No such file"),
        (pki.server_cert, tmp_path, None, tmp_path, "directory"),
        (garbage, pki.server_key, None, garbage, "no PEM certificate"),
        (pki.server_key, pki.server_key, None, pki.server_key, "no PEM certificate"),
        (pki.server_cert, garbage, None, garbage, "not a PEM private key"),
        (pki.server_cert, pki.client_key, None, pki.client_key, "does not match"),
        (pki.server_cert, other_rsa_key, None, other_rsa_key, "does not match"),
        (
            pki.server_cert,
            _encrypted_copy(pki.server_key, tmp_path / "enc.key"),
            None,
            tmp_path / "enc.key",
            "encrypted",
        ),
        (pki.server_cert, pki.server_key, missing, missing, "No such file"),
        (pki.server_cert, pki.server_key, garbage, garbage, "client CA bundle"),
    ]
    for certfile, keyfile, client_ca, named, words in cases:
        with pytest.raises(TlsConfigError) as caught:
            server_ssl_context(certfile, keyfile, client_ca=client_ca)
        assert str(named) in str(caught.value), caught.value
        assert words in str(caught.value), caught.value
