"""What verify-bundle says when a bundle is not signed by the key it was given: which key did
sign it, and, when the given key signed its own rotation to that key in a custody entry the
bundle carries, that too. The rotation is not followed unasked: whoever holds the fingerprint
sworn to before it decides whether to trust it."""

from __future__ import annotations

from archiver.evidence.custody import verify_entry
from archiver.evidence.signing import PublicKey, grouped


def other_signer(keys: dict[str, PublicKey], fingerprint: str, signed_by: object, custody: list[dict]) -> str:
    """Why the key `fingerprint` is not the bundle's signer `signed_by` (what the statement
    names), given the bundle's carried keys and custody entries."""
    if not isinstance(signed_by, str) or not signed_by:
        return f"the bundle is not signed by the key {grouped(fingerprint)}: its statement names no signing key"
    detail = f"the bundle is signed by the key {grouped(signed_by)}, not by the key {grouped(fingerprint)}"
    given = keys.get(fingerprint)
    for entry in custody if given is not None else []:
        subject = entry.get("subject") or {}
        if entry.get("event") == "key rotated" and entry.get("key") == fingerprint and subject.get("from") == fingerprint \
                and subject.get("to") == signed_by and verify_entry(entry, {fingerprint: given}) is None:
            return (f"{detail}; the key {grouped(fingerprint)} signed its rotation to that key at {entry.get('time')} "
                    f"(a custody entry carried): if you trust that rotation, run again with --fingerprint {signed_by}")
    return detail
