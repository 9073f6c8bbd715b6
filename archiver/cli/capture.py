"""`archiver capture`: fetch URLs, documents' URLs, or folders of documents into WARC files."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from archiver.capture import CaptureRun, read_targets
from archiver.catalog import CaptureRow
from archiver.cli.common import collection_option, console, human_size, json_option, print_json
from archiver.collection import Collection, parse_size


def _size(ctx, param, value):
    if value is None:
        return None
    try:
        return parse_size(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command()
@click.argument("targets", nargs=-1, required=True)
@collection_option
@click.option("--concurrency", type=click.IntRange(1, 256), help="Captures at once (default 8, from archiver.toml).")
@click.option("--per-host", type=click.IntRange(1, 64), help="Captures at once against one host (default 2).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True),
              help="Wall-clock seconds allowed for one capture, redirects included (default 60).")
@click.option("--max-size", callback=_size, help="Bytes kept of one response, e.g. 200MB; the rest is cut and marked WARC-Truncated.")
@click.option("--max-redirects", type=click.IntRange(0, 100), help="Redirects followed before giving up (default 10).")
@click.option("--allow-private", is_flag=True, default=None,
              help="Also capture private, loopback and link-local addresses (an intranet archive).")
@click.option("--insecure", is_flag=True, help="Do not verify TLS certificates; recorded in every capture's metadata.")
@click.option("--ca-bundle", type=click.Path(exists=True, dir_okay=False), help="Trust these CA certificates (PEM) instead of the system's.")
@json_option
def capture(targets: tuple[str, ...], collection_dir: Path, as_json: bool, insecure: bool, **overrides) -> None:
    """Capture TARGETS: URLs, documents that cite URLs, or folders of documents.

    Each distinct URL is fetched once, with every redirect hop, into WARC 1.1 files in
    warcs/, and listed in the catalog with its outcome. In a folder that is not yet a
    collection, a collection is created first.

    \b
    Examples:
      archiver capture seeds/
      archiver capture https://example.org/report.pdf --timeout 120
      archiver capture -C ~/evidence article.txt --json

    Exit 0 when every URL was captured, 1 when some failed (the rest are saved), 2 on bad usage.
    """
    created = not Collection.exists(collection_dir)
    found = read_targets(list(targets))
    collection = Collection.init(collection_dir) if created else Collection.open(collection_dir)
    settings = collection.config.capture
    if insecure:
        overrides["verify_tls"] = False
    settings = dataclasses.replace(settings, **{k: v for k, v in overrides.items() if v is not None})

    out = console()
    if created and not as_json:
        out.print(f"Created a new collection in {collection.root} (settings in archiver.toml)")
    show_progress = not as_json and console(stderr=True).is_terminal and found.urls
    with CaptureRun(collection, settings) as run:
        if show_progress:
            with Progress(TextColumn("capturing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          TextColumn("{task.description}"), console=console(stderr=True), transient=True) as bar:
                task = bar.add_task("", total=len(found.urls))
                rows = run.capture(found.urls, lambda row: bar.update(task, advance=1, description=row.url[:60]))
        else:
            rows = run.capture(found.urls)

    failed = [r for r in rows if r.outcome == "failed"]
    if as_json:
        print_json({"collection": str(collection.root), "created_collection": created, "run": run.run_id,
                    "documents": [{"path": str(d.path), "sha256": d.sha256, "urls": list(d.urls)} for d in found.documents],
                    "counts": _counts(rows), "captures": [r.as_dict() for r in rows]})
    else:
        _print_summary(out, rows, found)
    if failed:
        raise SystemExit(1)


def _counts(rows: list[CaptureRow]) -> dict[str, int]:
    return {outcome: sum(r.outcome == outcome for r in rows) for outcome in ("ok", "truncated", "failed")}


def _print_summary(out, rows: list[CaptureRow], found) -> None:
    if found.documents:
        cited = sum(len(d.urls) for d in found.documents)
        out.print(f"Read {len(found.documents)} document(s) citing {cited} URL(s).")
    if not rows:
        out.print("Nothing to capture: no URLs found.")
        return
    problems = [r for r in rows if r.outcome != "ok"]
    listed = rows if len(rows) <= 30 else problems
    if listed:
        table = Table(show_edge=False, pad_edge=False)
        for column in ("capture", "URL", "result", "HTTP", "size", "detail"):
            table.add_column(column, overflow="fold")
        style = {"ok": "green", "truncated": "yellow", "failed": "red"}
        for r in listed:
            detail = r.error or (f"truncated ({r.truncated})" if r.truncated else "")
            if r.redirects and not r.error:
                detail = f"{r.redirects} redirect(s) → {r.final_url}" + (f"; {detail}" if detail else "")
            table.add_row(r.id, r.url, f"[{style[r.outcome]}]{r.outcome}[/]", str(r.http_status or "-"),
                          human_size(r.response_length), detail)
        out.print(table)
    counts = _counts(rows)
    out.print(f"{counts['ok']} captured, {counts['truncated']} truncated, {counts['failed']} failed"
              + (" (listed above)" if problems and len(rows) > 30 else ""))
