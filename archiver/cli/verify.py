"""`archiver verify`: check, offline, that nothing in the collection changed."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import click

from archiver.cli.recovery import warn_of_leftovers, worked_on_elsewhere
from archiver.cli.trust_options import ca_bundle_option, insecure_option
from archiver.cli.common import (collection_option, console, echo, json_option, key_option, one_line, print_json,
                                 print_table, shows_progress, signing_key, workers_option, working)
from archiver.store.collection import Collection
from archiver.store.rows import outcome_label
from archiver.evidence.custody import LOG_NAME
from archiver.evidence.keys import append_unattended
from archiver.check.findings import Report
from archiver.check.verify import verify_collection

# Capture, drift and replay (requests, Chromium, PIL) load only for the options that use them:
# a plain verify starts in a fraction of the time.
if TYPE_CHECKING:
    from archiver.check.drift import Drift
    from archiver.check.replay import ReplayCheck


@click.command()
@collection_option
@workers_option("Processes reading the WARC files (a large file is read in pieces by several), besides this one.")
@click.option("--live", is_flag=True, help="Also fetch each captured URL again and say whether the page has drifted.")
@click.option("--recapture", is_flag=True,
              help="With --live: capture again, as new history, the pages that changed, went or are now walled.")
@click.option("--allow-private", is_flag=True,
              help="With --live: also fetch private, loopback and link-local addresses (an intranet archive).")
@insecure_option
@ca_bundle_option
@click.option("--replay", is_flag=True,
              help="Also render each browser capture's page again from its own records, offline, and compare.")
@click.option("--capture", "capture_ids", multiple=True, help="With --replay: only this capture (id or prefix); repeatable.")
@key_option
@json_option
def verify(collection_dir: Path, workers: int, live: bool, recapture: bool, allow_private: bool, insecure: bool,
           ca_bundle: str | None, replay: bool, capture_ids: tuple[str, ...], key_file: Path | None, as_json: bool) -> None:
    """Check the collection offline: its records, attestations, manifests and custody log.

    Every WARC record's digests are checked (reading every byte), and the signed attestations,
    the manifests' signatures, chain and timestamps, and the custody log.

    Prints what passed, then every failure with its file, record and field (expected vs
    found), then what could not be checked. --live adds, per URL: unchanged (a page already 404
    is "still 404"), changed (with a text similarity for HTML), gone, still gone (already an
    HTTP error or a soft 404 when captured, missing another way now), walled (now behind a bot
    or login wall), unreachable, or not compared (a browser capture, rendered again to be
    compared, and no Chromium to render it); drift is reported, it is not a failure.

    --replay renders each browser capture's page again in Chromium from the capture's own
    records, with no network at all, and prints per capture its verdict (alike, differs, not
    compared, not replayed), how alike the screenshots are (share of pixels) and the visible
    texts (difflib ratio), from 0 to 1, and every request the replay made that the capture
    does not hold (a refused resource, or one the page asks for differently each time; one
    differing only in cache-busting query values, such as `?_=` and the time, is answered with
    the recorded one, and named in the notes). Alike needs 95% of both. Each result goes in the custody log ("replay check").

    Run while another archiver process works on the collection (a capture), it says so: what
    that process is writing may show as failures until it has finished.

    Exit 0 only when every check passed (and with --replay every replay is alike), 1 when any
    failed or a replay differs, could not be compared or could not be made, 2 on bad usage
    (also --replay without Chromium)."""
    live_only = {"--recapture": recapture, "--allow-private": allow_private, "--insecure": insecure, "--ca-bundle": ca_bundle}
    if not live and (given := [option for option, value in live_only.items() if value]):
        raise click.UsageError(f"{given[0]} needs --live")
    if capture_ids and not replay:
        raise click.UsageError("--capture needs --replay")
    with Collection.open(collection_dir) as collection:
        busy = worked_on_elsewhere(collection)
        if busy:
            echo("note: another archiver process is working on this collection now (a capture, an import): "
                 "the WARC file it is writing and what it lists meanwhile may show as failures; "
                 "verify again once it has finished", err=True)
        else:
            warn_of_leftovers(collection)
        if capture_ids:
            from archiver.capture.targets import existing_capture
        chosen = [existing_capture(collection.catalog, capture_id) for capture_id in capture_ids]
        logged_before = _custody_length(collection)
        report = _verified(collection, workers, busy, show_progress=shows_progress(as_json))
        if not busy and (_custody_length(collection) != logged_before or worked_on_elsewhere(collection)):
            busy = True  # every command that changes the collection logs it: one did while this one read
            echo("note: another archiver process changed this collection while verify ran (a capture, an import): "
                 "what it wrote meanwhile may show as failures; verify again once it has finished", err=True)
        unrecorded = append_unattended(collection, key_file, "verification run", {
            "ok": report.ok, "passed": sum(report.passed.values()), "failed": report.failed})
        drifts, recaptured, replays = [], [], []
        if live:
            from archiver.check.drift import check_drift, recapture_changed
            # Fetched again as captured: the private CA, or no verification, a capture was told of.
            settings = dataclasses.replace(collection.config.capture, **{key: value for key, value in (
                ("allow_private", True if allow_private else None), ("verify_tls", False if insecure else None),
                ("ca_bundle", ca_bundle)) if value is not None})
            with working("checking live pages", shows_progress(as_json)) as step:  # a fetch, or a render, per URL
                drifts = check_drift(collection, settings, step)
            # A page gone or walled is recaptured too: that it went is what a fact-checker must keep.
            if recapture and (changed := [d for d in drifts if d.state in ("changed", "gone", "walled")]):
                recaptured = recapture_changed(collection, changed, signing_key(collection, key_file), settings)
        if replay:
            from archiver.check.replay import browser_captures, replay_captures
            with working("replaying browser captures", shows_progress(as_json)) as step:  # a render each
                replays = replay_captures(collection, chosen or browser_captures(collection),
                                          lambda event, subject: append_unattended(collection, key_file, event, subject),
                                          step)
    if as_json:
        print_json({**report.as_dict(), "another_process_working": busy, "recorded_in_custody_log": unrecorded is None,
                    "not_recorded_because": unrecorded,
                    "live": [d.as_dict() for d in drifts] if live else None,
                    "recaptured": [r.as_dict() for r in recaptured],
                    "replay": [r.as_dict() for r in replays] if replay else None})
    else:
        print_report(report)
        if unrecorded:
            console().print(f"(Not recorded in the custody log: {unrecorded}.)", markup=False)
        if live:
            _print_drift(drifts, recaptured)
        if replay:
            print_replays(replays)
    # A recapture that failed is a URL that could not be captured (README's exit code 1).
    if not report.ok or any(not r.alike for r in replays) or any(r.outcome == "failed" for r in recaptured):
        raise SystemExit(1)


def print_replays(replays: list[ReplayCheck]) -> None:
    """Per capture: how alike the replay is, and what it asked for that the capture does not hold."""
    out = console()
    if not replays:
        out.print("\nNo browser captures to replay.")
        return
    out.print("\nBrowser captures replayed from their own records (1 = alike):")
    print_table(("capture", "URL", "replay", "pixels", "text", "missing from the capture"),
                [[r.capture_id, r.url, r.verdict, _share(r.pixel_similarity), _share(r.text_similarity),
                  "\n".join(r.missing) or "nothing"]
                 if r.replayed else [r.capture_id, r.url, r.verdict, "", "", r.error] for r in replays],
                whole=("capture", "URL", "missing from the capture"))
    for r in replays:
        for line in [f"differs: {difference}" for difference in r.differences] + r.notes:
            out.print(f"  {r.capture_id}: {line}", markup=False)
    if replays and not replays[0].recorded_in_custody_log:
        out.print(f"(Replay checks not recorded in the custody log: {replays[0].not_recorded_because}.)", markup=False)


def _verified(collection: Collection, workers: int, busy: bool, show_progress: bool) -> Report:
    """verify_collection(), with a progress bar of the WARC bytes read on a terminal."""
    if not show_progress:
        return verify_collection(collection, workers=workers, written_now=busy)
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("verifying WARC files"), BarColumn(), DownloadColumn(), TimeElapsedColumn(),
                  console=console(stderr=True), transient=True) as bar:
        task = bar.add_task("", total=None)
        return verify_collection(collection, workers=workers, written_now=busy,
                                 on_read=lambda read, of_bytes: bar.update(task, completed=read, total=of_bytes))


def _print_drift(drifts: list[Drift], recaptured: list) -> None:
    out = console()
    out.print("\nLive pages, against their newest capture:")
    print_table(("URL", "now", "detail"), [[drift.url, drift.state, drift.detail] for drift in drifts], whole=("URL",))
    for row in recaptured:
        if row.outcome == "failed":
            out.print(f"Recapture of {row.url} failed ({row.id}): {row.error}", markup=False)
        else:
            out.print(f"Recaptured {row.url} as {row.id} ({outcome_label(row.outcome)})", markup=False)


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def print_report(report: Report) -> None:
    """Counts of passed checks, then every failure, then what could not be checked."""
    from rich.markup import escape  # here, not at the top: a --json verdict never imports rich

    out = console()
    total = sum(report.passed.values())
    _print_established(out, report.established)
    out.print(f"{total} checks passed, {report.failed} failed")
    for name, count in sorted(report.passed.items()):
        out.print(f"  [green]passed[/] {count:>7}  {name}")
    # Failures and what was not checked quote outside text (a forged bundle's ids and URLs): each
    # stays on its line, or it could print a verdict line of its own above the real one.
    if report.failures:
        out.print("\n[red]Failures:[/]")
        for failure in report.failures:
            out.print(f"  [red]FAIL[/] {escape(one_line(f'{failure.check}: {failure.where}: {failure.detail}'))}",
                      highlight=False)
        for name, count in sorted(report.unlisted.items()):
            out.print(f"  [red]FAIL[/] {escape(name)}: {count:,} more, not listed", highlight=False)
    if report.not_checked:
        out.print("\nNot checked:")
        for item in report.not_checked:
            out.print(f"  - {one_line(item)}", markup=False)
    out.print("\n" + ("Every check above passed." if report.ok else "Verification FAILED."))
    if shows := report.established.get("shows"):  # a pass says the bundle is authentic, not what it shows
        out.print(one_line(f"What the captures show: {shows['summary']}"), markup=False)
        out.print(one_line(f"  ({shows['signed_by']})"), markup=False)


def _print_established(out, established: dict) -> None:
    """What a bundle's verified signature vouches for, before the counts: which bundle, whose,
    when, and what its timestamp proves."""
    if not established:
        return
    who = " ".join(filter(None, (established.get("collection"), established.get("collection_id") and
                                 f"({established['collection_id']})")))
    # The maker's own words (its collection's name, operator): signed, yet kept on their line, so that
    # none reads as a line of this report (a timestamp the bundle does not have).
    out.print(one_line(f"Bundle {established.get('bundle')}, made {established.get('made')} by {established.get('software')}"),
              markup=False)
    imported = established.get("captures_imported", 0)
    # An imported capture was made by another tool: archiver proves its bytes, not how it was made.
    its, file = ("its", "file's") if imported == 1 else ("their", "files'")
    also = (f", and {imported} imported ({its} time, IP address and certificate are the imported {file} word; "
            f"archiver vouches only that {its} bytes are unchanged since the import)") if imported else ""
    out.print(one_line(f"  from the collection {who or '(unnamed)'}, operator {established.get('operator')}; "
                       f"manifest {established.get('manifest')}; {established.get('captures_proven', 0)} capture(s) "
                       f"made by archiver proven in it{also}"), markup=False)
    if stamped := established.get("timestamp"):
        bytes_only = " (of an imported one, its bytes)" if imported else ""
        out.print(one_line(f"  timestamped {stamped['time']} by {stamped['tsa']}: the manifest's checkpoint, and every "
                           f"capture it lists{bytes_only}, existed by then"), markup=False)
    out.print("")


def _custody_length(collection: Collection) -> int:
    """How far the custody log reaches now: its size, or on a shared collection its last seq."""
    if collection.config.catalog_url:
        return collection.catalog.query("SELECT COALESCE(MAX(seq), 0) FROM custody_entries").fetchone()[0]
    log = collection.root / LOG_NAME
    return log.stat().st_size if log.exists() else 0
