"""A collection's catalog.sqlite lost (deleted, or emptied by a failed copy or a truncating
crash) while the collection holds evidence, told apart from a new collection's catalog not made yet."""

from __future__ import annotations

from pathlib import Path

from archiver.errors import UsageProblem

# What only a collection that has read documents or captured pages holds, found by listing
# folders: never by reading a file, as this is asked whenever a command opens the catalog.
_EVIDENCE = ("warcs/*.warc*", "manifests/manifest-*.json", "documents/sha256/*/*")


def refuse_a_lost_catalog(root: Path, catalog: Path) -> None:
    """Refuse to start `catalog` afresh (SQLite would take a missing or empty file for a new,
    empty catalog) where the collection at `root` already holds evidence: a fresh catalog would
    list none of it, a listing would say there is nothing, `archiver manifest` would write a new
    manifest-1.json over the signed one, and `doctor --fix` would set real files aside."""
    if catalog.exists() and (not catalog.is_file() or catalog.stat().st_size):
        return
    held = next((path for pattern in _EVIDENCE for path in sorted(root.glob(pattern))), None)
    if held is not None:
        state = "empty (0 bytes)" if catalog.exists() else "missing"
        raise UsageProblem(f"the catalog {catalog} is {state}, yet the collection holds evidence it listed "
                           f"({held.relative_to(root)}…)",
                           "restore catalog.sqlite from a backup; archiver will not start a new catalog over it")
