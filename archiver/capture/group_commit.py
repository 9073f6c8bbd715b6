"""Group commit for what many threads store one item at a time: whoever arrives while a store
is under way waits, and the next store takes everything that has arrived since. N captures that
finish together then cost one write, one fsync and one catalog transaction, not N in a row with
each thread queued behind the others."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Generic, TypeVar

Item = TypeVar("Item")


@dataclass
class _Waiting(Generic[Item]):
    item: Item
    done: bool = False
    error: BaseException | None = None


class GroupCommit(Generic[Item]):
    """`submit` from any thread; `store` is called with up to `most` items at a time, never
    twice at once."""

    def __init__(self, store: Callable[[list[Item]], None], most: int) -> None:
        self._store = store
        self._most = most
        self._changed = threading.Condition()
        self._waiting: list[_Waiting[Item]] = []
        self._busy = False

    def submit(self, item: Item) -> None:
        """Return once `item` is stored, by this thread or another; raise what its store raised."""
        mine = _Waiting(item)
        with self._changed:
            self._waiting.append(mine)
        while True:
            with self._changed:
                while self._busy and not mine.done:
                    self._changed.wait()
                if mine.done:
                    break
                self._busy = True  # this thread stores the next group, which may not yet hold its own item
                group, self._waiting = self._waiting[:self._most], self._waiting[self._most:]
            error = None
            try:
                self._store([waiting.item for waiting in group])
            except BaseException as exc:
                error = exc
            with self._changed:
                for waiting in group:
                    waiting.done, waiting.error = True, error
                self._busy = False
                self._changed.notify_all()
        if mine.error is not None:
            raise mine.error
