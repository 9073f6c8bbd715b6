"""The entries of the newest manifest the custody log signed against the catalog: each
capture, claim, document and WARC file it lists must still be, field by field, the entry the
manifest's writer (evidence/manifest.py) makes of the catalog now, but for the changes the
custody log explains since the manifest was signed:
- a claim read again since (its document read again, the same note typed again): what that
  read wrote of it (store/claim_writes.py): its text as spelt, span, row, citations, currency;
- a claim of a document read again since, which that read did not find: superseded (that a
  claim is current exactly when its document's latest read lists it is check_claims_current's);
- a document read again since: what that read found, its versions read before kept as they were;
- a WARC file open when the manifest was made: closed since (its size and SHA-256 then are
  held to its close in the custody log), or forgotten, as an interrupted run's empty file is.
What was added since is in no manifest yet. The links are made of the claims' citations and
the captures' URLs, both compared here."""

from __future__ import annotations

import json
from typing import Any, Callable, Iterator

from archiver.check.custody_log import Logged
from archiver.check.findings import Report
from archiver.evidence.claim_tree import document_entries
from archiver.evidence.manifest import capture_entries, claim_entries, warc_file_entries
from archiver.store.catalog import Catalog

CHECK = "manifest matches catalog"
# What reading a claim again writes of it (store/claim_writes.py: upsert_claims, and supersede_held).
_READ_AGAIN = frozenset({"text", "start", "end", "extra", "verbatim", "superseded_at", "citations"})
_CLOSED = frozenset({"closed_at", "size", "sha256"})  # what closing a file writes (Catalog.file_closed)
_ABSENT = object()  # a field the catalog's entry does not have


class ManifestEntries:
    """read_manifest's handlers for the newest manifest's captures, claims, documents and WARC
    files: each entry compared as it is read, with the catalog's entry made alongside (both in
    key order), so that neither is ever held whole."""

    def __init__(self, catalog: Catalog, where: str, custody: Logged, sequence: int, report: Report) -> None:
        self._where = where
        self._report = report
        self._custody = custody
        self._signed_at = custody.manifests.get(sequence, {}).get("seq", 0)  # the custody entry signing it
        self._captures = _Walk(lambda: capture_entries(catalog), "id")
        self._claims = _Walk(lambda: claim_entries(catalog), "id")
        self._documents = _Walk(lambda: document_entries(catalog), "key")
        self._warc_files = _Walk(lambda: warc_file_entries(catalog), "name")

    def capture(self, listed: Any, raw: bytes) -> None:
        self._compare("capture", listed, self._captures, lambda held: self._capture_may_change(listed, held))

    def claim(self, listed: Any, raw: bytes) -> None:
        self._compare("claim", listed, self._claims, lambda held: self._claim_may_change(listed))

    def document(self, listed: Any, raw: bytes) -> None:
        self._compare("document", listed, self._documents, lambda held: self._document_may_change(listed, held))

    def warc_file(self, listed: Any, raw: bytes) -> None:
        open_then = isinstance(listed, dict) and listed.get("closed_at") is None
        self._compare("WARC file", listed, self._warc_files, lambda held: _CLOSED if open_then else frozenset(),
                      may_be_gone=open_then)

    def _capture_may_change(self, listed: dict, held: dict) -> frozenset:
        """An imported revisit listed without its original may have been given it since, by an
        import whose signed entry names the original the catalog has."""
        seq, holder = self._custody.revisits_resolved.get(listed.get("id"), (0, None))
        resolved = listed.get("revisit_of") is None and seq > self._signed_at and holder == held.get("revisit_of")
        return frozenset({"revisit_of"}) if resolved else frozenset()

    def _read_since(self, last_reads: dict[str, int], key: Any) -> bool:
        """Whether `key` (a claim id, a document key) was read after the manifest was signed."""
        return isinstance(key, str) and last_reads.get(key, 0) > self._signed_at

    def _claim_may_change(self, listed: dict) -> frozenset:
        if self._read_since(self._custody.claims_read, listed["id"]):
            return _READ_AGAIN
        if self._read_since(self._custody.documents_last_read, listed.get("document")):
            return frozenset({"superseded_at"})  # gone from its document as read again
        return frozenset()

    def _document_may_change(self, listed: dict, held: dict) -> frozenset:
        if not self._read_since(self._custody.documents_last_read, listed["key"]):
            return frozenset()
        read_again = frozenset(listed) - {"key", "versions"}
        return read_again | {"versions"} if _versions_kept(listed.get("versions"), held["versions"]) else read_again

    def _compare(self, kind: str, listed: Any, walk: "_Walk", may_change: Callable[[dict], frozenset],
                 may_be_gone: bool = False) -> None:
        listed = listed if isinstance(listed, dict) else {}
        key = listed.get(walk.key)
        held = walk.of(key)
        def where() -> str:  # formatted only for a failure: most entries pass
            return f"{self._where} {kind} {key}"
        if held is None:
            self._report.check(CHECK, may_be_gone and not walk.behind, where,
                               "listed out of order: not a manifest as archiver writes one" if walk.behind
                               else f"the catalog no longer holds this {kind}")
            return
        if listed == held:
            self._report.count_passed(CHECK)
            return
        allowed = may_change(held)
        differing = [name for name in listed if name not in allowed and listed[name] != held.get(name, _ABSENT)]
        self._report.check(CHECK, not differing, where, lambda: "; ".join(
            difference for name in differing for difference in _differences(name, listed[name], held.get(name, _ABSENT))))


def _versions_kept(listed: Any, held: list[dict]) -> bool:
    """Each document version the manifest lists is still held as it was (one read before copies
    were kept may have a copy, and so a size, since)."""
    sizes = {(version["sha256"], version["read_at"]): version["size"] for version in held}
    return isinstance(listed, list) and all(
        isinstance(version, dict) and isinstance(version.get("sha256"), str) and isinstance(version.get("read_at"), str)
        and (version["sha256"], version["read_at"]) in sizes
        and version.get("size") in (None, sizes[version["sha256"], version["read_at"]]) for version in listed)


def _differences(name: str, listed: Any, held: Any) -> Iterator[str]:
    """Each place where the manifest's value `listed` of field `name` and the catalog's `held`
    differ, named by its path in the entry (records[<id>].truncated)."""
    if isinstance(listed, dict) and isinstance(held, dict):
        for key in listed:  # a field written only by a later archiver is in the catalog's entry alone
            if listed[key] != held.get(key, _ABSENT):
                yield from _differences(f"{name}.{key}", listed[key], held.get(key, _ABSENT))
    elif isinstance(listed, list) and isinstance(held, list) and len(listed) == len(held):
        for index, (one, other) in enumerate(zip(listed, held)):
            if one != other:
                yield from _differences(f"{name}[{_label(one, index)}]", one, other)
    else:
        yield f"{name}: the manifest lists {_shown(listed)}, the catalog has {_shown(held)}"


def _label(element: Any, index: int) -> Any:
    """What tells a list's element from the others: a record's id, a citation's URL, a version's SHA-256."""
    return next((element[name] for name in ("id", "url", "sha256") if isinstance(element, dict) and name in element),
                index)


def _shown(value: Any, at_most: int = 120) -> str:
    if value is _ABSENT:
        return "nothing"
    shown = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return shown if len(shown) <= at_most else shown[:at_most] + "…"


class _Walk:
    """The catalog's entries of one section of the manifest, made by its writer in the order
    a manifest lists them (by `key`), asked in that order: each made once, as it is asked."""

    def __init__(self, entries: Callable[[], Iterator[dict]], key: str) -> None:
        self.key = key
        self.behind = False  # the last key asked was not after the one before (an altered manifest)
        self._make = entries
        self._entries: Iterator[dict] | None = None  # its queries start when the section is first read
        self._entry: dict | None = None
        self._asked: str | None = None

    def of(self, wanted: Any) -> dict | None:
        """The catalog's entry keyed `wanted`; None if it holds none, or none is to be found
        where a manifest in key order asks for it."""
        if not isinstance(wanted, str):  # no key archiver writes: nothing in the catalog is it
            return None
        self.behind = self._asked is not None and wanted <= self._asked
        self._asked = max(wanted, self._asked or wanted)
        if self._entries is None:
            self._entries = self._make()
            self._entry = next(self._entries, None)
        # An entry whose key is no text (a catalog edited by hand) is no key a manifest names, and is passed.
        while self._entry is not None and (not isinstance(self._entry[self.key], str) or self._entry[self.key] < wanted):
            self._entry = next(self._entries, None)
        if self.behind or self._entry is None or self._entry[self.key] != wanted:
            return None
        return self._entry
