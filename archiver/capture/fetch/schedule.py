"""Many captures at once: a bounded number in all and per host, hosts interleaved, and a stop
that starts nothing new and gives what is in flight a short grace. Plain and browser captures
share it, so both are as gentle with a host and stop alike."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import defaultdict, deque
from itertools import zip_longest
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import urlsplit

STOP_GRACE = 2.0  # seconds a fetch in flight has to finish once a run is told to stop


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


class HostSlots:
    """At most `per_host` fetches at once against each host, from however many threads. A host
    is kept only while a fetch holds or waits for one of its slots: a run may go over more hosts
    than it should remember."""

    def __init__(self, per_host: int) -> None:
        self._per_host = per_host
        self._slots: dict[str, tuple[threading.Semaphore, int]] = {}  # host -> its slots, fetches holding or waiting
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def held(self, url: str) -> Iterator[None]:
        """One of the slots of `url`'s host, waited for while all are taken."""
        host = host_of(url)
        with self._lock:
            slot, users = self._slots.get(host) or (threading.Semaphore(self._per_host), 0)
            self._slots[host] = (slot, users + 1)
        try:
            with slot:
                yield
        finally:
            with self._lock:
                slot, users = self._slots[host]
                if users == 1:
                    del self._slots[host]
                else:
                    self._slots[host] = (slot, users - 1)


def fetch_each(urls: Iterable[str], fetch: Callable[[str], Any], on_result: Callable[[Any], None],
               at_once: int, per_host: int, stop: threading.Event | None = None) -> None:
    """`fetch` every URL, `at_once` at a time and at most `per_host` at a time per host, calling
    `on_result` (from worker threads) as each finishes. Once `stop` is set no URL is started, and
    fetches in flight have STOP_GRACE seconds to finish, then are abandoned, their results dropped.
    A result passed on is never abandoned; one abandoned is `release()`d."""
    stop = stop or threading.Event()
    by_host: dict[str, list[str]] = defaultdict(list)
    for url in urls:
        by_host[host_of(url)].append(url)
    # Interleaving hosts keeps the workers busy on different hosts instead of queueing on one.
    waiting = deque(u for group in zip_longest(*by_host.values()) for u in group if u is not None)
    host_slots = HostSlots(per_host)
    passing_on = threading.Lock()  # held while a result is passed on, so none is once abandoned
    abandoned = False
    failures: list[BaseException] = []

    def work() -> None:
        while not stop.is_set() and not failures:
            try:
                url = waiting.popleft()
            except IndexError:
                return
            with host_slots.held(url):
                if stop.is_set():
                    return
                try:
                    result = fetch(url)
                except BaseException as exc:
                    if not abandoned:
                        failures.append(exc)
                    return
            with passing_on:
                if abandoned:
                    result.release()
                    return
                on_result(result)

    # Daemon threads: one abandoned in a fetch that hangs cannot keep the process from ending.
    workers = [threading.Thread(target=work, name=f"capture-{i}", daemon=True) for i in range(at_once)]
    for worker in workers:
        worker.start()
    for worker in workers:
        while worker.is_alive() and not stop.is_set():
            worker.join(0.5)  # wakes now and then to notice `stop`
    if stop.is_set():
        ends = time.monotonic() + STOP_GRACE
        for worker in workers:
            worker.join(max(0.0, ends - time.monotonic()))
        with passing_on:
            abandoned = True
    if failures:
        raise failures[0]
