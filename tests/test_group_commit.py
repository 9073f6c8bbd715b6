"""Group commit: what threads submit while a store is under way is stored together next, and a
failed store fails exactly the submissions it held."""

from __future__ import annotations

import threading
import time

import pytest

from archiver.capture.group_commit import GroupCommit


def _wait_for(condition, seconds: float = 10.0) -> None:
    ends = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < ends, "timed out"
        time.sleep(0.01)


def test_items_arriving_during_a_store_are_stored_together_next_and_errors_reach_their_own_submitters():
    first_store_may_end = threading.Event()
    groups: list[list[int]] = []

    def store(items: list[int]) -> None:
        groups.append(sorted(items))
        if items == [1]:
            first_store_may_end.wait(10)
        if 13 in items:
            raise OSError("disk full")

    group = GroupCommit(store, most=64)
    outcomes: dict[int, str] = {}

    def submit(item: int) -> None:
        try:
            group.submit(item)
            outcomes[item] = "stored"
        except OSError as exc:
            outcomes[item] = str(exc)

    threads = [threading.Thread(target=submit, args=(1,))]
    threads[0].start()
    _wait_for(lambda: groups == [[1]])  # the first store is under way, and held
    threads += [threading.Thread(target=submit, args=(item,)) for item in (2, 3, 4)]
    for thread in threads[1:]:
        thread.start()
    _wait_for(lambda: len(group._waiting) == 3)
    first_store_may_end.set()
    for thread in threads:
        thread.join(10)
    assert groups == [[1], [2, 3, 4]]
    assert outcomes == {1: "stored", 2: "stored", 3: "stored", 4: "stored"}

    failing = [threading.Thread(target=submit, args=(item,)) for item in (13, 14)]
    first_store_may_end.clear()
    holder = threading.Thread(target=submit, args=(1,))
    holder.start()
    _wait_for(lambda: groups[-1] == [1])
    for thread in failing:
        thread.start()
    _wait_for(lambda: len(group._waiting) == 2)
    first_store_may_end.set()
    for thread in [holder, *failing]:
        thread.join(10)
    assert groups[-1] == [13, 14]
    assert (outcomes[1], outcomes[13], outcomes[14]) == ("stored", "disk full", "disk full")


@pytest.mark.parametrize("most", [1, 2])
def test_a_group_holds_at_most_most_items_and_every_item_is_stored_once(most):
    stored: list[int] = []
    lock = threading.Lock()

    def store(items: list[int]) -> None:
        assert len(items) <= most
        with lock:
            stored.extend(items)
        time.sleep(0.005)

    group = GroupCommit(store, most=most)
    threads = [threading.Thread(target=group.submit, args=(item,)) for item in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(stored) == list(range(20))
