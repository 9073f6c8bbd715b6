"""Verifying an RFC 3161 token offline: that it timestamps the given data and that a TSA
trusted through the given roots signed it (without roots, every part that needs none: what a
token must pass on arrival when no `trusted_roots` are set).

rfc3161-client verifies a token in one call (OpenSSL's PKCS7_verify plus its own checks).
That one call stops at the first failure with an opaque message in which a bad signature and
a foreign chain look alike, so each part is also checked here on its own, to name every part
that failed:

- the hash imprint: compared here;
- the TSA's CMS signature: verified with `cryptography` (see `cms`: the library does not
  expose the signed attributes or the signature bytes);
- the TSA certificate's validity at `genTime`: checked here;
- the chain to the trusted roots, as of `genTime`: `cryptography`'s path validation;
- the critical timeStamping extended key usage: checked here.

Only when every part passes, roots given, does the library's own verification run; it must agree.
Revocation (CRL/OCSP) is not checked, by the library or here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import Criticality, ExtensionPolicy, PolicyBuilder, Store
from cryptography.x509.verification import VerificationError as ChainError
from rfc3161_client import TimeStampResponse, VerificationError, VerifierBuilder

from archiver.evidence.timestamps.cms import check_signature
from archiver.evidence.timestamps.token import DIGESTS, Malformed, TimestampError, first_line, hash_with, parse

IMPRINT_MISMATCH = "hash imprint does not match"
CHAIN_INVALID = "TSA certificate does not chain to the trusted roots"
EKU_MISSING = "TSA certificate lacks the critical timeStamping extended key usage"
NOT_VALID_THEN = "TSA certificate not valid at the token's genTime"
MALFORMED = "malformed token"

# genTime is read from the TSA's clock and held to times read from this machine's. With NTP
# both are within a fraction of a second of UTC, and TSAs commonly truncate genTime to the
# whole second (OpenSSL's do): 5 seconds covers that with room to spare, while a clock that is
# minutes off (what would let a token date a manifest before it was made) is still caught.
CLOCK_SKEW_ALLOWANCE = timedelta(seconds=5)


@dataclass(frozen=True)
class TimestampCheck:
    """The verdict on a token. `gen_time` and `tsa` are what the token claims (None when it
    cannot be read): trust them only when `ok`."""

    gen_time: datetime | None
    tsa: str | None
    problems: list[str]
    accuracy: timedelta = timedelta(0)  # as the token states it

    @property
    def ok(self) -> bool:
        return not self.problems

    def dated_before(self, moment: datetime) -> bool:
        """Whether genTime falls before `moment` even at the latest its accuracy and the clock
        skew allowance permit: for a token asked for after `moment`, proof that the TSA's clock
        was behind (its token would date the data before it existed). False when unread."""
        return self.gen_time is not None and self.gen_time + self.accuracy + CLOCK_SKEW_ALLOWANCE < moment

    def dated_after(self, moment: datetime) -> bool:
        """Whether genTime falls after `moment` even at the earliest allowed: for a token
        received by `moment`, proof that the TSA's clock was ahead."""
        return self.gen_time is not None and self.gen_time - self.accuracy - CLOCK_SKEW_ALLOWANCE > moment


def verify_timestamp(token: bytes, data: bytes, roots_pem: bytes | None,
                     beside: Sequence[x509.Certificate] = ()) -> TimestampCheck:
    """Check that `token` (a DER TimeStampResponse) timestamps `data` and that a TSA trusted
    through `roots_pem` (a PEM bundle of one or more certificates) signed it; with `roots_pem`
    None, every part but the chain and the library's verdict, which need roots. `beside`: the
    TSA's certificates, given with a token that does not carry them (as authsign's WACZs do).
    Every failed part is named in `problems`; a damaged token gives a verdict, never an
    exception. Raises TimestampError only when `roots_pem` holds no certificate."""
    roots = None if roots_pem is None else load_roots(roots_pem)
    try:
        info = parse(token, beside)
    except Malformed:
        return TimestampCheck(None, None, [MALFORMED])
    digest = DIGESTS.get(info.imprint_oid)
    problems: list[str] = []
    if digest is None:
        problems.append(f"hash imprint uses an unsupported algorithm ({info.imprint_oid})")
    elif hash_with(digest, data) != info.imprint:
        problems.append(IMPRINT_MISMATCH)
    signer = info.signer
    if signer is None:
        return TimestampCheck(info.gen_time, info.tsa, problems + ["TSA certificate not included in the token"])
    try:
        signature_problem = check_signature(token, signer)
    except (ValueError, IndexError):  # the DER walk to the SignerInfo found another shape
        return TimestampCheck(info.gen_time, info.tsa, problems + [MALFORMED])
    if signature_problem:
        problems.append(signature_problem)
    if not signer.not_valid_before_utc <= info.gen_time <= signer.not_valid_after_utc:
        problems.append(NOT_VALID_THEN)
    if roots is not None and not _chains(signer, info.others, info.gen_time, roots):
        problems.append(CHAIN_INVALID)
    if not _has_timestamping_eku(signer):
        problems.append(EKU_MISSING)
    if not problems and roots is not None:
        problems += _library_verdict(info.response, data, roots, signer if signer in beside else None)
    return TimestampCheck(info.gen_time, info.tsa, problems, info.accuracy)


def predates_signing(check: TimestampCheck, signed: datetime) -> str | None:
    """What is off, if the token's genTime is before `signed` (when the custody log says the
    data it stamps was signed, so before the token was asked for): the TSA's clock was behind, or
    the signing machine's ahead, and which cannot be told from the evidence. None otherwise."""
    if not check.dated_before(signed):
        return None
    return (f"genTime {check.gen_time:%Y-%m-%dT%H:%M:%SZ} is before the signing the custody log records"
            f" ({signed:%Y-%m-%dT%H:%M:%SZ}), beyond the token's accuracy and {CLOCK_SKEW_ALLOWANCE.seconds}s of"
            " clock skew: the TSA's clock was behind or the signing machine's ahead, so the time it proves"
            " is not held to the signing")


def load_roots(roots_pem: bytes) -> list[x509.Certificate]:
    """The certificates of a PEM bundle, each once; TimestampError when it holds none."""
    try:
        roots = x509.load_pem_x509_certificates(roots_pem)
    except ValueError:
        raise TimestampError("trusted TSA roots: no PEM certificate found; [timestamps] trusted_roots must name a"
                             " PEM file of the TSAs' CA certificates") from None
    # Bundles repeat certificates; rfc3161-client refuses to be given one twice.
    return list({cert.fingerprint(hashes.SHA256()): cert for cert in roots}.values())


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


def _library_verdict(response: TimeStampResponse, data: bytes, roots: list[x509.Certificate],
                     signer: x509.Certificate | None) -> list[str]:
    """rfc3161-client's verdict; `signer`: the TSA's certificate when the token does not carry it."""
    builder = VerifierBuilder()
    for root in roots:
        builder = builder.add_root_certificate(root)
    if signer is not None:
        builder = builder.tsa_certificate(signer)
    try:
        builder.build().verify_message(response, data)
    except VerificationError as exc:
        return [f"rfc3161-client rejects the token: {_in_words(first_line(exc))}"]
    return []


def _in_words(message: str) -> str:
    """The library's message without the OpenSSL error stack it dumps as Rust debug output,
    its reason kept: 'Unable to verify pkcs7 signature (certificate verify error)'."""
    said, stack, dumped = message.partition(": ErrorStack(")
    if not stack:
        return message
    reason = re.search(r'reason: "([^"]+)"', dumped)
    said = said.removeprefix("Error while verifying certificates: ")
    return f"{said} ({reason.group(1)})" if reason else said
