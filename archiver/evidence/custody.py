"""The custody log: an append-only, hash-chained, signed record of everything done to a
collection (created, documents read, captures, manifests, timestamps, verifications,
exports, key changes).

One JSON object per line. Each entry holds the SHA-256 of the line before it and an Ed25519
signature over its own canonical JSON (without the signature). Appending takes an exclusive
lock on the file, so concurrent processes interleave whole entries and keep one chain.

A collection whose catalog is on PostgreSQL keeps the same lines in a catalog table instead,
appended under the database's write lock so that writers on many machines keep one chain;
custody.jsonl is then an export of it (evidence/keys.py: export_custody)."""

from __future__ import annotations

import base64
import collections
import fcntl
import hashlib
import itertools
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Iterator

from archiver import __version__
from archiver.evidence.long_lists import canonical_bytes
from archiver.evidence.signing import PublicKey, SigningKey, canonical_json

LOG_NAME = "custody.jsonl"
TORN_LINE = "custody line torn"  # subject {line, sha256}: that line is an append a crash cut short, not an entry
WARC_CLOSED = "warc closed"  # subject {file, size, sha256}: the whole file's bytes, signed as it was closed


def closed_subject(name: str, size: int, sha256: str) -> dict:
    """A WARC_CLOSED entry's subject."""
    return {"file": name, "size": size, "sha256": sha256}
_TAIL_STEP = 64 * 1024


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def entry_time(entry: dict) -> datetime | None:
    """When `entry` says it was written (its `time`, as `now` writes it); None when that is no
    time with a zone (an entry not as archiver writes one)."""
    return zoned_time(entry.get("time"))


def zoned_time(value: object) -> datetime | None:
    """`value` read as an ISO 8601 time with a zone (as `now` writes one); None when it is not one."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def line_hash(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


@dataclass(frozen=True)
class Entry:
    line: bytes  # exactly as stored, without the newline
    data: dict

    @property
    def sha256(self) -> str:
        return line_hash(self.line)


class CustodyLog:
    """Appends signed entries to a collection's custody log: custody.jsonl, or the chain a
    shared collection's database keeps (`shared`: a function that runs a chain-extending
    function under the database's write lock, as Catalog.append_custody does)."""

    def __init__(self, path: Path, operator: str, key: SigningKey,
                 shared: Callable[[Callable[[str | None], list[tuple[int, str]]]], None] | None = None) -> None:
        self.path = path
        self.operator = operator
        self.key = key
        self.shared = shared
        # (file size, what the next entry chains to) after our own last append.
        self._tail: tuple[int, _ChainPoint] | None = None
        # Run under the log's lock before each signing, to refuse it by raising: a key event another
        # process appended is then either seen, or after what this process appends.
        self.before_signing: Callable[[], None] | None = None

    def append(self, event: str, subject: dict) -> Entry:
        """Append one entry, signed by the log's key, and fsync it."""
        return self.append_many([(event, subject)])[0]

    def append_many(self, events: list[tuple[str, dict]]) -> list[Entry]:
        """Append entries in order under one lock and one fsync (a capture run's group commit)."""
        if self.shared is not None:
            return self._append_shared(events)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            end = os.lseek(fd, 0, os.SEEK_END)
            if self._tail is not None and self._tail[0] == end:
                # Nobody appended since: the tail is not read back, nor an entry of a million claim ids parsed.
                previous, torn = self._tail[1], False
            else:
                tail, torn = _last_line(fd)
                previous = _chain_point(tail)
            entries = self._chained(previous, events)
            try:
                # A line torn by a crash stays, alone, for verify to report.
                _write_all(fd, ([b"\n"] if torn else []) + [piece for entry in entries for piece in (entry.line, b"\n")])
                os.fsync(fd)
            except OSError:
                os.ftruncate(fd, end)  # an entry is in the log whole or not at all, never torn by a refusal
                raise
            self._tail = (os.lseek(fd, 0, os.SEEK_END),
                          (entries[-1].sha256, entries[-1].data["seq"]) if entries else previous)
            return entries
        finally:
            os.close(fd)

    def _append_shared(self, events: list[tuple[str, dict]]) -> list[Entry]:
        """The entries chained to the database's last line, inside the transaction that inserts them."""
        entries: list[Entry] = []
        self.shared(self.extension(events, entries))
        return entries

    def extension(self, events: list[tuple[str, dict]],
                  made: list[Entry] | None = None) -> Callable[[str | None], list[tuple[int, str]]]:
        """For a shared collection's database: the function that, handed the chain's last line
        inside a write transaction, signs `events` chained to it and returns their (seq, line)
        rows (also put in `made`). Given to the catalog, it logs a change in the change's own
        transaction (Catalog.add_captures)."""
        made = made if made is not None else []

        def extend(tail: str | None) -> list[tuple[int, str]]:
            made[:] = self._chained(_chain_point(tail.encode("utf-8") if tail is not None else None), events)
            return [(entry.data["seq"], entry.line.decode("utf-8")) for entry in made]

        return extend

    def _chained(self, previous: _ChainPoint, events: list[tuple[str, dict]]) -> list[Entry]:
        """The signed entries for `events`, the first chained to `previous`. A subject may hold
        a LongList (archiver.evidence.long_lists): the entry holds its items as a list."""
        if self.before_signing is not None:
            self.before_signing()
        prev, seq = previous
        entries = []
        for event, subject in events:
            seq += 1
            body = {"seq": seq, "time": now(), "event": event, "subject": subject, "operator": self.operator,
                    "software": f"archiver/{__version__}", "prev": prev, "key": self.key.fingerprint}
            body["sig"] = base64.b64encode(self.key.sign(canonical_bytes(body))).decode("ascii")
            entries.append(Entry(canonical_bytes(body), body))
            prev = entries[-1].sha256
        return entries


# (SHA-256 of the log's last line, its seq): what the next entry chains to. (None, 0) for an empty log.
_ChainPoint = tuple[str | None, int]


def _chain_point(tail: bytes | None) -> _ChainPoint:
    previous = parse_entry(tail) if tail else None
    return (line_hash(tail) if tail else None), (previous["seq"] if previous else 0)


# Pieces a write takes at most: IOV_MAX, Linux's and the BSDs'.
_PIECES_A_WRITE = 1024


def _write_all(fd: int, pieces: list[bytes]) -> None:
    """Write `pieces` in order, none copied into one: an entry can hold a million claim ids. A
    disk filling up takes part of a write, and refuses only the next."""
    left = collections.deque(memoryview(piece) for piece in pieces if piece)
    while left:
        written = os.writev(fd, list(itertools.islice(left, _PIECES_A_WRITE)))
        while left and written >= len(left[0]):
            written -= len(left.popleft())
        if written:
            left[0] = left[0][written:]


# Each field an entry has, of the kind archiver writes: the checks look keys up by them and
# compare times, so a line an intruder edited to hold a list there is no entry.
_FIELD_KINDS = {"time": str, "event": str, "key": str, "sig": str, "subject": dict, "prev": (str, type(None))}


def parse_entry(line: bytes) -> dict | None:
    """The entry a custody line holds, a JSON object with an integer seq and each field of
    _FIELD_KINDS it has of that kind; None for anything else (a torn or altered line)."""
    try:
        data = json.loads(line)
    except (ValueError, RecursionError):  # RecursionError: a hostile line of deeply nested brackets
        return None
    seq = data.get("seq") if isinstance(data, dict) else None
    if type(seq) is not int:  # not isinstance: Python's bool is an int, but JSON's true is no seq
        return None
    return None if any(name in data and not isinstance(data[name], kind) for name, kind in _FIELD_KINDS.items()) else data


def _last_line(fd: int) -> tuple[bytes | None, bool]:
    """The last complete, well-formed entry line, and whether the file ends in a torn line."""
    end = os.lseek(fd, 0, os.SEEK_END)
    if end == 0:
        return None, False
    data = b""
    position = end
    while position > 0:
        step = min(_TAIL_STEP, position)
        position -= step
        data = os.pread(fd, step, position) + data
        lines = data.split(b"\n")
        complete = lines[1:-1] if position > 0 else lines[:-1]
        for line in reversed(complete):
            if parse_entry(line) is not None:
                return line, not data.endswith(b"\n")
    return None, not data.endswith(b"\n")


@dataclass(frozen=True)
class Unreadable:
    """A line of the log that holds no entry."""

    number: int
    sha256: str
    skipped: bool  # the chain passes it by: an append a crash cut short, not a whole entry altered since


def recorded_torn_line(entry: dict) -> tuple[int, str] | None:
    """The (line, SHA-256) a TORN_LINE entry records as torn; None for any other entry."""
    subject = entry.get("subject", {})
    if entry.get("event") != TORN_LINE or type(subject.get("line")) is not int or not isinstance(subject.get("sha256"), str):
        return None
    return subject["line"], subject["sha256"]


def unreadable_lines(lines: Iterable[bytes]) -> tuple[list[Unreadable], set[tuple[int, str]]]:
    """Each line of the log (numbered from 1) that holds no entry, and the (line, sha256) of
    each line a TORN_LINE entry names. A crash tears only the line being appended, and the next
    append chains to the entry before it (CustodyLog.append_many); a line the next entry's prev
    names instead was a whole entry once."""
    unreadable: list[Unreadable] = []
    recorded: set[tuple[int, str]] = set()
    pending: list[tuple[int, bytes]] = []
    previous: bytes | None = None
    for number, line in enumerate(lines, 1):
        entry = parse_entry(line)
        if entry is None:
            pending.append((number, line))
            continue
        chained_past = entry.get("prev") == (line_hash(previous) if previous is not None else None)
        unreadable += [Unreadable(n, line_hash(torn), chained_past) for n, torn in pending]
        pending, previous = [], line
        if (torn := recorded_torn_line(entry)) is not None:
            recorded.add(torn)
    unreadable += [Unreadable(n, line_hash(torn), True) for n, torn in pending]  # no entry after them yet
    return unreadable, recorded


def read_entries(path: Path) -> Iterator[tuple[int, bytes]]:
    """Every line of the log with its line number, as stored."""
    if not path.exists():
        return
    with open(path, "rb") as log:
        for number, line in enumerate(log, 1):
            yield number, line.rstrip(b"\n")


def verify_entry(data: dict, keys: dict[str, PublicKey]) -> str | None:
    """Why the entry's signature does not hold, or None when it does."""
    public = keys.get(data.get("key"))
    if public is None:
        return f"signed by unknown key {data.get('key')}"
    try:
        signature = base64.b64decode(data["sig"], validate=True)
    except (KeyError, ValueError, TypeError):
        return "signature missing or not base64"
    body = {k: v for k, v in data.items() if k != "sig"}
    return None if public.verify(signature, canonical_json(body)) else "signature does not match the entry"
