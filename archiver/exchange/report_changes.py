"""What evidence/report.html says of a capture beside the one of the same URL before it: whether
the page changed (its payload digest differs, or, the same HTML, the page a browser rendered from
it or its verdict does, or one of the two was rendered and the other not) and, when both pages had text to read, which of
its visible lines were removed and which were added. A cited page edited between two captures
is evidence in itself, and a reader should not have to compare digests to find it."""

from __future__ import annotations

import difflib

from archiver.exchange.capture_evidence import CaptureEvidence

MAX_CHANGED_LINES = 20  # a short diff: the report points at the change, the records hold the pages
LINE_CHARS = 300


def changes_since_previous(evidence: list[CaptureEvidence]) -> dict[str, dict]:
    """For each complete capture after the first complete one of its URL in this bundle, by
    capture id: the previous one, whether the payload changed and the visible lines that did."""
    found: dict[str, dict] = {}
    previous: dict[str, CaptureEvidence] = {}
    for item in sorted(evidence, key=lambda e: (e.capture.started_at, e.capture.id)):
        capture = item.capture
        if capture.outcome != "ok" or capture.payload_digest is None:
            continue
        before = previous.get(capture.url_key)
        previous[capture.url_key] = item
        if before is None:
            continue
        payload_changed = before.capture.payload_digest != capture.payload_digest
        # The same HTML can render another page (a script's app shell now saying "Page not found"),
        # and is judged on its own when fetched without a browser: a capture is unchanged only when
        # both were rendered or neither, and its verdict and what it rendered are the same.
        rendered = before.page is not None and item.page is not None
        basis_changed = (before.page is None) != (item.page is None)
        # One never judged (made before verdicts, or imported) has no verdict for this one's to differ from.
        verdict_changed = before.capture.verdict is not None and before.capture.verdict != capture.verdict
        # The same bytes rendered once and fetched alone once were captured another way, not changed:
        # their texts and verdicts differ for that alone, so neither is compared.
        another_way = basis_changed and not payload_changed
        changed = payload_changed or (not another_way and (verdict_changed or (rendered and before.text != item.text)))
        compared = changed and before.text is not None and item.text is not None
        lines = _changed_lines(before.text, item.text) if compared else []
        found[capture.id] = {"previous": before.capture.id, "previous_started_at": before.capture.started_at,
                             "changed": changed, "payload_changed": payload_changed, "another_way": another_way,
                             "rendered": (before.page is not None, item.page is not None),
                             "verdict": capture.verdict if verdict_changed else None,
                             "previous_verdict": before.capture.verdict,
                             "text_compared": compared, "lines": lines[:MAX_CHANGED_LINES],
                             "more_lines": max(0, len(lines) - MAX_CHANGED_LINES)}
    return found


def _changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    """The lines removed ("−") and added ("+"), in page order."""
    old, new = before.split("\n"), after.split("\n")
    lines: list[tuple[str, str]] = []
    for tag, old_start, old_end, new_start, new_end in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag != "equal":
            lines += [("−", line) for line in old[old_start:old_end]] + [("+", line) for line in new[new_start:new_end]]
    return [(sign, line if len(line) <= LINE_CHARS else line[:LINE_CHARS] + "…") for sign, line in lines]
