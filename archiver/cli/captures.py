"""`archiver captures` lists captures, `archiver history` one URL's captures over time, and
`archiver show` one capture with its records or one claim with its captures."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import click
from archiver.store.catalog import Catalog, how_many_found
from archiver.store.rows import CaptureRow, outcome_label
from archiver.store.storage import Storage
from archiver.capture.verdict import verdict_label
from archiver.cli.claims import capture_status, judged
from archiver.cli.recovery import warn_of_leftovers
from archiver.cli.common import collection_option, console, human_size, json_option, one_line, print_json, print_table
from archiver.cli.listing import flattened, print_json_array, print_listing
from archiver.store.collection import Collection
from archiver.errors import UsageProblem
from archiver.read.urls import lookup_key


@click.command()
@click.option("--url", help="Only captures of this URL (matched after normalising it).")
@collection_option
@json_option
def captures(url: str | None, collection_dir: Path, as_json: bool) -> None:
    """List captures, oldest first: outcome, HTTP status, page verdict, size and detail.

    Exit 0, also when there are none; 2 on bad usage (not a collection, a malformed URL), 3 when
    the catalog cannot be read."""
    with Collection.open(collection_dir) as collection:
        warn_of_leftovers(collection, catalog_alone=True)
        # Written a page at a time as read (cli.listing): a collection can hold millions of captures.
        with flattened(collection.catalog.capture_pages(lookup_key(url) if url else None)) as rows:
            if as_json:
                print_json_array(r.as_dict() for r in rows)
                return
            print_listing(("capture", "started (UTC)", "URL", "result", "HTTP", "verdict", "size", "detail"),
                          ([r.id, r.started_at[:19].replace("T", " "), r.url, outcome_label(r.outcome), r.http_status,
                            judged(r), human_size(r.response_length), _detail(r)]
                           for r in rows),
                          whole=("capture", "URL"), empty="No captures" + (f" of {one_line(url)}" if url else "") + " yet.")


def _detail(row: CaptureRow) -> str:
    """What else a listing says of a capture: where an imported one came from (its date, status and
    address are that file's word), and why one failed, was cut short, is not the page or is incomplete."""
    imported = row.imported_from and (f"imported from {row.imported_from.rpartition(' sha256:')[0] or row.imported_from}:"
                                      " its date and IP are the file's word")
    why = row.error or (f"truncated ({row.truncated})" if row.truncated else "") or row.verdict_reason or row.incomplete
    return "; ".join(filter(None, (imported, why)))


@click.command()
@click.argument("url")
@collection_option
@json_option
def history(url: str, collection_dir: Path, as_json: bool) -> None:
    """List the captures of URL over time: status, payload digest, size, and what changed.

    Exit 0, also when there are none; 2 on bad usage (not a collection, a malformed URL), 3 when
    the catalog cannot be read."""
    from archiver.capture.revisits import rendered_page
    from archiver.check.drift import describe_changes  # with the fetching machinery: not for `captures`

    with Collection.open(collection_dir) as collection:
        rows = collection.catalog.captures(lookup_key(url))
        changes = describe_changes(rows, functools.cache(
            lambda capture_id: rendered_page(collection.storage, collection.catalog, capture_id)))
    if as_json:
        print_json([{**row.as_dict(), "change": change} for row, change in zip(rows, changes)])
        return
    print_table(("capture", "started (UTC)", "result", "HTTP", "payload digest", "size", "change"),
                [[row.id, row.started_at[:19].replace("T", " "), outcome_label(row.outcome), row.http_status,
                  row.payload_digest and row.payload_digest[:7 + 16], human_size(row.response_length), change]
                 for row, change in zip(rows, changes)], whole=("capture", "payload digest"),
                empty=f"No captures of {one_line(url)} yet.")


@click.command()
@click.argument("identifier")
@collection_option
@json_option
def show(identifier: str, collection_dir: Path, as_json: bool) -> None:
    """Show a claim or a capture in full.

    A claim with its document, span, cited URLs and every capture of each; a capture with every
    WARC record it wrote. IDENTIFIER may be a unique prefix of either id.

    Exit 0 when shown; 2 on bad usage (not a collection, an id no claim or capture has, or
    more than one has), 3 when the catalog cannot be read."""
    with Collection.open(collection_dir) as collection:
        catalog = collection.catalog
        claims, captures_found = catalog.find_claim(identifier), catalog.find_capture(identifier)
        matches = len(claims) + len(captures_found)
        if matches != 1:
            if not matches:
                raise UsageProblem(f"no claim or capture with id {identifier!r}",
                                   "list them with `archiver claims` or `archiver captures`")
            raise UsageProblem(f"{identifier!r} matches {how_many_found(matches)} claims and captures", "give more of the id")
        if claims:
            _show_claim(collection.storage, catalog, claims[0], as_json)
        else:
            _show_capture(catalog, captures_found[0], as_json)


def _show_claim(storage: Storage, catalog: Catalog, claim, as_json: bool) -> None:
    from archiver.capture.revisits import rendered_page
    from archiver.check.drift import describe_changes  # with the fetching machinery: not for `captures`

    [detail] = catalog.claims_with_captures([claim])
    if as_json:
        print_json(detail)
        return
    out = console()
    for name, value in [("claim", claim.id), ("kind", claim.kind), ("document", one_line(claim.document_key) if claim.document_key else "(a note)"),
                        ("span", f"characters {claim.start}–{claim.end}" if claim.start is not None else None),
                        ("first seen", claim.first_seen_at), ("superseded", claim.superseded_at)]:
        if value:
            out.print(f"{name + ':':<12}{value}", markup=False)
    for name, value in (json.loads(claim.extra) if claim.extra else {}).items():  # a sheet's id, date, source, notes
        out.print(f"{name + ':':<12}{value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)}",
                  markup=False)
    out.print(f"\n{claim.text}\n", markup=False)
    for citation in detail["citations"]:
        rows = [CaptureRow(**c) for c in detail["captures"][citation["url_key"]]]
        out.print(f"cites {citation['url']}", markup=False)
        if not rows:
            out.print("  not captured yet")
        dom_of = functools.cache(lambda capture_id: rendered_page(storage, catalog, capture_id))
        for row, change in zip(rows, describe_changes(rows, dom_of)):
            # A failure's reason is the status already; the change column would only repeat it.
            after = "" if row.outcome == "failed" else f"  ({change})"
            out.print(f"  {row.id}  {row.started_at[:19].replace('T', ' ')}  {capture_status(row)}{after}", markup=False)
    for former in detail["former_citations"]:
        out.print(f"cited until {former['dropped_at'][:19].replace('T', ' ')} (a re-read of its document dropped it): "
                  f"{former['url']}", markup=False)
        for row in (CaptureRow(**c) for c in detail["captures"][former["url_key"]]):
            out.print(f"  {row.id}  {row.started_at[:19].replace('T', ' ')}  {capture_status(row)}", markup=False)


def _show_capture(catalog: Catalog, row: CaptureRow, as_json: bool) -> None:
    records = catalog.records(row.id)
    warc = catalog.warc_file(row.warc_file) if row.warc_file else None
    citing = catalog.claims(url_key=row.url_key, include_superseded=True)
    cited_before = [claim for claim in catalog.claims(url_key=row.url_key, include_superseded=True, formerly=True)
                    if claim not in citing]
    # The certificate is the one the server presented; whether it was checked is the run's setting.
    verified = catalog.runs.settings(row.run_id).get("verify_tls") if row.cert_sha256 else None
    if as_json:
        print_json({**row.as_dict(), "certificate_verified": verified, "warc": warc,
                    "records": [r.__dict__ for r in records],
                    "claims": [c.id for c in citing], "formerly_cited_by": [c.id for c in cited_before]})
        return
    out = console()
    # Of a capture made by another tool, what archiver did not see is the imported file's word.
    said = (lambda value: value and f"{value} (as the imported file says)") if row.imported_from else (lambda value: value)
    fields = [("capture", row.id), ("URL", row.url), ("final URL", row.final_url), ("result", said(outcome_label(row.outcome))),
              ("HTTP status", said(row.http_status)),
              ("verdict", row.verdict and "; ".join(filter(None, (verdict_label(row.verdict, row.http_status),
                                                                  row.verdict_reason)))),
              ("error", row.error), ("truncated", row.truncated), ("record", row.incomplete),
              ("started", said(row.started_at)), ("finished", said(row.finished_at)), ("server IP", said(row.ip)),
              ("certificate SHA-256", row.cert_sha256 and row.cert_sha256 + {
                  True: " (verified when captured)", False: " (NOT verified: captured with --insecure)"}.get(verified, "")),
              ("redirects", row.redirects),
              ("payload digest", row.payload_digest), ("response size", human_size(row.response_length)),
              ("identical to", row.revisit_of),
              ("imported from", row.imported_from and f"{row.imported_from} (its digests as archiver computed them, "
                                                        "SHA-256; the file declares its own)"),
              ("WARC file", row.warc_file and f"{row.warc_file}" + ("" if warc and warc["closed_at"] else " (still open)")),
              ("cited by", ", ".join(c.id for c in citing)),
              ("formerly cited by", ", ".join(c.id for c in cited_before))]
    for name, value in fields:
        if value not in (None, ""):
            out.print(f"{name + ':':<21}{value}", markup=False)
    if records:
        out.print("\nrecords:")
        print_table(("type", "record id", "target", "offset", "length", "block digest"),
                    [[r.warc_type, r.record_id, r.target_uri, r.offset, r.length, r.block_digest] for r in records],
                    whole=("record id", "target", "block digest"))
