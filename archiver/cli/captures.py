"""`archiver captures` lists captures; `archiver show` shows one capture with its records."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from archiver.catalog import Catalog
from archiver.cli.common import collection_option, console, human_size, json_option, print_json
from archiver.collection import Collection
from archiver.errors import UsageProblem
from archiver.urls import normalise_url


@click.command()
@click.option("--url", help="Only captures of this URL (matched after normalising it).")
@collection_option
@json_option
def captures(url: str | None, collection_dir: Path, as_json: bool) -> None:
    """List captures, oldest first: outcome, HTTP status, size and where they are stored."""
    collection = Collection.open(collection_dir)
    catalog = Catalog(collection.catalog_path)
    rows = catalog.captures(normalise_url(url) if url else None)
    catalog.close()
    if as_json:
        print_json([r.as_dict() for r in rows])
        return
    if not rows:
        click.echo("No captures" + (f" of {url}" if url else "") + " yet.")
        return
    table = Table(show_edge=False, pad_edge=False)
    for column in ("capture", "started (UTC)", "URL", "result", "HTTP", "size", "detail"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(r.id, r.started_at[:19].replace("T", " "), r.url, r.outcome, str(r.http_status or "-"),
                      human_size(r.response_length), r.error or (f"truncated ({r.truncated})" if r.truncated else ""))
    console().print(table)


@click.command()
@click.argument("capture_id")
@collection_option
@json_option
def show(capture_id: str, collection_dir: Path, as_json: bool) -> None:
    """Show one capture (CAPTURE_ID or a unique prefix of it) with every WARC record it wrote."""
    collection = Collection.open(collection_dir)
    catalog = Catalog(collection.catalog_path)
    matches = catalog.find_capture(capture_id)
    if len(matches) != 1:
        catalog.close()
        if not matches:
            raise UsageProblem(f"no capture with id {capture_id!r}", "list them with `archiver captures`")
        raise UsageProblem(f"{capture_id!r} matches {len(matches)} captures", "give more of the id")
    row = matches[0]
    records = catalog.records(row.id)
    warc = catalog.warc_file(row.warc_file) if row.warc_file else None
    catalog.close()
    if as_json:
        print_json({**row.as_dict(), "warc": warc, "records": [r.__dict__ for r in records]})
        return
    out = console()
    fields = [("capture", row.id), ("URL", row.url), ("final URL", row.final_url), ("result", row.outcome),
              ("HTTP status", row.http_status), ("error", row.error), ("truncated", row.truncated),
              ("started", row.started_at), ("finished", row.finished_at), ("server IP", row.ip),
              ("certificate SHA-256", row.cert_sha256), ("redirects", row.redirects),
              ("payload digest", row.payload_digest), ("response size", human_size(row.response_length)),
              ("WARC file", row.warc_file and f"{row.warc_file}" + ("" if warc and warc["closed_at"] else " (still open)"))]
    for name, value in fields:
        if value not in (None, ""):
            out.print(f"{name + ':':<21}{value}")
    if records:
        table = Table(show_edge=False, pad_edge=False, title="records")
        for column in ("type", "record id", "target", "offset", "length", "block digest"):
            table.add_column(column, overflow="fold")
        for r in records:
            table.add_row(r.warc_type, r.record_id, r.target_uri or "", str(r.offset), str(r.length), r.block_digest)
        out.print(table)
