"""Memory that does not grow with the claim count: verify's checks of claims (each read as a
custody entry says, each document's claims tree, the newest manifest's claims against the
catalog) and the manifest writer stream the catalog's claims, so 4N claims cost what N do.
And the streamed manifest is byte for byte the one archiver wrote before it streamed claims.

A catalog of a claim sheet's size is built straight through the catalog's own writes (no
capture run): each document read with Catalog.record_document, captures inserted as rows."""

from __future__ import annotations

import hashlib
import json
import random
import re
import sqlite3
import tracemalloc
from pathlib import Path

from archiver import __version__
from archiver.check.citation_dates import check_citation_dates
from archiver.check.custody_log import Logged, TimedRead
from archiver.check.documents import check_claims, check_claims_current, check_claims_trees
from archiver.check.findings import Report
from archiver.check.manifests import check_manifests
from archiver.evidence.citation_changes import read_changes
from archiver.evidence.claim_tree import claim_leaves, tree_of
from archiver.evidence.long_lists import canonical_bytes
from archiver.evidence.manifest import export_manifest
from archiver.read.model import NOTE, PARAGRAPH, ROW, Citation, Claim, Document, make_claim_id
from archiver.read.urls import normalise_url
from archiver.store.collection import Collection

COLLECTION_ID = "3f1f7a52-6c1e-4b8e-9a55-0d4c2b7e9f10"


def _citation(url: str, standalone: bool = False) -> Citation:
    return Citation(url=url, normalised=normalise_url(url), standalone=standalone)


def _sheet(root: Path, key: str, rows: range, edited: int | None = None) -> Document:
    """A claim sheet of one claim a row, each citing a page of one of 50 hosts; every 7th row a
    second URL, every 97th the same words as the row before (a second occurrence)."""
    claims, seen = [], {}
    for i in rows:
        words = i - 1 if i % 97 == 0 and i > rows.start else i
        text = f"Row {words}: the ministry's figure rose {words % 13} percent" + (" (revised)" if i == edited else "")
        occurrence = seen.get(text, 0)
        seen[text] = occurrence + 1
        urls = [f"https://host{i % 50}.example/page{i % 400}"] + ([f"HTTPS://Host{i % 50}.example:443/extra{i}#x"]
                                                                     if i % 7 == 0 else [])
        claims.append(Claim(id=make_claim_id(key, text, occurrence), text=text, start=i * 80, end=i * 80 + 70, kind=ROW,
                            citations=tuple(_citation(url) for url in urls), row={"source": f"desk {i % 3}"} if i % 5 == 0
                            else None, verbatim=False))
    content = "\n".join(claim.text for claim in claims).encode()
    return Document(path=root / key, key=key, sha256=hashlib.sha256(content).hexdigest(), kind="csv", encoding="utf-8",
                    date=None, title=None, claims=tuple(claims), warnings=("row 3: no URL",) if edited else (),
                    ignored_links=(), content=content)


def _article(root: Path, key: str) -> Document:
    """A short dated article whose headline cites a URL standing alone on its line."""
    standalone = _citation("https://news.example/story", standalone=True)
    texts = ["Headline: the dam was finished", "The dam was finished in May, as https://gov.example/dam says."]
    claims = tuple(Claim(id=make_claim_id(key, text, 0), text=text, start=n * 40, end=n * 40 + len(text),
                         kind=PARAGRAPH, citations=(standalone,) + ((_citation("https://gov.example/dam"),) if n else ()))
                   for n, text in enumerate(texts))
    content = "\n\n".join(texts).encode()
    return Document(path=root / key, key=key, sha256=hashlib.sha256(content).hexdigest(), kind="article",
                    encoding="utf-8", date="2025-03-01", title="Dam", claims=claims, warnings=(), ignored_links=(),
                    content=content)


def _load_captures(collection: Collection, urls: list[str]) -> None:
    """An ok capture of each URL, with its request and response records, in one WARC file,
    inserted as rows in one transaction on the catalog's own schema (as bench/catalog.py does)."""
    rng = random.Random(7)
    captures, records, offset = [], [], 0
    for n, url in enumerate(urls):
        capture_id = f"20250302080{n:03d}-{rng.getrandbits(32):08x}"
        ids = [f"<urn:uuid:{rng.getrandbits(64):016x}>" for _ in range(2)]
        for seq, (record_id, role) in enumerate(zip(ids, ("request", "response"))):
            records.append((record_id, capture_id, seq, role, role, url, "2025-03-02T08:00:00Z", "a.warc.gz", offset,
                            300 + n, 200 + n, "sha256:" + rng.randbytes(32).hex(), "sha256:" + rng.randbytes(32).hex()))
            offset += 300 + n
        captures.append((capture_id, url, normalise_url(url), f"2025-03-02T08:{n % 60:02d}:30Z",
                         "sha256:" + rng.randbytes(32).hex(), 200 + n, ids[1], url))
    db = sqlite3.connect(collection.catalog_path, isolation_level=None)
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("BEGIN")
    for sql, rows in [
        ("INSERT INTO runs (id, started_at, finished_at, software, operator, settings) VALUES (?, ?, ?, ?, ?, ?)",
         [(RUN, "2025-03-02T08:00:00Z", "2025-03-02T09:00:00Z", "archiver/test", "t@example", "{}")]),
        ("INSERT INTO warc_files (name, warcinfo_id, opened_at, closed_at, size, sha256) VALUES (?, ?, ?, ?, ?, ?)",
         [("a.warc.gz", "<urn:uuid:0>", "2025-03-02T08:00:00Z", "2025-03-02T09:00:00Z", offset, "ab" * 32)]),
        (f"INSERT INTO captures (id, url, url_key, finished_at, payload_digest, response_length, response_record_id,"
         f" final_url, run_id, outcome, http_status, started_at, ip, redirects, warc_file) VALUES (?, ?, ?, ?, ?, ?, ?, ?,"
         f" '{RUN}', 'ok', 200, '2025-03-02T08:00:00Z', '127.0.0.1', 0, 'a.warc.gz')", captures),
        ("INSERT INTO records (record_id, capture_id, seq, warc_type, role, target_uri, warc_date, warc_file, warc_offset,"
         " length, content_length, block_digest, payload_digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", records),
    ]:
        db.executemany(sql, rows)
    db.execute("COMMIT")
    db.close()


RUN = "20250302080000-000001"
READS = (("seeds/a.csv", "2025-03-01T10:00:00Z"), ("seeds/b.csv", "2025-03-01T10:01:00Z"),
         ("seeds/b.csv", "2025-03-01T10:02:00Z"), ("seeds/dam.txt", "2025-03-01T10:03:00Z"))  # (document, time) of each read


def _collection(root: Path, claims: int) -> Collection:
    """A collection holding `claims` sheet claims (in two sheets, one read twice, edited), an
    article, two notes and captures of some cited URLs; every date fixed, so the same call
    makes the same catalog."""
    collection = Collection.init(root, name="memory", operator="desk@example")
    config = root / "archiver.toml"
    config.write_text(re.sub(r'^id = ".*"$', f'id = "{COLLECTION_ID}"', config.read_text(), count=1, flags=re.M))
    collection = Collection.open(root)
    with collection:
        catalog = collection.catalog
        half = claims // 2
        for (key, read_at), edited in zip(READS, (None, None, half + 3, None)):
            document = _article(root, key) if key.endswith(".txt") else \
                _sheet(root, key, range(0, half) if key == "seeds/a.csv" else range(half, claims), edited=edited)
            catalog.record_document(document, read_at)
        for n, text in enumerate(["The minister said X on Monday", "The report came out late"]):
            catalog.add_note(Claim(id=make_claim_id("note", text, 0), text=text, start=0, end=len(text), kind=NOTE,
                                   citations=(_citation(f"https://gov.example/note{n}"),)), f"2025-03-01T11:0{n}:00Z")
    _load_captures(collection, ["https://gov.example/dam", "https://news.example/story", "https://gov.example/note0"]
                   + [f"https://host{i % 50}.example/page{i}" for i in range(0, 400, 9)])
    return collection


def _logged(collection: Collection) -> Logged:
    """The custody log a capture run would have written of this catalog: every claim read, each
    current one by its document's latest read (seq 2), each superseded one by an earlier (seq 1)."""
    read = {claim_id: 1 if superseded_at else 2
            for claim_id, superseded_at in collection.catalog.query("SELECT id, superseded_at FROM claims")}
    notes = {row[0]: [row[1]] for row in collection.catalog.query(
        "SELECT cl.id, ci.url FROM claims cl JOIN citations ci ON ci.claim_id = cl.id WHERE cl.document_key IS NULL")}
    trees = {key: tree_of(leaves) for key, leaves in claim_leaves(collection.catalog)}
    # Each read's time, and what it changed in what claims cite, as its entry signs them.
    timed: dict[str, dict[str, TimedRead]] = {}
    for seq, (key, read_at) in enumerate(READS, 1):
        changes = {name: _items(listed) for name, listed in read_changes(collection.catalog, key, read_at).items()
                   if name != "read_at"}
        timed.setdefault(key, {})[read_at] = TimedRead(seq, changes["citations_begun"], changes["citations_dropped"])
    first_read = dict(collection.catalog.query("SELECT id, first_seen_at FROM claims WHERE document_key IS NOT NULL"))
    notes_at = {claim_id: [(at, urls)] for claim_id, urls in notes.items()
                for (at,) in collection.catalog.query("SELECT first_seen_at FROM claims WHERE id = ?", (claim_id,))}
    return Logged(claims_read=read, claims_trees=trees, documents_last_read=dict.fromkeys(trees, 2),
                  note_urls=notes, timed_reads=timed, claims_first_read=first_read, notes_at=notes_at)


def _items(listed) -> frozenset:
    """The items of a LongList, as the custody log's reader holds them."""
    return frozenset(map(tuple, json.loads(canonical_bytes({"items": listed}))["items"]))


def _peak(work) -> int:
    """The most memory Python held at once while `work` ran, beyond what it held before."""
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _costs(root: Path, claims: int) -> tuple[int, int]:
    """(peak of the manifest writer, peak of verify's claim checks beyond the manifest's own bytes,
    which its signature check needs whole) on a catalog of `claims` claims."""
    collection = _collection(root, claims)
    writing = _peak(lambda: export_manifest(collection))
    manifest = root / "manifests" / "manifest-1.json"
    with collection:
        custody = _logged(collection)
    report = Report()

    def checks() -> None:
        with collection:
            check_claims(collection.catalog, custody, report)
            check_claims_trees(collection.catalog, custody, report)
            check_claims_current(collection.catalog, custody, report)
            check_citation_dates(collection.catalog, custody, report)
            check_manifests(collection, collection.catalog, {}, {}, custody, report)
    checking = _peak(checks) - manifest.stat().st_size
    assert report.passed["claim text"] == claims + 5 and report.passed["claims tree"] == 3
    assert report.passed["claim current as read"] == claims + 5
    assert report.passed["claim first found"] == claims + 5 and report.passed["citation dates"] > claims
    assert not [f for f in report.failures if f.check in ("claim text", "claims tree", "claim current as read",
                                                          "manifest matches catalog", "claim first found",
                                                          "citation dates")]
    return writing, checking


def test_memory_of_claim_checks_and_manifest_writer_does_not_grow_with_the_claims(tmp_path):
    n = 4_000
    writing, checking = _costs(tmp_path / "n", n)
    writing_4n, checking_4n = _costs(tmp_path / "4n", 4 * n)
    # Held whole, 4N claims cost about 4× what N do (before they were streamed: the writer 4.1×, the
    # checks 3.1×); streamed, the writer the same, the checks up to the manifest reader's window
    # (a megabyte of text at a time), which N's smaller manifest does not fill (1.6×, then flat).
    assert writing_4n < 2 * writing, (writing, writing_4n)
    assert checking_4n < 2 * checking, (checking, checking_4n)


# The SHA-256 of the manifest of _collection(…, 600), `software` read as "archiver/VERSION":
# as archiver made it before it streamed claims (commit 09eb003), and must still.
MANIFEST_SHA256 = "dc9811f14ac67b3521bfcdd45f8381a2e3a5f3a31950dd7625b454d27e6e3ad3"


def test_the_streamed_manifest_is_the_one_archiver_made_before(tmp_path):
    collection = _collection(tmp_path / "c", 600)
    result = export_manifest(collection)
    data = result.path.read_bytes().replace(f'"software":"archiver/{__version__}"'.encode(),
                                            b'"software":"archiver/VERSION"')
    assert data.count(b'"software":"archiver/VERSION"') == 1
    assert hashlib.sha256(data).hexdigest() == MANIFEST_SHA256
    assert export_manifest(collection).unchanged  # and the same catalog gives the same bytes again
