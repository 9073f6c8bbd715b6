"""What verify-bundle says of the imported captures a bundle carries: made by another tool and
brought in by `archiver import`, they are proven to be in the signed manifest like any capture,
but archiver saw none of them made. Each is counted apart from archiver's own captures, and
named with the file it came in and, from its signed custody entry, when and by which key it
was imported: its time, address and certificate are that file's word, its bytes all archiver
vouches for. A revisit imported without its original is named as having no content."""

from __future__ import annotations

from archiver.check.findings import Report
from archiver.evidence.custody import verify_entry
from archiver.evidence.signing import PublicKey, grouped
from archiver.store.rows import NO_PAYLOAD


def check_imports(entries: dict[str, dict], custody: list[dict], keys: dict[str, PublicKey], report: Report) -> None:
    """`entries` are the proven manifest entries by capture id, `custody` the custody entries carried."""
    imported = {capture_id: entry["imported_from"] for capture_id, entry in entries.items() if entry.get("imported_from")}
    report.established["captures_proven"] = len(entries) - len(imported)
    report.established["captures_imported"] = len(imported)
    signed = {}
    for entry in custody:
        if entry.get("event") == "import" and verify_entry(entry, keys) is None:
            signed.update((capture_id, entry) for capture_id in (entry.get("subject") or {}).get("captures") or ())
    for capture_id, origin in sorted(imported.items()):
        where = f"capture {capture_id}"
        if _without_payload(entries[capture_id]):
            report.not_checked.append(f"{where}: a {NO_PAYLOAD} nor in this bundle: the capture has no content "
                                      "(only the head of a response; a player shows nothing for it)")
        entry = signed.get(capture_id)
        if entry is None:  # a bundle made before archiver carried import entries
            report.not_checked.append(f"{where}: made by another tool and imported ({origin}); no custody entry here "
                                      "records its import. Its time, IP address and certificate are that file's word; "
                                      "it has no capture attestation")
            continue
        sha256 = entry["subject"].get("sha256")
        report.check("import entry matches capture", isinstance(sha256, str) and str(origin).endswith(f" sha256:{sha256}"),
                     where, f"its manifest entry says it came from {origin}, the custody entry of its import signed "
                            f"a file of sha256 {sha256}")
        report.not_checked.append(f"{where}: made by another tool and imported ({origin}) on {entry.get('time')} with "
                                  f"the key {grouped(str(entry.get('key')))}: its time, IP address and certificate are "
                                  "that file's word; archiver vouches only that its bytes are unchanged since the import "
                                  "(it has no capture attestation)")


def _without_payload(entry: dict) -> bool:
    """A revisit whose original the collection did not hold when the bundle was made: its first
    record (the capture's own response, as an import lists it) a revisit, and its manifest entry
    naming no capture it is identical to."""
    records = entry.get("records") or [{}]
    return entry.get("revisit_of") is None and records[0].get("type") == "revisit"
