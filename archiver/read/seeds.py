"""Documents that cite URLs: files read into claims, each with the URLs offered as its evidence.

The public entry point for reading documents. `parse_document` is pure (bytes in, Document
out); `read_document` adds the file read. The formats and rules are in docs/claims.md."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator, Sequence

from archiver.errors import ArchiverError, StorageProblem, UsageProblem
from archiver.read.citations import ClaimMaker, LinkSorter, build_claims
from archiver.read.decoding import SAMPLE as BINARY_SAMPLE, Sniffer, decode, looks_binary
from archiver.read.html import read_html
from archiver.read.model import NOTE, NOTE_KEY, Citation, Claim, Document, make_claim_id
from archiver.read.reading import Reading
from archiver.read.sheets import SHEET_SUFFIXES, csv_passages, jsonl_passages, read_csv, read_jsonl
from archiver.read.spool import ClaimSpool
from archiver.read.text import read_markdown, read_plain_text
from archiver.read.url_spool import UrlSpool

__all__ = ["Citation", "Claim", "Document", "DOCUMENT_SUFFIXES", "NotADocument", "documents_in", "is_document",
           "make_claim_id", "note_claim", "parse_document", "path_text", "read_document", "UnreadableDocument"]

# Suffix → reader. Any other file named explicitly is read as plain text.
_READERS: dict[str, Callable[[str, str], Reading]] = {
    ".txt": lambda text, name: read_plain_text(text),
    ".md": lambda text, name: read_markdown(text),
    ".markdown": lambda text, name: read_markdown(text),
    ".html": lambda text, name: read_html(text),
    ".htm": lambda text, name: read_html(text),
    ".csv": read_csv,
    ".tsv": read_csv,
    ".jsonl": read_jsonl,
}
DOCUMENT_SUFFIXES = tuple(_READERS)


class UnreadableDocument(ArchiverError):
    """A document that could not be read: gone (exit code 2, as a wrong path), or refused by the
    machine (no permission, an I/O error: exit code 3). Named on its own, it stops the run; found
    in a folder, it is skipped with its reason, so that one such file stops no other's reading."""

    def __init__(self, path: Path, error: OSError) -> None:
        super().__init__(f"cannot read {path_text(path)}: {error.strerror or error}", "check the path and its permissions")
        self.exit_code = UsageProblem.exit_code if isinstance(error, FileNotFoundError) else StorageProblem.exit_code


class NotADocument(Exception):
    """A file of binary data (an image, a PDF, an archive): no claims to read. Its message is
    the warning to show; the file is skipped, never a failure."""


def parse_document(data: bytes, name: str, key: str | None = None) -> Document:
    """Read `data`, the bytes of the file called `name` (its suffix picks the format), into a
    Document whose claim ids derive from `key` (default: `name`). No I/O. Raises UsageProblem
    only for a claim sheet without `claim` and `url` columns, NotADocument for binary data;
    anything else odd is a warning."""
    key = name if key is None else key
    decoded = decode(data)
    _refuse_binary(decoded.text, name)
    reader = _READERS.get(Path(name).suffix.lower(), _READERS[".txt"])
    reading = reader(decoded.text, name)
    sorter = LinkSorter(reading.unusable_links)
    claims, standalone, repeated = build_claims(key, reading, sorter)
    return _document(name, key, hashlib.sha256(data).hexdigest(), decoded.encoding, reading, decoded.warnings,
                     sorter, tuple(claims), any(claim.citations for claim in claims), standalone, repeated=repeated,
                     content=data)


def read_document(path: Path, key: str | None = None, progress: Callable[[int, int], None] | None = None) -> Document:
    """The document at `path`; `key` (default: the path as given, in posix form) names it in the
    catalog and seeds its claim ids. A claim sheet is read a chunk and a row at a time (see
    `_read_sheet`), telling `progress` (bytes read, of how many) as it goes."""
    key = path_text(path.as_posix()) if key is None else key
    try:
        if path.suffix.lower() in SHEET_SUFFIXES:
            return _read_sheet(path, path_text(path), key, progress)
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableDocument(path, exc) from None
    return parse_document(data, path_text(path), key)


_CHUNK = 1 << 20
_SPOOLED_FROM = 1 << 20  # bytes of a sheet from which its bytes and claims wait on disk to be recorded


def _read_sheet(path: Path, name: str, key: str, progress: Callable[[int, int], None] | None) -> Document:
    """As `parse_document` reads a claim sheet, with no more of it in memory than a chunk and a
    row: its bytes are hashed and copied to an unnamed temporary file as they pass (the copy the
    collection keeps is made from it), then read back as text, one row at a time, into claims
    kept on disk (ClaimSpool); the distinct URLs they cite are kept on disk too (UrlSpool)."""
    copy = tempfile.TemporaryFile()
    digest, sniffer = hashlib.sha256(), Sniffer()
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
            copy.write(chunk)
            sniffer.feed(chunk)
    total = copy.tell()
    copy.seek(0)
    encoding, encoding_warnings = sniffer.result(copy.read)
    copy.seek(0)
    text = io.TextIOWrapper(copy, encoding=encoding, errors="replace", newline="")
    _refuse_binary(text.read(BINARY_SAMPLE), name)
    text.seek(0)
    warnings: list[str] = []
    rows = (jsonl_passages if path.suffix.lower() == ".jsonl" else csv_passages)(
        _telling(text, copy, total, progress), name, warnings)
    sorter = LinkSorter([])
    maker, claims, cited = ClaimMaker(key, sorter, []), ClaimSpool(), False
    # A sheet read from a file has no standalone URLs: its URLs are its claims' citations, in order.
    urls = UrlSpool() if total >= _SPOOLED_FROM else None
    for passage in rows:
        claim = maker.claim(passage)
        cited = cited or bool(claim.citations)
        claims.append(claim)
        if urls is not None:
            for citation in claim.citations:
                urls.add(citation.url, citation.normalised)
    text.detach()  # the copy stays open: the document's bytes, kept by the collection once recorded
    reading = Reading(kind="jsonl" if path.suffix.lower() == ".jsonl" else "csv", warnings=warnings)
    if total < _SPOOLED_FROM:  # held in memory, as small as it is: a folder of many holds no file open each
        with copy:
            copy.seek(0)
            return _document(name, key, digest.hexdigest(), encoding, reading, encoding_warnings, sorter,
                             tuple(claims), cited, maker.standalone, repeated=frozenset(maker.repeated),
                             content=copy.read())
    return _document(name, key, digest.hexdigest(), encoding, reading, encoding_warnings, sorter, claims, cited,
                     maker.standalone, repeated=frozenset(maker.repeated), spooled=copy, cited_urls=urls)


def _telling(lines: Iterable[str], copy: BinaryIO, total: int,
             progress: Callable[[int, int], None] | None) -> Iterator[str]:
    """`lines`, telling `progress` every few thousand of them how far into the file they are."""
    for number, line in enumerate(lines):
        if progress is not None and number % 4096 == 0:
            progress(copy.tell(), total)
        yield line
    if progress is not None:
        progress(total, total)


def _refuse_binary(text: str, name: str) -> None:
    if looks_binary(text):
        raise NotADocument(f"{name} is not a document (it holds binary data); skipped")


def _document(name: str, key: str, sha256: str, encoding: str, reading: Reading, encoding_warnings: list[str],
              sorter: LinkSorter, claims: Sequence[Claim], cited: bool, standalone: list[Citation],
              **content: Any) -> Document:
    warnings = encoding_warnings + reading.warnings + sorter.warnings()
    if not claims:
        warnings.append("no claims found")
    if not standalone and not cited:
        warnings.append("no URLs cited")
    return Document(
        path=Path(name), key=key, sha256=sha256, kind=reading.kind, encoding=encoding, date=reading.date,
        title=reading.title, claims=claims, warnings=tuple(warnings), ignored_links=tuple(sorter.ignored),
        standalone=tuple(standalone), **content)


def path_text(path: Path | str) -> str:
    """A path as text every store takes: the bytes of a file name that are not UTF-8 (which
    Python keeps as lone surrogates, and no catalog or JSON accepts) written as \\xNN. The same
    name always gives the same text, so its document keeps its key and claim ids."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def note_claim(text: str, urls: list[str]) -> Claim:
    """A one-off claim typed on the command line (`archiver cite "CLAIM" URL...`): kind "note",
    its id derived from the key "note" and its text, citing `urls` (duplicates once)."""
    if not text.strip():
        raise UsageProblem("the claim has no text", "give the claim's words in quotes before its URLs")
    urls = [url.strip() for url in urls]
    if joined := next((url for url in urls if len(url.split()) > 1), None):  # two URLs pasted as one argument
        raise UsageProblem(f"cannot cite {joined!r}: a URL holds no spaces", "give each URL as an argument of its own")
    sorter = LinkSorter([])
    citations = sorter.cite(urls, standalone=False)
    if sorter.ignored:
        url, problem = next(iter(sorter.ignored.items()))
        raise UsageProblem(f"cannot cite {url}: {problem}")  # each problem says how to mend it
    if not citations:
        raise UsageProblem("the claim cites no URL", "give at least one http:// or https:// URL after the claim")
    return Claim(id=make_claim_id(NOTE_KEY, text, 0), text=text, start=0, end=len(text), kind=NOTE,
                 citations=tuple(citations))


def is_document(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in DOCUMENT_SUFFIXES and not path.name.startswith(".")


def documents_in(folder: Path) -> list[Path]:
    """Documents under `folder`, sorted so runs are repeatable; none inside a hidden folder
    (.git, .venv: a tool's files, not a writer's)."""
    return sorted(p for p in folder.rglob("*")
                  if is_document(p) and not any(part.startswith(".") for part in p.relative_to(folder).parts))
