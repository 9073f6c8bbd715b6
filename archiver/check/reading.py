"""Reading every WARC file of a verification on all the cores asked for: whole files and
pieces of large ones (check/pieces.py) go to worker processes, largest first, while the
caller checks the custody log and a thread of its hashes each file whole, in order (hashlib
lets go of the GIL); each file's scan is handed back in the caller's order. One worker is a
process of its own too: it reads while the caller checks signatures, which need no WARC bytes.
Other tasks (opening attestations) queue behind the reads, and each is run by whichever
takes it first: a worker done reading, or the caller, so that neither waits while the other has work.
Below POOL_FROM bytes in all, no pool is started: its start-up would cost more than it saves,
and the files are read in this process, each only when its scan is asked for. A worker's scan
comes back pickled and is unpickled only when asked for: scans that arrive while the caller is
busy wait as bytes, a fraction of the memory their records take as objects, and the workers
read at most READ_AHEAD bytes of files beyond the one the caller asks for, so that those bytes
stay bounded however large the collection and however long the caller's signatures take."""

from __future__ import annotations

import os
import pickle
import signal
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

from archiver.check.pieces import Piece, cut, hash_whole, join, scan_piece
from archiver.check.records import VERIFY_HEADERS, ToScan
from archiver.check.scan import FileScan, scan_warc
from archiver.store.catalog import Catalog
from archiver.store.storage import Storage

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

POOL_FROM = 8_000_000  # bytes to read in all, for worker processes to pay for their start-up
PIECES_PER_WORKER = 4  # so that workers finish together whatever the files' sizes
MIN_PIECE = 4_000_000  # a smaller piece costs more in set-up than it gains in balance
READ_AHEAD = 1_000_000_000  # WARC bytes the workers may read ahead of the caller: their scans' pickles are ~2% of it
IDLE_NICENESS = 19


@dataclass(frozen=True)
class Parallelism:
    """How a verification reads: `workers` processes, a pool only from `pool_from` bytes, and
    pieces of about `piece_size` bytes (None: enough pieces for every worker to stay busy)."""

    workers: int = 2
    pool_from: int = POOL_FROM
    piece_size: int | None = None
    read_ahead: int = READ_AHEAD


class Reading:
    """The scans of `to_scan`, started on entry; scan(name) waits for one file's, to be asked
    for in `order` (each is read in that order). The tasks `ahead` ((function, args) each,
    picklable) queue behind the reads, each run once, by a worker or by the caller, whichever
    takes it first (see ahead()); their results come back from ahead(), in order."""

    def __init__(self, storage: Storage, catalog: Catalog, to_scan: dict[str, ToScan], parallelism: Parallelism,
                 ahead: Sequence[tuple[Callable, tuple]] = ()) -> None:
        self._storage = storage
        self._ahead_tasks = ahead
        self._to_scan = to_scan
        self.order = sorted(to_scan, key=lambda shown: -to_scan[shown].size)  # largest first: scan() is asked in this order
        total = sum(file.size for file in to_scan.values())
        pooled = total >= parallelism.pool_from
        piece_size = parallelism.piece_size or max(MIN_PIECE, total // (parallelism.workers * PIECES_PER_WORKER))
        # Workers only scan: every file they read is hashed whole by the caller's thread, as
        # one piece when it is not cut into several.
        self._pieces: dict[str, list[Piece]] = {}
        for shown, file in to_scan.items():
            if file.unfinished:
                continue
            if parallelism.workers > 1 and file.size >= 2 * piece_size:
                pieces = cut(file.name, file.size, _member_starts(catalog, file.name), piece_size)
                if len(pieces) > 1:
                    self._pieces[shown] = pieces
                    continue
            if pooled:
                self._pieces[shown] = [Piece(file.name, 0, file.size)]
        tasks = len(ahead) + sum(len(self._pieces[shown]) if shown in self._pieces else 1 for shown in to_scan)
        self._pool = _pool(min(parallelism.workers, tasks), pooled, len(ahead))
        self._read_ahead = parallelism.read_ahead
        self._unsubmitted = list(self.order)  # files whose reading is not handed to the pool yet, in order
        self._handed_ahead = 0  # bytes of the files handed to the pool and not yet asked for
        self._tasks: dict[tuple[str, int], object] = {}
        self._hashes: dict[str, Future[tuple[int, str]]] = {}
        self._hashing: ThreadPoolExecutor | None = None

    def __enter__(self) -> "Reading":
        self._pool.__enter__()
        if self._pieces:
            from concurrent.futures import ThreadPoolExecutor
            # A file cut into pieces is read by every worker at once, faster than one thread can
            # hash it whole: its hash is then the longest task of all, and runs at the readers' priority.
            cut_up = any(len(pieces) > 1 for pieces in self._pieces.values())
            self._hashing = ThreadPoolExecutor(1, "archiver-hash", initializer=None if cut_up else _idle_priority)
        self._top_up()
        # Behind the reads: a worker takes them once it has read what it was given, the caller
        # those no worker has taken when it asks (last first, one at a time: see ahead()).
        self._ahead = [self._pool.submit_claimable(index, function, *args)
                       for index, (function, args) in enumerate(self._ahead_tasks)]
        self._unclaimed = len(self._ahead)  # this process claims from the last down
        self._mine: dict[int, object] = {}  # index → result of the tasks run here
        return self

    def _top_up(self) -> None:
        """Hand the pool more files, in the order the caller asks for them (it checks one
        file's records while the workers read the next; the small files' tasks, last, even out
        the end), while fewer than read_ahead bytes are handed and not yet asked for."""
        while self._unsubmitted and self._handed_ahead < self._read_ahead:
            self._submit(self._unsubmitted.pop(0))

    def _submit(self, shown: str) -> None:
        file, pool = self._to_scan[shown], self._pool
        self._handed_ahead += file.size
        pieces = self._pieces.get(shown, ())
        if pieces:
            self._hashes[shown] = self._hashing.submit(hash_whole, self._storage, file.name)
        if len(pieces) == 1:  # the whole file, read straight through (no ranges), hashed by the caller
            self._tasks[(shown, 0)] = pool.submit(scan_warc, self._storage, file.name, VERIFY_HEADERS, False, False)
        elif pieces:
            for piece in pieces:
                self._tasks[(shown, piece.start)] = pool.submit(scan_piece, self._storage, piece, VERIFY_HEADERS)
        else:
            self._tasks[(shown, 0)] = pool.submit(scan_warc, self._storage, file.name, VERIFY_HEADERS, file.unfinished)

    def __exit__(self, *exc) -> None:
        if self._hashing is not None:
            self._hashing.shutdown(cancel_futures=True)
        self._pool.__exit__(*exc)

    def ahead(self) -> Iterator:
        """The results of the tasks given as `ahead`, in their order, each waited for only
        when the iteration reaches it. Each runs once: in the first worker to reach it behind
        its reads, or here, if this process claims it first (while it waits for a scan, or for
        a worker's result, it runs the last one no worker has claimed)."""
        for index, task in enumerate(self._ahead):
            if index not in self._mine and self._pool.claim(index):
                function, args = self._ahead_tasks[index]
                self._mine[index] = function(*args)
            while index not in self._mine and not task.done() and self._run_one_ahead():
                pass
            yield self._mine.pop(index) if index in self._mine else task.result()

    def ahead_ready(self) -> bool:
        """Whether every task ahead has run: ahead() would not wait."""
        return all(index in self._mine or task.done() for index, task in enumerate(self._ahead))

    def _run_one_ahead(self) -> bool:
        """Run here the last task ahead no worker has claimed; False if there is none left."""
        while self._unclaimed > 0:
            self._unclaimed -= 1
            if self._pool.claim(self._unclaimed):
                function, args = self._ahead_tasks[self._unclaimed]
                self._mine[self._unclaimed] = function(*args)
                return True
        return False

    def scan(self, shown: str) -> FileScan:
        file = self._to_scan[shown]
        while shown in self._unsubmitted:  # asked before its turn came within the read-ahead
            self._submit(self._unsubmitted.pop(0))
        self._handed_ahead -= file.size
        self._top_up()
        pieces = self._pieces.get(shown)
        waited_for = [task for key, task in self._tasks.items() if key[0] == shown]
        if shown in self._hashes:
            waited_for.append(self._hashes[shown])
        while not all(task.done() for task in waited_for) and self._run_one_ahead():
            pass  # rather than wait, this process does a task ahead that no worker has taken
        if pieces is None:
            return self._tasks.pop((shown, 0)).result()
        size, sha256 = self._hashes.pop(shown).result()
        joined = join(file.name, pieces, [self._tasks.pop((shown, piece.start)).result() for piece in pieces], size, sha256)
        return joined or scan_warc(self._storage, file.name, VERIFY_HEADERS, file.unfinished)


def _idle_priority() -> None:
    """The hashing thread yields its core to the readers and to the caller's checks, and uses
    what they leave idle: a third thread on two cores otherwise slows the reader of a whole file,
    which the verification waits for (its hash, of fewer bytes and with no inflate, ends first).
    (Linux sets a thread's priority by its id; elsewhere, nothing.)"""
    if sys.platform == "linux":
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), IDLE_NICENESS)
        except OSError:  # a sandbox that forbids it: the hash is the same, only its timing differs
            pass


def _member_starts(catalog: Catalog, name: str) -> list[int]:
    return [row[0] for row in catalog.query(
        "SELECT DISTINCT warc_offset FROM records WHERE warc_file = ? ORDER BY warc_offset", (name,))]


def _pool(workers: int, enough_work: bool, claimable: int):
    if workers >= 1 and enough_work:
        try:
            return _Workers(workers, claimable)
        except (ImportError, NotImplementedError, OSError):  # no process pool here (no working sem_open, as in some sandboxes)
            pass  # the same reading, in this process
    return _Inline()


class _Workers:
    """The executor interface over worker processes, each result pickled in the worker and
    unpickled only when asked for."""

    def __init__(self, workers: int, claimable: int) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor  # its import alone is a tenth of an empty verify
        self._claims = multiprocessing.Array("b", claimable)  # 1: taken by a worker or the caller
        self._executor = ProcessPoolExecutor(max_workers=workers, initializer=_share_claims, initargs=(self._claims,))

    def __enter__(self) -> "_Workers":
        self._executor.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._executor.__exit__(*exc)

    def submit(self, function, *args) -> "_Pickled":
        return _Pickled(self._executor.submit(_pickled, function, *args))

    def submit_claimable(self, index: int, function, *args) -> "_Pickled":
        """A task that a worker runs only if it claims `index` first (else the caller has)."""
        return _Pickled(self._executor.submit(_pickled_if_claimed, index, function, *args))

    def claim(self, index: int) -> bool:
        return _claim(self._claims, index)


def _pickled(function: Callable, *args) -> bytes:
    return pickle.dumps(function(*args), pickle.HIGHEST_PROTOCOL)


_claims = None  # in a worker process: the claims array it shares with the caller


def _share_claims(claims) -> None:
    global _claims
    _claims = claims
    # Forked, a worker inherits the command's SIGTERM handler (cli.interrupts), which would have it
    # raise instead of ending as the executor, and a `kill` of the process group, expect of it.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _claim(claims, index: int) -> bool:
    with claims.get_lock():
        taken, claims[index] = claims[index], 1
    return not taken


def _pickled_if_claimed(index: int, function: Callable, *args) -> bytes | None:
    return _pickled(function, *args) if _claim(_claims, index) else None


@dataclass
class _Pickled:
    future: "Future[bytes]"

    def result(self):
        return pickle.loads(self.future.result())

    def done(self) -> bool:
        return self.future.done()



class _Inline:
    """The executor interface for one worker: each task runs in this process, when its result
    is asked for (so one file's records are in memory at a time)."""

    def __enter__(self) -> "_Inline":
        return self

    def __exit__(self, *exc) -> None:
        return None

    def submit(self, function, *args) -> "_Deferred":
        return _Deferred(function, args)

    def submit_claimable(self, index: int, function, *args) -> "_Deferred":
        return _Deferred(function, args)

    def claim(self, index: int) -> bool:
        return True  # no worker: every task is the caller's


@dataclass
class _Deferred:
    function: Callable
    args: tuple

    def result(self):
        return self.function(*self.args)

    def done(self) -> bool:
        return True  # nothing to wait for: it runs when its result is asked for

