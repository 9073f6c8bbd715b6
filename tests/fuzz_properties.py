"""The properties both fuzzers hold the readers of untrusted bytes to: the hypothesis tests in
tests/test_fuzz.py and the coverage-guided targets of bench/fuzz.py call these same functions,
so the two cannot drift apart. Each raises AssertionError when its property breaks."""

from __future__ import annotations

import json
import re

from archiver.evidence.custody import parse_entry
from archiver.errors import UsageProblem
from archiver.read.decoding import decode
from archiver.read.seeds import NotADocument, parse_document
from archiver.read.urls import normalise_url


def check_document(data: bytes, suffix: str) -> None:
    """The reader for `suffix` takes any bytes. Its one refusal is a claim sheet without its
    columns, its one skip binary data (check_skip); otherwise each claim's span lies inside the decoded text, a verbatim claim is
    exactly the text of its span, and each citation is normalised as normalise_url does it."""
    try:
        document = parse_document(data, f"doc{suffix}", "fuzz")
    except UsageProblem as exc:
        assert suffix in (".csv", ".tsv", ".jsonl") and "is not a claim sheet" in exc.message, exc
        return
    except NotADocument as skipped:
        check_skip(skipped, data, f"doc{suffix}")
        return
    text = decode(data).text
    for claim in document.claims:
        assert 0 <= claim.start <= claim.end <= len(text), (claim.start, claim.end, len(text))
        if claim.verbatim:  # its line ends read as \n
            assert claim.text == re.sub(r"\r\n?", "\n", text[claim.start:claim.end]), claim
        for citation in claim.citations:
            assert citation.normalised == normalise_url(citation.url), citation


def check_skip(skipped: NotADocument, data: bytes, name: str) -> None:
    """The one skip docs/claims.md allows: binary data (a NUL, or over 1 in 100 characters C0
    controls other than whitespace) is not a document, skipped with a warning naming the file."""
    assert str(skipped) == f"{name} is not a document (it holds binary data); skipped", skipped
    text = decode(data).text[:1 << 16]
    controls = sum((char < " " and char not in "\t\n\r\x0b\x0c\x1b") or char == "\x7f" for char in text)
    assert "\x00" in text or controls * 100 > len(text), data[:200]


def custody_entry_of(line: bytes) -> dict | None:
    """What a custody line holds by the entry shape archiver writes, worked out without
    parse_entry: a JSON object whose seq is an integer (JSON's true and false are not integers,
    though Python's bool is an int), whose time, event, key and sig, where it has them, are
    strings, its subject an object and its prev a string or null."""
    try:
        data = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or type(data.get("seq")) is not int:
        return None
    strings = all(isinstance(data[name], str) for name in ("time", "event", "key", "sig") if name in data)
    subject = "subject" not in data or isinstance(data["subject"], dict)
    prev = "prev" not in data or data["prev"] is None or isinstance(data["prev"], str)
    return data if strings and subject and prev else None


def check_custody_line(line: bytes) -> None:
    """parse_entry never raises, and returns the entry exactly when the line holds one."""
    expected = custody_entry_of(line)
    entry = parse_entry(line)
    if expected is None:
        assert entry is None, (line, entry)
    else:
        # Compared as JSON text: a NaN read twice is two objects that are not equal.
        assert json.dumps(entry, sort_keys=True) == json.dumps(expected, sort_keys=True), (line, entry)
