"""The manifest: a canonical JSON export of the catalog (documents, claims, citations,
captures with their records and digests, and the claim↔capture links).

Canonical means the same catalog always gives the same bytes: keys sorted, no spaces,
UTF-8, arrays in id order, and a `created` time taken from the catalog, not the clock.
Each capture entry, as written, is a leaf of a Merkle tree (RFC 6962) whose root the
manifest holds (`captures_merkle_root`), so a bundle can prove a capture belongs to a signed
manifest without carrying the others; likewise each document entry, through the tree over its
claims (`documents_merkle_root`, see claim_tree.py), for the claims a bundle carries. The file wraps the content with its place in the
chain of manifests:

    {"manifest": {...}, "previous_manifest_sha256": "<hex>|null", "sequence": N}

so an older manifest cannot pass for the newest once signatures cover these bytes. The
export streams row by row: memory stays flat however large the catalog grows.
"""

from __future__ import annotations

import codecs
import filecmp
import hashlib
import json
import os
import re
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from archiver import __version__
from archiver.errors import UsageProblem
from archiver.evidence import merkle
from archiver.evidence.claim_tree import document_entries, document_leaf
from archiver.store.catalog import Catalog
from archiver.store.collection import Collection
from archiver.store.durable import DurableFile, fsync_dir

FORMAT = "archiver-manifest/1"
NEWEST = "manifest.json"  # a hard link to the newest manifest-<seq>.json
MANIFEST_NAME = re.compile(r"^manifest-(\d+)\.json$")


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_FLUSH_AT = 64 * 1024  # writes of this size cost far less CPU than of 1 MiB (see warc._HashingFile)


def canonical(value: Any) -> bytes:
    return _ENCODER.encode(value).encode("utf-8")


@dataclass(frozen=True)
class ManifestResult:
    sequence: int
    path: Path
    sha256: str
    unchanged: bool  # the catalog had not changed since this manifest was written
    checkpoint: dict | None = None  # what a new manifest's checkpoint states (see seal.py)


def _grouped(rows: Iterable[tuple], key_index: int = 0) -> Iterator[tuple[Any, list[tuple]]]:
    for key, group in groupby(rows, key=lambda row: row[key_index]):
        yield key, list(group)


def capture_entries(catalog: Catalog) -> Iterator[dict]:
    records = _grouped(catalog.stream(
        "SELECT capture_id, record_id, warc_type, role, target_uri, warc_date, warc_file, warc_offset, length,"
        " content_length, block_digest, payload_digest, truncated FROM records ORDER BY capture_id, seq"))
    pending = next(records, None)
    for row in catalog.stream(
            "SELECT id, url, url_key, final_url, outcome, http_status, error, truncated, started_at, finished_at, ip,"
            " cert_sha256, redirects, payload_digest, response_length, warc_file, revisit_of, imported_from"
            " FROM captures ORDER BY id"):
        capture = dict(zip(("id", "url", "url_key", "final_url", "outcome", "http_status", "error", "truncated",
                            "started_at", "finished_at", "ip", "cert_sha256", "redirects", "payload_digest",
                            "response_length", "warc_file", "revisit_of", "imported_from"), row))
        capture["records"] = []
        if pending is not None and pending[0] == capture["id"]:
            capture["records"] = [dict(zip(("id", "type", "role", "target_uri", "date", "file", "offset", "length",
                                            "content_length", "block_digest", "payload_digest", "truncated"), r[1:]))
                                  for r in pending[1]]
            pending = next(records, None)
        yield capture


def claim_entries(catalog: Catalog) -> Iterator[dict]:
    citations = _grouped(catalog.stream("SELECT claim_id, url, url_key, standalone FROM citations ORDER BY claim_id, url_key"))
    pending = next(citations, None)
    for row in catalog.stream("SELECT id, document_key, text, text_start, text_end, kind, extra, first_seen_at, superseded_at,"
                             " verbatim FROM claims ORDER BY id"):
        claim = dict(zip(("id", "document", "text", "start", "end", "kind", "extra", "first_seen_at", "superseded_at",
                          "verbatim"), row))
        claim["extra"] = json.loads(claim["extra"]) if claim["extra"] else None
        claim["verbatim"] = bool(claim["verbatim"])
        claim["citations"] = []
        if pending is not None and pending[0] == claim["id"]:
            claim["citations"] = [{"url": url, "url_key": key, "standalone": bool(standalone)}
                                  for _, url, key, standalone in pending[1]]
            pending = next(citations, None)
        yield claim


def _links(catalog: Catalog) -> Iterator[dict]:
    for claim_id, capture_id in catalog.stream(
            "SELECT DISTINCT ci.claim_id, k.id FROM citations ci JOIN captures k ON k.url_key = ci.url_key"
            " ORDER BY ci.claim_id, k.id"):
        yield {"claim": claim_id, "capture": capture_id}


def warc_file_entries(catalog: Catalog) -> Iterator[dict]:
    for name, sha256, size, opened_at, closed_at in catalog.stream(
            "SELECT name, sha256, size, opened_at, closed_at FROM warc_files ORDER BY name"):
        yield {"name": name, "sha256": sha256, "size": size, "opened_at": opened_at, "closed_at": closed_at}


def _created(catalog: Catalog) -> str | None:
    """The newest moment the catalog records: the manifest describes the catalog as of then."""
    return catalog.query(
        "SELECT MAX(t) FROM (SELECT MAX(finished_at) AS t FROM captures UNION ALL SELECT MAX(read_at) FROM document_versions"
        " UNION ALL SELECT MAX(first_seen_at) FROM claims UNION ALL SELECT MAX(superseded_at) FROM claims"
        " UNION ALL SELECT MAX(closed_at) FROM warc_files) AS newest").fetchone()[0]


class _Leaves:
    """The Merkle tree heads of a manifest's capture and document entries, in order: each leaf
    hashed in as it is written, none kept (their count grows with the catalog)."""

    def __init__(self) -> None:
        self.captures = merkle.Root()
        self.documents = merkle.Root()

    def add(self, section: str, entry: Any, raw: bytes) -> None:
        if section == "captures":
            self.captures.add(merkle.leaf_hash(raw))
        elif section == "documents" and isinstance(entry, dict) and "claims_tree" in entry:  # not in older manifests
            self.documents.add(merkle.leaf_hash(document_leaf(entry)))


class _HashingWriter:
    """Hashes what passes through; buffers 64 KiB so a row costs no write call of its own."""

    def __init__(self, out: DurableFile | "_HashingWriter") -> None:
        self.out = out
        self.sha256 = hashlib.sha256()
        self._buffer = bytearray()

    def write(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) >= _FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        self.out.write(self._buffer)
        self.sha256.update(self._buffer)
        self._buffer.clear()
        if isinstance(self.out, _HashingWriter):
            self.out.flush()


def _write_content(out: _HashingWriter, collection: Collection, catalog: Catalog) -> "_Leaves":
    """The content object, keys in sorted order, each array streamed element by element.
    The capture entries are the leaves of a Merkle tree whose root follows them, and the
    document entries (through claim_tree.document_leaf) of another; their leaf hashes are returned."""
    config = collection.config
    leaves = _Leaves()
    sections: list[tuple[str, Any]] = [
        ("captures", capture_entries(catalog)),
        ("captures_merkle_root", leaves.captures.hex),
        ("claims", claim_entries(catalog)),
        ("collection", {"id": config.id, "name": config.name, "operator": config.operator}),
        ("created", _created(catalog)),
        ("documents", document_entries(catalog)),
        ("documents_merkle_root", leaves.documents.hex),
        ("format", FORMAT),
        ("links", _links(catalog)),
        ("software", f"archiver/{__version__}"),
        ("warc_files", warc_file_entries(catalog)),
    ]
    out.write(b"{")
    for index, (name, value) in enumerate(sections):
        out.write((b"," if index else b"") + canonical(name) + b":")
        if isinstance(value, Iterator):
            out.write(b"[")
            for position, item in enumerate(value):
                entry = canonical(item)
                leaves.add(name, item, entry)
                out.write((b"," if position else b"") + entry)
            out.write(b"]")
        else:
            out.write(canonical(value() if callable(value) else value))
    out.write(b"}")
    return leaves


def export_manifest(collection: Collection, reseal: bool = False) -> ManifestResult:
    """Write `manifests/manifest-<seq>.json` and point `manifests/manifest.json` at it; when the
    catalog is unchanged since the newest manifest, keep that one and say so (but to `reseal` it).

    The catalog listing the new manifest is the moment it exists: before, an interrupted
    export leaves only a file no one lists (doctor sets it aside, the next export replaces
    it); after, `manifest.json` is pointed at it, here or by the next export."""
    with collection:
        catalog = collection.catalog
        folder = collection.root / "manifests"
        latest = catalog.latest_manifest()
        sequence = latest[0] + 1 if latest else 1
        tmp = folder / f".manifest-{sequence}.json.{os.getpid()}.tmp"
        tmp.unlink(missing_ok=True)
        try:
            with DurableFile(tmp) as raw:
                whole = _HashingWriter(raw)
                whole.write(b'{"manifest":')
                content = _HashingWriter(whole)
                leaves = _write_content(content, collection, catalog)
                content.flush()
                content_sha256 = content.sha256.hexdigest()
                if latest and latest[2] == content_sha256 and not reseal:
                    _require_file(folder / latest[3], latest[0])
                    point_newest_at(folder / latest[3])
                    return ManifestResult(latest[0], folder / latest[3], latest[1], unchanged=True)
                whole.write(b',"previous_manifest_sha256":' + canonical(latest[1] if latest else None)
                            + b',"sequence":' + canonical(sequence) + b"}")
                whole.flush()
                raw.sync()
            final = folder / f"manifest-{sequence}.json"
            os.replace(tmp, final)
            fsync_dir(folder)
        finally:
            tmp.unlink(missing_ok=True)
        sha256 = whole.sha256.hexdigest()
        catalog.record_manifest(sequence, sha256, content_sha256, _created(catalog) or "", final.name)
        point_newest_at(final)
        checkpoint = _checkpoint(collection.config.id, final.name, sha256, sequence, latest[1] if latest else None, leaves)
        return ManifestResult(sequence, final, sha256, unchanged=False, checkpoint=checkpoint)


def _checkpoint(collection_id: str, name: str, sha256: str, sequence: int, previous: str | None,
                leaves: _Leaves) -> dict:
    return {"collection": collection_id, "manifest": name, "manifest_sha256": sha256, "sequence": sequence,
            "previous_manifest_sha256": previous, "captures": leaves.captures.size,
            "captures_merkle_root": leaves.captures.hex(), "documents": leaves.documents.size,
            "documents_merkle_root": leaves.documents.hex()}


def checkpoint_of(collection_id: str, name: str, data: bytes) -> dict:
    """The checkpoint of the manifest `name` already written (`data`: its bytes), its capture
    and document entries read back (for a manifest whose export stopped before its checkpoint
    was written)."""
    leaves = _Leaves()
    fields = read_manifest(data, on_capture=lambda entry, raw: leaves.add("captures", entry, raw),
                           on_document=lambda entry, raw: leaves.add("documents", entry, raw))
    return _checkpoint(collection_id, name, hashlib.sha256(data).hexdigest(), fields["sequence"],
                       fields["previous_manifest_sha256"], leaves)


# -- reading a manifest back --------------------------------------------------------------

_DECODER = json.JSONDecoder()
EntryHandler = Callable[[Any, bytes], None]


def read_manifest(data: bytes, on_capture: EntryHandler | None = None, on_claim: EntryHandler | None = None,
                  on_document: EntryHandler | None = None, on_warc_file: EntryHandler | None = None) -> dict:
    """One pass over a manifest laid out as archiver writes it, holding only about a megabyte
    of its text and one array element parsed at a time: calls `on_capture(entry, raw)` for
    each capture entry (`raw`: its bytes exactly as they stand, a Merkle leaf) and `on_claim`
    and `on_document` and `on_warc_file` likewise, and returns the manifest's other fields, with `content` holding the content's
    non-array fields and `counts` the length of each of its arrays. Raises ValueError for
    anything else (altered, truncated, or not canonical)."""
    text = _Window(data)
    handlers = {"captures": on_capture, "claims": on_claim, "documents": on_document, "warc_files": on_warc_file}
    text.expect('{"manifest":{')
    content: dict[str, Any] = {}
    counts: dict[str, int] = {}
    while True:
        name, _ = text.value()
        if not isinstance(name, str) or name in content or name in counts:
            raise ValueError("a manifest's content has one field of each name")
        text.expect(":")
        if text.startswith("["):
            counts[name] = _each_element(text, handlers.get(name))
        else:
            content[name], _ = text.value()
        if text.startswith("}"):
            break
        text.expect(",")
    text.expect("},")
    tail = "{" + text.rest()
    rest, end = _DECODER.raw_decode(tail)
    if end != len(tail) or not isinstance(rest, dict) or set(rest) != {"previous_manifest_sha256", "sequence"}:
        raise ValueError("a manifest ends with previous_manifest_sha256 and sequence")
    return {**rest, "content": content, "counts": counts}


def _each_element(text: "_Window", handler: EntryHandler | None) -> int:
    text.expect("[")
    if text.startswith("]"):
        text.expect("]")
        return 0
    count = 0
    while True:
        value, raw = text.value()
        if handler is not None:
            handler(value, raw.encode("utf-8"))
        count += 1
        if text.startswith("]"):
            text.expect("]")
            return count
        text.expect(",")


class _Window:
    """A manifest's text decoded a megabyte at a time, dropping what the reader has passed."""

    STEP = 1 << 20

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._read = 0
        self._text = ""
        self._at = 0

    def _more(self, step: int | None = None) -> bool:
        if self._read >= len(self._data):
            return False
        chunk = self._data[self._read:self._read + (step or self.STEP)]
        self._read += len(chunk)
        self._text = self._text[self._at:] + self._decoder.decode(chunk, final=self._read >= len(self._data))
        self._at = 0
        return True

    def startswith(self, token: str) -> bool:
        while len(self._text) - self._at < len(token) and self._more():
            pass
        return self._text.startswith(token, self._at)

    def expect(self, token: str) -> None:
        if not self.startswith(token):
            raise ValueError(f"expected {token!r}")
        self._at += len(token)

    def value(self) -> tuple[Any, str]:
        """The JSON value at the cursor and its text; a value cut by the window's end (a
        string, a literal, even a number's last digits) is read again with more text."""
        step = self.STEP
        while True:
            try:
                value, end = _DECODER.raw_decode(self._text, self._at)
            except RecursionError:
                raise ValueError("nested too deeply to be a manifest's value") from None
            except ValueError:
                if self._more(step):
                    step *= 2  # each retry reads twice as much: a bad value costs O(size) to find, not O(size²)
                    continue
                raise
            if end == len(self._text) and self._more(step):
                step *= 2
                continue
            raw, self._at = self._text[self._at:end], end
            return value, raw

    def rest(self) -> str:
        while self._more():
            pass
        return self._text[self._at:]


def points_at(manifest: Path) -> bool:
    """Whether manifest.json is `manifest`: a hard link to it, or (in a copy of the collection
    that did not keep links) the same bytes."""
    newest = manifest.with_name(NEWEST)
    try:
        return os.path.samefile(newest, manifest) or filecmp.cmp(newest, manifest, shallow=False)
    except OSError:
        return False


def _require_file(manifest: Path, sequence: int) -> None:
    """The newest manifest, still what the catalog holds, must be there to be sealed and read."""
    if not manifest.exists():
        raise UsageProblem(f"manifest {sequence} is listed in the catalog, but neither this folder nor, on a shared "
                           f"collection, its bucket holds manifests/{manifest.name}",
                           "on a shared collection, run `archiver doctor --fix` where it was exported; "
                           "else restore the file from a backup")


def point_newest_at(manifest: Path) -> None:
    """Make manifest.json a hard link to `manifest`, atomically."""
    if points_at(manifest):
        return
    pointer = manifest.with_name(f".manifest.json.{os.getpid()}.tmp")
    pointer.unlink(missing_ok=True)
    try:
        os.link(manifest, pointer)
        os.replace(pointer, manifest.with_name(NEWEST))
    finally:
        pointer.unlink(missing_ok=True)
    fsync_dir(manifest.parent)
