"""`archiver claims` lists claims with their captures; `archiver documents` lists documents."""

from __future__ import annotations

from pathlib import Path

import click
from archiver.capture.verdict import verdict_label
from archiver.store.rows import CaptureRow, outcome_label
from archiver.cli.recovery import warn_of_leftovers
from archiver.cli.common import collection_option, json_option, one_line, print_json, print_table, remark
from archiver.cli.listing import flattened, print_json_array, print_listing
from archiver.errors import UsageProblem
from archiver.store.collection import Collection
from archiver.read.urls import lookup_key


def judged(capture: CaptureRow) -> str:
    """A capture's page verdict as listings show it; an imported one's page archiver never judged."""
    return "imported, not judged" if capture.imported_from else verdict_label(capture.verdict, capture.http_status)


def capture_status(capture: CaptureRow | None) -> str:
    """How the newest capture of a URL ended and what the page was, in a few words."""
    if capture is None:
        return "not captured"
    when = capture.started_at[:10]
    if capture.outcome == "failed":
        return f"failed {when}: {capture.error}"
    return f"{outcome_label(capture.outcome)} {capture.http_status} {when}: {judged(capture)}"


@click.command()
@click.option("--url", help="Only claims citing this URL (matched after normalising it).")
@click.option("--document", "document_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Only claims read from this document.")
@click.option("--uncaptured", is_flag=True, help="Only claims citing a URL with no successful capture yet (the to-do list).")
@click.option("--broken", is_flag=True,
              help="Only claims citing a URL whose newest capture failed or is not content (an HTTP error, "
                   "a soft 404, a bot or login wall, an empty page), or was never judged (imported, or made "
                   "before verdicts).")
@click.option("--superseded", is_flag=True, help="Include claims gone from the newest version of their document.")
@collection_option
@json_option
def claims(url: str | None, document_path: Path | None, uncaptured: bool, broken: bool, superseded: bool,
           collection_dir: Path, as_json: bool) -> None:
    """List claims, each with the URLs it cites and how their newest capture ended.

    Exit 0, also when none match; 2 on bad usage (not a collection, a malformed URL, a document
    never read), 3 when the catalog cannot be read."""
    if document_path:
        from archiver.capture.targets import document_key  # the capture machinery: only when filtering by document
    with Collection.open(collection_dir) as collection:
        warn_of_leftovers(collection, catalog_alone=True)
        key = document_key(document_path, collection.root) if document_path else None
        if key is not None and not any(row.key == key for row in collection.catalog.documents()):
            raise UsageProblem(f"no document {key} has been read into this collection",
                               "give its path as `archiver capture` was given it (see `archiver documents`)")
        pages = collection.catalog.claim_pages(
            url_key=lookup_key(url) if url else None, document_key=key,
            uncaptured=uncaptured, include_superseded=superseded, broken=broken, formerly=url is not None)
        # Each page of claims with the captures of its URLs alone, written before the next is read.
        with flattened(pages, collection.catalog.claims_with_captures) as listed:
            if as_json:
                print_json_array(listed)
                return
            count = print_listing(("claim", "document", "text", "cites", "newest capture"),
                                  (_row(claim, url) for claim in listed), whole=("claim", "cites"),
                                  empty="No claims" + (" without a successful capture" if uncaptured else "")
                                  + (" with a broken citation" if broken else "") + ".")
    if count:
        remark(f"{count} claim(s)")


def _row(claim: dict, url: str | None) -> list:
    """A claim's row of the table: its text cut short, what it cites and how each ended."""
    text = claim["text"] if len(claim["text"]) <= 140 else claim["text"][:139] + "…"
    if claim["superseded_at"]:
        text = f"(superseded) {text}"
    urls = [c["url"] for c in claim["citations"]]
    newest = [capture_status(CaptureRow(**claim["captures"][c["url_key"]][-1]) if claim["captures"][c["url_key"]] else None)
              for c in claim["citations"]]
    for former in claim["former_citations"]:  # only asked for by URL: why the claim is listed
        if url and former["url_key"] == lookup_key(url):
            urls.append(f"{former['url']} (cited until {former['dropped_at'][:19].replace('T', ' ')})")
            newest.append("")
    return [claim["id"], one_line(claim["document_key"]) if claim["document_key"] else "(note)", text, "\n".join(urls),
            "\n".join(newest)]


@click.command()
@collection_option
@json_option
def documents(collection_dir: Path, as_json: bool) -> None:
    """List the documents read into claims: date, kind, claims, cited URLs, SHA-256.

    Exit 0, also when there are none; 2 when the folder is not a collection, 3 when the catalog
    cannot be read."""
    with Collection.open(collection_dir) as collection:
        rows = collection.catalog.documents()
        counts = collection.catalog.document_claim_counts()
    listed = [{**row.as_dict(), "claims": counts.get(row.key, (0, 0))[0], "urls": counts.get(row.key, (0, 0))[1]}
              for row in rows]
    if as_json:
        print_json(listed)
        return
    print_table(("document", "date", "kind", "claims", "URLs", "SHA-256", "warnings"),
                [[one_line(d["key"]), d["date"], d["kind"], d["claims"], d["urls"], d["sha256"][:16], "; ".join(d["warnings"])]
                 for d in listed], whole=("document", "SHA-256"),
                empty="No documents yet: `archiver capture DOCUMENT` reads one.")
