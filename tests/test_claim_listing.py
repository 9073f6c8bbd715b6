"""`archiver claims` and `archiver captures` on many claims: read a page at a time, written as
read, the same JSON as the whole listing loaded at once, and quiet when the reader goes away.

The claims are recorded straight through the catalog, not captured: thousands in a second."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from archiver.cli import cli
from archiver.read.model import Citation, Claim, Document
from archiver.read.urls import normalise_url
from archiver.store import catalog as catalog_module
from archiver.store.catalog import Catalog
from archiver.store.database import ROWS_PER_STATEMENT
from archiver.store.rows import CaptureRow
from tests.conftest import http_response, send_bytes

CATALOG_BACKENDS = ("sqlite", "postgresql")  # every test with a collection runs on both (conftest)

RUN = "run-listing"


def _claim(key: str, number: int, urls: list[str], start: int | None = 0) -> Claim:
    text = f"Claim {number} of {key}: the figures were revised after the report, says a source. " * 2
    return Claim(id=f"c{key[-1]}{number:015d}", text=text, start=start if start is None else start + number,
                 end=None if start is None else start + number + len(text), kind="paragraph",
                 citations=tuple(Citation(url, normalise_url(url), False) for url in urls))


def _document(key: str, claims: list[Claim]) -> Document:
    return Document(path=Path(key), key=key, sha256=f"{len(claims):064x}", kind="text", encoding="utf-8", date=None,
                    title=None, claims=tuple(claims), warnings=(), ignored_links=(), content=b"x")


def _capture(number: int, url: str, day: int, outcome: str = "ok", verdict: str | None = "content") -> CaptureRow:
    return CaptureRow(id=f"k{number:07d}-{day}", run_id=RUN, url=url, url_key=normalise_url(url), final_url=url,
                      outcome=outcome, http_status=200 if outcome == "ok" else None,
                      error=None if outcome == "ok" else "connection refused", truncated=None,
                      started_at=f"2024-01-{day:02d}T10:00:00Z", finished_at=f"2024-01-{day:02d}T10:00:01Z",
                      ip="127.0.0.1", cert_sha256=None, redirects=0, payload_digest=None, response_length=1000 + number,
                      warc_file=None, response_record_id=None, metadata_record_id=None,
                      verdict=verdict if outcome == "ok" else None)


def filled(collection, claims: int, with_notes: bool = True) -> None:
    with collection:
        fill(collection.catalog, claims)
        if with_notes:
            notes(collection.catalog)


def fill(catalog: Catalog, claims: int) -> None:
    """`claims` claims over three documents, each citing its own URL, captured twice (the second
    capture of every third URL failed); the first document's claims read a second time without
    its last claim (superseded) and with its first claim's URL dropped (a former citation)."""
    catalog.runs.start(RUN, "2024-01-01T00:00:00Z", "archiver test", "tester", {})
    urls = [f"https://example.org/page/{n}" for n in range(claims)]
    keys = ["seeds/b.txt", "seeds/a.txt", "seeds/c.csv"]
    made: dict[str, list[Claim]] = {key: [] for key in keys}
    for n, url in enumerate(urls):
        key = keys[n % 3]
        made[key].append(_claim(key, n, [url], start=None if key.endswith(".csv") and n % 2 else 0))
    for key in keys:
        catalog.record_document(_document(key, made[key]), "2024-01-01T00:00:00Z")
    first = made[keys[0]]
    reread = [_claim(keys[0], 0, [urls[3]]), *first[1:-1]]
    catalog.record_document(_document(keys[0], reread), "2024-01-05T00:00:00Z")
    captures = [_capture(n, url, 2) for n, url in enumerate(urls)]
    captures += [_capture(n, url, 3, outcome="failed" if n % 3 == 2 else "ok") for n, url in enumerate(urls) if n % 5]
    for start in range(0, len(captures), 1000):
        catalog.add_captures([(row, [], None) for row in captures[start:start + 1000]])


def notes(catalog: Catalog) -> None:
    """Claims of no document (notes), one citing two URLs, one a URL never captured."""
    catalog.add_note(_claim("note", 1, ["https://example.org/page/1", "https://example.org/page/2"]), "2024-01-06T00:00:00Z")
    catalog.add_note(_claim("note", 2, ["https://example.org/never"]), "2024-01-06T00:00:00Z")


def whole_json(catalog: Catalog, **filters) -> str:
    """What `archiver claims --json` printed when it loaded every claim before the first: the
    whole list's JSON, as print_json renders it."""
    from archiver.cli.common import _JSON_CONTROLS

    listed = catalog.claims_with_captures(catalog.claims(**filters))
    return json.dumps(listed, indent=2, ensure_ascii=False, default=str).translate(_JSON_CONTROLS) + "\n"


@pytest.mark.parametrize("args, filters", [
    ((), {}), (("--superseded",), {"include_superseded": True}), (("--uncaptured",), {"uncaptured": True}),
    (("--broken",), {"broken": True}), (("--url", "https://EXAMPLE.org/page/3"), {"url_key": normalise_url(
        "https://example.org/page/3"), "formerly": True}),
    (("--url", "https://example.org/page/0", "--superseded"), {"url_key": normalise_url("https://example.org/page/0"),
                                                               "formerly": True, "include_superseded": True}),
    (("--document", "seeds/a.txt"), {"document_key": "seeds/a.txt"}), (("--url", "https://nowhere.example/"), {
        "url_key": normalise_url("https://nowhere.example/"), "formerly": True}),
])
def test_the_json_listing_is_the_whole_list_s_json_byte_for_byte(run_cli, collection, monkeypatch, args, filters):
    filled(collection, 2 * ROWS_PER_STATEMENT + 30)  # three pages, the last part-full
    (collection.root / "seeds").mkdir(exist_ok=True)
    (collection.root / "seeds" / "a.txt").write_text("a")  # --document takes a path
    monkeypatch.chdir(collection.root)
    with collection:
        expected = whole_json(collection.catalog, **filters)
    listed = run_cli("claims", "-C", collection.root, "--json", *args)
    assert listed.exit_code == 0, listed.output
    assert listed.stdout == expected
    assert json.loads(listed.stdout) or "nowhere" in args[-1]


def test_the_json_holds_notes_superseded_claims_former_citations_and_every_capture(run_cli, collection):
    filled(collection, 60)
    listed = json.loads(run_cli("claims", "-C", collection.root, "--json", "--superseded").stdout)
    assert [c["document_key"] for c in listed[:2]] == [None, None]  # notes first: NULLS FIRST
    assert [c["document_key"] for c in listed[2:]] == sorted(c["document_key"] for c in listed[2:])
    csv = [c for c in listed if c["document_key"] == "seeds/c.csv"]
    assert csv[0]["start"] is None and csv[-1]["start"] is not None  # NULL spans first within a document
    assert [c["superseded_at"] for c in listed if c["superseded_at"]] == ["2024-01-05T00:00:00Z"]
    [dropped] = [c for c in listed if c["former_citations"]]
    assert [f["url"] for f in dropped["former_citations"]] == ["https://example.org/page/0"]
    assert set(dropped["captures"]) == {"https://example.org/page/3", "https://example.org/page/0"}
    two = next(c for c in listed if len(c["citations"]) == 2)
    assert [len(two["captures"][c["url_key"]]) for c in two["citations"]] == [2, 2]
    assert [k["outcome"] for k in two["captures"]["https://example.org/page/2"]] == ["ok", "failed"]


def test_the_table_lists_each_claim_once_in_order_with_its_newest_capture(run_cli, collection):
    filled(collection, 2 * ROWS_PER_STATEMENT + 30)
    with collection:
        expected = [c.id for c in collection.catalog.claims()]
    table = run_cli("claims", "-C", collection.root)
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert lines[0] == "claim\tdocument\ttext\tcites\tnewest capture"  # one header, piped, however many pages
    assert [line.split("\t")[0] for line in lines[1:]] == expected
    assert table.stderr.strip().endswith(f"{len(expected)} claim(s)")
    page_two = next(line for line in lines if line.startswith(expected[ROWS_PER_STATEMENT]))
    assert page_two.split("\t")[4].startswith(("complete 200 2024-01-0", "failed 2024-01-03"))
    assert "not captured" in lines[2].split("\t")[4]  # the note citing a URL never captured


class CountingDatabase:
    """The catalog's real database, counting the rows it hands out per table listed."""

    def __init__(self, db) -> None:
        self._db, self.claims, self.captures = db, 0, 0

    def _count(self, sql: str, rows: list) -> list:
        if sql.startswith("SELECT cl.* FROM claims"):
            self.claims += len(rows)
        elif sql.startswith("SELECT * FROM captures"):
            self.captures += len(rows)
        return rows

    def execute(self, sql, args=()):
        return CountingCursor(self, sql, self._db.execute(sql, args))

    def stream(self, sql, args=()):
        for row in self._db.stream(sql, args):
            yield self._count(sql, [row])[0]

    def __getattr__(self, name):
        return getattr(self._db, name)


class CountingCursor:
    def __init__(self, counter: CountingDatabase, sql: str, cursor) -> None:
        self._counter, self._sql, self._cursor = counter, sql, cursor
        self.description = cursor.description

    def fetchone(self):
        row = self._cursor.fetchone()
        self._counter._count(self._sql, [row] if row else [])
        return row

    def fetchall(self):
        return self._counter._count(self._sql, self._cursor.fetchall())

    def __iter__(self):
        for row in self._cursor:
            yield self._counter._count(self._sql, [row])[0]


@pytest.mark.parametrize("as_json", [False, True])
def test_the_first_lines_are_written_after_reading_one_page_of_claims_and_their_captures(collection, monkeypatch,
                                                                                         as_json):
    """`archiver claims | head -1` on four pages of claims: the reader goes away after a line, by
    when the listing has read one page of claims, and the captures of that page's URLs alone."""
    claims = 4 * ROWS_PER_STATEMENT
    filled(collection, claims, with_notes=False)
    counters = []
    opened = catalog_module.open_database
    monkeypatch.setattr(catalog_module, "open_database", lambda location: counters.append(
        CountingDatabase(opened(location))) or counters[-1])
    read_end, write_end = os.pipe()

    def head() -> None:  # reads one line, as `head -1` does, then goes away
        with open(read_end, "rb") as pipe:
            pipe.readline()

    reader = threading.Thread(target=head)
    reader.start()
    with open(write_end, "w", encoding="utf-8") as stdout:
        monkeypatch.setattr(sys, "stdout", stdout)
        monkeypatch.setenv("TTY_COMPATIBLE", "0")
        code = cli.main(["claims", "-C", str(collection.root), *(["--json"] if as_json else [])],
                        prog_name="archiver", standalone_mode=False)
    reader.join()
    assert code == 141
    [counter] = counters
    assert 0 < counter.claims <= ROWS_PER_STATEMENT
    assert 0 < counter.captures <= 2 * ROWS_PER_STATEMENT  # of the first page's URLs: at most two each


def test_captures_are_listed_a_page_at_a_time_in_their_order(run_cli, collection):
    filled(collection, ROWS_PER_STATEMENT + 10)
    with collection:
        expected = [c.as_dict() for c in collection.catalog.captures()]
        assert [len(page) for page in collection.catalog.capture_pages()] == [ROWS_PER_STATEMENT, len(expected) -
                                                                             ROWS_PER_STATEMENT]
    listed = run_cli("captures", "-C", collection.root, "--json")
    assert listed.exit_code == 0 and json.loads(listed.stdout) == expected
    table = run_cli("captures", "-C", collection.root).stdout.splitlines()
    assert table[0].startswith("capture\t") and [line.split("\t")[0] for line in table[1:]] == [c["id"] for c in expected]
    one = run_cli("captures", "-C", collection.root, "--url", "https://example.org/page/7", "--json")
    assert [c["id"] for c in json.loads(one.stdout)] == ["k0000007-2", "k0000007-3"]


@pytest.mark.parametrize("command", [("claims",), ("claims", "--json"), ("captures",), ("captures", "--json")])
def test_a_listing_whose_reader_goes_away_after_a_line_ends_quietly(collection, command):
    filled(collection, 3 * ROWS_PER_STATEMENT)
    listing = subprocess.Popen([sys.executable, "-m", "archiver", *command, "-C", str(collection.root)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "TTY_COMPATIBLE": "0"})
    first = listing.stdout.readline()
    listing.stdout.close()  # as `| head -1` does: far more is left to write than a pipe holds
    stderr = listing.stderr.read().decode()
    assert listing.wait(timeout=120) == 141
    assert first.strip() and stderr == ""


def test_piped_a_claims_urls_and_their_newest_captures_are_told_apart(run_cli, collection, raw_server):
    """Each status is several words ("http-error 404 …"): joined with a bare space, where one
    URL's ends and the next begins could not be read."""
    server = raw_server({"/gone": send_bytes(http_response(b"no", "404 Not Found")),
                         "/here": send_bytes(http_response(b"<p>the page</p>"))})
    run_cli("cite", "-C", collection.root, "Two sources", server.url("/gone"), server.url("/here"))
    [header, row] = run_cli("claims", "-C", collection.root).stdout.splitlines()
    cites, newest = row.split("\t")[3:]
    assert cites == f"{server.url('/gone')} | {server.url('/here')}"
    assert [status.split()[:2] for status in newest.split(" | ")] == [["complete", "404"], ["complete", "200"]], newest
