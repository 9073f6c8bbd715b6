"""The recording proxy's throwaway certificate authority: one per run, never saved anywhere.

The proxy ends the browser's TLS itself (the browser never connects to an origin), so it
shows the browser a certificate for each host it is asked to CONNECT to. Every such leaf
certificate carries the same key, made once per run, and Chromium is told to accept that one
key (`--ignore-certificate-errors-spki-list`): pinning the leaf key works whatever chain is
sent, where pinning the CA's key works only when the CA certificate is in the chain. Nothing
is installed in any trust store. What the origin's own certificate was is recorded by the
transport on the upstream connection, not here.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import re
import ssl
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Certificates outlive any run; the CA is made fresh each run, so a long life costs nothing.
VALIDITY = datetime.timedelta(days=30)
_HOST_NAME = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?$")
_PEM = serialization.Encoding.PEM


def _name(common_name: str) -> x509.Name:
    # X.509 limits a common name to 64 characters; a longer host is named by its SAN alone.
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "archiver recording proxy")]
    if len(common_name) <= 64:
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _subject_alt_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        pass
    if len(host) > 253 or not _HOST_NAME.match(host):
        raise ValueError(f"not a host name a certificate can name: {host!r}")
    return x509.DNSName(host)


@dataclass
class InterceptAuthority:
    """A per-run CA and the one leaf key every host's certificate carries."""

    ca_key: ec.EllipticCurvePrivateKey
    ca_certificate: x509.Certificate
    leaf_key: ec.EllipticCurvePrivateKey
    _contexts: dict[str, ssl.SSLContext] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def create(cls) -> "InterceptAuthority":
        """A fresh CA and leaf key, in memory only."""
        ca_key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        name = _name(f"archiver throwaway CA {now:%Y-%m-%dT%H:%M:%SZ}")
        ca_certificate = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
        return cls(ca_key, ca_certificate, ec.generate_private_key(ec.SECP256R1()))

    @property
    def spki_pin(self) -> str:
        """Base64 of the SHA-256 of the leaf key's SubjectPublicKeyInfo, as Chromium's
        `--ignore-certificate-errors-spki-list` wants it."""
        spki = self.leaf_key.public_key().public_bytes(serialization.Encoding.DER,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")

    @property
    def ca_pem(self) -> bytes:
        """The CA certificate, for a client that verifies instead of pinning (tests, replay checks)."""
        return self.ca_certificate.public_bytes(_PEM)

    def server_context(self, host: str) -> ssl.SSLContext:
        """A TLS server context presenting a certificate for `host` (chain: leaf, then CA),
        offering only HTTP/1.1 by ALPN so that the browser speaks it inside the tunnel."""
        host = host.strip("[]").rstrip(".").lower()
        with self._lock:
            context = self._contexts.get(host)
            if context is None:
                context = self._contexts[host] = self._make_context(host)
        return context

    def _leaf_certificate(self, host: str) -> x509.Certificate:
        now = datetime.datetime.now(datetime.timezone.utc)
        return (
            x509.CertificateBuilder().subject_name(_name(host)).issuer_name(self.ca_certificate.subject)
            .public_key(self.leaf_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + VALIDITY)
            .add_extension(x509.SubjectAlternativeName([_subject_alt_name(host)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()),
                           critical=False)
            .sign(self.ca_key, hashes.SHA256()))

    def _make_context(self, host: str) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols(["http/1.1"])
        chain = self._leaf_certificate(host).public_bytes(_PEM) + self.ca_pem
        key = self.leaf_key.private_bytes(_PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        # ssl loads certificates and keys only from files: a private folder, removed at once.
        with tempfile.TemporaryDirectory(prefix="archiver-tls-") as folder:
            (Path(folder) / "chain.pem").write_bytes(chain)
            key_path = Path(folder) / "key.pem"
            key_path.touch(mode=0o600)
            key_path.write_bytes(key)
            context.load_cert_chain(Path(folder) / "chain.pem", key_path)
        return context
