"""The claims of evidence/report.html: for each claim, when it was first read and whether a later
read of its document no longer found it, which version of the document its place refers to, and
every URL it cited, now or before a re-read dropped it, with the period it cited it and its
captures, each marked as made while the claim cited that URL or not. A capture made after a
claim left its document, or before it cited the URL, is no evidence of what the claim cited."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Iterable

from archiver.exchange.report_captures import AFTER, BEFORE, CITED, NOT_CITED, UNSURE, WHILE, in_brief, made
from archiver.exchange.report_markup import anchor, definition_list, escape, literal, prose
from archiver.store.rows import ClaimRow

if TYPE_CHECKING:  # for type hints alone
    from archiver.exchange.capture_evidence import CaptureEvidence
    from archiver.store.catalog import Catalog


def claim_views(catalog: "Catalog", claims: list[ClaimRow], evidence: list[CaptureEvidence],
                custody: Iterable[dict | None], missing: dict[str, list[dict]]) -> list[dict]:
    """The report's view of each claim. `custody` are the custody log's entries (a document's
    reads, with the claims each found); `missing` (report_view.not_bundled) the URLs a claim cited
    of which the bundle holds no capture."""
    custody = list(custody)
    versions = _versions(catalog, claims, custody)
    cited_by_id = _cited_by_id(custody)
    captures: dict[str, list[CaptureEvidence]] = {}
    for item in evidence:
        captures.setdefault(item.capture.url_key, []).append(item)
    views = []
    for claim in claims:
        urls = []
        for url, key, dropped_at in [(url, key, None) for url, key in claim.citations] + list(claim.former_citations):
            # Not recorded (cited before archiver kept when): from the claim's first read at the earliest.
            since = claim.since(key)
            until = dropped_at or claim.superseded_at
            of_url = captures.get(key, [])
            # A claim citing captures of this URL by id cites those, whatever their time; the others are not its evidence.
            chosen = cited_by_id.get(claim.id, set()) & {item.capture.id for item in of_url}
            urls.append({"url": url, "since": since or claim.first_seen_at, "since_recorded": since is not None,
                         "until": until, "dropped": dropped_at is not None,
                         "captures": [(item.capture.id, (CITED if item.capture.id in chosen else NOT_CITED) if chosen
                                       else _when(item.capture.started_at, since or claim.first_seen_at, until,
                                                  since is not None)) for item in of_url],
                         "not_bundled": next((m for m in missing.get(claim.id, []) if m["url"] == url), None)})
        views.append({"id": claim.id, "text": claim.text, "kind": claim.kind, "document": claim.document_key,
                      "start": claim.start, "end": claim.end, "first_seen_at": claim.first_seen_at,
                      "superseded_at": claim.superseded_at, "version": versions.get(claim.id), "urls": urls,
                      "captures": [capture_id for url in urls for capture_id, timing in url["captures"] if timing != NOT_CITED],
                      "not_bundled": missing.get(claim.id, [])})
    return views


def _cited_by_id(custody: list[dict | None]) -> dict[str, set[str]]:
    """The captures each note cites by id (`archiver cite --capture`), as its signed custody entries record them."""
    cited: dict[str, set[str]] = {}
    for entry in custody:
        subject = (entry or {}).get("subject") or {}
        if (entry or {}).get("event") == "note recorded" and subject.get("captures"):
            cited.setdefault(subject.get("claim"), set()).update(subject["captures"])
    return cited


def _when(started_at: str, since: str, until: str | None, since_recorded: bool) -> str:
    started = datetime.fromisoformat(started_at)
    if started < datetime.fromisoformat(since):
        return BEFORE
    if until is not None and started >= datetime.fromisoformat(until):
        return AFTER
    return WHILE if since_recorded else UNSURE


def _versions(catalog: "Catalog", claims: list[ClaimRow], custody: Iterable[dict | None]) -> dict[str, str]:
    """The SHA-256 of the version of its document each claim's place refers to: the document's
    latest read for a current claim; for one a re-read no longer found, the last read the custody
    log records finding it in (none when that read predates the claims lists the log signs)."""
    latest = {document.key: document.sha256 for document in catalog.documents()}
    found = {claim.id: latest[claim.document_key] for claim in claims
             if claim.superseded_at is None and claim.document_key in latest}
    gone = {claim.id: claim.document_key for claim in claims if claim.superseded_at is not None and claim.document_key}
    documents = set(gone.values())
    for entry in custody:
        subject = (entry or {}).get("subject") or {}
        if (entry or {}).get("event") == "document read" and subject.get("document") in documents:
            found.update((claim_id, subject["sha256"]) for claim_id in subject.get("claims") or ()
                         if gone.get(claim_id) == subject["document"])
    return found


def claims_section(view: dict, document_name: dict[str, dict]) -> str:
    """The Claims section; `document_name` the documents the bundle carries, by name."""
    captures = {capture["id"]: capture for capture in view["captures"]}
    parts = ["<h2 id=\"claims\">Claims</h2>\n"]
    if not view["claims"]:
        parts.append("<p>This bundle holds no claims.</p>\n")
    for claim in view["claims"]:
        rows = [("Kind", escape(claim["kind"])), ("Document", _source(claim, document_name)),
                ("First read", _first_read(claim)), *_superseded(claim), ("Place", _place(claim)),
                ("URLs cited", "".join(_url(url, claim, captures) for url in claim["urls"]) or "none")]
        parts.append(f"<section class=\"item\" id=\"{anchor('claim', claim['id'])}\">\n<h3>Claim {literal(claim['id'])}</h3>\n"
                     f"<blockquote>{prose(claim['text'])}</blockquote>\n{definition_list(rows)}</section>\n")
    return "".join(parts)


def _source(claim: dict, documents: dict[str, dict]) -> str:
    document = claim["document"]
    if document is None:
        return "none (the claim was entered directly)"
    if document not in documents:
        return f"{literal(document)} (not in this bundle)"
    source = f"<a href=\"#{anchor('document', document)}\">{literal(document)}</a>"
    return source + (f", “{prose(documents[document]['title'])}”" if documents[document]["title"] is not None else "")


def _first_read(claim: dict) -> str:
    if claim["document"] is None:
        return f"{literal(claim['first_seen_at'])}, when it was first recorded"
    return f"{literal(claim['first_seen_at'])}, when a read of its document first found it"


def _superseded(claim: dict) -> list[tuple[str, str]]:
    if claim["document"] is None:
        return []
    if claim["superseded_at"] is None:
        return [("Superseded", "no: the latest read of its document still holds it")]
    return [("Superseded", f"<span class=\"warn\">yes: a re-read of its document at {literal(claim['superseded_at'])} "
                           "no longer found it; the claim is not in the document from then on</span>")]


def _place(claim: dict) -> str:
    if claim["document"] is None:  # a note's offsets are into its own text: there is no document to place it in
        return "none: the claim is in no document"
    if claim["start"] is None or claim["end"] is None:
        return "not recorded"
    place = f"characters {escape(claim['start'])} to {escape(claim['end'])} of the document"
    if claim["version"] is None:
        return place + " (which version of it is not recorded)"
    which = "as it was last read" if claim["superseded_at"] is None else "as it was last read with this claim in it"
    return f"{place} {which}, the version with SHA-256 {literal(claim['version'])}"


def _url(url: dict, claim: dict, captures: dict[str, dict]) -> str:
    if url["since_recorded"]:
        began = "its first read" if claim["document"] is not None else "it was first recorded"
        since = f"from {literal(url['since'])}" + (f" ({began})" if url["since"] == claim["first_seen_at"] else "")
    else:  # recorded before archiver kept when a claim began citing a URL
        first = "its first read" if claim["document"] is not None else "when it was first recorded"
        since = (f"from no earlier than {first}, {literal(url['since'])} (when it began citing this URL was not "
                 "recorded)")
    if url["until"] is None:
        until = "and still cites it"
    elif url["dropped"]:
        until = (f"<span class=\"warn\">until {literal(url['until'])}, when a re-read of its document no longer "
                 "found this URL in the claim (it cited it formerly)</span>")
    else:
        until = f"<span class=\"warn\">until {literal(url['until'])}, when the claim left its document</span>"
    items = []
    for capture_id, timing in url["captures"]:
        capture = captures[capture_id]
        changed = (", <span class=\"warn\">changed since the previous capture</span>"
                   if (capture.get("change") or {}).get("changed") else "")
        items.append(f"<li><a href=\"#{anchor('capture', capture_id)}\">capture {literal(capture_id)}</a>: "
                     f"{literal(capture['url'])}, {literal(capture['started_at'])}, {in_brief(capture)}{changed}; "
                     f"{made(timing)}</li>")
    if url["not_bundled"] is not None:
        items.append(f"<li>{_not_bundled(url['not_bundled'])}</li>")
    return (f"<p>{literal(url['url'])}: cited {since} {until}.</p>\n"
            + (f"<ul>{''.join(items)}</ul>\n" if items else "<p>No capture of it in this bundle.</p>\n"))


def _not_bundled(url: dict) -> str:
    if url.get("left_out"):
        became = ("its captures were left out, attested by a key revoked from before they were made (see "
                  "<a href=\"#left-out\">Left out of this bundle</a>)")
    elif url["outcome"] is None:
        became = "never captured"
    else:
        became = (f"newest capture {escape(url['outcome'])} on {literal(url['started_at'])}"
                  + (f": {prose(url['error'])}" if url["error"] else "") + "; it holds no page to bundle")
    return f"<span class=\"warn\">no capture in this bundle</span>: {literal(url['url'])}, {became}"
