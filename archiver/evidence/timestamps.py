"""RFC 3161 timestamps: ask a timestamp authority (TSA) to attest that some bytes (the
manifest) existed, and check such a token later.

A token proves that a hash existed by its `genTime`, as the TSA attests; it says nothing
about who made the data. What is saved is the whole DER TimeStampResponse, exactly as the
TSA sent it (a `.tsr` file), so `openssl ts -verify` can check it without this program.

rfc3161-client builds the requests, parses the replies and verifies a token in one call
(OpenSSL's PKCS7_verify plus its own checks). That one call stops at the first failure with
an opaque message in which a bad signature and a foreign chain look alike, so each part is
also checked here on its own, to name every part that failed:

- the hash imprint: compared here;
- the TSA's CMS signature: verified here with `cryptography` (the library does not expose the
  signed attributes or the signature bytes, hence the small DER reader below);
- the chain to the trusted roots, as of `genTime`: `cryptography`'s path validation;
- the critical timeStamping extended key usage: checked here.

Only when every part passes does the library's own verification run; it must agree.
Revocation (CRL/OCSP) is not checked, by the library or here.
"""

from __future__ import annotations

import hashlib
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Iterator

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import Criticality, ExtensionPolicy, PolicyBuilder, Store
from cryptography.x509.verification import VerificationError as ChainError
from rfc3161_client import (HashAlgorithm, PKIStatus, TimeStampResponse, TimestampRequestBuilder,
                            VerificationError, VerifierBuilder, decode_timestamp_response)

from archiver.errors import ArchiverError

QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
MAX_REPLY_BYTES = 1024 * 1024  # a reply is a few KB; anything near this is not a TSA talking

IMPRINT_MISMATCH = "hash imprint does not match"
SIGNATURE_INVALID = "TSA signature invalid"
CHAIN_INVALID = "TSA certificate does not chain to the trusted roots"
EKU_MISSING = "TSA certificate lacks the critical timeStamping extended key usage"
MALFORMED = "malformed token"

_SHA256, _SHA384, _SHA512 = "2.16.840.1.101.3.4.2.1", "2.16.840.1.101.3.4.2.2", "2.16.840.1.101.3.4.2.3"
_DIGESTS: dict[str, hashes.HashAlgorithm] = {_SHA256: hashes.SHA256(), _SHA384: hashes.SHA384(),
                                             _SHA512: hashes.SHA512()}
_DIGEST_NAMES = {_SHA256: "sha256", _SHA384: "sha384", _SHA512: "sha512"}
# CMS signature algorithm OID -> (key kind, digest OID). A bare key OID (rsaEncryption,
# id-ecPublicKey) means "hash with the SignerInfo's digestAlgorithm"; OpenSSL writes those.
_SIGNATURES: dict[str, tuple[str, str | None]] = {
    "1.2.840.113549.1.1.1": ("rsa", None),
    "1.2.840.113549.1.1.11": ("rsa", _SHA256),
    "1.2.840.113549.1.1.12": ("rsa", _SHA384),
    "1.2.840.113549.1.1.13": ("rsa", _SHA512),
    "1.2.840.10045.2.1": ("ecdsa", None),
    "1.2.840.10045.4.3.2": ("ecdsa", _SHA256),
    "1.2.840.10045.4.3.3": ("ecdsa", _SHA384),
    "1.2.840.10045.4.3.4": ("ecdsa", _SHA512),
}
_ID_SIGNED_DATA = "1.2.840.113549.1.7.2"
_ID_CT_TSTINFO = "1.2.840.113549.1.9.16.1.4"
_ATTR_CONTENT_TYPE = "1.2.840.113549.1.9.3"
_ATTR_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"


class TimestampError(ArchiverError):
    """A TSA could not give a usable token, or a timestamp input is unusable; one line."""


@dataclass(frozen=True)
class TimestampOutcome:
    """What `timestamp_with_any` got: the token and the TSA that gave it (both None when no
    TSA did), and one line for every TSA that failed before, in the order tried. A caller
    signs the manifest either way and reports `failures` (no TSA configured at all: `urls`
    was empty, `failures` too)."""

    url: str | None
    token: bytes | None
    failures: list[str]


@dataclass(frozen=True)
class TimestampCheck:
    """The verdict on a token. `gen_time` and `tsa` are what the token claims (None when it
    cannot be read): trust them only when `ok`."""

    gen_time: datetime | None
    tsa: str | None
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


# -- asking a TSA ------------------------------------------------------------------------

def request_timestamp(data: bytes, url: str, timeout: float = 10.0) -> bytes:
    """Ask the TSA at `url` for a SHA-256 timestamp over `data` (non-empty) and return its DER
    TimeStampResponse exactly as received. The reply is checked on arrival: granted, the
    imprint is sha256(data), the nonce is ours, the TSA certificate is included. `timeout`
    bounds the connection and each read, and the whole exchange to about twice that.
    Raises TimestampError naming the URL and what went wrong."""
    request = (TimestampRequestBuilder().data(data).hash_algorithm(HashAlgorithm.SHA256)
               .nonce(nonce=True).cert_request(cert_request=True).build())
    reply = _post(url, request.as_bytes(), timeout)
    try:
        response = _decode(reply)
        if response.status != PKIStatus.GRANTED:
            said = "; ".join(response.status_string) or "no reason given"
            raise TimestampError(f"timestamp authority {url}: request not granted (status {response.status}: {said})")
        info = _read_token(response)
    except _Malformed as exc:
        raise TimestampError(f"timestamp authority {url}: malformed reply ({exc})") from None
    if info.imprint_oid != _SHA256 or info.imprint != hashlib.sha256(data).digest():
        raise TimestampError(f"timestamp authority {url}: the reply's message imprint does not match the data sent")
    if info.nonce != request.nonce:
        raise TimestampError(f"timestamp authority {url}: the reply's nonce does not match the request's (a replayed"
                             " or misrouted reply)")
    if info.signer is None:
        raise TimestampError(f"timestamp authority {url}: the reply lacks the TSA certificate that was requested")
    return reply


def timestamp_with_any(data: bytes, urls: list[str], timeout: float = 10.0) -> TimestampOutcome:
    """Try the TSAs in `urls` in order until one gives a token; every failure is kept, so a
    missing timestamp is reported, never silent."""
    failures: list[str] = []
    for url in urls:
        try:
            return TimestampOutcome(url, request_timestamp(data, url, timeout), failures)
        except TimestampError as exc:
            failures.append(str(exc))
    return TimestampOutcome(None, None, failures)


def _post(url: str, query: bytes, timeout: float) -> bytes:
    deadline = time.monotonic() + 2 * timeout
    try:
        # No redirects: requests would turn a redirected POST into a GET.
        with requests.post(url, data=query, timeout=timeout, stream=True, allow_redirects=False,
                           headers={"Content-Type": QUERY_TYPE, "Accept": REPLY_TYPE}) as response:
            if response.status_code != 200:
                raise TimestampError(f"timestamp authority {url}: answered HTTP {response.status_code}"
                                     f" {response.reason or ''}".rstrip())
            media_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if media_type != REPLY_TYPE:
                raise TimestampError(f"timestamp authority {url}: answered with Content-Type"
                                     f" {media_type or '(none)'}, not {REPLY_TYPE}")
            body = bytearray()
            for chunk in response.iter_content(65536):
                body += chunk
                if len(body) > MAX_REPLY_BYTES:
                    raise TimestampError(f"timestamp authority {url}: reply larger than {MAX_REPLY_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise TimestampError(f"timestamp authority {url}: reply not complete within {2 * timeout:g}s")
            return bytes(body)
    except requests.Timeout:
        raise TimestampError(f"timestamp authority {url}: no answer within {timeout:g}s") from None
    except requests.ConnectionError as exc:
        raise TimestampError(f"timestamp authority {url}: unreachable ({_reason(exc)})") from None
    except requests.RequestException as exc:
        raise TimestampError(f"timestamp authority {url}: request failed ({_reason(exc)})") from None


def _reason(exc: BaseException) -> str:
    """The root cause of a requests error in a few words (requests nests urllib3's errors,
    whose text repeats the URL and the pool)."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
        cause = cause.__cause__ or cause.__context__
    return _first_line(exc)


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]


# -- reading a token ---------------------------------------------------------------------

class _Malformed(Exception):
    pass


@dataclass(frozen=True)
class _Token:
    response: TimeStampResponse
    gen_time: datetime
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
    whatever fails in there means malformed input, raised as _Malformed."""
    try:
        with warnings.catch_warnings():
            # cryptography warns (on stderr) about certificates it means to refuse some day,
            # such as negative serial numbers: the core never prints; the chain check judges.
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            yield
    except _Malformed:
        raise
    except BaseException as exc:
        # The parsers raise ValueError, KeyError and more; a Rust panic arrives as pyo3's
        # PanicException, a BaseException.
        if isinstance(exc, Exception) or type(exc).__name__ == "PanicException":
            raise _Malformed(_first_line(exc)) from None
        raise


def _decode(token: bytes) -> TimeStampResponse:
    with _native_parser():
        response = decode_timestamp_response(token)
        response.status  # parsed lazily: fail here if it cannot be read
        return response


def _read_token(response: TimeStampResponse) -> _Token:
    """Every field used later, read once: the native parser is lazy and fails field by field."""
    with _native_parser():
        return _fields(response)


def _fields(response: TimeStampResponse) -> _Token:
    info = response.tst_info
    signed = response.signed_data
    signer_infos = list(signed.signer_infos)
    if len(signer_infos) != 1:
        raise _Malformed(f"{len(signer_infos)} SignerInfos, RFC 3161 wants exactly one")
    certs = [x509.load_der_x509_certificate(der) for der in signed.certificates]
    for cert in certs:
        cert.extensions  # parsed lazily: a damaged one fails here, as malformed, not mid-check
    sid = signer_infos[0]
    signer = next((c for c in certs if c.issuer == sid.issuer and c.serial_number == sid.serial_number), None)
    try:
        name = info.name.value
        tsa_name = name.rfc4514_string() if isinstance(name, x509.Name) else str(name)
    except ValueError:  # the optional TSA name field is absent
        tsa_name = None
    policy = info.policy
    return _Token(response=response, gen_time=info.gen_time, serial=info.serial_number, nonce=info.nonce,
                  policy=policy.dotted_string if policy else None,
                  imprint_oid=info.message_imprint.hash_algorithm.dotted_string,
                  imprint=info.message_imprint.message,
                  tsa=signer.subject.rfc4514_string() if signer else tsa_name, signer=signer,
                  others=[c for c in certs if c is not signer])


def _parse(token: bytes) -> _Token:
    response = _decode(token)
    if response.status != PKIStatus.GRANTED:
        raise _Malformed(f"status {response.status}, not granted")
    return _read_token(response)


def describe_token(token: bytes) -> dict[str, str | int | None]:
    """The token's claims for a report: gen_time (ISO 8601), serial, tsa, policy,
    hash_algorithm, imprint (hex). Says nothing about validity: see verify_timestamp.
    Raises TimestampError when the token cannot be read."""
    try:
        info = _parse(token)
    except _Malformed as exc:
        raise TimestampError(f"malformed timestamp token ({exc})") from None
    return {
        "gen_time": info.gen_time.isoformat(),
        "serial": info.serial,
        "tsa": info.tsa,
        "policy": info.policy,
        "hash_algorithm": _DIGEST_NAMES.get(info.imprint_oid, info.imprint_oid),
        "imprint": info.imprint.hex(),
    }


# -- verifying a token -------------------------------------------------------------------

def verify_timestamp(token: bytes, data: bytes, roots_pem: bytes) -> TimestampCheck:
    """Check that `token` (a DER TimeStampResponse) timestamps `data` and that a TSA trusted
    through `roots_pem` (a PEM bundle of one or more certificates) signed it. Every failed
    part is named in `problems`; a damaged token gives a verdict, never an exception. Raises
    TimestampError only when `roots_pem` holds no certificate."""
    roots = _load_roots(roots_pem)
    try:
        info = _parse(token)
    except _Malformed:
        return TimestampCheck(None, None, [MALFORMED])
    digest = _DIGESTS.get(info.imprint_oid)
    problems: list[str] = []
    if digest is None:
        problems.append(f"hash imprint uses an unsupported algorithm ({info.imprint_oid})")
    elif _hash(digest, data) != info.imprint:
        problems.append(IMPRINT_MISMATCH)
    signer = info.signer
    if signer is None:
        return TimestampCheck(info.gen_time, info.tsa, problems + ["TSA certificate not included in the token"])
    try:
        signature_problem = _check_signature(token, signer)
    except (ValueError, IndexError):  # the DER walk to the SignerInfo found another shape
        return TimestampCheck(info.gen_time, info.tsa, problems + [MALFORMED])
    if signature_problem:
        problems.append(signature_problem)
    if not _chains(signer, info.others, info.gen_time, roots):
        problems.append(CHAIN_INVALID)
    if not _has_timestamping_eku(signer):
        problems.append(EKU_MISSING)
    if not problems:
        problems += _library_verdict(info.response, data, roots)
    return TimestampCheck(info.gen_time, info.tsa, problems)


def _load_roots(roots_pem: bytes) -> list[x509.Certificate]:
    try:
        roots = x509.load_pem_x509_certificates(roots_pem)
    except ValueError:
        raise TimestampError("trusted TSA roots: no PEM certificate found") from None
    # Bundles repeat certificates; rfc3161-client refuses to be given one twice.
    return list({cert.fingerprint(hashes.SHA256()): cert for cert in roots}.values())


def _hash(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    digest = hashes.Hash(algorithm)
    digest.update(data)
    return digest.finalize()


def _chains(signer: x509.Certificate, intermediates: list[x509.Certificate], gen_time: datetime,
            roots: list[x509.Certificate]) -> bool:
    """Path validation as of genTime: the TSA vouched for that moment, so its certificate only
    had to be valid then. The extension policies are loosened because TSA certificates are not
    Web PKI certificates (no subjectAltName); CA-ness and signatures are still checked."""
    ca_policy = ExtensionPolicy.permit_all().require_present(x509.BasicConstraints, Criticality.AGNOSTIC, None)
    verifier = (PolicyBuilder().store(Store(roots)).time(gen_time)
                .extension_policies(ca_policy=ca_policy, ee_policy=ExtensionPolicy.permit_all())
                .build_client_verifier())
    try:
        verifier.verify(signer, intermediates)
    except ChainError:
        return False
    return True


def _has_timestamping_eku(cert: x509.Certificate) -> bool:
    """RFC 3161 2.3: the TSA certificate's extended key usage is critical and names
    timeStamping (checked as rfc3161-client does: present among the purposes)."""
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        return False
    return eku.critical and ExtendedKeyUsageOID.TIME_STAMPING in eku.value


def _library_verdict(response: TimeStampResponse, data: bytes, roots: list[x509.Certificate]) -> list[str]:
    builder = VerifierBuilder()
    for root in roots:
        builder = builder.add_root_certificate(root)
    try:
        builder.build().verify_message(response, data)
    except VerificationError as exc:
        return [f"rfc3161-client rejects the token: {_first_line(exc)}"]
    return []


# -- the CMS signature, checked with cryptography -----------------------------------------

def _check_signature(token: bytes, signer: x509.Certificate) -> str | None:
    """None when the SignerInfo's signature over the TSTInfo holds under `signer`'s key, else
    the problem. CMS (RFC 5652 5.4): the signed attributes carry the content type and the
    digest of the TSTInfo, and the signature covers their DER encoding as a SET."""
    signed = _signed_data(token)
    kind, signature_digest_oid = _SIGNATURES.get(signed.signature_oid, (None, None))
    digest = _DIGESTS.get(signature_digest_oid or signed.digest_oid)
    if kind is None or digest is None or signed.digest_oid not in _DIGESTS:
        return f"TSA signature uses an unsupported algorithm ({signed.signature_oid} with {signed.digest_oid})"
    if signed.attributes is None:
        covered = signed.content
    else:
        attributes = {_oid(oid.value): values for oid, values in map(_children, _items(signed.attributes.value))}
        content_type = attributes.get(_ATTR_CONTENT_TYPE)
        message_digest = attributes.get(_ATTR_MESSAGE_DIGEST)
        if (content_type is None or message_digest is None
                or _oid(_one(content_type.value).value) != _ID_CT_TSTINFO
                or _one(message_digest.value).value != _hash(_DIGESTS[signed.digest_oid], signed.content)):
            return SIGNATURE_INVALID
        covered = b"\x31" + signed.attributes.encoded[1:]  # [0] IMPLICIT on the wire, SET OF when signed
    try:
        key = signer.public_key()
    except (ValueError, UnsupportedAlgorithm):  # a damaged or exotic key cannot have signed
        return SIGNATURE_INVALID
    try:
        if kind == "rsa" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signed.signature, covered, padding.PKCS1v15(), digest)
        elif kind == "ecdsa" and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signed.signature, covered, ec.ECDSA(digest))
        else:
            return SIGNATURE_INVALID
    except InvalidSignature:
        return SIGNATURE_INVALID
    return None


@dataclass(frozen=True)
class _Tlv:
    tag: int
    value: bytes
    encoded: bytes  # the whole element, header included


def _tlv(data: bytes) -> tuple[_Tlv, bytes]:
    """The first DER element of `data` and what follows it; ValueError when it is not DER."""
    if len(data) < 2 or data[0] & 0x1F == 0x1F:
        raise ValueError("not DER")
    length, start = data[1], 2
    if length & 0x80:
        count = length & 0x7F
        if not 0 < count <= 4 or len(data) < 2 + count:
            raise ValueError("bad DER length")
        length, start = int.from_bytes(data[2:2 + count], "big"), 2 + count
    if len(data) < start + length:
        raise ValueError("truncated DER")
    return _Tlv(data[0], data[start:start + length], data[:start + length]), data[start + length:]


def _items(data: bytes) -> list[_Tlv]:
    items = []
    while data:
        item, data = _tlv(data)
        items.append(item)
    return items


def _one(data: bytes) -> _Tlv:
    item, rest = _tlv(data)
    if rest:
        raise ValueError("trailing bytes after DER element")
    return item


def _children(item: _Tlv) -> list[_Tlv]:
    return _items(item.value)


def _oid(value: bytes) -> str:
    arcs, current = [], 0
    for byte in value:
        current = current << 7 | byte & 0x7F
        if not byte & 0x80:
            arcs.append(current)
            current = 0
    if not arcs:
        raise ValueError("empty OID")
    first = min(arcs[0] // 40, 2)
    return ".".join(str(arc) for arc in [first, arcs[0] - 40 * first, *arcs[1:]])


@dataclass(frozen=True)
class _SignedContent:
    content: bytes  # the TSTInfo, DER
    digest_oid: str
    attributes: _Tlv | None  # the signed attributes, as on the wire
    signature_oid: str
    signature: bytes


def _algorithm(identifier: _Tlv) -> str:
    return _oid(_children(identifier)[0].value)


def _signed_data(token: bytes) -> _SignedContent:
    """The TSTInfo and its one SignerInfo, walked from TimeStampResp (RFC 3161 2.4.2) through
    ContentInfo and SignedData (RFC 5652 5.1, 5.3); ValueError or IndexError on another shape."""
    content_info = _children(_one(token))[1]
    content_type, explicit = _children(content_info)[:2]
    if _oid(content_type.value) != _ID_SIGNED_DATA or explicit.tag != 0xA0:
        raise ValueError("not SignedData")
    signed_data = _children(_one(explicit.value))
    # The version fields and the digestAlgorithms set lie outside the signature: they are
    # checked so that no edit to a token passes. RFC 5652 5.1: SignedData is version 3 or
    # above when the content is not id-data.
    if int.from_bytes(signed_data[0].value, "big", signed=True) < 3:
        raise ValueError("SignedData version below 3")
    encapsulated = _children(signed_data[2])
    if _oid(encapsulated[0].value) != _ID_CT_TSTINFO or encapsulated[1].tag != 0xA0:
        raise ValueError("not a TSTInfo")
    signer_infos = _children(signed_data[-1])
    if signed_data[-1].tag != 0x31 or len(signer_infos) != 1:
        raise ValueError("expected one SignerInfo")
    fields = _children(signer_infos[0])  # version, sid, digestAlgorithm, [0] signedAttrs, ...
    if fields[0].value != b"\x01" or fields[1].tag != 0x30:
        raise ValueError("SignerInfo is not version 1 with an issuerAndSerialNumber")
    digest_oid = _algorithm(fields[2])
    if digest_oid not in map(_algorithm, _children(signed_data[1])):
        raise ValueError("the signer's digest algorithm is not among SignedData's digestAlgorithms")
    attributes = fields[3] if fields[3].tag == 0xA0 else None
    signature_algorithm, signature = fields[4:6] if attributes is not None else fields[3:5]
    return _SignedContent(content=_one(encapsulated[1].value).value, digest_oid=digest_oid, attributes=attributes,
                          signature_oid=_algorithm(signature_algorithm), signature=signature.value)
