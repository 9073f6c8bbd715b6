"""Documents that cite URLs: files read into claims, each with the URLs offered as its evidence.

The public entry point for reading documents. `parse_document` is pure (bytes in, Document
out); `read_document` adds the file read. The formats and rules are in docs/claims.md."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable

from archiver.errors import ArchiverError, StorageProblem, UsageProblem
from archiver.read.citations import LinkSorter, build_claims
from archiver.read.decoding import decode, looks_binary
from archiver.read.html import read_html
from archiver.read.model import NOTE, NOTE_KEY, Citation, Claim, Document, make_claim_id
from archiver.read.reading import Reading
from archiver.read.sheets import read_csv, read_jsonl
from archiver.read.text import read_markdown, read_plain_text

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
    if looks_binary(decoded.text):
        raise NotADocument(f"{name} is not a document (it holds binary data); skipped")
    reader = _READERS.get(Path(name).suffix.lower(), _READERS[".txt"])
    reading = reader(decoded.text, name)
    sorter = LinkSorter(reading.unusable_links)
    claims, standalone = build_claims(key, reading, sorter)
    warnings = decoded.warnings + reading.warnings + sorter.warnings()
    if not claims:
        warnings.append("no claims found")
    if not standalone and not any(claim.citations for claim in claims):
        warnings.append("no URLs cited")
    return Document(
        path=Path(name), key=key, sha256=hashlib.sha256(data).hexdigest(), kind=reading.kind,
        encoding=decoded.encoding, date=reading.date, title=reading.title, claims=tuple(claims),
        warnings=tuple(warnings), ignored_links=tuple(sorter.ignored), standalone=tuple(standalone),
        content=data)


def read_document(path: Path, key: str | None = None) -> Document:
    """The document at `path`; `key` (default: the path as given, in posix form) names it in the
    catalog and seeds its claim ids."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableDocument(path, exc) from None
    return parse_document(data, path_text(path), path_text(path.as_posix()) if key is None else key)


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
        raise UsageProblem(f"cannot cite {url}: {problem}", "give an http:// or https:// URL")
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
