"""A claim sheet is read a chunk and a row at a time: memory bounded well below the sheet's size,
and the same claims, with the same ids, as when it was read whole; its URLs and claim ids wait
on disk to be captured and signed, and are the same, in the same order, as when held in memory."""

from __future__ import annotations

import hashlib
import json
import tracemalloc
from pathlib import Path

from archiver.capture.documents import record_documents
from archiver.capture.targets import read_targets
from archiver.evidence.custody import line_hash, verify_entry
from archiver.evidence.keys import create_collection, custody_log
from archiver.evidence.long_lists import LongList, canonical_bytes
from archiver.evidence.signing import canonical_json
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



def _citing_sheet(path: Path, rows: int, edited: bool = False) -> Path:
    """A sheet over 1 MiB (so its claims and URLs wait on disk) whose every row cites a page of
    its own; some rows a second URL too: an earlier row's page written otherwise (not new), or
    the next row's written otherwise (new, and first seen in that form), or an FTP link (not
    cited). Repeated texts, and empty claims. `edited`: a third of the rows gone, and every
    tenth row's words changed, for a second reading to supersede claims."""
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write("claim,url,source\n")
        for i in range(rows):
            if edited and i % 3 == 1:
                continue
            claim = f"Row {i % 7000}: the ministry counted {i % 7000 * 7919 % 100003} crossings" if i % 19 else " "
            if edited and i % 10 == 0:
                claim += " (revised)"
            urls = [f"https://news{i % 97}.example/story/{i}?ref=sheet"]
            if i % 5 == 0:
                urls.append(f"HTTPS://News{i // 2 % 97}.EXAMPLE:443/story/{i // 2}?ref=sheet#top")
            if i % 11 == 0:
                urls.insert(0, f"https://NEWS{(i + 1) % 97}.example:443/story/{i + 1}?ref=sheet")
            if i % 13 == 0:
                urls.append("ftp://files.example/report.pdf")
            out.write(f'"{claim}",{(";" if i % 17 == 0 else " ").join(urls)},Agency {i % 13}\n')
    return path


# What archiver gave while it held a sheet's distinct URLs, and the claim ids it signs, in memory
# (a list and a set of URLs, a list of ids): digests of the URLs to capture (and the first
# sheet's own), of the first sheet's claims, of the "document read" entries' subjects (their
# claim ids and claims trees), of which claims are current after the second reading, and of the
# second reading's URLs. (The subjects and current claims changed when a re-read's claims of
# repeated words were paired with the previous read's, store/claim_pairing.py: the sheet parsed
# whole, its claims a tuple, gives the same digests. The first sheet's digest changed when the
# warning on its ignored ftp:// links was reworded: "only http and https URLs are captured".)
_HELD_IN_MEMORY = ["d12d2ca651fce33e130f86b8bec5dad8c66dc4285cab7d939afb9fba22efb77f",
                   "d12d2ca651fce33e130f86b8bec5dad8c66dc4285cab7d939afb9fba22efb77f",
                   "f08fdf2931b21168a04d01b705e88cf1fcc73d610c0828ed2819aa6c92842d75",
                   "31bac4528af25b404f9f9f904b9f6c5721899f3390dbc68e31cc256a15316d6f",
                   "495a2133b9d5e33c57d37934c634b7d758f1b1a9f9f4e889396754937d9e06e9",
                   "46e8b86e4afecfe9a85f03c0c83f4ba7244de4106ca59f24ec6e7722f701f756"]


def test_a_sheets_urls_and_signed_claim_ids_kept_on_disk_are_those_it_gave_held_in_memory(tmp_path):
    root = tmp_path / "collection"
    (root / "seeds").mkdir(parents=True)
    sheet = _citing_sheet(root / "seeds" / "sheet.csv", 14_000)
    found = read_targets([str(sheet)], root)
    [document] = found.documents
    collection, key, _ = create_collection(root, None, None)
    with collection:
        collection.catalog  # opened before a document's copy is kept, as a capture run opens it
        custody = custody_log(collection, key)
        record_documents(collection, custody, found.documents)
        again = read_targets([str(_citing_sheet(sheet, 14_000, edited=True))], root)
        assert min(document.size, again.documents[0].size) > 1 << 20  # both kept on disk as read
        record_documents(collection, custody, again.documents)
        current = collection.catalog.query("SELECT id, superseded_at IS NULL FROM claims ORDER BY id").fetchall()
    entries, previous = [], None
    for seq, line in enumerate((root / "custody.jsonl").read_bytes().splitlines(), 1):
        entries.append(json.loads(line))
        assert line == canonical_json(entries[-1])  # the entry as written is its canonical JSON, as signed
        assert verify_entry(entries[-1], {key.fingerprint: key.public}) is None
        assert (entries[-1]["seq"], entries[-1]["prev"]) == (seq, previous and line_hash(previous))
        previous = line
    # The fields signed before a read also signed its path, time and citation changes (whose
    # digests would change with the collection's folder and the time of the test).
    subjects = [{name: entry["subject"][name] for name in ("document", "sha256", "claims", "claims_tree")}
                for entry in entries if entry["event"] == "document read"]
    assert len(subjects) == 2
    assert [_digest(list(found.urls)), _digest(list(document.urls)), _fingerprint(document), _digest(subjects),
            _digest(current), _digest(list(again.urls))] == _HELD_IN_MEMORY


def test_an_entry_holding_long_lists_is_the_bytes_of_the_entry_holding_their_items_as_lists():
    items = ["plain", 'a "quote", a \\ backslash', "é, 中文, 🙂", "\0 and \u2028", 7, None, {"b": [1, 2], "a": "x"}]
    ids, empty = LongList(), LongList()
    ids.extend(items[:3])
    ids.extend([])
    ids.extend(items[3:])
    like_a_stand_in = "\0" + "0" * 32 + ":0"
    assert canonical_bytes({"subject": {"claims": ids, "none": empty, "note": like_a_stand_in}, "seq": 1}) == \
        canonical_json({"subject": {"claims": items, "none": [], "note": like_a_stand_in}, "seq": 1})


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()
