"""Checking a WACZ, ours or another tool's, with every check that applies to any of them, in
the order each builds on the last: the ZIP read safely (zipreader), the package
(datapackage.json, its digest, every file listed and hashed: wacz_package) and no unsigned ZIP
comment, the signature of the digest (wacz_signature), the digests the WARC records declare
(wacz_warcs), and the index into those records (wacz_index)."""

from __future__ import annotations

from pathlib import Path

from archiver.check.findings import Report
from archiver.check.scan import FileScan
from archiver.exchange.wacz_index import check_index
from archiver.exchange.wacz_package import DIGEST_FILE, DIGEST_FILE_LIMIT, check_package, load_object
from archiver.exchange.wacz_signature import check_signed_data
from archiver.exchange.wacz_warcs import check_archives
from archiver.exchange.zipreader import Wacz, open_wacz


def check_wacz(wacz: Wacz, report: Report, tsa_roots: bytes | None = None) -> tuple[list[FileScan], str | None]:
    """Every check that applies to any WACZ (`tsa_roots`: the TSAs trusted for a domain
    signature's time signature). Returns the WARC scans and the fingerprint of the datapackage
    signing key when its signature verified."""
    datapackage = check_package(wacz, report)
    # Not held against an import, which takes only the WARCs: here it would pass for part of what was verified.
    report.check("no ZIP comment", not wacz.comment, "the ZIP comment",
                 f"{wacz.comment[:200]!r}: text that nothing in the WACZ signs or hashes, which unzip prints on opening it")
    for name, comment in wacz.entry_comments.items():
        report.check("no ZIP comment", False, f"the comment of {name}",
                     f"{comment[:200]!r}: text that nothing in the WACZ signs or hashes, which unzip -v prints")
    # The ZIP's own fields that no reader shows differently (zip_layout refuses those that would be) are hashed by nothing.
    report.not_checked.append(
        f"the ZIP's own metadata (entry times, attributes, the version that made it) is signed by nothing: that this is "
        f"the very file its maker made, byte for byte, only its SHA-256, {wacz.sha256()}, held to the one the maker "
        "recorded (archiver: the custody log's export entry), can tell")
    signer = check_signature(wacz, datapackage, report, tsa_roots)
    scans = check_archives(wacz, report)
    check_index(wacz, report, scans)
    return scans, signer


def verify_wacz(path: Path) -> Report:
    """Every check above on the WACZ at `path`."""
    report = Report()
    with open_wacz(path) as wacz:
        check_wacz(wacz, report)
    return report


def check_signature(wacz: Wacz, datapackage: dict | None, report: Report, tsa_roots: bytes | None = None) -> str | None:
    """The signature in datapackage-digest.json, when there is one: the fingerprint of the key
    that made it, if it verified (a WACZ that is not signed is said so under not checked)."""
    if datapackage is None or DIGEST_FILE not in wacz.names():
        return None
    _, digest_json, _ = load_object(wacz, DIGEST_FILE, DIGEST_FILE_LIMIT)
    return check_signed_data(digest_json, datapackage, report, tsa_roots) if digest_json is not None else None
