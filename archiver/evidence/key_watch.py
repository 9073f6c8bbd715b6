"""Whether a key may still sign for a collection, looked at again as each custody entry is
signed. A command refuses a revoked or rotated-out key as it starts (keys.refuse_out_of_service),
but `keys revoke` and `keys rotate` may run meanwhile (a long capture run, a bundle taking
minutes, a `manifest` asking a TSA): each custody append looks again under the log's lock
(CustodyLog.before_signing, set by keys.custody_log), reading only the entries appended since
the last look (custody.jsonl from where that look stopped, or a shared collection's rows after
the last seq seen). A key event that took the key out of service refuses the append: an entry
the old key signed after it fails verify for good (key_status.py judges by the chain's order).
A capture run also looks before each group of captures is signed; the captures it had
cataloged then are logged by the next command's repair, with the new key."""

from __future__ import annotations

import threading
import weakref
from typing import Iterable

from archiver.errors import UsageProblem
from archiver.evidence.custody import LOG_NAME
from archiver.evidence.key_status import key_event_entries, key_statuses_in
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
        self._seen = 0  # bytes of custody.jsonl read, or the last seq read of a shared collection's log
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

    def _judged(self) -> UsageProblem | None:
        # Judged again each time, not only when a key event came: a revocation dated later
        # (`keys revoke --from` a future time) takes effect as its moment passes, with no event.
        self._events += key_event_entries(self._new_lines())
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

    def _new_lines(self) -> Iterable[bytes]:
        if self._path is None:
            collection = self._collection()
            with collection:  # held already while a shared append runs: the same catalog, in its transaction
                rows = collection.catalog.custody_lines_after(self._seen)
            if rows:
                self._seen = rows[-1][0]
            return [line.encode("utf-8") for _, line in rows]
        if not self._path.exists():
            return []
        with open(self._path, "rb") as log:
            log.seek(self._seen)
            appended = log.read()
        whole = appended.rfind(b"\n") + 1  # a line being appended now is read once it is whole
        self._seen += whole
        return appended[:whole].splitlines()
