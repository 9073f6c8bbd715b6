"""HostSlots, the per-host bound a run's fetches share for as long as the run lasts."""

from __future__ import annotations

from archiver.capture.fetch.schedule import HostSlots


def test_host_slots_keep_no_host_once_nothing_holds_it():
    """A run may capture over millions of hosts: each is forgotten once its captures end."""
    slots = HostSlots(per_host=2)
    for n in range(1000):
        with slots.held(f"https://host{n}.example/page"):
            assert len(slots._slots) == 1
    assert len(slots._slots) == 0

