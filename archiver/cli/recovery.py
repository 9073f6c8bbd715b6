"""Recovery without being asked, as SQLite recovers a hot journal on the next open: the next
command that changes a collection, once it holds it alone, repairs what a killed process left
(what `archiver doctor --fix` does) and says so in one line; a reading command that finds such
leftovers says in one line which command repairs them."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Iterator

from archiver.check.doctor_custody import log_ends_torn
from archiver.cli.common import echo
from archiver.errors import ArchiverError, UsageProblem
from archiver.evidence.custody import LOG_NAME
from archiver.store.collection import Collection
from archiver.store.locks import InUse
from archiver.store.leftovers import interruption_signs

if TYPE_CHECKING:
    from archiver.evidence.signing import SigningKey


def _alone(collection: Collection) -> InUse | None:
    """The collection held alone, or None while another process works on it (then what it
    has open is its work in progress, not a leftover)."""
    try:
        return collection.in_use(alone=True)
    except UsageProblem:
        return None


def repair_interrupted(collection: Collection, key: SigningKey) -> None:
    """Before a command changes `collection`: repair and log what an interrupted run left."""
    held = _alone(collection)
    if held is None:
        return
    with held:
        if not _interruption_signs(collection):
            return
        from archiver.check.doctor import examine  # the repairs: only when there is something to repair
        diagnosis = examine(collection, key)
    kinds = sorted({finding.kind for finding in diagnosis.findings})
    echo(f"repaired what an interrupted run left ({', '.join(kinds)}), as `archiver doctor --fix` does; "
         "see `archiver log --event doctor`", err=True)


def _interruption_signs(collection: Collection) -> list[str]:
    """What an interrupted run left (store.leftovers), and a custody log whose last line it tore."""
    torn = [f"{LOG_NAME} (its last line torn)"] if not collection.config.catalog_url and log_ends_torn(collection) else []
    return interruption_signs(collection) + torn


@contextlib.contextmanager
def resuming(collection: Collection) -> Iterator[None]:
    """Held by `capture --resume` from before it looks at what is left to capture until it ends,
    so that it holds the collection continuously (its run holds it before this lets go): refused
    (exit 2) while another capture runs, whose URLs it would capture again, and so is a second
    resume, even one started at the same instant, which would capture the same rest, on this
    machine or (with a shared catalog) any other."""
    busy = UsageProblem(f"another archiver process is working on {collection.root} now: --resume would "
                        "capture again what it has not stored yet", "resume once it has finished")
    try:
        held = collection.resuming()
    except UsageProblem:
        raise busy from None
    with held, collection.catalog.locks.resuming() as alone_across_machines:
        if worked_on_elsewhere(collection):
            raise busy
        if not alone_across_machines:
            raise UsageProblem("another machine is resuming captures of this shared collection now: a second "
                               "--resume would capture the same rest again", "resume once it has finished")
        yield


def worked_on_elsewhere(collection: Collection) -> bool:
    """Whether another process holds the collection now (a capture, an import, doctor…)."""
    held = _alone(collection)
    if held is None:
        return True
    held.release()
    return False


def warn_of_leftovers(collection: Collection, catalog_alone: bool = False) -> None:
    """For a reading command: one line naming what an interrupted run left and the repair. For a
    listing (`catalog_alone`: it reads the catalog alone), a store it cannot reach (an S3 outage)
    is said in a note, not raised."""
    held = _alone(collection)
    if held is None:
        return
    if catalog_alone:
        try:
            collection.storage  # checked usable on first use: a store's problem, not the catalog's
        except ArchiverError as problem:
            held.release()
            echo(f"note: not looked for what an interrupted run left: {problem}", err=True)
            return
    with held:
        signs = _interruption_signs(collection)
    if signs:
        more = f" and {len(signs) - 1} more" if len(signs) > 1 else ""
        echo(f"note: an interrupted run left {signs[0]}{more}; `archiver doctor --fix` repairs it "
             "(so does the next command that changes the collection)", err=True)
