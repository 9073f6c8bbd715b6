"""One large WARC file read by several workers (check/pieces.py, check/reading.py): its pieces
of gzip members, scanned apart and joined, must give exactly the scan of the whole file, and
verify must find exactly what it finds reading the file whole, honest or damaged."""

from __future__ import annotations

import concurrent.futures
import contextlib
import gc
import json
import os
import random
import sqlite3
import time

import psycopg
import pytest

from archiver.check.pieces import cut, hash_whole, join, scan_piece
from archiver.check.findings import Report
from archiver.check.reading import IDLE_NICENESS, Parallelism, Reading
from archiver.check.records import VERIFY_HEADERS, plan_scans
from archiver.check.scan import ScannedRecord, scan_warc
from archiver.check.verify import verify_collection
from archiver.store.collection import Collection
from tests.conftest import http_response, make_collection, send_bytes
from tests.test_mutations import flip, flip_inflated, put

PAGES = 12
EVERY_MEMBER = 1  # piece size: every gzip member its own piece
INLINE = 1 << 62  # pool_from: no worker processes, the pieces are read in this one


@pytest.fixture
def one_file(run_cli, raw_server, tmp_path) -> Collection:
    """A collection whose captures are all in one WARC file, with a signed manifest."""
    collection = make_collection(tmp_path / "one-file")
    rng = random.Random(14)
    server = raw_server({f"/{i}": send_bytes(http_response(rng.randbytes(rng.randrange(100, 40_000))))
                         for i in range(PAGES)})
    assert run_cli("capture", "-C", collection.root, *(server.url(f"/{i}") for i in range(PAGES))).exit_code == 0
    assert run_cli("manifest", "-C", collection.root).exit_code == 0
    opened = Collection.open(collection.root)
    assert len(warc_names(opened)) == 1
    return opened


def warc_names(collection: Collection) -> list[str]:
    with collection:
        return [row[0] for row in collection.catalog.query("SELECT name FROM warc_files")]


def member_starts(collection: Collection, name: str) -> list[int]:
    with collection:
        return [row[0] for row in collection.catalog.query(
            "SELECT DISTINCT warc_offset FROM records WHERE warc_file = ? ORDER BY warc_offset", (name,))]


def scanned_in_pieces(collection: Collection, name: str, starts: list[int]):
    """The file's scan joined from one piece per member, or None if the join refused them."""
    storage = collection.storage
    pieces = cut(name, storage.size(name), starts, EVERY_MEMBER)
    scans = [scan_piece(storage, piece, VERIFY_HEADERS) for piece in pieces]
    return pieces, join(name, pieces, scans, *hash_whole(storage, name))


def test_pieces_of_an_honest_file_join_into_the_whole_files_scan(one_file):
    name, = warc_names(one_file)
    pieces, joined = scanned_in_pieces(one_file, name, member_starts(one_file, name))
    assert len(pieces) >= 2 * PAGES  # a request and a response per page, at least
    assert [p.start for p in pieces[1:]] == [p.end for p in pieces[:-1]] and pieces[-1].end == one_file.storage.size(name)
    assert joined == scan_warc(one_file.storage, name, VERIFY_HEADERS)


def test_pieces_of_a_damaged_file_join_into_its_scan_or_are_refused(one_file):
    """Every damage either leaves the pieces whole members (then their join is the file's
    scan) or makes the join refuse them, for the file to be read whole."""
    name, = warc_names(one_file)
    path = one_file.storage.folder / name
    pristine = path.read_bytes()
    starts = member_starts(one_file, name)
    rng = random.Random(1414)
    refused = 0
    try:
        # A member's gzip header time changed: every member still whole, so the join must be
        # taken and be exactly the whole file's scan (whose SHA-256 then differs from the catalog's).
        header_time = bytearray(pristine)
        header_time[starts[1] + 4] ^= 0xFF
        put(path, bytes(header_time))
        _, joined = scanned_in_pieces(one_file, name, starts)
        assert joined is not None and joined == scan_warc(one_file.storage, name, VERIFY_HEADERS)
        for _ in range(120):
            mutation = (flip if rng.random() < 0.5 else flip_inflated)(rng, path, pristine)
            put(path, mutation.data)
            _, joined = scanned_in_pieces(one_file, name, starts)
            refused += joined is None
            assert joined is None or joined == scan_warc(one_file.storage, name, VERIFY_HEADERS), mutation.what
    finally:
        put(path, pristine)
    assert refused > 0  # pieces that are not whole members were met, and refused


def test_offsets_that_are_not_member_starts_are_refused(one_file):
    name, = warc_names(one_file)
    starts = member_starts(one_file, name)
    _, joined = scanned_in_pieces(one_file, name, [start + 3 for start in starts])
    assert joined is None


def same_findings(collection: Collection, parallelism: Parallelism) -> None:
    split = verify_collection(collection, parallelism=parallelism).as_dict()
    whole = verify_collection(collection, workers=1).as_dict()
    assert split == whole


@pytest.mark.parametrize("parallelism", [Parallelism(workers=2, pool_from=0, piece_size=EVERY_MEMBER),
                                         Parallelism(workers=2, pool_from=INLINE, piece_size=EVERY_MEMBER),
                                         Parallelism(workers=1, pool_from=0)],
                         ids=["worker processes", "inline", "one worker process, files whole"])
def test_verify_in_pieces_finds_what_verify_of_whole_files_finds(one_file, parallelism):
    pool_from = parallelism.pool_from
    assert verify_collection(one_file, parallelism=parallelism).ok
    name, = warc_names(one_file)
    path = one_file.storage.folder / name
    pristine = path.read_bytes()
    rng = random.Random(14)
    try:
        for _ in range(6 if pool_from == 0 else 30):
            put(path, (flip if rng.random() < 0.5 else flip_inflated)(rng, path, pristine).data)
            same_findings(one_file, parallelism)
    finally:
        put(path, pristine)
    # A catalog whose offsets are wrong: the pieces start inside members, the file is read whole.
    with contextlib.closing(sqlite3.connect(one_file.root / "catalog.sqlite")) as catalog, catalog:
        catalog.execute("UPDATE records SET warc_offset = warc_offset + 1 WHERE warc_offset > 0")
    same_findings(one_file, parallelism)


def test_a_pieces_bytes_are_read_once_and_not_hashed_as_a_file(one_file):
    """Each byte of a piece is fetched once (on S3, one GET per range, none twice), and a
    piece's scan takes no SHA-256 of its stored bytes: the file's is taken whole, in one place."""
    name = warc_names(one_file)[0]
    storage = one_file.storage
    reads: list[tuple[int, int]] = []

    class CountingReads:
        def read(self, name: str, start: int, length: int) -> bytes:
            reads.append((start, length))
            return storage.read(name, start, length)

    for piece in cut(name, storage.size(name), member_starts(one_file, name), EVERY_MEMBER):
        reads.clear()
        scan = scan_piece(CountingReads(), piece, VERIFY_HEADERS)
        assert scan.error is None and scan.records
        assert [start for start, _ in reads] == [piece.start + sum(length for _, length in reads[:i])
                                                 for i in range(len(reads))]
        assert sum(length for _, length in reads) == piece.end - piece.start
        assert scan.sha256 == ""


def test_scans_that_wait_for_verify_are_held_pickled_not_as_records(one_file):
    """Worker scans that arrive while verify checks signatures wait as bytes (a fraction of the
    memory of their records as objects); each is unpickled when its file is checked."""
    name, = warc_names(one_file)
    with one_file:
        storage, catalog = one_file.storage, one_file.catalog
        to_scan, _ = plan_scans(storage, catalog, Report())
        with Reading(storage, catalog, to_scan, Parallelism(workers=2, pool_from=0, piece_size=EVERY_MEMBER)) as reading:
            futures = [o for o in gc.get_objects() if isinstance(o, concurrent.futures.Future)]
            assert len(futures) >= 2 * PAGES
            concurrent.futures.wait(futures)
            assert not [o for o in gc.get_objects() if isinstance(o, ScannedRecord)]
            assert reading.scan(name) == scan_warc(storage, name, VERIFY_HEADERS)


def test_attestations_opened_by_worker_processes_are_judged_as_verify_in_one_process_judges_them(one_file):
    """Attestations are read and their signatures checked in the worker processes, by every key
    that could count; which do is decided afterwards. Altered claims, signatures and envelopes
    must be found exactly as one process finds them."""
    parallelism = Parallelism(workers=2, pool_from=0)
    with one_file:
        first, second, third = [row[0] for row in one_file.catalog.query("SELECT capture_id FROM attestations ORDER BY capture_id")][:3]
    with contextlib.closing(sqlite3.connect(one_file.root / "catalog.sqlite")) as catalog, catalog:
        catalog.execute("UPDATE captures SET http_status = 299 WHERE id = ?", (first,))
        [(text,)] = catalog.execute("SELECT envelope FROM attestations WHERE capture_id = ?", (second,)).fetchall()
        envelope = json.loads(text)
        signature = envelope["signatures"][0]["sig"]
        envelope["signatures"][0]["sig"] = ("B" if signature[0] == "A" else "A") + signature[1:]
        catalog.execute("UPDATE attestations SET envelope = ? WHERE capture_id = ?", (json.dumps(envelope), second))
        catalog.execute("DELETE FROM attestations WHERE capture_id = ?", (third,))
    report = verify_collection(one_file, parallelism=parallelism).as_dict()
    failures = {(f["check"], f["where"]) for f in report["failures"]}
    assert {("attestation claims", f"capture {first}"), ("attestation signature", f"capture {second}"),
            ("attestation present", f"capture {third}")} <= failures
    same_findings(one_file, parallelism)


def test_worker_processes_open_the_attestations_of_a_postgresql_catalog(run_cli, raw_server, tmp_path, postgresql_url):
    collection = make_collection(tmp_path / "shared", postgresql_url)
    server = raw_server({f"/{i}": send_bytes(http_response(b"page %d" % i)) for i in range(4)})
    assert run_cli("capture", "-C", collection.root, *(server.url(f"/{i}") for i in range(4))).exit_code == 0
    pool = Parallelism(workers=2, pool_from=0)
    assert verify_collection(Collection.open(collection.root), parallelism=pool).ok
    with psycopg.connect(postgresql_url) as db:
        [(altered,)] = db.execute("UPDATE captures SET http_status = 299 WHERE id = (SELECT min(id) FROM captures)"
                                  " RETURNING id").fetchall()
    report = verify_collection(Collection.open(collection.root), parallelism=pool).as_dict()
    assert [(f["check"], f["where"]) for f in report["failures"]] == [("attestation claims", f"capture {altered}")]
    assert report == verify_collection(Collection.open(collection.root), workers=1).as_dict()


def note_runner(log) -> int:
    """A task given ahead: notes which process ran it (worker processes are forked: they write here too)."""
    with open(log, "a") as out:
        out.write(f"{os.getpid()}\n")
    return os.getpid()


def runners(log) -> list[int]:
    return [int(pid) for pid in log.read_text().split()] if log.exists() else []


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.005)


TASKS_AHEAD = 4


@pytest.mark.parametrize("parallelism", [
    Parallelism(workers=1, pool_from=0),
    Parallelism(workers=2, pool_from=0, piece_size=1),  # pieces: both workers are reading
])
def test_the_caller_runs_the_tasks_ahead_while_it_waits_for_the_workers_reads(one_file, monkeypatch, tmp_path, parallelism):
    """A task given ahead that no worker has reached (every worker is still reading) is run by
    the caller while it waits for a scan, each once: a reader is let go only once the caller
    has run every one, so a caller that only waited would never get its scan."""
    from archiver.check import pieces, scan
    log, scanners = tmp_path / "ahead", tmp_path / "scanners"
    scan_stream = scan.scan_stream

    def held_scan(*args, **kwargs):
        with open(scanners, "a") as out:
            out.write(f"{os.getpid()}\n")
        wait_until(lambda: len(runners(log)) == TASKS_AHEAD, "the caller ran the tasks ahead")
        return scan_stream(*args, **kwargs)

    monkeypatch.setattr(scan, "scan_stream", held_scan)
    monkeypatch.setattr(pieces, "scan_stream", held_scan)
    with one_file:
        storage, catalog = one_file.storage, one_file.catalog
        to_scan, _ = plan_scans(storage, catalog, Report())
        with Reading(storage, catalog, to_scan, parallelism, ahead=[(note_runner, (log,))] * TASKS_AHEAD) as reading:
            scans = [reading.scan(name) for name in reading.order]
            assert list(reading.ahead()) == [os.getpid()] * TASKS_AHEAD
        assert runners(log) == [os.getpid()] * TASKS_AHEAD  # each once, here
        assert os.getpid() not in runners(scanners)
        assert [s.records for s in scans] == [scan_warc(storage, name, VERIFY_HEADERS).records for name in reading.order]


@pytest.mark.parametrize("workers", [1, 2])
def test_workers_done_reading_run_the_tasks_ahead_and_the_caller_does_not_run_them_again(one_file, tmp_path, workers):
    log = tmp_path / "ahead"
    with one_file:
        storage, catalog = one_file.storage, one_file.catalog
        to_scan, _ = plan_scans(storage, catalog, Report())
        with Reading(storage, catalog, to_scan, Parallelism(workers=workers, pool_from=0),
                     ahead=[(note_runner, (log,))] * TASKS_AHEAD) as reading:
            wait_until(lambda: len(runners(log)) == TASKS_AHEAD, "the workers ran the tasks ahead")
            results = list(reading.ahead())
            scans = [reading.scan(name) for name in reading.order]
        assert sorted(results) == sorted(runners(log)) and os.getpid() not in results  # each once, in a worker
        assert [s.records for s in scans] == [scan_warc(storage, name, VERIFY_HEADERS).records for name in reading.order]


@pytest.mark.parametrize("parallelism, niceness", [
    (Parallelism(workers=1, pool_from=0), IDLE_NICENESS),  # read whole: the reader is what the run waits for
    (Parallelism(workers=2, pool_from=0, piece_size=1), None),  # cut into pieces: the caller's own
])
def test_files_are_hashed_whole_at_idle_priority_unless_cut_into_pieces(one_file, monkeypatch, parallelism, niceness):
    """The caller's hashing thread is a third busy thread beside a worker and the caller's
    checks: on two cores it runs only where they leave a core idle, unless the workers share a
    file in pieces, which they then read faster than it can be hashed."""
    import threading

    from archiver.check import reading as reading_module
    priorities = []
    hash_whole_file = reading_module.hash_whole

    def hash_noting_priority(storage, name):
        priorities.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return hash_whole_file(storage, name)

    monkeypatch.setattr(reading_module, "hash_whole", hash_noting_priority)
    report = verify_collection(one_file, parallelism=parallelism)
    assert report.ok, report.failures
    assert priorities == [os.getpriority(os.PRIO_PROCESS, 0) if niceness is None else niceness]


def test_where_no_process_pool_can_be_made_the_files_are_read_in_this_process(one_file, monkeypatch):
    """A sandbox without a working sem_open cannot start worker processes: verify reads there
    as it would with no pool, and finds the same."""
    import concurrent.futures

    def no_pool(*args, **kwargs):
        raise NotImplementedError("This platform lacks a functioning sem_open implementation")

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", no_pool)
    same_findings(one_file, Parallelism(workers=2, pool_from=0))
    same_findings(one_file, Parallelism(workers=1, pool_from=0))


def test_workers_read_no_further_ahead_of_verify_than_it_allows(collection, raw_server, monkeypatch, tmp_path):
    """Scans that verify has not asked for yet wait in memory: the workers read at most
    read_ahead bytes of files beyond the one it asks for, whatever the collection's size."""
    from archiver.check import scan
    from tests.conftest import capture
    server = raw_server({f"/{i}": send_bytes(http_response(b"z" * 2000)) for i in range(3)})
    capture(collection, *(server.url(f"/{i}") for i in range(3)), warc_size=1000, concurrency=1)
    log = tmp_path / "scanned"
    scan_stream = scan.scan_stream

    def logged_scan(file, name, *args, **kwargs):
        with open(log, "a") as out:  # the worker process is forked: it writes here too
            out.write(f"{name}\n")
        return scan_stream(file, name, *args, **kwargs)

    monkeypatch.setattr(scan, "scan_stream", logged_scan)
    with collection:
        storage, catalog = collection.storage, collection.catalog
        to_scan, _ = plan_scans(storage, catalog, Report())
        assert len(to_scan) == 3
        with Reading(storage, catalog, to_scan, Parallelism(workers=1, pool_from=0, read_ahead=1)) as reading:
            concurrent.futures.wait([o for o in gc.get_objects() if isinstance(o, concurrent.futures.Future)])
            first, *rest = reading.order
            assert log.read_text().split() == [to_scan[first].name]  # only the first: the rest waits for verify
            scans = [reading.scan(name) for name in reading.order]
        assert sorted(log.read_text().split()) == sorted(file.name for file in to_scan.values())  # each once
        assert [s.records for s in scans] == [scan_warc(storage, to_scan[name].name, VERIFY_HEADERS).records
                                              for name in reading.order]
