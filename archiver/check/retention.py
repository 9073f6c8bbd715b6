"""The check of each stored object's Object Lock retention against what the catalog recorded
when it was uploaded: only someone allowed to bypass a GOVERNANCE lock (or a store that does
not enforce one) can weaken it, and whatever such a person could have done to the object after
the retention ended is then possible sooner. A mode that differs or a retain-until date brought
forward is a finding naming the object."""

from __future__ import annotations

from datetime import datetime

from archiver.check.findings import Report
from archiver.check.records import ToScan
from archiver.store.catalog import Catalog
from archiver.store.collection import Collection


def check_retention(collection: Collection, catalog: Catalog, to_scan: dict[str, ToScan], report: Report) -> None:
    """Every object whose upload the catalog recorded a retention for, as the store holds it
    now: as `to_scan` found it (plan_scans' one look at each object; a missing one holds none)."""
    if not collection.config.storage.url:
        return  # a local folder: no retention to compare
    storage = collection.storage
    for name, mode, until in catalog.query("SELECT name, retention_mode, retain_until FROM warc_files"
                                           " WHERE retention_mode IS NOT NULL ORDER BY name").fetchall():
        state = to_scan[name].state if name in to_scan else None
        stored_mode, stored_until = (state.retention_mode, state.retain_until) if state else (None, None)
        where = storage.object_url(name)
        if not report.check("object retention", stored_mode == mode, where,
                            f"retention mode: the catalog recorded {mode} at upload, the store now holds {stored_mode}"):
            continue
        shortened = until is not None and (stored_until is None or
                                           datetime.fromisoformat(stored_until) < datetime.fromisoformat(until))
        report.check("object retention", not shortened, where,
                     f"retention shortened: retained until {until} at upload, now until {stored_until}")
