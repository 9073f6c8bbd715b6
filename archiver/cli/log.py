"""`archiver log`: the custody log, oldest first."""

from __future__ import annotations

from pathlib import Path

import click
from archiver.cli.common import collection_option, json_option, print_json, print_table
from archiver.store.collection import Collection
from archiver.evidence.custody import parse_entry, read_entries
from archiver.evidence.keys import export_custody


@click.command()
@click.option("--event", help="Only entries of this kind (e.g. capture, 'manifest signed').")
@collection_option
@json_option
def log(event: str | None, collection_dir: Path, as_json: bool) -> None:
    """Show the custody log: every event with its time, operator, software and key.
    (`archiver verify` checks its chain and signatures.)

    Exit 0, also when none match; 2 when the folder is not a collection, 3 when the log cannot
    be read."""
    collection = Collection.open(collection_dir)
    entries = [entry for _, line in read_entries(export_custody(collection))
               if (entry := parse_entry(line)) is not None and (event is None or entry.get("event") == event)]
    if as_json:
        print_json(entries)
        return
    print_table(("#", "time (UTC)", "event", "concerns", "operator", "key"),
                [[entry["seq"], entry["time"][:19].replace("T", " "), entry["event"], _concerns(entry.get("subject") or {}),
                  entry.get("operator"), (entry.get("key") or "")[:16]] for entry in entries], whole=("key",))


def _concerns(subject: dict) -> str:
    """What an entry concerns, in one line: its plain fields that have a value (keys and lists
    are in --json)."""
    return ", ".join(f"{k}={v}" for k, v in subject.items()
                     if k != "public_key" and v not in (None, "") and not isinstance(v, (list, dict)))
