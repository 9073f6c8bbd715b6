"""`archiver verify`: check, offline, that nothing in the collection changed."""

from __future__ import annotations

import os
from pathlib import Path

import click
from rich.table import Table

from archiver.cli.common import collection_option, console, json_option, key_option, print_json, signing_key
from archiver.store.collection import Collection
from archiver.check.drift import Drift, check_drift, recapture_changed
from archiver.evidence.keys import append_unattended
from archiver.check.findings import Report
from archiver.check.verify import verify_collection


@click.command()
@collection_option
@click.option("--workers", type=click.IntRange(1, 64), default=os.cpu_count() or 1, show_default="all cores",
              help="WARC files read in parallel.")
@click.option("--live", is_flag=True, help="Also fetch each captured URL again and say whether the page has drifted.")
@click.option("--recapture", is_flag=True, help="With --live: capture the changed pages again, as new history.")
@key_option
@json_option
def verify(collection_dir: Path, workers: int, live: bool, recapture: bool, key_file: Path | None, as_json: bool) -> None:
    """Check, offline, every WARC record's digests (reading every byte), the signed
    attestations, the manifests' signatures, chain and timestamps, and the custody log.

    Prints what passed, then every failure with its file, record and field (expected vs
    found), then what could not be checked. --live adds, per URL: unchanged, changed (with
    a text similarity for HTML), gone or unreachable; drift is reported, it is not a failure.
    Exit 0 only when every check passed, 1 when any failed, 2 on bad usage."""
    if recapture and not live:
        raise click.UsageError("--recapture needs --live")
    with Collection.open(collection_dir) as collection:
        report = verify_collection(collection, workers=workers)
        unrecorded = append_unattended(collection, key_file, "verification run", {
            "ok": report.ok, "passed": sum(report.passed.values()), "failed": len(report.failures)})
        drifts = check_drift(collection, collection.config.capture) if live else []
        recaptured = []
        if recapture and (changed := [d for d in drifts if d.state == "changed"]):
            recaptured = recapture_changed(collection, changed, signing_key(collection, key_file))
    if as_json:
        print_json({**report.as_dict(), "recorded_in_custody_log": unrecorded is None,
                    "not_recorded_because": unrecorded,
                    "live": [d.as_dict() for d in drifts] if live else None,
                    "recaptured": [r.as_dict() for r in recaptured]})
    else:
        print_report(report)
        if unrecorded:
            console().print(f"(Not recorded in the custody log: {unrecorded}.)")
        if live:
            _print_drift(drifts, recaptured)
    if not report.ok:
        raise SystemExit(1)


def _print_drift(drifts: list[Drift], recaptured: list) -> None:
    out = console()
    out.print("\nLive pages, against their newest capture:")
    table = Table(show_edge=False, pad_edge=False)
    for column in ("URL", "now", "detail"):
        table.add_column(column, overflow="fold")
    style = {"unchanged": "green", "changed": "yellow", "gone": "red", "unreachable": "red"}
    for drift in drifts:
        table.add_row(drift.url, f"[{style[drift.state]}]{drift.state}[/]", drift.detail)
    out.print(table)
    for row in recaptured:
        out.print(f"Recaptured {row.url} as {row.id} ({row.outcome})")


def print_report(report: Report) -> None:
    """Counts of passed checks, then every failure, then what could not be checked."""
    out = console()
    total = sum(report.passed.values())
    out.print(f"{total} checks passed, {len(report.failures)} failed")
    for name, count in sorted(report.passed.items()):
        out.print(f"  [green]passed[/] {count:>7}  {name}")
    if report.failures:
        out.print("\n[red]Failures:[/]")
        for failure in report.failures:
            out.print(f"  [red]FAIL[/] {failure.check}: {failure.where}: {failure.detail}", markup=True, highlight=False)
    if report.not_checked:
        out.print("\nNot checked:")
        for item in report.not_checked:
            out.print(f"  - {item}")
    out.print("\n" + ("Every check above passed." if report.ok else "Verification FAILED."))
