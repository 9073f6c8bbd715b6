"""Whether a key may still sign for a collection, looked at again as each custody entry is
signed. A command refuses a revoked or rotated-out key as it starts (keys.refuse_out_of_service),
but `keys revoke` and `keys rotate` may run meanwhile (a long capture run, a bundle taking
minutes, a `manifest` asking a TSA): each custody append looks again under the log's lock
(CustodyLog.before_signing, set by keys.custody_log), reading only the entries appended since
the last look: from the last line it read on (at its offset in custody.jsonl, or its seq in a
shared collection's rows), which must still be there (KeyWatch._read). A key event that took
the key out of service refuses the append: an entry the old key signed after it fails verify
for good (key_status.py judges by the chain's order).
A capture run also looks before each group of captures is signed; the captures it had
cataloged then are logged by the next command's repair, with the new key."""

from __future__ import annotations

import threading
import weakref

from archiver.errors import UsageProblem
from archiver.evidence.custody import LOG_NAME, line_hash
from archiver.evidence.key_status import KeyStatus, key_event_entries, key_statuses_in
from archiver.evidence.signing import SigningKey, grouped
from archiver.store.collection import Collection

# One watch per collection handle and key: a command signing many entries (doctor's repairs, a
# run's captures) reads the whole log's key events once, then only what was appended since.
_WATCHES: weakref.WeakKeyDictionary[Collection, dict[str, KeyWatch]] = weakref.WeakKeyDictionary()
_MAKING = threading.Lock()


def key_watch(collection: Collection, key: SigningKey) -> KeyWatch:
    """The watch of `key` for this collection handle (see the module)."""
    with _MAKING:
        watches = _WATCHES.setdefault(collection, {})
        if key.fingerprint not in watches:
            watches[key.fingerprint] = KeyWatch(collection, key)
        return watches[key.fingerprint]


class KeyWatch:
    def __init__(self, collection: Collection, key: SigningKey) -> None:
        self._collection = weakref.ref(collection)  # not kept for longer than the handle, which _WATCHES keys it by
        self._path = None if collection.config.catalog_url else collection.root / LOG_NAME
        self._key = key
        self._events: list[dict] = []
        # The last line read: where it is (its offset in custody.jsonl, or its seq in a shared
        # collection's log) and its SHA-256.
        self._last: tuple[int, str] | None = None
        self._looking = threading.Lock()  # a run's store and its file rotation both look

    def check(self) -> None:
        """Raise UsageProblem if the custody log now says the key is revoked or rotated out."""
        with self._looking:
            problem = self._judged()
        if problem is not None:
            raise problem

    def signs(self) -> bool:
        """Whether the key may still sign (a file's close, as its run stops): not once revoked or
        rotated out, so that the run's message, that it signed nothing after that, holds."""
        with self._looking:
            return self._judged() is None

    def statuses(self) -> dict[str, KeyStatus]:
        """What the custody log says of each key now (key_status.py)."""
        with self._looking:
            self._read()
            return key_statuses_in(self._events)

    def _judged(self) -> UsageProblem | None:
        # Judged again each time, not only when a key event came: a revocation dated later
        # (`keys revoke --from` a future time) takes effect as its moment passes, with no event.
        self._read()
        status = key_statuses_in(self._events).get(self._key.fingerprint)
        if status is None:
            return None
        name = f"the key {grouped(self._key.fingerprint)}"
        if status.rotated_out_at is not None:
            return UsageProblem(f"{name} was rotated out at {status.rotated_out_at}; it signed nothing after that",
                                "run it again with the collection's current key (`archiver keys show` names its "
                                "file); a capture takes up the rest with `archiver capture --resume`")
        if status.revoked_now():
            return UsageProblem(f"{name} was revoked (from {status.revoked_from}); it signed nothing after that",
                                "make a new key with `archiver keys rotate`, then run it again (a capture: "
                                "`archiver capture --resume`)")
        return None

    def _read(self) -> None:
        """Take in the key events of the lines appended since the last look, read from the last
        line read on. That line must still be where it was, with its bytes: a look may read lines
        as they are written (custody.jsonl is read without its lock, a shared log's rows on the
        catalog's connection while another thread's transaction has them), and they may be taken
        back (an append refused half-way is cut off the file, a transaction rolled back), a key
        event then written where they were. The whole log is then read again. Only the end of
        the log is ever taken back, and each entry holds the hash of the one before it: the last
        line read, still there, vouches for all read before it."""
        start, sha256 = self._last if self._last is not None else (0, None)
        lines = self._lines_from(start)
        if sha256 is not None:
            if lines and lines[0][0] == start and line_hash(lines[0][1]) == sha256:
                lines = lines[1:]
            else:
                self._events, lines = [], self._lines_from(0)
        if lines:
            self._last = lines[-1][0], line_hash(lines[-1][1])
        self._events += key_event_entries(line for _, line in lines)

    def _lines_from(self, start: int) -> list[tuple[int, bytes]]:
        """Each whole line of the log from `start` on (an offset in custody.jsonl at which a line
        starts, or a shared log's seq), with where it is."""
        if self._path is None:
            collection = self._collection()
            with collection:  # held already while a shared append runs: the same catalog, in its transaction
                rows = collection.catalog.custody_lines_from(start)
            return [(seq, line.encode("utf-8")) for seq, line in rows]
        if not self._path.exists():
            return []
        with open(self._path, "rb") as log:
            log.seek(start)
            read = log.read()
        lines, at = [], start
        for line in read[:read.rfind(b"\n") + 1].split(b"\n")[:-1]:  # a line being appended now is read once whole
            lines.append((at, line))
            at += len(line) + 1
        return lines
