"""Reading an RFC 3161 token: a DER TimeStampResponse parsed once into every field the
request and verification checks use, and its claims described for a report.

rfc3161-client's parser is lazy and native: any field can fail when first read, in ways
that are not exceptions of one type. Everything is read here, once, and every failure
becomes `Malformed`.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterator, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.utils import CryptographyDeprecationWarning
from rfc3161_client import PKIStatus, TimeStampResponse, decode_timestamp_response

from archiver.errors import ArchiverError

SHA256, SHA384, SHA512 = "2.16.840.1.101.3.4.2.1", "2.16.840.1.101.3.4.2.2", "2.16.840.1.101.3.4.2.3"
DIGESTS: dict[str, hashes.HashAlgorithm] = {SHA256: hashes.SHA256(), SHA384: hashes.SHA384(),
                                            SHA512: hashes.SHA512()}
_DIGEST_NAMES = {SHA256: "sha256", SHA384: "sha384", SHA512: "sha512"}


class TimestampError(ArchiverError):
    """A TSA could not give a usable token, or a timestamp input is unusable; one line."""


class Malformed(Exception):
    """Bytes that do not read as a granted token; the message says what failed."""


@dataclass(frozen=True)
class Token:
    response: TimeStampResponse
    gen_time: datetime
    accuracy: timedelta  # how far genTime may be from the true time, as the TSA states (zero when it states none)
    serial: int
    nonce: int | None
    policy: str | None
    imprint_oid: str
    imprint: bytes
    tsa: str | None  # the signer certificate's subject, else the TSTInfo's TSA name
    signer: x509.Certificate | None  # the certificate the SignerInfo names, if embedded
    others: list[x509.Certificate]   # the other embedded certificates: untrusted intermediates


@contextmanager
def _native_parser() -> Iterator[None]:
    """Bytes from outside go through native parsers (rfc3161-client's Rust, cryptography's):
    whatever fails in there means malformed input, raised as Malformed."""
    try:
        with warnings.catch_warnings():
            # cryptography warns (on stderr) about certificates it means to refuse some day,
            # such as negative serial numbers: the core never prints; the chain check judges.
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            yield
    except Malformed:
        raise
    except BaseException as exc:
        # The parsers raise ValueError, KeyError and more; a Rust panic arrives as pyo3's
        # PanicException, a BaseException.
        if isinstance(exc, Exception) or type(exc).__name__ == "PanicException":
            raise Malformed(first_line(exc)) from None
        raise


def decode(token: bytes) -> TimeStampResponse:
    with _native_parser():
        response = decode_timestamp_response(token)
        response.status  # parsed lazily: fail here if it cannot be read
        return response


def read_token(response: TimeStampResponse, beside: Sequence[x509.Certificate] = ()) -> Token:
    """Every field used later, read once: the native parser is lazy and fails field by field.
    `beside`: certificates given with a token that carries none (the TSA's signer among them)."""
    with _native_parser():
        return _fields(response, beside)


def _fields(response: TimeStampResponse, beside: Sequence[x509.Certificate]) -> Token:
    info = response.tst_info
    signed = response.signed_data
    signer_infos = list(signed.signer_infos)
    if len(signer_infos) != 1:
        raise Malformed(f"{len(signer_infos)} SignerInfos, RFC 3161 wants exactly one")
    certs = [x509.load_der_x509_certificate(der) for der in signed.certificates]
    for cert in certs:
        cert.extensions  # parsed lazily: a damaged one fails here, as malformed, not mid-check
    certs += [cert for cert in beside if cert not in certs]
    sid = signer_infos[0]
    signer = next((c for c in certs if c.issuer == sid.issuer and c.serial_number == sid.serial_number), None)
    try:
        name = info.name.value
        tsa_name = name.rfc4514_string() if isinstance(name, x509.Name) else str(name)
    except ValueError:  # the optional TSA name field is absent
        tsa_name = None
    policy = info.policy
    stated = info.accuracy
    accuracy = timedelta(0) if stated is None else timedelta(
        seconds=stated.seconds or 0, milliseconds=stated.millis or 0, microseconds=stated.micros or 0)
    return Token(response=response, gen_time=info.gen_time, accuracy=accuracy, serial=info.serial_number,
                 nonce=info.nonce, policy=policy.dotted_string if policy else None,
                 imprint_oid=info.message_imprint.hash_algorithm.dotted_string,
                 imprint=info.message_imprint.message,
                 tsa=signer.subject.rfc4514_string() if signer else tsa_name, signer=signer,
                 others=[c for c in certs if c is not signer])


def parse(token: bytes, beside: Sequence[x509.Certificate] = ()) -> Token:
    response = decode(token)
    if response.status != PKIStatus.GRANTED:
        raise Malformed(f"status {response.status}, not granted")
    return read_token(response, beside)


def describe_token(token: bytes) -> dict[str, str | int | None]:
    """The token's claims for a report: gen_time (ISO 8601), serial, tsa, policy,
    hash_algorithm, imprint (hex). Says nothing about validity: see verify_timestamp.
    Raises TimestampError when the token cannot be read."""
    try:
        info = parse(token)
    except Malformed as exc:
        raise TimestampError(f"malformed timestamp token ({exc})") from None
    return {
        "gen_time": info.gen_time.isoformat(),
        "serial": info.serial,
        "tsa": info.tsa,
        "policy": info.policy,
        "hash_algorithm": _DIGEST_NAMES.get(info.imprint_oid, info.imprint_oid),
        "imprint": info.imprint.hex(),
    }


def hash_with(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    digest = hashes.Hash(algorithm)
    digest.update(data)
    return digest.finalize()


def first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]
