"""TLS for the phone-facing HTTPS listener: server contexts, and the MACs of client certificates.

`server_ssl_context()` builds the `ssl.SSLContext` given to aiohttp's `TCPSite(ssl_context=)`;
`peer_macs()` reads, per request, the MACs named by the phone's verified client certificate
(provisiond.domain.certs), for the `certificate` site policy.

Two profiles:

- modern (default): TLS 1.2 minimum, TLS 1.3 preferred; for TLS 1.2 only ECDHE key exchange
  with AES-GCM or ChaCha20-Poly1305; no compression, no renegotiation, the server's cipher
  order, session tickets left on. OpenSSL's security level 2 (Debian's default) also refuses
  RSA keys under 2048 bits and SHA-1 signatures, in client certificates too.
- legacy (``legacy=True``): for old phones that only speak TLS 1.0/1.1 with RSA key exchange
  or CBC-SHA suites (Cisco SPA5xx/SPA9xx, old Polycom SoundPoint and Aastra firmware). The
  minimum becomes TLS 1.0 and the cipher string ends in ``@SECLEVEL=0``; the modern suites stay
  first, so a phone that can do better still does. It also lets old factory certificates
  (1024-bit RSA keys, SHA-1 signatures) verify. Use it on its own listener when you can.

What the system's OpenSSL permits (Debian 12: OpenSSL 3.0, built with security level 2), as
probed on that system and asserted by tests/integration/test_tls.py:

- at the default level, TLS 1.0/1.1 are refused even when asked for (they sign with
  SHA-1/MD5); ``@SECLEVEL=0`` in this context's cipher string lifts that for this context
  only: TLS 1.0 and 1.1 handshakes work, with ``AES128-SHA``/``AES256-SHA``
  (TLS_RSA_WITH_AES_*_CBC_SHA, RSA key exchange) and ``ECDHE-RSA-AES*-SHA``;
- RC4, 3DES (``DES-CBC3-SHA``), single DES and export suites are not built in (``no cipher
  match``) and SSLv3 is not compiled: phones that need those cannot be served by any setting;
- DHE suites are never negotiated: Python's ssl sets no DH parameters. Phones that know
  DHE also know RSA key exchange, which legacy mode offers.
`LEGACY_SUITES` lists what legacy mode asks for; the context is built with those the OpenSSL
at hand has, and the missing ones are logged once at start-up.

Client certificates (``client_ca``): the context requests one (CERT_OPTIONAL) and verifies it
against the bundle, where an intermediate CA may serve as the trust anchor (partial chains
allowed, so the bundle can hold just a vendor's device-issuing CA). A phone without a
certificate still connects and gets the common files; the resolver decides per site policy.
A certificate that does not verify (unknown CA, expired) makes OpenSSL abort the handshake
even in optional mode, and Python's ssl offers no callback to soften that: put every vendor
CA whose phones connect to this listener in the bundle.
"""

from __future__ import annotations

import logging
import ssl
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from provisiond.domain.certs import certificate_macs

log = logging.getLogger(__name__)

# TLS 1.2 suites of the modern profile (TLS 1.3 suites are OpenSSL's, all AEAD).
MODERN_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL"
# What legacy mode adds after the modern suites, best first.
LEGACY_SUITES = (
    "ECDHE-ECDSA-AES128-SHA",
    "ECDHE-ECDSA-AES256-SHA",
    "ECDHE-RSA-AES128-SHA",
    "ECDHE-RSA-AES256-SHA",
    "ECDHE-RSA-AES128-SHA256",
    "ECDHE-RSA-AES256-SHA384",
    "AES128-GCM-SHA256",
    "AES256-GCM-SHA384",
    "AES128-SHA256",
    "AES256-SHA256",
    "AES128-SHA",  # TLS_RSA_WITH_AES_128_CBC_SHA: the one suite every old phone has
    "AES256-SHA",
    "DES-CBC3-SHA",  # last resort; absent from Debian's OpenSSL 3
)
LEGACY_CIPHERS = ":".join((MODERN_CIPHERS, *LEGACY_SUITES, "@SECLEVEL=0"))


class TlsConfigError(Exception):
    """A TLS file is missing, unreadable, malformed, encrypted or does not match its pair."""


@dataclass(frozen=True, slots=True)
class LegacySupport:
    """What legacy mode gets from the OpenSSL at hand (for the start-up log and tests)."""

    minimum_version: ssl.TLSVersion
    suites: tuple[str, ...]  # LEGACY_SUITES the context offers
    missing: tuple[str, ...]  # LEGACY_SUITES this OpenSSL does not have


class _HasExtraInfo(Protocol):
    def get_extra_info(self, name: str, default: Any = None) -> Any: ...


def _check_readable(path: Path, role: str) -> None:
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise TlsConfigError(f"{role} {path}: {exc.strerror or exc}") from exc


def _check_certificate(path: Path) -> None:
    """Parse `path` as PEM certificates on a scratch context (load_cert_chain cannot say which
    of the two files is wrong)."""
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        probe.load_verify_locations(cafile=path)
    except ssl.SSLError as exc:
        raise TlsConfigError(f"certificate {path}: no PEM certificate in it ({exc})") from exc


class _EncryptedKeyError(Exception):
    pass


def _refuse_password() -> str:
    # Without a callback OpenSSL would prompt on the terminal and block the server.
    raise _EncryptedKeyError


def _load_pair(ctx: ssl.SSLContext, certfile: Path, keyfile: Path) -> None:
    for path, role in ((certfile, "certificate"), (keyfile, "private key")):
        _check_readable(path, role)
    _check_certificate(certfile)
    try:
        ctx.load_cert_chain(certfile, keyfile, password=_refuse_password)
    except _EncryptedKeyError:
        raise TlsConfigError(
            f"private key {keyfile} is encrypted; provide it without a passphrase "
            "(readable by the service user only)"
        ) from None
    except ssl.SSLError as exc:
        if exc.reason in {"KEY_VALUES_MISMATCH", "NO_CERTIFICATE_ASSIGNED"}:
            detail = f"does not match the certificate {certfile}"
        else:
            detail = "is not a PEM private key"
        raise TlsConfigError(f"private key {keyfile} {detail} ({exc})") from exc


def _load_client_ca(ctx: ssl.SSLContext, client_ca: Path) -> None:
    _check_readable(client_ca, "client CA bundle")
    try:
        ctx.load_verify_locations(cafile=client_ca)
    except ssl.SSLError as exc:
        raise TlsConfigError(f"client CA bundle {client_ca}: no PEM certificate ({exc})") from exc
    ctx.verify_mode = ssl.CERT_OPTIONAL
    # A vendor's device-issuing (intermediate) CA alone may be the trust anchor.
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN


def _set_minimum(ctx: ssl.SSLContext, version: ssl.TLSVersion) -> None:
    # Python deprecates naming TLS 1.0/1.1 at all; here it is the documented purpose.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = version


def _legacy_minimum() -> ssl.TLSVersion:
    """TLS 1.0 when this OpenSSL was built with it, else the oldest it has."""
    for version, present in (
        (ssl.TLSVersion.TLSv1, ssl.HAS_TLSv1),
        (ssl.TLSVersion.TLSv1_1, ssl.HAS_TLSv1_1),
    ):
        if present:
            return version
    return ssl.TLSVersion.TLSv1_2


def _apply_profile(ctx: ssl.SSLContext, legacy: bool) -> None:
    # Python already sets these two on server contexts; the profile depends on them, so say so.
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    ctx.options |= ssl.OP_NO_RENEGOTIATION  # client renegotiation is a CPU-exhaustion lever
    if legacy:
        _set_minimum(ctx, _legacy_minimum())
        ctx.set_ciphers(LEGACY_CIPHERS)
    else:
        _set_minimum(ctx, ssl.TLSVersion.TLSv1_2)
        ctx.set_ciphers(MODERN_CIPHERS)
    ctx.maximum_version = ssl.TLSVersion.MAXIMUM_SUPPORTED


def legacy_support() -> LegacySupport:
    """Probe what legacy mode gets here: minimum version and which LEGACY_SUITES exist."""
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _apply_profile(probe, legacy=True)
    offered = {cipher["name"] for cipher in probe.get_ciphers()}
    return LegacySupport(
        minimum_version=probe.minimum_version,
        suites=tuple(s for s in LEGACY_SUITES if s in offered),
        missing=tuple(s for s in LEGACY_SUITES if s not in offered),
    )


def server_ssl_context(
    certfile: Path,
    keyfile: Path,
    *,
    client_ca: Path | None = None,
    legacy: bool = False,
) -> ssl.SSLContext:
    """The server context of the phone HTTPS listener (see the module docstring).

    `certfile` is PEM, leaf first, intermediates after it; `keyfile` an unencrypted PEM key.
    `client_ca`, when given, makes the server request and verify client certificates
    (optional: phones without one still connect). Raises TlsConfigError naming the file.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _apply_profile(ctx, legacy)
    _load_pair(ctx, certfile, keyfile)
    if client_ca is not None:
        _load_client_ca(ctx, client_ca)
    if legacy:
        support = legacy_support()
        log.info(
            "HTTPS legacy mode: TLS minimum %s, OpenSSL security level 0; "
            "suites this OpenSSL lacks: %s",
            support.minimum_version.name,
            ", ".join(support.missing) or "none",
        )
    return ctx


def peer_macs(transport: _HasExtraInfo | None) -> frozenset[str]:
    """MACs named by the verified client certificate on `transport`; empty when there is none.

    Pass aiohttp's ``request.transport`` (or any asyncio transport). A client certificate only
    reaches here verified: the server context requests one only with a CA bundle, and OpenSSL
    aborts the handshake when it does not verify. Plain HTTP transports give no ``peercert``.
    """
    if transport is None:
        return frozenset()
    peercert = transport.get_extra_info("peercert")
    if not peercert or not isinstance(peercert, dict):
        return frozenset()
    return certificate_macs(peercert)
