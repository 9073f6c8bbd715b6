"""The signature of a WACZ: signedData in datapackage-digest.json, in the anonymous form
(ECDSA P-384 with its public key) or the domain form (a certificate chain, as authsign
writes it), checked offline."""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import warnings
from datetime import datetime
from pathlib import Path
from typing import Iterable

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from archiver.check.findings import Report
from archiver.evidence.custody import zoned_time
from archiver.exchange.wacz_package import DIGEST_FILE, warn
from archiver.exchange.wacz_time_signature import check_time_signature


def check_signed_data(digest_json: dict, datapackage: dict, report: Report, tsa_roots: bytes | None = None) -> str | None:
    """The signedData of datapackage-digest.json. Anonymous form: ECDSA P-384 / SHA-256, raw
    r||s, over the ASCII `hash`, with the SPKI `publicKey`. Domain form (authsign): the same
    hash signed with the domain certificate's key, the certificate chain's links checked and
    the chain validated for the domain at the signing time against Mozilla's roots (certifi);
    its time signature held to `tsa_roots` (wacz_time_signature). Returns the SHA-256 fingerprint (hex) of the signing key's SPKI
    when the signature verifies (and, in the domain form, its certificate is trusted), else None."""
    signed = digest_json.get("signedData")
    if signed is None:
        report.not_checked.append(f"{DIGEST_FILE}: not signed (no signedData)")
        return None
    if not report.check("signedData readable", isinstance(signed, dict), DIGEST_FILE, "signedData is not an object"):
        return None
    report.check("signed hash", signed.get("hash") == digest_json.get("hash"), DIGEST_FILE,
                 f"signedData.hash {signed.get('hash')!r} is not the digest file's hash {digest_json.get('hash')!r}")
    report.check("signed created", signed.get("created") == datapackage.get("created"), DIGEST_FILE,
                 f"signedData.created {signed.get('created')!r} is not datapackage.json's created "
                 f"{datapackage.get('created')!r}")
    message = signed.get("hash")
    if not report.check("signed hash form", isinstance(message, str) and message.isascii(), DIGEST_FILE,
                        "signedData.hash is not an ASCII string"):
        return None
    if "domainCert" in signed or "domain" in signed:
        return _check_domain_signature(signed, message.encode("ascii"), tsa_roots, report)
    return _check_anonymous_signature(signed, message.encode("ascii"), report)


def _b64(value: object) -> bytes | None:
    try:
        return base64.b64decode(value, validate=True) if isinstance(value, str) else None
    except (binascii.Error, ValueError):
        return None


def _spki_fingerprint(key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey) -> str:
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def _check_anonymous_signature(signed: dict, message: bytes, report: Report) -> str | None:
    for field in ("software", "version"):
        warn(report, "signedData fields", field in signed, DIGEST_FILE, f"signedData has no {field!r}")
    spki = _b64(signed.get("publicKey"))
    try:
        key = serialization.load_der_public_key(spki) if spki is not None else None
    except (ValueError, UnsupportedAlgorithm):
        key = None
    if not report.check("signing key", isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp384r1",
                        DIGEST_FILE, "signedData.publicKey is not a base64 SPKI ECDSA P-384 key (the form players accept)"):
        return None
    raw = _b64(signed.get("signature"))
    if not report.check("signature form", raw is not None and len(raw) == 96, DIGEST_FILE,
                        "signedData.signature is not base64 of a raw P-384 r||s (96 bytes)"):
        return None
    der = encode_dss_signature(int.from_bytes(raw[:48], "big"), int.from_bytes(raw[48:], "big"))
    try:
        key.verify(der, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        report.check("signature", False, DIGEST_FILE, "the ECDSA signature over the hash does not verify with publicKey")
        return None
    report.check("signature", True, DIGEST_FILE, "")
    return _spki_fingerprint(key)


def _check_domain_signature(signed: dict, message: bytes, tsa_roots: bytes | None, report: Report) -> str | None:
    try:
        chain = x509.load_pem_x509_certificates(str(signed.get("domainCert", "")).encode("ascii"))
    except ValueError:
        chain = []
    if not report.check("domain certificate", bool(chain), DIGEST_FILE, "signedData.domainCert holds no PEM certificate"):
        return None
    leaf, key = chain[0], chain[0].public_key()
    signature = _b64(signed.get("signature")) or b""
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, message, ec.ECDSA(hashes.SHA256()))   # authsign: DER, base64
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())  # wacz-signing with RSA keys
        else:
            raise InvalidSignature
        verified = True
    except InvalidSignature:
        verified = False
    report.check("domain signature", verified, DIGEST_FILE,
                 "signedData.signature over the hash does not verify with the domain certificate's key")
    domain = signed.get("domain")
    report.check("signing domain", isinstance(domain, str) and _named_by(domain, _certificate_names(leaf)), DIGEST_FILE,
                 f"signedData.domain {domain!r} is not a name of the domain certificate")
    for child, issuer in zip(chain, chain[1:]):
        try:
            child.verify_directly_issued_by(issuer)
            linked = True
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            linked = False
        report.check("domain certificate chain link", linked, DIGEST_FILE,
                     f"{child.subject.rfc4514_string()} is not signed by the next certificate, {issuer.subject.rfc4514_string()}")
    created = signed.get("created")
    moment = zoned_time(created)
    confirmed = check_time_signature(signed, moment, tsa_roots, report)
    trusted = _check_domain_trust(chain, domain, created, moment, confirmed, report)
    return _spki_fingerprint(key) if verified and trusted else None


def _check_domain_trust(chain: list[x509.Certificate], domain: object, created: object, moment: datetime | None,
                        confirmed: str | None, report: Report) -> bool:
    """Whether the domain certificate chains, for `domain`, to a root of Mozilla's trust store as
    certifi ships it, every certificate valid at signedData.created (`moment`): the check a
    browser makes of a site, made at the signing time. Without it a certificate anyone can issue
    themselves (a test CA's, a staging one's) would vouch for the signature as well as a real
    one. `confirmed`: what confirms that time (check_time_signature), if anything does."""
    import certifi
    from cryptography.x509.verification import PolicyBuilder, VerificationError

    if not report.check("signing time", moment is not None, DIGEST_FILE,
                        f"signedData.created {created!r} is not an ISO 8601 time with its zone: the domain "
                        "certificate cannot be checked at the signing time"):
        return False
    # Checked for the domain it names (whether signedData.domain is one of them is "signing domain").
    names = sorted(_certificate_names(chain[0]))
    name = domain if isinstance(domain, str) and _named_by(domain, names) else names[0] if names else ""
    try:
        verifier = PolicyBuilder().store(_mozilla_roots()).time(moment).build_server_verifier(x509.DNSName(name))
        path = verifier.verify(chain[0], chain[1:])
        why = None
    except (VerificationError, ValueError) as problem:
        path, why = None, str(problem)
    root = f"Mozilla's trust store (certifi {certifi.__version__})"
    if not report.check("domain certificate trusted", path is not None, DIGEST_FILE,
                        f"the domain certificate for {name!r} does not chain to a root of {root} valid at "
                        f"{created} (its chain ends at {chain[-1].issuer.rfc4514_string()!r}: {why}): the "
                        "signature vouches for no one a verifier can trust"):
        return False
    when = (f"valid at {created}, the time {confirmed} confirms" if confirmed else
            f"valid at {created}; that time is the signer's own word, outside the signature (no time signature by "
            "a trusted TSA confirms it), so a key whose certificate has long expired could still sign so")
    report.not_checked.append(
        f"{DIGEST_FILE}: the domain certificate chains to {path[-1].subject.rfc4514_string()!r}, a root of {root}, "
        f"{when}; whether it was revoked since (CRL, OCSP) is not checkable offline, and a root trusted then but "
        "withdrawn since would fail here")
    return True


@functools.cache
def _mozilla_roots():
    import certifi
    from cryptography.x509.verification import Store

    with warnings.catch_warnings():  # a root or two has a serial number RFC 5280 disallows: still a root
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return Store(x509.load_pem_x509_certificates(Path(certifi.where()).read_bytes()))


def _named_by(domain: str, names: Iterable[str]) -> bool:
    """Whether a certificate of `names` is for `domain`: one of them, regardless of case, or a
    wildcard standing for its whole first label ("*.example.org" for "news.example.org", not for
    "example.org" nor "a.news.example.org"), as a browser matches a site's (RFC 6125, 6.4.3)."""
    domain = domain.lower().rstrip(".")
    first, dot, rest = domain.partition(".")
    return any(name.lower() == domain or (name.lower() == f"*.{rest}" and first and dot and "." in rest)
               for name in names)


def _certificate_names(certificate: x509.Certificate) -> set[str]:
    names = {a.value for a in certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)}
    try:
        names |= set(certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
                     .value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        pass
    return names
