"""`archiver import`: bring in captures made by other tools."""

from __future__ import annotations

from pathlib import Path

import click

from archiver.cli.recovery import repair_interrupted
from archiver.cli.common import (collection_option, echo, json_option, key_option, print_json, shows_progress,
                                 signing_key, working)
from archiver.store.collection import Collection
from archiver.exchange.importer import import_path
from archiver.store.rows import NO_PAYLOAD


@click.command("import")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@collection_option
@key_option
@json_option
def import_command(source: Path, collection_dir: Path, key_file: Path | None, as_json: bool) -> None:
    """Import SOURCE (a .warc, .warc.gz or .wacz made by wget, Browsertrix, ArchiveWeb.page…).

    Every declared digest is checked first; a file that fails is not imported at all. The
    WARCs are copied byte for byte into warcs/, each response becomes a capture marked as
    imported (with the file it came in and its SHA-256), and `archiver cite --capture ID`
    lets a claim cite it. Of a WACZ, the pages its pages/pages.jsonl lists are the captures;
    of a WARC alone, its HTML documents, and each response the file says was fetched for one
    (by its request's Referer, or an archiver capture's metadata) is that page's subresource.
    A revisit whose original response the collection does not hold is imported with a
    warning: it has no content until an import brings that response.
    How many were imported is printed, and each revisit without its payload; `archiver
    captures` lists them (--json here lists each).

    Exit 0 when imported (or imported already); 2 when the file is not imported (not a WARC or
    WACZ, a digest or signature that fails, records the collection already has), 3 when the
    machine refused. A payload digest taken over the body with its chunked transfer coding
    removed (as Heritrix and warcprox write them) is accepted, and said, and logged."""
    collection = Collection.open(collection_dir)
    key = signing_key(collection, key_file)
    repair_interrupted(collection, key)
    with working("importing", shows_progress(as_json)) as step:
        imported = import_path(collection, key, source, step)
    if as_json:
        print_json({"files": [{"file": i.file, "source": i.source, "already": i.already,
                               "dechunked_payload_digests": i.dechunked,
                               "captures": [c.as_dict() | {"payload_missing": c.payload_missing} for c in i.captures],
                               "revisits_resolved": [{"capture": revisit, "revisit_of": holder}
                                                     for revisit, holder in i.resolved]} for i in imported]})
        return
    for item in imported:
        if item.already:
            echo(f"{item.source}: already imported as {item.file}")
            continue
        # A count, not a line a capture: a crawl's file holds thousands (--json lists each).
        echo(f"{item.source}: {len(item.captures)} capture(s) imported into warcs/{item.file}; "
             "list them with `archiver captures`")
        if item.dechunked:
            echo(f"  {item.dechunked} payload digest(s) match the body with its chunked transfer coding removed (as "
                 "Heritrix and warcprox hash it), not the bytes stored (as warcio and archiver hash it)")
        for capture in (c for c in item.captures if c.payload_missing):  # what needs a look is named
            echo(f"  warning: {capture.id} ({capture.url}): {NO_PAYLOAD}: no content to show")
        for revisit, holder in item.resolved:
            echo(f"  capture {revisit} (a revisit imported before) now has its payload: that of capture {holder}")
