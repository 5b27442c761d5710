"""Test PKI made with `cryptography`: a CA, a server certificate for 127.0.0.1/localhost, and
client certificates shaped like phones' factory certificates.

`make_pki(tmp_path)` writes everything as PEM files and returns a `Pki` of paths:

- ``ca_cert``: the "vendor" CA that the server trusts for client certificates (``tls_client_ca``);
- ``server_cert``/``server_key``: RSA 2048 (RSA so that the legacy RSA-key-exchange suites can
  be negotiated), SAN ``DNS:localhost`` and ``IP:127.0.0.1``, signed by ``ca_cert`` so one
  ``--cacert`` serves both directions;
- ``client_cert``/``client_key``: CN = ``CLIENT_MAC`` (as Yealink/Polycom factory certificates);
- ``foreign_cert``/``foreign_key``: same CN, signed by another CA that the server does not trust.

`Pki.issue_client(name, ...)` signs more client certificates with the trusted CA (any subject
attributes, SAN DNS/URI entries, key type), for tests of the MAC extraction end to end.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CLIENT_MAC = "0004f2aabbcc"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
Attribute = tuple[x509.ObjectIdentifier, str]


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _key(kind: str) -> PrivateKey:
    """``"ec"`` (P-256, fast), ``"rsa"`` (2048) or ``"rsa1024"`` (as old phones' certificates)."""
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    bits = 1024 if kind == "rsa1024" else 2048
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _write_key(path: Path, key: PrivateKey) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def _write_cert(path: Path, cert: x509.Certificate) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _name(attributes: Sequence[Attribute]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes])


def _ca(
    common_name: str, parent: tuple[x509.Certificate, PrivateKey] | None = None
) -> tuple[x509.Certificate, PrivateKey]:
    """A root CA, or an intermediate signed by `parent`."""
    key = _key("ec")
    name = _name(
        [(NameOID.ORGANIZATION_NAME, "provisiond tests"), (NameOID.COMMON_NAME, common_name)]
    )
    issuer_name, signer = (name, key) if parent is None else (parent[0].subject, parent[1])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(days=1))
        .not_valid_after(_now() + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(signer, hashes.SHA256())
    )
    return cert, key


def _leaf(
    ca: tuple[x509.Certificate, PrivateKey],
    key: PrivateKey,
    subject: Sequence[Attribute],
    san: Sequence[x509.GeneralName],
    usage: x509.ObjectIdentifier,
) -> x509.Certificate:
    ca_cert, ca_key = ca
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(days=1))
        .not_valid_after(_now() + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(san)), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def _load_ca(cert_path: Path, key_path: Path) -> tuple[x509.Certificate, PrivateKey]:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    return cert, key


@dataclass(frozen=True)
class Pki:
    """Paths of the PEM files that `make_pki` wrote (see the module docstring)."""

    directory: Path
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    client_mac: str
    other_ca_cert: Path
    foreign_cert: Path
    foreign_key: Path

    def issue_client(
        self,
        name: str,
        subject: Sequence[Attribute],
        *,
        san_dns: Sequence[str] = (),
        san_uri: Sequence[str] = (),
        key_type: str = "ec",
        issuer: tuple[Path, Path] | None = None,
    ) -> tuple[Path, Path]:
        """Sign a client certificate with the trusted CA (or with `issuer`, a (cert, key) pair
        from `issue_intermediate`); returns (cert path, key path)."""
        key = _key(key_type)
        san: list[x509.GeneralName] = [x509.DNSName(d) for d in san_dns]
        san += [x509.UniformResourceIdentifier(u) for u in san_uri]
        ca = _load_ca(*(issuer or (self.ca_cert, self.ca_key)))
        cert = _leaf(ca, key, subject, san, ExtendedKeyUsageOID.CLIENT_AUTH)
        return (
            _write_cert(self.directory / f"{name}.crt", cert),
            _write_key(self.directory / f"{name}.key", key),
        )

    def issue_intermediate(self, name: str) -> tuple[Path, Path]:
        """An intermediate CA under the trusted CA, as vendors' device-issuing CAs are;
        returns (cert path, key path)."""
        cert, key = _ca(f"{name} device issuing CA", _load_ca(self.ca_cert, self.ca_key))
        return (
            _write_cert(self.directory / f"{name}-ca.crt", cert),
            _write_key(self.directory / f"{name}-ca.key", key),
        )


def make_pki(directory: Path) -> Pki:
    """Write a CA, a server certificate and two client certificates under `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = _ca("provisiond test phone CA")
    other_ca = _ca("some other vendor CA")
    server_key = _key("rsa")
    server = _leaf(
        ca,
        server_key,
        [(NameOID.COMMON_NAME, "localhost")],
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
        ExtendedKeyUsageOID.SERVER_AUTH,
    )
    client_key = _key("ec")
    client = _leaf(
        ca, client_key, [(NameOID.COMMON_NAME, CLIENT_MAC)], [], ExtendedKeyUsageOID.CLIENT_AUTH
    )
    foreign_key = _key("ec")
    foreign = _leaf(
        other_ca,
        foreign_key,
        [(NameOID.COMMON_NAME, CLIENT_MAC)],
        [],
        ExtendedKeyUsageOID.CLIENT_AUTH,
    )
    return Pki(
        directory=directory,
        ca_cert=_write_cert(directory / "ca.crt", ca[0]),
        ca_key=_write_key(directory / "ca.key", ca[1]),
        server_cert=_write_cert(directory / "server.crt", server),
        server_key=_write_key(directory / "server.key", server_key),
        client_cert=_write_cert(directory / "client.crt", client),
        client_key=_write_key(directory / "client.key", client_key),
        client_mac=CLIENT_MAC,
        other_ca_cert=_write_cert(directory / "other-ca.crt", other_ca[0]),
        foreign_cert=_write_cert(directory / "foreign.crt", foreign),
        foreign_key=_write_key(directory / "foreign.key", foreign_key),
    )
