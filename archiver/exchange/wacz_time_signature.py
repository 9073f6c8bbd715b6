"""The time signature of a WACZ signed with a domain certificate (authsign's form): an RFC 3161
token, signedData.timeSignature (a TimeStampResp, base64), over the ASCII signedData.signature,
by the TSA whose certificates signedData.timestampCert carries (the token carries none). Held
to trusted TSA roots, it makes signedData.created, the time the domain certificate is checked
at, the TSA's word rather than the signer's; without roots, the TSA is whoever the bundle says."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, timedelta

from cryptography import x509

from archiver.check.findings import Report
from archiver.evidence.timestamps.verification import CLOCK_SKEW_ALLOWANCE, verify_timestamp
from archiver.exchange.wacz_package import DIGEST_FILE

# A token whose genTime may be off by more than this (its stated accuracy) confirms no time to
# the signing: a domain certificate valid for 90 days could be placed anywhere in a wide window.
WIDEST_ACCURACY = timedelta(minutes=1)


def check_time_signature(signed: dict, created: datetime | None, tsa_roots: bytes | None, report: Report) -> str | None:
    """Check signedData.timeSignature; `created`: signedData.created, read. What the token
    confirms, for the line on the domain certificate's trust ("the time X's RFC 3161 token
    confirms"), when a TSA trusted through `tsa_roots` signed it at `created`; None otherwise
    (the time stays the signer's word: failed, absent, or no roots to hold the TSA to)."""
    text, signature = signed.get("timeSignature"), signed.get("signature")
    if text is None:
        if tsa_roots is None:
            report.not_checked.append(f"{DIGEST_FILE}: no timeSignature (RFC 3161 token over the signature)")
        else:  # asked to hold the signing time to a TSA: a WACZ that leaves its token out cannot pass for one that has none to give
            report.check("time signature", False, DIGEST_FILE, "signedData has no timeSignature, so no TSA of "
                         "--tsa-roots confirms signedData.created: it is the signer's own word")
        return None
    try:
        token = base64.b64decode(text, validate=True) if isinstance(text, str) else None
    except (binascii.Error, ValueError):
        token = None
    if not report.check("time signature form", token is not None and isinstance(signature, str) and signature.isascii(),
                        DIGEST_FILE, "signedData.timeSignature is not base64, or signedData.signature not ASCII"):
        return None
    try:
        beside = x509.load_pem_x509_certificates(str(signed.get("timestampCert", "")).encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        beside = []  # the token must then carry its TSA's certificate, or fail for want of it
    check = verify_timestamp(token, signature.encode("ascii"), tsa_roots, beside)
    if not check.ok:  # with roots or without: the token is not one over this signature, or not whole
        report.check("time signature", False, DIGEST_FILE, f"signedData.timeSignature: {'; '.join(check.problems)}")
        return None
    stamped = f"genTime {check.gen_time:%Y-%m-%dT%H:%M:%SZ}"
    if tsa_roots is None:  # its parts hold, but by a TSA the bundle names: nothing a verifier trusts, so not passed
        report.not_checked.append(
            f"{DIGEST_FILE}: timeSignature, an RFC 3161 token over the signature by {check.tsa} ({stamped}), holds with "
            "the TSA certificate the bundle itself carries; who that TSA is was not checked (give its CA certificate "
            "with --tsa-roots), so signedData.created stays the signer's own word")
        return None
    report.check("time signature", True, DIGEST_FILE, "")
    if not report.check("time signature accuracy", check.accuracy <= WIDEST_ACCURACY, DIGEST_FILE,
                        f"the timeSignature by {check.tsa} states an accuracy of {check.accuracy.total_seconds():g} s: "
                        f"too wide to confirm signedData.created (at most {WIDEST_ACCURACY.total_seconds():g} s)"):
        return None
    allowed = check.accuracy + CLOCK_SKEW_ALLOWANCE
    if not report.check("time signature time", created is not None and abs(check.gen_time - created) <= allowed,
                        DIGEST_FILE, f"signedData.created {signed.get('created')!r} is not the time the "
                        f"timeSignature by {check.tsa} gives ({stamped}, within {allowed.total_seconds():g} s)"):
        return None
    return f"{check.tsa}'s RFC 3161 token ({stamped})"
