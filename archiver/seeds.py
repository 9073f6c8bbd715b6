"""Documents that cite URLs: read a file into the URLs it cites.

Reading claims out of documents builds on this; for now a document is its path,
its SHA-256 and the http(s) URLs found in its text, in order of appearance.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from archiver.errors import UsageProblem

DOCUMENT_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".csv", ".jsonl")

# Stops at whitespace, quotes and angle brackets; trailing punctuation is trimmed after.
_URL = re.compile(r"""https?://[^\s<>"'`]+""", re.IGNORECASE)
_TRAILING = ".,;:!?'\"’”)]}>"


@dataclass(frozen=True)
class Document:
    path: Path
    sha256: str
    urls: tuple[str, ...]


def find_urls(text: str) -> list[str]:
    """Every http(s) URL in `text`, once each, as written minus trailing punctuation."""
    found: dict[str, None] = {}
    for match in _URL.finditer(text):
        url = match.group(0)
        while url and url[-1] in _TRAILING:
            # A closing bracket belongs to the URL when the URL opened it (Wikipedia-style links).
            if url[-1] == ")" and url.count("(") >= url.count(")"):
                break
            url = url[:-1]
        if len(url) > len("https://"):
            found.setdefault(url)
    return list(found)


def read_document(path: Path) -> Document:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageProblem(f"cannot read {path}: {exc.strerror or exc}", "check the path and its permissions") from None
    text = data.decode("utf-8", errors="replace")
    return Document(path=path, sha256=hashlib.sha256(data).hexdigest(), urls=tuple(find_urls(text)))


def is_document(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in DOCUMENT_SUFFIXES and not path.name.startswith(".")


def documents_in(folder: Path) -> list[Path]:
    """Documents under `folder`, sorted so runs are repeatable."""
    return sorted(p for p in folder.rglob("*") if is_document(p))
