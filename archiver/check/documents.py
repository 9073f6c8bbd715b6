"""Checks of what was read: each document version the custody log read is listed in the
catalog, and each one it lists with a size has its copy under documents/, whole, with the
SHA-256 it is named by (archiver.store.documents); each claim the catalog holds was read, as
a signed custody entry says (a document read, a note), and still has the text its id was made from."""

from __future__ import annotations

from collections import Counter
from itertools import groupby
from operator import itemgetter
from typing import Iterator

from archiver.check.custody_log import Logged
from archiver.check.findings import Report
from archiver.evidence.claim_tree import claims_trees, tree_of
from archiver.read.model import NOTE_KEY, make_claim_id, normalise_claim_text
from archiver.read.urls import normalise_url
from archiver.store.catalog import Catalog
from archiver.store.collection import Collection
from archiver.store.documents import DocumentCopies


def check_document_copies(collection: Collection, catalog: Catalog, custody: Logged, report: Report) -> None:
    copies = DocumentCopies(collection.root, collection.storage)
    kept = catalog.query("SELECT sha256, MAX(size) FROM document_versions WHERE size IS NOT NULL"
                         " GROUP BY sha256 ORDER BY sha256").fetchall()
    listed = {row[0] for row in catalog.query("SELECT DISTINCT sha256 FROM document_versions")}
    for sha256 in sorted(map(str, custody.documents_read - listed)):  # a row dropped, and with it its copy's check
        report.check("document version listed", False, f"document version {sha256}",
                     "the custody log records reading it, but the catalog lists no such version")
    for sha256, size in kept:
        try:
            where = copies.relative_path(sha256)
        except ValueError as exc:  # a row edited to name no copy (../../etc/hostname)
            report.check("document version listed", False, f"document version {sha256!r}", str(exc))
            continue
        found = copies.digest_of(sha256)
        if not report.check("document copy", found is not None, where, "missing: the catalog lists this document version"):
            continue
        report.check("document copy", found == (sha256, size), where,
                     f"sha256 and size: expected {sha256} ({size} bytes), found {found[0]} ({found[1]} bytes)")
    unread = catalog.query("SELECT COUNT(*) FROM document_versions WHERE size IS NULL").fetchone()[0]
    if unread:
        report.not_checked.append(f"documents: {unread} version(s) read before archiver kept copies of documents")


def check_document_paths(catalog: Catalog, custody: Logged, report: Report) -> None:
    """Each document's path (where it was read from, as listings show it, and where doctor reads a
    lost read's copy as) is the one its latest signed read names."""
    unsigned = 0
    for key, path in catalog.stream("SELECT key, path FROM documents ORDER BY key"):
        if key not in custody.documents_last_read:
            continue  # read by no entry naming it: its versions' checks name that
        signed = custody.documents_path[key]
        if signed is None:
            unsigned += 1
        else:
            report.check("document path", path == signed, f"document {key}",
                         lambda: f"read from {path!r}, the catalog says; its latest signed read names {signed!r}")
    if unsigned:
        report.not_checked.append(f"documents: the path of {unsigned} document(s) last read before archiver signed "
                                  "where a document was read from")


def check_claims(catalog: Catalog, custody: Logged, report: Report) -> None:
    """Each claim was read, as a signed custody entry says: a claim no signed entry read was
    written into the catalog by hand, and the next manifest would sign it as read from its
    document. And each claim's text is the text its id was made from (read/model.py:
    make_claim_id): a text edited in the catalog keeps its id, and with it that signed read."""
    if custody.late_reads:
        report.not_checked.append(f"claims: {len(custody.late_reads)} read by a run that stopped before logging them, "
                                  f"recorded later by `archiver doctor --fix`: {'; '.join(custody.late_reads)}: that "
                                  "they are what the run read rests on that copy, or on the catalog")
    # A claim's id is made of its document, its text and which occurrence of that text in the
    # document it is (the same words n times are occurrences 0 to n-1, each its own claim). Almost
    # every claim is occurrence 0, so the claims are streamed, and only the others (and their
    # texts' counts) are kept: holding every claim's text to count them all costs gigabytes.
    passed = 0
    odd: list[tuple[str, bool, tuple[str, str] | None]] = []  # in id order: (claim id, in the log, its text if not occurrence 0)
    alike: Counter = Counter()  # (key, normalised text) of each text some claim is not occurrence 0 of → its claims
    for claim_id, key, text in _claims(catalog):
        first = make_claim_id(key, text, 0) == claim_id
        if claim_id in custody.claims_read and first:
            passed += 1
            continue
        odd.append((claim_id, claim_id in custody.claims_read, None if first else (key, text)))
        if not first:
            alike[key, text] += 1
    if alike:  # the occurrence-0 claims of those texts count too: a second pass counts them alone
        for claim_id, key, text in _claims(catalog):
            if (key, text) in alike and make_claim_id(key, text, 0) == claim_id:
                alike[key, text] += 1
    if passed:  # none: no count at all, as when no claim is checked
        report.count_passed("claim in custody log", passed)
        report.count_passed("claim text", passed)
    for claim_id, logged, occurring in odd:  # reported in id order, as each claim's two checks fall
        where = f"claim {claim_id}"
        report.check("claim in custody log", logged, where,
                     "no custody entry records reading this claim (from a document or as a note); if a run "
                     "stopped as it read it, `archiver doctor --fix` reads its document again from the copy kept")
        made_from = occurring is None or any(make_claim_id(*occurring, occurrence) == claim_id
                                             for occurrence in range(alike[occurring]))
        report.check("claim text", made_from, where,
                     "its text is not the text its id was made from: changed in the catalog since it was read")


def _claims(catalog: Catalog) -> Iterator[tuple[str, str, str]]:
    """(id, document key, normalised text) of every claim, in id order, read as they are used."""
    for claim_id, key, text in catalog.stream("SELECT id, COALESCE(document_key, ?), text FROM claims ORDER BY id",
                                             (NOTE_KEY,)):
        yield claim_id, key, normalise_claim_text(text)


def check_claims_current(catalog: Catalog, custody: Logged, report: Report) -> None:
    """A claim is current (listed by `claims`, a bundle's claims) exactly when the latest signed
    read of its document found it: a read marks superseded each claim of the document it did not
    find (store/claim_writes.py). A note, never superseded, is current once its entry records it."""
    last_read = custody.documents_last_read
    for claim_id, key, superseded_at in catalog.stream("SELECT id, document_key, superseded_at FROM claims ORDER BY id"):
        read_at = custody.claims_read.get(claim_id)
        if read_at is None or (key is not None and key not in last_read):
            continue  # read by no entry (check_claims names it), or by none naming its document (older archivers)
        current = key is None or read_at == last_read[key]
        report.check("claim current as read", (superseded_at is None) == current, f"claim {claim_id}", lambda: (
            f"superseded in the catalog, but the latest read of its document (custody log seq {read_at}) found it"
            if current else f"current in the catalog, but the latest read of its document (custody log seq "
            f"{last_read[key]}) did not find it"))


def check_claims_trees(catalog: Catalog, custody: Logged, report: Report) -> None:
    """Each document's claims, their texts and what they cite, as the catalog holds them, make
    the claims tree its latest read signed (so a claim read after the newest manifest is held
    too); each note cites the URLs its entries say, and no other."""
    trees = dict(claims_trees(catalog))  # one per document, each made from its claims as they are read
    unsigned = 0
    for key, signed in sorted(custody.claims_trees.items()):
        if signed is None:
            unsigned += 1
            continue
        held = trees.get(key, tree_of([]))
        report.check("claims tree", held == signed, f"document {key}",
                     lambda: f"the catalog's claims and citations make {held}, its latest read signed {signed}")
    if unsigned:
        report.not_checked.append(f"claims: {unsigned} document(s) last read before archiver signed what their claims "
                                  "cite; those claims are held to the newest manifest only")
    # A URL cited again in another spelling of the same page is one citation, kept as first written.
    for claim_id, rows in groupby(catalog.stream(
            "SELECT cl.id, ci.url_key FROM claims cl LEFT JOIN citations ci ON ci.claim_id = cl.id"
            " WHERE cl.document_key IS NULL ORDER BY cl.id"), key=itemgetter(0)):  # one note's rows at a time
        if claim_id not in custody.note_urls:
            continue  # read by no entry: check_claims names it
        held = {url_key for _, url_key in rows if url_key is not None}  # of the note, the url_keys it cites (none, too)
        logged = {note_url_key(url) for url in custody.note_urls[claim_id]}
        report.check("note citations", held == logged, f"claim {claim_id}",
                     lambda: f"cites {', '.join(sorted(held)) or 'nothing'}; its entries say {', '.join(sorted(logged))}")


def note_url_key(url: object) -> str:
    """The catalog's url_key of a URL a note entry names (as written, if it is no URL)."""
    try:
        return normalise_url(url) if isinstance(url, str) else str(url)
    except ValueError:  # a port out of range, say: never cited, so never equal to a key
        return url
