"""The keys verify-bundle reads a bundle's signers from: the Ed25519 public keys it carries, and
the P-384 key its statement vouches for (the one ReplayWeb.page checks the datapackage with).
When the bundle is not signed by the key given, which key did sign it, and, when the given key
signed its own rotation to that key in a custody entry the bundle carries, that too. The
rotation is not followed unasked: whoever holds the fingerprint sworn to before it decides
whether to trust it."""

from __future__ import annotations

import re

from archiver.check.findings import Report
from archiver.evidence.custody import verify_entry
from archiver.evidence.signing import PublicKey, grouped
from archiver.exchange.zipreader import Wacz

EVIDENCE_LIMIT = 256 * 2**20  # evidence files are JSON and PEM; a bundle lying about them is refused
_KEY_FILE = re.compile(r"^evidence/key-([0-9a-f]{64})\.pub\.pem$")


def other_signer(keys: dict[str, PublicKey], fingerprint: str, signed_by: object, custody: list[dict]) -> str:
    """Why the key `fingerprint` is not the bundle's signer `signed_by` (what the statement
    names), given the bundle's carried keys and custody entries."""
    if not isinstance(signed_by, str) or not signed_by:
        return f"the bundle is not signed by the key {grouped(fingerprint)}: its statement names no signing key"
    if signed_by == fingerprint:  # named by the statement, but no key file carried holds that key
        return (f"the bundle names the key {grouped(fingerprint)} as its signer, but carries no public key file "
                "holding it, so its signature cannot be checked")
    detail = f"the bundle is signed by the key {grouped(signed_by)}, not by the key {grouped(fingerprint)}"
    given = keys.get(fingerprint)
    for entry in custody if given is not None else []:
        subject = entry.get("subject") or {}
        if entry.get("event") == "key rotated" and entry.get("key") == fingerprint and subject.get("from") == fingerprint \
                and subject.get("to") == signed_by and verify_entry(entry, {fingerprint: given}) is None:
            return (f"{detail}; the key {grouped(fingerprint)} signed its rotation to that key at {entry.get('time')} "
                    f"(a custody entry carried): if you trust that rotation, run again with --fingerprint {signed_by}")
    return detail


def carried_keys(wacz: Wacz, report: Report) -> dict[str, PublicKey]:
    """The Ed25519 public keys the bundle carries, by the fingerprint of the key each file
    holds: a file's name is the forger's to choose, so it only has to agree."""
    keys = {}
    for name in wacz.names():
        if (named := _KEY_FILE.match(name)) is None:
            continue
        public = PublicKey.from_pem(wacz.read(name, EVIDENCE_LIMIT))
        if report.check("key file fingerprint", public.fingerprint == named.group(1), name,
                        f"holds the key with fingerprint {grouped(public.fingerprint)}, not the one its name gives"):
            keys[public.fingerprint] = public
    return keys


def check_wacz_key_vouched(wacz_key: str | None, named: object, report: Report) -> None:
    """The signedData key (wacz_key: its fingerprint when the signature verified, else None) is
    the P-384 key the signed bundle statement names."""
    named_text = f"fingerprint {grouped(named)}" if isinstance(named, str) and named else "none"
    if wacz_key is None:
        detail = f"the bundle's signedData signature does not verify with the key its statement names ({named_text})"
    else:
        detail = (f"the bundle's signedData is signed by the key with fingerprint {grouped(wacz_key)}, "
                  f"not the one its statement names ({named_text})")
    report.check("datapackage key vouched for", wacz_key is not None and named == wacz_key, "datapackage-digest.json", detail)
