"""Keys, fingerprints and signatures: the collection's Ed25519 key, and DSSE envelopes
around in-toto statements (attestations).

The private key is PKCS8 PEM outside the collection (the user's config folder by default,
mode 0600, optionally passphrase-encrypted); public keys sit in the collection's keys/
folder, named by fingerprint: the SHA-256 of the key's SubjectPublicKeyInfo DER."""

from __future__ import annotations

import base64
import errno
import glob
import hashlib
import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from archiver.store.durable import atomic_write, fsync_dir
from archiver.errors import UsageProblem

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
SMALL_MESSAGE = 64 * 1024  # bytes: a signed message up to this size is checked by libsodium, a larger one by OpenSSL


def canonical_json(value) -> bytes:
    return _CANONICAL.encode(value).encode("utf-8")


CANONICAL = {"sort_keys": True, "separators": (",", ":"), "ensure_ascii": False}  # the JSONEncoder options
# json.dumps with these options builds an encoder at each call: a claims tree encodes a leaf a claim.
_CANONICAL = json.JSONEncoder(**CANONICAL)


def spki_fingerprint(public_key: Ed25519PublicKey) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def grouped(fingerprint: str) -> str:
    """A fingerprint as a person reads it aloud or on paper: 16 groups of 4 hex digits."""
    return " ".join(fingerprint[i:i + 4] for i in range(0, len(fingerprint), 4))


def parse_fingerprint(text: str) -> str:
    """Accepts the grouped form, colons or plain hex."""
    cleaned = "".join(ch for ch in text.lower() if ch in "0123456789abcdef")
    if len(cleaned) != 64:
        raise UsageProblem(f"not a key fingerprint: {text!r}", "give the 64 hex digits `archiver keys show` prints")
    return cleaned


@dataclass(frozen=True)
class PublicKey:
    key: Ed25519PublicKey

    @cached_property
    def fingerprint(self) -> str:  # asked once per signature that holds
        return spki_fingerprint(self.key)

    def pem(self) -> bytes:
        return self.key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def verify(self, signature: bytes, data: bytes) -> bool:
        if len(data) > SMALL_MESSAGE:
            return self._openssl_verify(signature, data)
        from nacl.exceptions import BadSignatureError
        try:
            self._verifier.verify(data, signature)
            return True
        except (BadSignatureError, ValueError):  # ValueError: not 64 bytes
            return False

    def _openssl_verify(self, signature: bytes, data: bytes) -> bool:
        try:
            self.key.verify(signature, data)
            return True
        except InvalidSignature:
            return False

    @cached_property
    def _verifier(self):
        # libsodium checks an Ed25519 signature in half the time OpenSSL takes, and verify
        # checks one or two per capture (entries and attestations, each under SMALL_MESSAGE).
        # PyNaCl copies the message three times, so a large one (a manifest of tens of MB) goes
        # to OpenSSL, which reads it in place and spends its time hashing it either way.
        from nacl.signing import VerifyKey
        return VerifyKey(self.key.public_bytes_raw())

    @classmethod
    def from_pem(cls, data: bytes) -> "PublicKey":
        key = serialization.load_pem_public_key(data)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("not an Ed25519 public key")
        return cls(key)


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey
    path: Path

    @property
    def public(self) -> PublicKey:
        return PublicKey(self.private.public_key())

    @property
    def fingerprint(self) -> str:
        return self.public.fingerprint

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)


def default_key_path(collection_id: str | None) -> Path:
    """Where a collection's private key lives unless --key or $ARCHIVER_KEY say otherwise."""
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "archiver" / "keys" / f"{collection_id or 'default'}.ed25519.pem"


def _private_pem(private: Ed25519PrivateKey, passphrase: bytes | None) -> bytes:
    encryption = (serialization.BestAvailableEncryption(passphrase) if passphrase
                  else serialization.NoEncryption())
    return private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def generate_key(path: Path, passphrase: bytes | None, private: Ed25519PrivateKey | None = None) -> SigningKey:
    """A new key (`private`, when it is already made) at `path` (mode 0600); refuses to overwrite one."""
    if path.exists():
        raise UsageProblem(f"a key already exists at {path}", "use it, or rotate with `archiver keys rotate`")
    private = private or Ed25519PrivateKey.generate()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(path, _private_pem(private, passphrase), mode=0o600)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO):
            raise  # the machine refused (exit 3, with what to do), not a folder to choose
        raise UsageProblem(f"cannot write the key to {path}: {exc.strerror or exc}", "choose a folder you can write to with --key") from None
    return SigningKey(private, path)


def retire_key_file(path: Path, fingerprint: str) -> Path:
    """Keep the rotated-out private key at `path` (of `fingerprint`) beside the new one, never deleting it."""
    retired = path.with_name(f"{path.stem}.retired-{fingerprint[:16]}.pem")
    try:
        os.link(path, retired)  # never over another retired key
    except FileExistsError:
        if not os.path.samefile(path, retired):  # else a retirement stopped between its link and unlink
            raise
    os.unlink(path)
    fsync_dir(path.parent)
    return retired


def retired_key_files(path: Path) -> dict[str, Path]:
    """The keys retire_key_file kept beside the key at `path`, by their fingerprint's first 16 hex digits."""
    prefix = f"{path.stem}.retired-"
    return {file.name[len(prefix):-len(".pem")]: file for file in path.parent.glob(f"{glob.escape(prefix)}*.pem")}


def load_key(path: Path, passphrase: bytes | None) -> SigningKey:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageProblem(f"no signing key at {path}",
                           "create one with `archiver keys generate`, or point --key/$ARCHIVER_KEY at yours") from None
    except OSError as exc:
        raise UsageProblem(f"cannot read the signing key {path}: {exc.strerror or exc}", "check its permissions") from None
    encrypted = b"ENCRYPTED" in data.split(b"\n", 1)[0]
    if encrypted and not passphrase:
        raise UsageProblem(f"the signing key {path} is encrypted", "set ARCHIVER_PASSPHRASE or run in a terminal to be asked")
    try:
        private = serialization.load_pem_private_key(data, password=passphrase if encrypted else None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        if encrypted:
            raise UsageProblem(f"wrong passphrase for the signing key {path}", "check ARCHIVER_PASSPHRASE") from None
        raise UsageProblem(f"{path} is not a PEM private key", "point --key/$ARCHIVER_KEY at the key `archiver keys generate` made") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise UsageProblem(f"{path} is not an Ed25519 key", "archiver signs with Ed25519 keys only")
    return SigningKey(private, path)


# -- public keys in the collection ------------------------------------------------------

def publish_public_key(keys_dir: Path, public: PublicKey) -> Path:
    path = keys_dir / f"{public.fingerprint}.pub.pem"
    if not path.exists():
        atomic_write(path, public.pem())
    return path


def collection_public_keys(keys_dir: Path) -> dict[str, PublicKey]:
    """Every public key in keys/, by fingerprint; a file whose name lies about its key is left out."""
    found = {}
    for path in sorted(keys_dir.glob("*.pub.pem")):
        try:
            public = PublicKey.from_pem(path.read_bytes())
        except (ValueError, OSError, UnsupportedAlgorithm):
            continue
        if path.name == f"{public.fingerprint}.pub.pem":
            found[public.fingerprint] = public
    return found


# -- DSSE envelopes ---------------------------------------------------------------------

def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what is actually signed."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def sign_statement(statement: dict, key: SigningKey) -> dict:
    payload = canonical_json(statement)
    return {"payloadType": PAYLOAD_TYPE, "payload": base64.b64encode(payload).decode("ascii"),
            "signatures": [{"keyid": key.fingerprint,
                            "sig": base64.b64encode(key.sign(pae(PAYLOAD_TYPE, payload))).decode("ascii")}]}


class BadEnvelope(Exception):
    """An attestation that does not verify; the message says why."""


def open_envelope(envelope: dict, keys: dict[str, PublicKey]) -> tuple[dict, str]:
    """The statement inside a DSSE envelope and the fingerprint of the key that signed it."""
    return signed_statement(*envelope_signers(envelope, keys))


def envelope_signers(envelope: dict, keys: dict[str, PublicKey]) -> tuple[bytes, list[str]]:
    """The payload of a DSSE envelope and the fingerprints of the keys of `keys` whose
    signatures on it hold, in the envelope's order; BadEnvelope if it is no envelope."""
    try:
        payload = base64.b64decode(envelope["payload"], validate=True)
        signatures = envelope["signatures"]
        if envelope["payloadType"] != PAYLOAD_TYPE:
            raise BadEnvelope(f"payload type {envelope['payloadType']!r} is not {PAYLOAD_TYPE}")
    except (KeyError, TypeError, ValueError) as exc:
        raise BadEnvelope(f"malformed envelope ({exc})") from None
    signers = []
    for signature in signatures if isinstance(signatures, list) else []:
        public = keys.get(signature.get("keyid")) if isinstance(signature, dict) else None
        if public is None:
            continue
        try:
            raw = base64.b64decode(signature["sig"], validate=True)
        except (KeyError, ValueError):
            continue
        if public.verify(raw, pae(PAYLOAD_TYPE, payload)):
            signers.append(public.fingerprint)
    return payload, signers


NO_VALID_SIGNATURE = "no valid signature by a key of this collection"
NOT_JSON = "signed payload is not JSON"


def signed_statement(payload: bytes, signers: list[str]) -> tuple[dict, str]:
    """The statement of an envelope's payload and its first signer (see envelope_signers)."""
    if not signers:
        raise BadEnvelope(NO_VALID_SIGNATURE)
    try:
        return json.loads(payload), signers[0]
    except ValueError:
        raise BadEnvelope(NOT_JSON) from None
