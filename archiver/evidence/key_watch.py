"""Whether the key a long run signs with is still in service. A capture run refuses a revoked
or rotated-out key as it starts (keys.refuse_out_of_service), but `keys revoke` and `keys
rotate` may run while it captures: before each group of captures is signed, the custody
entries appended since the last look are read (custody.jsonl from where that look stopped, or
a shared collection's rows after the last seq seen), and a key event that takes the key out of
service stops the run before it signs anything more. It looks again under the custody log's lock
as the run appends to it (CustodyLog.before_signing): a key event appended between the first look
and that append would otherwise be followed by entries the old key signed, which verify fails.
The captures already cataloged then are logged by the next command's repair, with the new key."""

from __future__ import annotations

import threading
from typing import Iterable

from archiver.errors import UsageProblem
from archiver.evidence.custody import LOG_NAME, now
from archiver.evidence.keys import key_event_entries, key_statuses_in
from archiver.evidence.signing import SigningKey, grouped
from archiver.store.catalog import Catalog
from archiver.store.collection import Collection


class KeyWatch:
    def __init__(self, collection: Collection, catalog: Catalog, key: SigningKey) -> None:
        self._path = None if collection.config.catalog_url else collection.root / LOG_NAME
        self._catalog = catalog
        self._key = key
        self._events: list[dict] = []
        self._seen = 0  # bytes of custody.jsonl read, or the last seq read of a shared collection's log
        self._looking = threading.Lock()  # the run's store and its file rotation both look
        self._problem: UsageProblem | None = None
        self._read_new_events()

    def check(self) -> None:
        """Raise UsageProblem if the custody log now says the key is revoked or rotated out."""
        with self._looking:
            self._look()
            if self._problem is not None:
                raise self._problem

    def signs(self) -> bool:
        """Whether the key may still sign (a file's close, as its run stops): not once revoked or
        rotated out, so that the run's message, that it signed nothing after that, holds."""
        with self._looking:
            self._look()
            return self._problem is None

    def _look(self) -> None:
        # Judged again each time, not only when a key event came: a revocation dated later
        # (`keys revoke --from` a future time) takes effect as its moment passes, with no event.
        self._read_new_events()
        self._problem = self._judged()

    def _judged(self) -> UsageProblem | None:
        status = key_statuses_in(self._events).get(self._key.fingerprint)
        if status is None:
            return None
        name = f"the key {grouped(self._key.fingerprint)}"
        if status.rotated_out_at is not None:
            return UsageProblem(f"{name} was rotated out at {status.rotated_out_at} while this run was capturing; "
                                "it signed nothing after that", "capture the rest with `archiver capture --resume`")
        if status.trusted_at(now()) is not None:
            return UsageProblem(f"{name} was revoked (from {status.revoked_from}) while this run was capturing; "
                                "it signed nothing after that",
                                "make a new key with `archiver keys rotate`, then `archiver capture --resume`")
        return None

    def _read_new_events(self) -> bool:
        """Read the key events appended since the last look; whether there were any."""
        new = list(key_event_entries(self._new_lines()))
        self._events += new
        return bool(new)

    def _new_lines(self) -> Iterable[bytes]:
        if self._path is None:
            rows = self._catalog.custody_lines_after(self._seen)
            if rows:
                self._seen = rows[-1][0]
            return [line.encode("utf-8") for _, line in rows]
        with open(self._path, "rb") as log:
            log.seek(self._seen)
            appended = log.read()
        whole = appended.rfind(b"\n") + 1  # a line being appended now is read once it is whole
        self._seen += whole
        return appended[:whole].splitlines()
