"""`archiver migrate`: copy a local collection into a shared one, then verify the copy."""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

from archiver.cli.common import (collection_option, console, json_option, key_option, print_json, retention_options,
                                 signing_key, storage_settings, workers_option)
from archiver.cli.verify import print_report
from archiver.check.verify import verify_collection
from archiver.evidence.keys import append_unattended
from archiver.exchange.migrate import Target, migrate_collection
from archiver.store.collection import Collection
from archiver.store.postgresql_url import shown


@click.command()
@collection_option
@click.option("--catalog", "catalog_url", metavar="URL", required=True,
              help="The shared collection's catalog: an empty PostgreSQL database (postgresql://user@host:port/database);"
                   " the password comes from PGPASSWORD or ~/.pgpass.")
@click.option("--storage", "storage_url", metavar="s3://BUCKET/PREFIX/", required=True,
              help="Where its WARC files go: an empty S3 bucket or prefix (credentials: the standard AWS variables or profile).")
@click.option("--to", "folder", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="A new (or empty) folder, outside the collection, for the shared collection's archiver.toml, "
                   "public keys, manifests and document copies (each machine that works on it needs a folder with "
                   "that archiver.toml). Relative to the current folder (to the collection with `archiver -C`).")
@workers_option("WARC files read in parallel by the two verifications.")
@retention_options
@key_option
@json_option
def migrate(collection_dir: Path, catalog_url: str, storage_url: str, folder: Path, workers: int,
            require_retention: str | None, min_retention_days: int | None, key_file: Path | None,
            as_json: bool) -> None:
    """Copy the collection into a shared one: a PostgreSQL catalog and an S3 bucket.

    The collection (-C, whose catalog is catalog.sqlite) is copied whole: every
    catalog row with its ids, the custody log line for line, each WARC file byte for byte
    (uploaded never over another object, its SHA-256 read back, its retention recorded), and
    the public keys, manifests, signatures, timestamp tokens and document copies. The original
    is verified first and only read (one whose catalog an older archiver wrote is refused:
    opening it would upgrade it). With --require-retention, a bucket locking less is refused
    before anything is copied.

    \b
        archiver migrate -C ~/evidence --catalog postgresql://desk@db.example/evidence \\
            --storage s3://evidence/newsroom/ --require-retention COMPLIANCE \\
            --min-retention-days 3650 --to ~/team-evidence

    The custody log of the copy then records where it came from, signed by the collection's
    key, and the copy is verified. Stopped midway, the same command finishes the migration.

    Exit 0 when the copy passes verify; 1 when the original or the copy does not (nothing is
    copied from an original that fails); 2 when the target already holds something (a
    collection in the catalog, files in the bucket prefix, a folder not empty), its bucket
    locks less than required, its PostgreSQL user may not create the catalog's tables there, or
    on bad usage (a refused migration leaves the database without tables); 3 when the database or
    the store fails."""
    storage = storage_settings(storage_url, require_retention, min_retention_days)
    source = Collection.open(collection_dir)
    key = signing_key(source, key_file)
    show_progress = not as_json and console(stderr=True).is_terminal
    target = Target(folder, catalog_url, storage)
    if show_progress:
        with Progress(TextColumn("uploading WARC files"), BarColumn(), DownloadColumn(), TimeElapsedColumn(),
                      console=console(stderr=True), transient=True) as bar:
            task = bar.add_task("", total=None)
            migrated = migrate_collection(source, target, key, workers,
                                          lambda sent, total: bar.update(task, completed=sent, total=total))
    else:
        migrated = migrate_collection(source, target, key, workers)
    with Collection.open(migrated.target) as copy:
        report = verify_collection(copy, workers=workers)
        unrecorded = append_unattended(copy, key_file, "verification run", {
            "ok": report.ok, "passed": sum(report.passed.values()), "failed": report.failed})
    if as_json:
        print_json({**migrated.as_dict(), "verify": report.as_dict(), "recorded_in_custody_log": unrecorded is None})
    else:
        out = console()
        out.print(f"Migrated {migrated.source} into {migrated.target}{' (finishing an interrupted run)' if migrated.resumed else ''}:"
                  f" {migrated.warc_files} WARC files to {migrated.storage_url},"
                  f" {sum(migrated.rows.values())} catalog rows and {migrated.custody_entries} custody entries to"
                  f" {shown(migrated.catalog_url)}", markup=False)
        out.print("Verifying the copy:")
        print_report(report)
    if not report.ok:
        raise SystemExit(1)
