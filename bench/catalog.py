"""Catalog benchmark: claims, claim-capture links and the manifest on a large catalog.

Builds a collection whose catalog holds N claims (default 100,000) in N/100 documents, each
claim citing its own URL https://host{i % 500}.example/page{i}, and one capture of every such
URL (outcome ok; request, response and metadata records). Every 100th claim also cites a
second URL that was never captured, so `claims --uncaptured` has N/100 claims to find.
Documents and claims go in through Catalog.record_document (one transaction per document);
runs, WARC files, captures and records are inserted with executemany, on the catalog's own
schema, in one transaction (Catalog.add_captures commits and fsyncs once per capture).

Then measures, each against its target:
  1. linking one more capture: Catalog.add_captures of a re-capture of a cited URL,
  2. `claims --url`: the claims citing one URL with their captures,
  3. `claims --uncaptured`: the claims citing a URL with no successful capture,
  4. `archiver manifest`: wall time and peak RSS of the export, as its own process,
and, as peers for the manifest, SQLite reading the same rows and json.dumps + SHA-256 of
the same content held in memory.

Run from the project's venv:
    python bench/catalog.py [--claims N] [--keep]
Work files go to a temporary folder under $BENCH_TMP (default: the system temp folder).
Sizes are printed in MB = 10^6 bytes. Exit status 0 when every target passes, else 1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterator

from archiver.store.catalog import Catalog
from archiver.store.rows import CaptureRow
from archiver.evidence.keys import create_signing_key, custody_log, open_signing_key
from capture import run_and_report  # bench/capture.py, beside this script
from archiver.store.collection import Collection
from archiver.evidence.manifest import canonical
from archiver.read.model import PARAGRAPH, Citation, Claim, Document, make_claim_id
from archiver.read.urls import normalise_url
from archiver.capture.warc import software, warc_date
from archiver.store.rows import StoredRecord
from archiver.store.storage import StoredFile

CLAIMS_PER_DOCUMENT = 100
HOSTS = 500
UNCAPTURED_EVERY = 100  # every 100th claim also cites a URL that has no capture
CAPTURES_PER_WARC = 10_000  # one run and one WARC file per this many captures
REPEATS = 50  # timed runs of the per-URL measurements; their median is reported
BASE_TIME = datetime(2025, 3, 1, 8, 0, tzinfo=timezone.utc)
OPERATOR = "bench@example"

TARGET_LINK = 0.010  # seconds, median Catalog.add_captures
TARGET_URL = 0.050  # seconds, median claims for one URL with their captures
TARGET_UNCAPTURED = 1.0  # seconds, claim_pages(uncaptured=True) read to the end
TARGET_MANIFEST = 10.0  # seconds, archiver manifest wall time
TARGET_MANIFEST_RSS = 500 * 10**6  # bytes, archiver manifest peak RSS
MB = 10**6

CAPTURE_COLUMNS = [f.name for f in fields(CaptureRow)]
RECORD_COLUMNS = ["record_id", "capture_id", "seq", "warc_type", "role", "target_uri", "warc_date", "warc_file",
                  "warc_offset", "length", "content_length", "block_digest", "payload_digest", "truncated"]
INSERT_CAPTURE = f"INSERT INTO captures ({', '.join(CAPTURE_COLUMNS)}) VALUES ({', '.join('?' * len(CAPTURE_COLUMNS))})"
INSERT_RECORD = f"INSERT INTO records ({', '.join(RECORD_COLUMNS)}) VALUES ({', '.join('?' * len(RECORD_COLUMNS))})"


# ---------------------------------------------------------------- synthetic catalog

def cited_url(i: int) -> str:
    """The URL claim `i` cites; every one of them is captured."""
    return f"https://host{i % HOSTS}.example/page{i}"


def uncaptured_url(i: int) -> str:
    """The second URL cited by every 100th claim; never captured."""
    return f"https://host{i % HOSTS}.example/missing{i}"


def citation(url: str) -> Citation:
    return Citation(url=url, normalised=normalise_url(url), standalone=False)


def synthetic_documents(root: Path, claims: int) -> Iterator[Document]:
    """Markdown-like documents of CLAIMS_PER_DOCUMENT paragraph claims each, `claims` in all."""
    for number, first in enumerate(range(0, claims, CLAIMS_PER_DOCUMENT)):
        key = f"seeds/dossier-{number:05}.md"
        built, offset = [], 0
        for i in range(first, min(first + CLAIMS_PER_DOCUMENT, claims)):
            urls = [cited_url(i)] + ([uncaptured_url(i)] if i % UNCAPTURED_EVERY == UNCAPTURED_EVERY - 1 else [])
            text = (f"Figure {i} in the ministry's quarterly report rose by {i % 97} percent, according to "
                    + " and ".join(f"[source {n + 1}]({url})" for n, url in enumerate(urls)) + ".")
            built.append(Claim(id=make_claim_id(key, text, 0), text=text, start=offset, end=offset + len(text),
                               kind=PARAGRAPH, citations=tuple(citation(url) for url in urls)))
            offset += len(text) + 2
        body = "\n\n".join(claim.text for claim in built).encode()
        yield Document(path=root / key, key=key, sha256=hashlib.sha256(body).hexdigest(), kind="markdown",
                       encoding="utf-8", date=f"2025-02-{number % 28 + 1:02}", title=f"Dossier {number}",
                       claims=tuple(built), warnings=(), ignored_links=())


def record_id(rng: random.Random) -> str:
    return f"<urn:uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}>"


def digest(rng: random.Random) -> str:
    return "sha256:" + rng.randbytes(32).hex()


def synthetic_capture(rng: random.Random, url: str, started: datetime, run_id: str, warc_file: str,
                      offset: int) -> tuple[CaptureRow, list[StoredRecord], int]:
    """An ok capture of `url` stored at `offset` of `warc_file`: its row, its request, response
    and metadata records, and the offset after them."""
    date = warc_date(started)
    records = []
    for role, content_length in (("request", rng.randint(250, 600)), ("response", rng.randint(5_000, 250_000)),
                                 ("metadata", rng.randint(2_000, 3_500))):
        length = content_length // 3 + 200  # the record's gzip member
        records.append(StoredRecord(
            record_id=record_id(rng), warc_type=role, role=role, target_uri=url, warc_date=date,
            warc_file=warc_file, offset=offset, length=length, content_length=content_length,
            block_digest=digest(rng), payload_digest=digest(rng) if role != "metadata" else None, truncated=None))
        offset += length
    response = records[1]
    row = CaptureRow(
        id=f"{started:%Y%m%d%H%M%S}-{rng.getrandbits(32):08x}", run_id=run_id, url=url, url_key=normalise_url(url),
        final_url=url, outcome="ok", http_status=200, error=None, truncated=None,
        started_at=date, finished_at=warc_date(started + timedelta(milliseconds=rng.randint(80, 2_000))),
        ip=f"198.51.100.{rng.randint(1, 254)}", cert_sha256=rng.randbytes(32).hex(), redirects=0,
        payload_digest=response.payload_digest, response_length=response.content_length, warc_file=warc_file,
        response_record_id=response.record_id, metadata_record_id=records[2].record_id)
    return row, records, offset


def run_and_file(number: int, started: datetime) -> tuple[str, str]:
    """The run id and WARC file name of batch `number`, named the way archiver names them."""
    return f"{started:%Y%m%d%H%M%S}-{number:06x}", f"bench-{started:%Y%m%d%H%M%S}-{number:08x}.warc.gz"


def load_captures(path: Path, urls: int, rng: random.Random) -> None:
    """One ok capture of each cited URL, inserted straight into the catalog's tables in one
    transaction: a run and a closed WARC file per CAPTURES_PER_WARC captures."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("BEGIN")
    for number, first in enumerate(range(0, urls, CAPTURES_PER_WARC)):
        opened = BASE_TIME + timedelta(days=1 + number)
        run_id, warc_file = run_and_file(number, opened)
        captures, records, offset = [], [], 0
        for i in range(first, min(first + CAPTURES_PER_WARC, urls)):
            started = opened + timedelta(milliseconds=500 * (i - first))
            row, stored, offset = synthetic_capture(rng, cited_url(i), started, run_id, warc_file, offset)
            captures.append([getattr(row, column) for column in CAPTURE_COLUMNS])
            records += [(r.record_id, row.id, seq, r.warc_type, r.role, r.target_uri, r.warc_date, r.warc_file,
                         r.offset, r.length, r.content_length, r.block_digest, r.payload_digest, r.truncated)
                        for seq, r in enumerate(stored)]
        closed = captures[-1][CAPTURE_COLUMNS.index("finished_at")]
        db.execute("INSERT INTO runs (id, started_at, finished_at, software, operator, settings)"
                   " VALUES (?, ?, ?, ?, ?, ?)", (run_id, warc_date(opened), closed, software(), OPERATOR, "{}"))
        db.execute("INSERT INTO warc_files (name, warcinfo_id, opened_at, closed_at, size, sha256)"
                   " VALUES (?, ?, ?, ?, ?, ?)",
                   (warc_file, record_id(rng), warc_date(opened), closed, offset, rng.randbytes(32).hex()))
        db.executemany(INSERT_CAPTURE, captures)
        db.executemany(INSERT_RECORD, records)
    db.execute("COMMIT")
    db.close()


def build_collection(root: Path, claims: int) -> Collection:
    """The collection described in the module docstring; prints how long each part took."""
    collection = Collection.init(root, name="catalog-bench", operator=OPERATOR)
    # `archiver manifest` signs with the collection's key: made here, kept in the work folder.
    os.environ["ARCHIVER_KEY"] = str(root.parent / "signing.ed25519.pem")
    create_signing_key(collection, None, None)
    started = time.perf_counter()
    catalog = Catalog(collection.catalog_path)
    try:
        for number, document in enumerate(synthetic_documents(root, claims)):
            catalog.record_document(document, warc_date(BASE_TIME + timedelta(minutes=number)))
    finally:
        catalog.close()
    documents_done = time.perf_counter()
    load_captures(collection.catalog_path, claims, random.Random(1))
    done = time.perf_counter()
    log_captures(collection)
    print(f"  {claims:,} claims in {math.ceil(claims / CLAIMS_PER_DOCUMENT):,} documents via Catalog.record_document: "
          f"{documents_done - started:.1f} s")
    print(f"  {claims:,} captures, {3 * claims:,} records via executemany in one transaction: "
          f"{done - documents_done:.1f} s")
    print(f"  catalog.sqlite: {collection.catalog_path.stat().st_size / MB:.0f} MB")
    return collection


def log_captures(collection: Collection) -> None:
    """A "capture" custody entry for each capture not yet logged, as its run would have logged it
    (untimed): without them, the first command to open the collection would log them all late,
    as `doctor --fix` repairs a log that missed them, and be measured doing that."""
    db = sqlite3.connect(collection.catalog_path)
    rows = db.execute("SELECT id, url, outcome FROM captures ORDER BY id").fetchall()
    db.close()
    logged = set()
    for line in (collection.root / "custody.jsonl").read_bytes().splitlines():
        entry = json.loads(line)
        if entry["event"] == "capture":
            logged.add(entry["subject"]["capture"])
    log = custody_log(collection, open_signing_key(collection, None, None))
    events = [("capture", {"capture": capture_id, "url": url, "outcome": outcome, "attestation": None})
              for capture_id, url, outcome in rows if capture_id not in logged]
    for first in range(0, len(events), 1000):
        log.append_many(events[first:first + 1000])


# ---------------------------------------------------------------- measuring

@dataclass
class Measured:
    """One measured run of a command."""

    wall: float  # seconds
    peak_rss: int  # bytes
    stdout: bytes


def run_process(command: list[str], cwd: Path) -> Measured:
    """Run `command`; its wall time, and its peak RSS from os.wait4(). Stops the benchmark if it fails."""
    with tempfile.TemporaryFile(dir=cwd) as out, tempfile.TemporaryFile(dir=cwd) as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=cwd)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise SystemExit(f"{' '.join(command)} exited with {process.returncode}:\n"
                             f"{err.read().decode(errors='replace')[-3000:]}")
        return Measured(wall, usage.ru_maxrss * 1024, out.read())


def archiver_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "archiver", *args]


def timed(function: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def median_ms(seconds: list[float]) -> str:
    return f"{statistics.median(seconds) * 1000:.2f} ms (min {min(seconds) * 1000:.2f}, max {max(seconds) * 1000:.2f})"


def expect(condition: bool, what: str) -> None:
    """Stop the benchmark when the catalog answered wrongly: a fast wrong answer proves nothing."""
    if not condition:
        raise SystemExit(f"wrong result: {what}")


def verdict(passed: bool, text: str) -> str:
    return f"{'PASS' if passed else 'FAIL'}  {text}"


def bench_link(catalog: Catalog, indices: list[int]) -> list[str]:
    """1. Re-capture each cited URL once with Catalog.add_captures, then look up its claims. Links are
    derived by matching normalised URLs, so linking a capture is inserting it."""
    print(f"\n== 1. linking one more capture: Catalog.add_captures (3 records), {len(indices)} cited URLs")
    rng = random.Random(2)
    started = datetime.now(timezone.utc)
    run_id, warc_file = run_and_file(0, started)
    catalog.runs.start(run_id, warc_date(started), software(), OPERATOR, {}, plan=())
    catalog.file_opened(warc_file, record_id(rng), warc_date(started))
    new, offset = [], 0
    for n, i in enumerate(indices):
        row, records, offset = synthetic_capture(rng, cited_url(i), started + timedelta(seconds=n), run_id,
                                                 warc_file, offset)
        new.append((row, records))
    add_times = [timed(lambda: catalog.add_captures([(row, records, None)]))[0] for row, records in new]
    # The run ends as a run does, its file closed and its captures logged: what follows measures
    # a collection at rest, not the repair of a run interrupted.
    catalog.file_closed(StoredFile(warc_file, offset, hashlib.sha256(warc_file.encode()).hexdigest()), warc_date(started))
    catalog.runs.finish(run_id, warc_date(started), [])
    lookup_times = []
    for row, _ in new:
        seconds, found = timed(lambda: catalog.claims(url_key=row.url_key))
        expect(len(found) == 1 and row.url_key in {key for _, key in found[0].citations},
               f"claims(url_key={row.url_key!r}) gave {len(found)} claims")
        lookup_times.append(seconds)
    print(f"  add_captures median {median_ms(add_times)}")
    print(f"  claims(url_key=...) for the capture's URL median {median_ms(lookup_times)}  (informational)")
    return [verdict(statistics.median(add_times) < TARGET_LINK,
                    f"1. add_captures median {statistics.median(add_times) * 1000:.2f} ms < {TARGET_LINK * 1000:.0f} ms")]


def bench_url(catalog: Catalog, collection: Collection, indices: list[int]) -> list[str]:
    """2. What `claims --url` does: the claims citing one URL, with the captures of every URL they cite."""
    print(f"\n== 2. claims --url: claims(url_key=...) + captures_by_url, {len(indices)} URLs")
    times = []
    for i in indices:
        key = normalise_url(cited_url(i))
        seconds, listed = timed(lambda: catalog.claims_with_captures(catalog.claims(url_key=key)))
        expect(len(listed) == 1 and len(listed[0]["captures"][key]) == 1,
               f"claims --url {cited_url(i)}: {len(listed)} claims")
        times.append(seconds)
    url = cited_url(indices[0])
    cli = run_process(archiver_command("claims", "-C", str(collection.root), "--url", url, "--json"), collection.root)
    expect(len(json.loads(cli.stdout)) == 1, f"archiver claims --url {url} --json did not list 1 claim")
    print(f"  claims + captures_by_url median {median_ms(times)}")
    print(f"  archiver claims --url URL --json: {cli.wall * 1000:.0f} ms wall, "
          f"{cli.peak_rss / MB:.0f} MB peak RSS  (informational: includes Python start-up)")
    return [verdict(statistics.median(times) < TARGET_URL,
                    f"2. claims --url median {statistics.median(times) * 1000:.2f} ms < {TARGET_URL * 1000:.0f} ms")]


def bench_uncaptured(catalog: Catalog, collection: Collection, claims: int) -> list[str]:
    """3. The to-do list: claims citing a URL with no successful capture."""
    expected = claims // UNCAPTURED_EVERY
    print(f"\n== 3. claims --uncaptured: claim_pages(uncaptured=True) read to the end, {expected:,} claims expected")
    times = []
    for _ in range(3):
        seconds, found = timed(lambda: [claim for page in catalog.claim_pages(uncaptured=True) for claim in page])
        expect(len(found) == expected, f"claim_pages(uncaptured=True) gave {len(found)} claims, not {expected}")
        times.append(seconds)
    cli = run_process(archiver_command("claims", "-C", str(collection.root), "--uncaptured", "--json"), collection.root)
    expect(len(json.loads(cli.stdout)) == expected, "archiver claims --uncaptured --json listed the wrong claims")
    print(f"  claim_pages(uncaptured=True) median of 3: {statistics.median(times) * 1000:.0f} ms")
    print(f"  archiver claims --uncaptured --json: {cli.wall * 1000:.0f} ms wall, "
          f"{cli.peak_rss / MB:.0f} MB peak RSS  (informational: includes Python start-up and captures_by_url)")
    return [verdict(statistics.median(times) < TARGET_UNCAPTURED,
                    f"3. claims --uncaptured {statistics.median(times) * 1000:.0f} ms < {TARGET_UNCAPTURED * 1000:.0f} ms")]


def sqlite_read_all(path: Path) -> float:
    """Seconds for SQLite to hand Python every row the manifest exports, in the manifest's order."""
    db = sqlite3.connect(path)
    started = time.perf_counter()
    for query in ("SELECT * FROM captures ORDER BY id", "SELECT * FROM records ORDER BY capture_id, seq",
                  "SELECT * FROM claims ORDER BY id", "SELECT * FROM citations ORDER BY claim_id, url_key",
                  "SELECT DISTINCT ci.claim_id, k.id FROM citations ci JOIN captures k ON k.url_key = ci.url_key"
                  " ORDER BY ci.claim_id, k.id"):
        for _ in db.execute(query):
            pass
    seconds = time.perf_counter() - started
    db.close()
    return seconds


def dumps_and_hash(path: Path) -> tuple[float, str]:
    """Seconds for canonical json.dumps + SHA-256 of the manifest's content held in memory
    (loaded from the manifest first, untimed), and the digest, which must match archiver's."""
    content = json.loads(path.read_bytes())["manifest"]
    started = time.perf_counter()
    sha256 = hashlib.sha256(canonical(content)).hexdigest()
    return time.perf_counter() - started, sha256


def bench_manifest(collection: Collection) -> list[str]:
    """4. `archiver manifest` as its own process, and two peers measured on the same catalog."""
    print("\n== 4. archiver manifest -C DIR --json")
    run = run_process(archiver_command("manifest", "-C", str(collection.root), "--json"), collection.root)
    result = json.loads(run.stdout)
    path = Path(result["path"])
    catalog = Catalog(collection.catalog_path)
    try:
        content_sha256 = catalog.latest_manifest()[2]
    finally:
        catalog.close()
    print(f"  wall {run.wall:.2f} s, peak RSS {run.peak_rss / MB:.0f} MB, manifest {path.stat().st_size / MB:.1f} MB")
    read = sqlite_read_all(collection.catalog_path)
    dump, sha256 = dumps_and_hash(path)
    expect(sha256 == content_sha256, "json.dumps of the manifest's content does not give archiver's content SHA-256")
    print(f"  peer: SQLite handing Python the same rows, in the same order: {read:.2f} s")
    print(f"  peer: json.dumps + SHA-256 of the same content held in memory: {dump:.2f} s (same digest as archiver's)")
    print(f"  archiver's export takes {run.wall / (read + dump):.1f}x their sum; the difference is per-row work in "
          f"Python (a dict per row, a dumps call and two hash updates per element) and process start-up")
    return [verdict(run.wall < TARGET_MANIFEST, f"4. manifest wall {run.wall:.2f} s < {TARGET_MANIFEST:.0f} s"),
            verdict(run.peak_rss < TARGET_MANIFEST_RSS,
                    f"4. manifest peak RSS {run.peak_rss / MB:.0f} MB < {TARGET_MANIFEST_RSS / MB:.0f} MB")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--claims", type=int, default=100_000, metavar="N",
                        help="claims and captures in the catalog (default 100000, at least 100)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    if args.claims < 2 * REPEATS:
        parser.error(f"--claims must be at least {2 * REPEATS}")

    work = Path(tempfile.mkdtemp(prefix="archiver-catalog-bench-", dir=os.environ.get("BENCH_TMP")))
    print(f"archiver catalog benchmark: SQLite {sqlite3.sqlite_version}, Python {sys.version.split()[0]}, "
          f"work folder {work}")
    def measure() -> list[str]:
        print("\n== Building the catalog")
        collection = build_collection(work / "collection", args.claims)
        start_up = run_process(archiver_command("--version"), work)
        print(f"  archiver --version (Python start-up and CLI imports): {start_up.wall * 1000:.0f} ms")
        sample = random.Random(3).sample(range(args.claims), 2 * REPEATS)
        catalog = Catalog(collection.catalog_path)
        try:
            verdicts = bench_link(catalog, sample[:REPEATS])
            verdicts += bench_url(catalog, collection, sample[REPEATS:])
            verdicts += bench_uncaptured(catalog, collection, args.claims)
        finally:
            catalog.close()
        log_captures(collection)  # those bench_link added
        return verdicts + bench_manifest(collection)

    run_and_report(work, args.keep, measure)


if __name__ == "__main__":
    main()
