"""The properties both fuzzers hold the readers of untrusted bytes to: the hypothesis tests in
tests/test_fuzz.py and the coverage-guided targets of bench/fuzz.py call these same functions,
so the two cannot drift apart. Each raises AssertionError when its property breaks."""

from __future__ import annotations

import json

from archiver.evidence.custody import parse_entry
from archiver.errors import UsageProblem
from archiver.read.decoding import decode
from archiver.read.seeds import parse_document
from archiver.read.urls import normalise_url


def check_document(data: bytes, suffix: str) -> None:
    """The reader for `suffix` takes any bytes. Its one refusal is a claim sheet without its
    columns; otherwise each claim's span lies inside the decoded text, a verbatim claim is
    exactly the text of its span, and each citation is normalised as normalise_url does it."""
    try:
        document = parse_document(data, f"doc{suffix}", "fuzz")
    except UsageProblem as exc:
        assert suffix in (".csv", ".jsonl") and "is not a claim sheet" in exc.message, exc
        return
    text = decode(data).text
    for claim in document.claims:
        assert 0 <= claim.start <= claim.end <= len(text), (claim.start, claim.end, len(text))
        if claim.verbatim:
            assert claim.text == text[claim.start:claim.end], claim
        for citation in claim.citations:
            assert citation.normalised == normalise_url(citation.url), citation


def custody_entry_of(line: bytes) -> dict | None:
    """What a custody line holds by the entry shape archiver writes, worked out without
    parse_entry: a JSON object whose seq is an integer. JSON's true and false are not integers,
    though Python's bool is an int."""
    try:
        data = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) and type(data.get("seq")) is int else None


def check_custody_line(line: bytes) -> None:
    """parse_entry never raises, and returns the entry exactly when the line holds one."""
    expected = custody_entry_of(line)
    entry = parse_entry(line)
    if expected is None:
        assert entry is None, (line, entry)
    else:
        # Compared as JSON text: a NaN read twice is two objects that are not equal.
        assert json.dumps(entry, sort_keys=True) == json.dumps(expected, sort_keys=True), (line, entry)
