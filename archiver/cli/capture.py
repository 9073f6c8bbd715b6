"""`archiver capture`: fetch URLs, documents' URLs, or folders of documents into WARC files."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sqlite3
from pathlib import Path
from typing import Callable, Iterator

import click
from click.core import ParameterSource
from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from archiver.capture.run import CaptureRun
from archiver.capture.targets import existing_capture
from archiver.capture.targets import Targets, read_targets
from archiver.store.rows import CaptureRow, outcome_label
from archiver.store.leftovers import shared_by_machines
from archiver.store.runs import Unfinished
from archiver.cli.common import (collection_option, console, json_option, key_option, literal, one_line, passphrase,
                                 print_json, report_error, shows_progress, signing_key, working)
from archiver.cli.capture_summary import cited_failures, outcome_counts, print_summary, verdict_counts
from archiver.cli.new_collection import refuse_a_named_folder_not_a_collection
from archiver.cli.trust_options import ca_bundle_option, insecure_option
from archiver.store.collection import Collection
from archiver.store.settings import MAX_SECONDS
from archiver.store.sizes import parse_size
from archiver.errors import StorageProblem, UsageProblem
from archiver.check.replay import browser_captures, replay_captures
from archiver.cli.recovery import repair_interrupted, resuming
from archiver.cli.interrupts import INTERRUPTED, stopping_on_signals
from archiver.cli.verify import print_replays
from archiver.evidence.keys import create_collection, custody_log
from archiver.read.seeds import Claim, note_claim
from archiver.read.urls import normalise_url
from archiver.evidence.signing import SigningKey, grouped


def _seconds(ctx, param, value):
    if value is not None and not math.isfinite(value):  # FloatRange lets nan and inf through
        raise click.BadParameter(f"{value} is no number of seconds: give one such as 60")
    return value


def _size(ctx, param, value):
    if value is None:
        return None
    try:
        return parse_size(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def capture_options(function):
    """The options shared by every command that captures."""
    options = [
        collection_option,
        click.option("--concurrency", type=click.IntRange(1, 256), help="Captures at once (default from archiver.toml, else 8 over HTTP, 4 pages in a browser)."),
        click.option("--per-host", type=click.IntRange(1, 64), help="Captures at once against one host (default 2)."),
        click.option("--timeout", type=click.FloatRange(min=0, min_open=True, max=MAX_SECONDS), callback=_seconds,
                     help="Wall-clock seconds allowed for one capture, redirects included (default 60)."),
        click.option("--max-size", callback=_size,
                     help="Bytes kept of one response, e.g. 200MB; the rest is cut and marked WARC-Truncated."),
        click.option("--max-redirects", type=click.IntRange(0, 100), help="Redirects followed before giving up (default 10)."),
        click.option("--allow-private", is_flag=True, default=None,
                     help="Also capture private, loopback and link-local addresses (an intranet archive)."),
        click.option("--browser/--no-browser", "browser", default=None,
                     help="Render pages in Chromium and record every request they make, or fetch only the URL "
                          "itself (default: capture_mode in archiver.toml; auto uses Chromium when installed)."),
        click.option("--qa", is_flag=True,
                     help="Then replay each page rendered in the browser from its own records, offline, and say "
                          "whether it is alike and what it asked for that was not captured (see `archiver verify --replay`)."),
        insecure_option,
        ca_bundle_option,
        key_option,
        json_option,
    ]
    for option in reversed(options):
        function = option(function)
    return function


@click.command()
@click.argument("targets", nargs=-1, required=True)
@click.option("--resume", is_flag=True,
              help="Capture what the run stopped by Ctrl-C or a crash had not, of these targets; "
                   "refused while another capture runs.")
@click.option("--queue", "to_queue", is_flag=True,
              help="Read the documents, then queue one job per URL for `archiver worker` (a collection whose "
                   "catalog is on PostgreSQL) instead of capturing here.")
@click.option("--wait", is_flag=True, help="With --queue: follow the jobs until done, then print the usual summary.")
@capture_options
def capture(targets: tuple[str, ...], resume: bool, to_queue: bool, wait: bool, collection_dir: Path,
            key_file: Path | None, as_json: bool, insecure: bool, **overrides) -> None:
    """Capture TARGETS: URLs, documents that cite URLs, or folders of documents.

    Documents are read into claims (see `archiver claims`); each distinct URL is fetched
    once, with every redirect hop, into WARC 1.1 files in warcs/, and linked to every claim
    that cites it. A page unchanged since its last capture is stored as a revisit record.
    Run in a folder that is in no collection, without -C, it creates one there first; a folder
    named by -C (or $ARCHIVER_COLLECTION) must be a collection already (see `archiver init`).

    \b
    Examples:
      archiver capture seeds/
      archiver capture https://example.org/report.pdf --timeout 120
      archiver capture -C ~/evidence article.txt --json

    With --qa, each page rendered in the browser is then replayed from its own records with no
    network at all, compared with what was captured, and the result logged ("replay check").

    Ctrl-C (or SIGTERM) stops the run: no new capture starts, those under way have two seconds
    to finish, what is whole is stored; --resume then captures the rest. A second Ctrl-C stops at once.

    With --queue, a shared collection's URLs are queued for `archiver worker` processes on any
    machine instead (a URL still waiting in the queue is not queued again); --wait follows them.
    Workers capture with the settings of their archiver.toml, so a capture option (--timeout,
    --no-browser, --qa…) is refused with --queue (exit 2) rather than dropped.

    Exit 0 when every URL was captured, 1 when some failed (the rest are saved) or, with --qa,
    a page's replay is not alike (it differs, or could not be compared or made), 2 on bad
    usage, 3 when the machine refused (a full disk: what was stored before is listed), 130
    when interrupted.
    """
    if wait and not to_queue:
        raise click.UsageError("--wait follows queued jobs: use it with --queue")
    if to_queue and resume:
        raise click.UsageError("--resume takes up a capture stopped here; a queued job a worker left is taken "
                               "again by the others: drop --resume")
    if to_queue:
        _refuse_what_workers_would_drop(["insecure", *overrides])
    refuse_a_named_folder_not_a_collection(collection_dir)
    found = _read_with_progress(list(targets), collection_dir, shows_progress(as_json))
    if to_queue:
        from archiver.cli.queue import queue_capture  # the queue's client: only when queueing
        return queue_capture(collection_dir, found, key_file, as_json, wait)
    collection = Collection.open(collection_dir) if Collection.exists(collection_dir) else None
    if resume and collection is None:  # no collection, no run of it to resume: none is made
        return _nothing_to_resume(collection_dir.absolute(), as_json)
    with collection or contextlib.nullcontext(), resuming(collection) if resume else contextlib.nullcontext():
        run_capture(collection_dir, collection, key_file, found, None, as_json, insecure, overrides, resume=resume)


def _refuse_what_workers_would_drop(names: list[str]) -> None:
    """With --queue, the workers capture with their own archiver.toml: an option of this run
    given them would be dropped unsaid (a --timeout 1 job captured whole, said ok)."""
    context = click.get_current_context()
    for param in context.command.params:
        if param.name in names and context.get_parameter_source(param.name) is not ParameterSource.DEFAULT:
            raise UsageProblem(f"{'/'.join(param.opts + param.secondary_opts)} does not apply to queued jobs: "
                               "workers capture with the settings in the collection's archiver.toml",
                               "drop it (the workers' settings are in [capture] of the archiver.toml in their folders)")


def _read_with_progress(targets: list[str], collection_dir: Path, shown: bool) -> Targets:
    """read_targets, with a bar on a terminal of the bytes of each claim sheet read: a sheet of
    a quarter of a million rows takes a while, and said nothing while it did."""
    if not shown:
        return read_targets(targets, collection_dir)
    with contextlib.ExitStack() as showing:
        bar: Progress | None = None

        def tell(key: str, done: int, total: int) -> None:
            nonlocal bar
            if bar is None:  # drawn once a sheet is read, not for URLs or other documents
                bar = showing.enter_context(Progress(
                    TextColumn("reading"), BarColumn(), DownloadColumn(), TimeElapsedColumn(),
                    TextColumn("{task.description}", markup=False), console=console(stderr=True), transient=True))
                bar.add_task("", total=None)
            bar.update(bar.task_ids[0], completed=done, total=total, description=literal(one_line(key)[-60:]))
        return read_targets(targets, collection_dir, tell)


@click.command()
@click.argument("claim_text")
@click.argument("urls", nargs=-1)
@click.option("--capture", "capture_ids", multiple=True,
              help="Cite an existing capture (e.g. an imported one) by its id; repeatable.")
@capture_options
def cite(claim_text: str, urls: tuple[str, ...], capture_ids: tuple[str, ...], collection_dir: Path,
         key_file: Path | None, as_json: bool, insecure: bool, **overrides) -> None:
    """Record a one-off CLAIM_TEXT citing URLS, and capture them.

    With --capture, it cites captures already in the collection instead.

    \b
    Examples:
      archiver cite "The minister said X on 3 March" https://example.org/transcript
      archiver cite "As the leaked page showed" --capture 20261124172850-177ce85c

    A cited capture that failed (a URL that was dead then) is cited, with a warning naming why
    it failed.

    Exit 0 when every URL was captured, 1 when some failed (the claim is recorded and the rest
    are saved), 2 on bad usage (a URL that cannot be captured, an unknown capture id, a revoked
    key), 3 when the machine refused, 130 when interrupted."""
    if not urls and not capture_ids:
        raise click.UsageError("give the URLs the claim cites, or --capture ID")
    refuse_a_named_folder_not_a_collection(collection_dir)
    not_urls = [url for url in urls if "://" not in url]
    if not_urls:
        raise UsageProblem(f"{not_urls[0]} is not a URL", "give URLs with their scheme (https://…); capture documents with `archiver capture`")
    found = read_targets(list(urls), collection_dir)
    # A collection is made where there is none, unless the claim cites captures it must hold.
    collection = Collection.open(collection_dir) if capture_ids or Collection.exists(collection_dir) else None
    with collection or contextlib.nullcontext():
        existing = [existing_capture(collection.catalog, capture_id) for capture_id in capture_ids]
        run_capture(collection_dir, collection, key_file, found, note_claim(claim_text, list(found.urls) + [r.url for r in existing]),
                    as_json, insecure, overrides, existing)


def run_capture(collection_dir: Path, collection: Collection | None, key_file: Path | None, found: Targets,
                note: Claim | None, as_json: bool, insecure: bool, overrides: dict,
                existing: list[CaptureRow] | None = None, resume: bool = False) -> None:
    """Capture into `collection`, or into a new one made in `collection_dir` when it is None;
    `existing` are captures already there that the note cites. With `resume` (the collection held
    by cli.recovery.resuming), only what the unfinished runs it takes up did not capture."""
    if overrides.get("qa") and overrides.get("browser") is False:
        raise click.UsageError("--qa replays pages captured in a browser: drop --no-browser")
    created = collection is None
    if created:
        collection, key, _ = create_collection(collection_dir, key_file, passphrase(ask=False))
    else:
        key = signing_key(collection, key_file)
        repair_interrupted(collection, key)
    over, resumed = list(found.urls), Unfinished()
    if resume:  # after the repair: what it catalogs of a killed run counts as captured
        found.urls, resumed = collection.catalog.runs.left_to_capture(found.urls)
        if not resumed.runs:
            return _nothing_to_resume(collection.root, as_json)
        if running := collection.catalog.runs.running_elsewhere(resumed.runs):
            raise UsageProblem(f"run {running[0]} is still capturing these URLs on another machine: --resume "
                               "would capture again what it has not stored yet", "resume once it has finished")
    if insecure:
        overrides["verify_tls"] = False
    qa = overrides.pop("qa", False)
    browser = overrides.pop("browser", None)
    if browser is not None:
        overrides["capture_mode"] = "browser" if browser else "http"
    settings = dataclasses.replace(collection.config.capture, **{k: v for k, v in overrides.items() if v is not None})
    if qa and settings.capture_mode == "http":
        raise UsageProblem("--qa replays pages captured in a browser, and this run captures over HTTP",
                           "drop --no-browser (or set capture_mode to \"browser\" or \"auto\" in archiver.toml)")

    out = console()
    if created and not as_json:
        out.print(f"Created a new collection in {collection.root} (settings in archiver.toml)", markup=False)
        out.print(f"Signing key: {key.path} (fingerprint {grouped(key.fingerprint)})", markup=False)
    show_progress = not as_json and console(stderr=True).is_terminal and found.urls
    run = CaptureRun(collection, settings, key, over=over, resumes=resumed.runs)
    # What was stored is said also when the run's last upload fails, as it closes.
    with _saying_what_was_stored(run, out, found, as_json), run, stopping_on_signals(run.interrupt, as_json):
        if resume and not as_json:
            out.print(_resuming_line(resumed, len(found.urls), len(over)), markup=False)
        if found.urls and not as_json:
            out.print(f"Capturing {run.mode}", markup=False)
        # Within the signal handling: a Ctrl-C between a document's catalog commit and its custody
        # entry would leave a read the log never recorded.
        run.record_documents(found.documents)
        if note:
            run.record_note(note, [row.id for row in existing or []])
        if show_progress:
            with Progress(TextColumn("capturing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          TextColumn("{task.description}", markup=False), console=console(stderr=True),
                          transient=True) as bar:
                task = bar.add_task("", total=len(found.urls))
                rows = run.capture(found.urls, lambda row: bar.update(task, advance=1, description=literal(row.url[:60])))
        else:
            rows = run.capture(found.urls)
        unchanged_since, rendered_changes = run.unchanged_since(rows), run.rendered_changes(rows)
    # After the run, once its WARC files are published and can be read; the run's browser is closed by then.
    to_replay = browser_captures(collection, rows) if qa and not run.interrupted else []
    with working("replaying browser captures", show_progress and bool(to_replay)) as step:  # no bar for no replay
        replays = replay_captures(collection, to_replay, _logger(collection, key), step) if to_replay else []
    not_captured = _not_captured(found.urls, rows) if run.interrupted else []

    if as_json:
        print_json({"collection": str(collection.root), "created_collection": created, "run": run.run_id,
                    "documents": [{"key": d.key, "sha256": d.sha256, "kind": d.kind, "encoding": d.encoding,
                                   "date": d.date, "claims": len(d.claims), "urls": list(d.urls),
                                   "warnings": list(d.warnings), "ignored_links": list(d.ignored_links)}
                                  for d in found.documents],
                    "skipped": found.skipped,
                    "note": note.id if note else None,
                    "cited_captures": [r.id for r in existing or []],
                    "cited_capture_warnings": cited_failures(existing or []),
                    "counts": outcome_counts(rows),
                    "verdicts": verdict_counts(rows),
                    "captures": [{**r.as_dict(), "unchanged_since": unchanged_since.get(r.id),
                                  "rendered_change": rendered_changes.get(r.id)} for r in rows],
                    "replay": [r.as_dict() for r in replays] if qa else None,
                    "interrupted": run.interrupted, "not_captured": not_captured,
                    "resumed": {"runs": resumed.runs, "left": len(found.urls), "not_among_targets": resumed.not_given}
                    if resume else None})
    else:
        print_summary(out, rows, found, note, unchanged_since, rendered_changes, existing or [], resumed=resume)
        if qa:
            print_replays(replays)
    if run.interrupted:
        report_error(f"interrupted: {len(rows)} stored, {len(not_captured)} not captured; run the same "
                     "`archiver capture` with --resume to capture the rest", INTERRUPTED, as_json)
        raise SystemExit(INTERRUPTED)
    if any(r.outcome == "failed" for r in rows) or any(not r.alike for r in replays):
        raise SystemExit(1)


@contextlib.contextmanager
def _saying_what_was_stored(run: CaptureRun, out, found: Targets, as_json: bool) -> Iterator[None]:
    """When the machine stops the run (a full disk), what it stored before is listed before the
    error's one line: nothing of it is lost, and the user should not think otherwise."""
    try:
        yield
    except (OSError, StorageProblem, sqlite3.OperationalError):
        left = len(found.urls) - len(run.stored)
        if as_json:  # stdout still one JSON document, the error's on stderr
            print_json({"stored_before_error": [row.as_dict() for row in run.stored], "not_captured": left})
        elif run.stored or left:  # also with none stored (the catalog lost at once): what is left is resumed
            if run.stored:
                out.print(_stored_before(run), markup=False)
            for row in run.stored:
                out.print(f"  {outcome_label(row.outcome):<9} {row.url}", markup=False)
            out.print("Then run `archiver doctor --fix`" + (", and the same `archiver capture` with --resume for "
                      f"the {left} not captured." if left else "."), markup=False)
        raise


def _stored_before(run: CaptureRun) -> str:
    """What the run made before the error: in a store shared by machines a capture is listed
    only once its WARC file is uploaded, which the error may have stopped."""
    if not shared_by_machines(run.collection.storage):
        return f"Stored before the error below: {len(run.stored)} capture(s)"
    return (f"Captured before the error below: {len(run.stored)} capture(s); any whose WARC file is not uploaded "
            "waits in this machine's spool, and `captures` lists it once `archiver doctor --fix` uploads it")


def _nothing_to_resume(root: Path, as_json: bool) -> None:
    """`--resume` with no unfinished run of its URLs to take up (none was interrupted, or a
    resume or a run over the same URLs has finished since): it captures nothing, and says so."""
    if as_json:
        print_json({"collection": str(root), "nothing_to_resume": True, "captures": []})
    else:
        console().print("Nothing to resume: no capture of these URLs was left unfinished", markup=False)


def _resuming_line(resumed: Unfinished, left: int, given: int) -> str:
    """What a resume takes up, and what of it is not among its targets (so stays uncaptured)."""
    runs, they = (f"run {resumed.runs[0]}", "it") if len(resumed.runs) == 1 else (f"{len(resumed.runs)} runs", "they")
    line = f"Resuming the unfinished {runs}: {left} of {given} URL(s) left to capture"
    if resumed.not_given:
        line += (f"; {resumed.not_given} other URL(s) {they} set out to capture are not among these targets and "
                 "are not captured (give them too)")
    return line


def _not_captured(urls: list[str], rows: list[CaptureRow]) -> list[str]:
    """The URLs an interrupted run never stored, in the order given."""
    stored = {row.url_key for row in rows}
    return [url for url in urls if normalise_url(url) not in stored]


def _logger(collection: Collection, key: SigningKey) -> Callable[[str, dict], str | None]:
    """Appends to the custody log with the run's own key; never a reason not to."""
    custody = custody_log(collection, key)

    def append(event: str, subject: dict) -> None:
        custody.append(event, subject)
    return append
