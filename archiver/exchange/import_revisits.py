"""Which capture holds the payload an imported revisit stands for. A revisit record holds only a
response's head: its content is the payload of an earlier response, named by record id
(WARC-Refers-To), by URL and date (WARC-Refers-To-Target-URI and -Date), or only by its payload
digest (as warcio and most crawlers write). That response may be in the same file, in one
imported or captured before, or arrive later in another import: the revisits left without it are
marked (NO_PAYLOAD) and resolved by the import that brings it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from archiver.check.scan import ScannedRecord
from archiver.exchange.wacz_warcs import payload_key
from archiver.exchange.import_pages import url_key
from archiver.store.rows import NO_PAYLOAD

if TYPE_CHECKING:
    from archiver.store.catalog import Catalog

# A capture's own response record, of the page it is: a revisit's content is a capture's page.
_PAGE_RESPONSES = ("SELECT c.id FROM captures c JOIN records r ON r.record_id = c.response_record_id"
                   " WHERE r.warc_type = 'response' AND ")


def original(catalog: Catalog, revisit: ScannedRecord, pages: dict[str, ScannedRecord],
             capture_of: dict[str, str]) -> str | None:
    """The capture whose page response `revisit` stands for: among this file's pages that are
    responses (`pages`, by record id; `capture_of` gives each one's capture id) or the collection's;
    None if neither holds it."""
    headers = revisit.headers
    refers_to = headers.get("WARC-Refers-To")
    if refers_to in pages:
        return capture_of[refers_to]
    uri, date = headers.get("WARC-Refers-To-Target-URI"), headers.get("WARC-Refers-To-Date")
    url = url_key(headers.get("WARC-Target-URI"))
    digest = payload_key(headers.get("WARC-Payload-Digest") or "")
    for record in pages.values():
        if uri and date and url_key(record.headers.get("WARC-Target-URI")) == url_key(uri) \
                and record.headers.get("WARC-Date") == date:
            return capture_of[record.id]
    for record in pages.values():
        if digest and url_key(record.headers.get("WARC-Target-URI")) == url and _same_payload(record, digest):
            return capture_of[record.id]
    held = catalog.query(_PAGE_RESPONSES + "r.record_id = ?", (refers_to,)).fetchone() if refers_to else None
    if held is None and uri and date:
        held = catalog.query(_PAGE_RESPONSES + "r.target_uri IN (?, ?) AND r.warc_date = ?",
                             (uri.strip("<>"), f"<{uri.strip('<>')}>", date)).fetchone()
    if held is None and digest and digest[0] == "sha256":  # the collection keeps each payload's SHA-256
        target = headers.get("WARC-Target-URI", "").strip("<>")
        held = catalog.query(_PAGE_RESPONSES + "r.target_uri IN (?, ?) AND r.payload_digest = ?",
                             (target, f"<{target}>", f"sha256:{digest[1].hex()}")).fetchone()
    return held[0] if held else None


def resolved_by(catalog: Catalog, pages: dict[str, ScannedRecord], capture_of: dict[str, str]) -> list[tuple[str, str]]:
    """Revisits imported before whose original is one of this file's pages that are responses (`pages`): (the revisit's
    capture, the original's), by URL and payload digest (as the revisit declared it)."""
    waiting = catalog.query(
        "SELECT c.id, r.target_uri, r.payload_digest FROM captures c JOIN records r ON r.record_id = c.response_record_id"
        " WHERE c.incomplete = ? AND r.payload_digest IS NOT NULL", (NO_PAYLOAD,)).fetchall()
    found = []
    for capture_id, target_uri, declared in waiting:
        digest = payload_key(declared)
        holder = next((record for record in pages.values() if digest and _same_payload(record, digest)
                       and url_key(record.headers.get("WARC-Target-URI")) == url_key(target_uri)), None)
        if holder is not None:
            found.append((capture_id, capture_of[holder.id]))
    return found


def _same_payload(record: ScannedRecord, digest: tuple[str, bytes]) -> bool:
    """Whether a response's payload is the one `digest` names: its own declared digest in that
    algorithm, or the SHA-256 archiver computed of it."""
    declared = record.headers.get("WARC-Payload-Digest")
    if declared and payload_key(declared) == digest:
        return True
    return digest[0] == "sha256" and record.payload_digest == f"sha256:{digest[1].hex()}"
