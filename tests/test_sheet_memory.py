"""A claim sheet is read a chunk and a row at a time: memory bounded well below the sheet's size,
and the same claims, with the same ids, as when it was read whole."""

from __future__ import annotations

import hashlib
import json
import tracemalloc
from pathlib import Path

from archiver.read.seeds import read_document


def _sheet(path: Path, rows: int) -> Path:
    """A deterministic sheet: quoted claims with commas, one over two lines, repeated texts (so
    ids count occurrences), an empty claim, a cell past the header, and 500 distinct URLs."""
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write("id,claim,url,source,date\r\n")
        for i in range(rows):
            claim = f"Claim {i % 9000}: the minister said {i * 7919 % 100003} tanks crossed, near the Dnipro"
            if i % 1000 == 7:
                claim = f"Over\ntwo lines {i}"
            if i % 5000 == 11:
                claim = " "
            extra = ",past the header" if i % 4000 == 3 else ""
            out.write(f'FC-{i},"{claim}",https://news{i % 500}.example/story/{i % 500}?ref=sheet,Agency {i % 13},'
                      f'2022-03-{i % 28 + 1:02d}{extra}\r\n')
    return path


def _peak_reading(path: Path) -> int:
    """The most memory Python held while the sheet was read and its claims read back, as the
    catalog takes them, in bytes."""
    tracemalloc.start()
    try:
        document = read_document(path, key="sheet.csv")
        for _ in document.claims:
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_reading_a_sheet_takes_memory_well_below_its_size(tmp_path):
    """Read whole, a sheet took about 11 times its size (its bytes, their text, its lines, every
    claim, its rows for the catalog). Now what grows with it is some 40 bytes a row (16 for a
    digest of each claim text in a table kept half full, to count repeats for its id; 8 for where
    each claim is on disk), under a third of a row here, over some 3 MB held whatever the size
    (a chunk of bytes, a block of claims read back): so the bigger sheet's peak stays below its
    size, which reading it whole exceeds before its first row (its bytes, then their text), and
    four times the rows do not double the peak."""
    small, big = _sheet(tmp_path / "small.csv", 12_000), _sheet(tmp_path / "big.csv", 48_000)
    small_peak, big_peak = _peak_reading(small), _peak_reading(big)
    size = big.stat().st_size
    assert size > 4_000_000
    assert big_peak < size, (small_peak, big_peak, size)
    assert big_peak < 2 * small_peak, (small_peak, big_peak)


# What the sheet read whole (before it was read a row at a time) gave: the SHA-256 of its
# claims' canonical JSON (id, text, span, kind, row, citations) and its warnings.
_CLAIMS_READ_WHOLE = "704df7bf8ec4dcba5196942e4d100d9fe8f2d56deb52f29016c86aa7c13b30cb"


def test_a_sheet_read_a_row_at_a_time_gives_the_claims_and_ids_it_gave_read_whole(tmp_path):
    document = read_document(_sheet(tmp_path / "sheet.csv", 12_000), key="seeds/sheet.csv")
    assert _fingerprint(document) == _CLAIMS_READ_WHOLE


def _fingerprint(document) -> str:
    claims = [[c.id, c.text, c.start, c.end, c.kind, c.row, c.verbatim, [[x.url, x.normalised, x.standalone]
                                                                          for x in c.citations]]
              for c in document.claims]
    material = json.dumps([claims, list(document.warnings), document.sha256, document.encoding], sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()
