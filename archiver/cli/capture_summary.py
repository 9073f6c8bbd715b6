"""What a capture run says it did: the summary `archiver capture` and `cite` print, and its counts."""

from __future__ import annotations

from collections import Counter

from rich.markup import escape

from archiver.capture.revisits import captured_another_way
from archiver.capture.targets import Targets
from archiver.capture.verdict import VERDICTS, verdict_label
from archiver.cli.common import one_line
from archiver.read.seeds import Claim
from archiver.store.rows import NO_PAYLOAD, CaptureRow


def outcome_counts(rows: list[CaptureRow]) -> dict[str, int]:
    return {outcome: sum(r.outcome == outcome for r in rows) for outcome in ("ok", "truncated", "failed")}


def print_summary(out, rows: list[CaptureRow], found: Targets, note: Claim | None,
                  unchanged_since: dict[str, str], rendered_changes: dict[str, str], existing: list[CaptureRow],
                  resumed: bool = False) -> None:
    """What the run read and captured; `resumed`: a resume, whose own line said what was left."""
    for document in found.documents:
        out.print(f"Read {escape(one_line(document.key))}: {len(document.claims)} claim(s) citing {len(document.urls)} URL(s)")
        for warning in document.warnings:
            out.print(f"  [yellow]warning:[/] {escape(warning)}")
    for warning in found.skipped:
        out.print(f"[yellow]warning:[/] {escape(warning)}")
    if note:
        out.print(f"Recorded claim {note.id} citing {len(note.citations)} URL(s)")
    for row in existing:
        out.print(f"  citing capture {row.id} of {row.url} ({row.started_at[:10]}), already in the collection", markup=False)
    for warning in cited_failures(existing):
        out.print(f"  [yellow]warning:[/] {escape(warning)}")
    if not rows:
        if not note and not found.urls and not resumed:  # URLs given but none stored: an interruption, told on stderr
            out.print("Nothing to capture: no URLs found.")
        return
    for r in rows:  # only what needs a look: the rest is counted
        problem, rendered = _problem(r), rendered_changes.get(r.id)
        if problem or rendered:  # the same HTML shown as another page: the change leads
            detail = "; ".join(filter(None, (rendered, _detail(r))))
            label = problem or ("same bytes" if rendered and captured_another_way(rendered) else "changed")
            out.print(f"{label:<16}{r.url}" + (f"  {detail}" if detail else ""), markup=False)
        if r.incomplete:  # captured, and perhaps content, but less than the page had: said where it is looked at
            out.print(f"[yellow]warning:[/] {escape(r.url)}: {escape(r.incomplete)}")
    captured = [r for r in rows if r.outcome != "failed"]
    verdicts = ", ".join(f"{count} {verdict}" for verdict, count in verdict_counts(captured).items())
    others = [f"{count} {outcome}" for outcome, count in outcome_counts(rows).items() if outcome != "ok" and count]
    if incomplete := sum(bool(r.incomplete) for r in captured):
        others.append(f"{incomplete} incomplete")
    if unchanged_since:
        others.append(f"{len(unchanged_since)} unchanged since their last capture")
    if another_way := sum(captured_another_way(change) for change in rendered_changes.values()):
        others.append(f"{another_way} the same HTML captured another way (rendered or not)")
    if shown_otherwise := len(rendered_changes) - another_way:
        others.append(f"{shown_otherwise} showing another page from the same HTML")
    out.print(f"{len(captured)} captured" + (f": {verdicts}" if verdicts else "") + ("; " + ", ".join(others) if others else ""),
              markup=False)


def cited_failures(existing: list[CaptureRow]) -> list[str]:
    """A failed capture is cited as asked (that a URL was dead then is evidence too), but never
    taken for the page: each is named, with why it failed; so is an imported revisit without its
    original's payload."""
    return [f"capture {r.id} failed ({r.error}): the claim cites that {r.url} could not be captured then, "
            "not its page" for r in existing if r.outcome == "failed"] + \
        [f"capture {r.id} of {r.url} is a {NO_PAYLOAD}: the claim cites a record of the response's head, with no "
         "content to show; import the file holding its original response" for r in existing if r.payload_missing]


def verdict_counts(rows: list[CaptureRow]) -> dict[str, int]:
    """How many captures got each verdict, in the order of VERDICTS; verdicts none got are left out."""
    counts = Counter(r.verdict for r in rows)
    return {verdict: counts[verdict] for verdict in VERDICTS if counts[verdict]}


def _problem(row: CaptureRow) -> str | None:
    """Why a capture needs a look (failed, truncated, or a page that is not content), or None."""
    if row.outcome != "ok":
        return row.outcome
    if row.verdict not in (None, "content"):
        return verdict_label(row.verdict, row.http_status)
    return None


def _detail(row: CaptureRow) -> str:
    if row.outcome == "failed":
        return row.error or ""
    said = [f"truncated ({row.truncated})" if row.truncated else "",
            verdict_label(row.verdict, row.http_status) if row.truncated and row.verdict != "content" else "",
            row.verdict_reason if row.verdict != "http-error" else ""]
    return "; ".join(part for part in said if part)
