"""The TSA's CMS signature over a token's TSTInfo, checked with `cryptography`.

Checked here rather than left to rfc3161-client so that a bad signature is named as such;
the library does not expose the signed attributes or the signature bytes, so a small DER
reader walks to them (RFC 3161 2.4.2, RFC 5652 5.1 and 5.3).
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from archiver.evidence.timestamps.token import DIGESTS, SHA256, SHA384, SHA512, hash_with

SIGNATURE_INVALID = "TSA signature invalid"

# CMS signature algorithm OID -> (key kind, digest OID). A bare key OID (rsaEncryption,
# id-ecPublicKey) means "hash with the SignerInfo's digestAlgorithm"; OpenSSL writes those.
_SIGNATURES: dict[str, tuple[str, str | None]] = {
    "1.2.840.113549.1.1.1": ("rsa", None),
    "1.2.840.113549.1.1.11": ("rsa", SHA256),
    "1.2.840.113549.1.1.12": ("rsa", SHA384),
    "1.2.840.113549.1.1.13": ("rsa", SHA512),
    "1.2.840.10045.2.1": ("ecdsa", None),
    "1.2.840.10045.4.3.2": ("ecdsa", SHA256),
    "1.2.840.10045.4.3.3": ("ecdsa", SHA384),
    "1.2.840.10045.4.3.4": ("ecdsa", SHA512),
}
_ID_SIGNED_DATA = "1.2.840.113549.1.7.2"
_ID_CT_TSTINFO = "1.2.840.113549.1.9.16.1.4"
_ATTR_CONTENT_TYPE = "1.2.840.113549.1.9.3"
_ATTR_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"


def check_signature(token: bytes, signer: x509.Certificate) -> str | None:
    """None when the SignerInfo's signature over the TSTInfo holds under `signer`'s key, else
    the problem; ValueError or IndexError when the DER walk finds another shape. CMS (RFC 5652
    5.4): the signed attributes carry the content type and the digest of the TSTInfo, and the
    signature covers their DER encoding as a SET."""
    signed = _signed_data(token)
    kind, signature_digest_oid = _SIGNATURES.get(signed.signature_oid, (None, None))
    digest = DIGESTS.get(signature_digest_oid or signed.digest_oid)
    if kind is None or digest is None or signed.digest_oid not in DIGESTS:
        return f"TSA signature uses an unsupported algorithm ({signed.signature_oid} with {signed.digest_oid})"
    if signed.attributes is None:
        covered = signed.content
    else:
        attributes = {_oid(oid.value): values for oid, values in map(_children, _items(signed.attributes.value))}
        content_type = attributes.get(_ATTR_CONTENT_TYPE)
        message_digest = attributes.get(_ATTR_MESSAGE_DIGEST)
        if (content_type is None or message_digest is None
                or _oid(_one(content_type.value).value) != _ID_CT_TSTINFO
                or _one(message_digest.value).value != hash_with(DIGESTS[signed.digest_oid], signed.content)):
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
