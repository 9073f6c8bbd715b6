"""What the captures of a verified bundle show, for verify-bundle to say after its verdict: a
bundle that passes every check is authentic, which says nothing of whether its pages support
any claim (its captures may all be a page not found, or failures). Only signed words are used:
each capture's page verdict and outcome as its attestation signed them when it was captured,
and a failure with nothing received as its manifest entry and custody entry sign it."""

from __future__ import annotations

from collections import Counter

from archiver.capture.verdict import verdict_label
from archiver.exchange.bundle_unattested import unrecorded_failure

SIGNED_BY = ("each as archiver judged it when capturing, in the capture's signed attestation; a capture that failed with "
             "nothing received as its signed custody entry logged it; whether a page supports a claim is for its reader "
             "to judge")


def captures_show(entries: dict[str, dict], attested: dict[str, dict]) -> dict:
    """Of the proven manifest `entries` (by capture id), what each shows, counted: the page
    itself ("content") first, then what stood in its place, then failures, then the unjudged;
    `attested` holds what each verified attestation signed (its predicate), by capture id."""
    counts = Counter(_shown(entry, attested.get(capture_id)) for capture_id, entry in entries.items())
    ordered = sorted(counts.items(), key=lambda item: (_rank(item[0]), item[0]))
    return {"summary": ", ".join(f"{n} {label}" for label, n in ordered) or "no captures",
            "counts": dict(ordered), "signed_by": SIGNED_BY}


def _shown(entry: dict, predicate: dict | None) -> str:
    if predicate is None:
        if unrecorded_failure(entry):
            return f"failed ({entry.get('error') or 'no reason recorded'})"
        return "imported, not judged" if entry.get("imported_from") else "not attested"
    if predicate.get("outcome") == "failed":
        return f"failed ({predicate.get('error') or 'no reason recorded'})"
    verdict, status = predicate.get("verdict"), predicate.get("http_status")
    if verdict is None:
        said = "not judged (captured before archiver judged pages)"
    elif verdict in ("content", "http-error") or status in (None, 200):
        said = verdict_label(str(verdict), status)
    else:
        said = f"{verdict} (HTTP {status})"
    return said + (", truncated" if predicate.get("outcome") == "truncated" else "")


def _rank(label: str) -> int:
    if label.startswith("content"):
        return 0
    if label.startswith("failed"):
        return 2
    return 3 if label.startswith(("not ", "imported")) else 1
