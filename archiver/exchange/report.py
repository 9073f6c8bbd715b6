"""evidence/report.html: the page a lawyer or court clerk reads inside an evidence bundle.

It explains what the bundle holds and, first of all, how to check it with ordinary tools.
Every string in the view comes from web pages, documents or the bundle itself, so all of
it is untrusted: each one is HTML-escaped, the page makes no link away from itself, and its
Content-Security-Policy forbids loading anything (but the screenshots it carries inside itself
as data: images, when it has any), so even a string that slipped through escaping could
neither run nor fetch. Strings placed in shell commands a clerk will paste
are quoted, or left out when quoting cannot make them safe.

This module lays out the page and its sections; the escaping is report_markup's, the steps
and commands for verifying the bundle are report_steps', a browser capture's page is
report_page's."""

from __future__ import annotations

from archiver.exchange.report_captures import captures_section
from archiver.exchange.report_claims import claims_section
from archiver.exchange.report_markup import (anchor, count, definition_list, escape, fingerprint_literal, key_link, literal,
                                              or_absent, prose)
from archiver.exchange.report_page import utc, when
from archiver.exchange.report_steps import public_key_path, sha256_hex, verification_section

CSP = "default-src 'none'; style-src 'unsafe-inline'"
# A report with screenshots carries each inside itself, as a data: URI, and allows images from there only.
CSP_WITH_SCREENSHOTS = CSP + "; img-src data:"

# System fonts only: a web font would be an external resource, and the CSP would block it anyway.
STYLE = """
html { background: #fff; color: #111; }
body { font: 11pt/1.5 Georgia, "Times New Roman", serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .5rem; }
h1 .made { display: block; font-size: 1rem; font-weight: normal; margin-top: .3rem; }
h2 { font-size: 1.25rem; border-bottom: 1px solid #888; margin-top: 2.2rem; }
h3 { font-size: 1.05rem; margin-bottom: .3rem; }
code, pre, .mono { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: .88em; }
/* Machine strings (ids, digests, URLs, paths) may break anywhere: they have no words to keep whole.
   Text breaks at spaces only, and a word too long for its line wraps without squeezing its column. */
code, pre { overflow-wrap: anywhere; }
td, dd, li, p, blockquote, .lines { overflow-wrap: break-word; }
pre { white-space: pre-wrap; background: #f3f3f3; border: 1px solid #ccc; padding: .5rem .7rem; }
blockquote { white-space: pre-wrap; margin: .4rem 0 .6rem; padding: .3rem .8rem; border-left: 4px solid #888; }
table { border-collapse: collapse; width: 100%; margin: .4rem 0; }
th, td { text-align: left; vertical-align: top; border: 1px solid #bbb; padding: .25rem .4rem; }
dl { display: grid; grid-template-columns: minmax(8rem, 12rem) minmax(0, 1fr); gap: .15rem 1rem; margin: .3rem 0; }
dt { font-weight: bold; }
dd { margin: 0; }
.item { border-top: 1px solid #ddd; padding-top: .3rem; }
.warn { font-weight: bold; }
.ctl { border: 1px solid #888; font-size: .75em; padding: 0 .15em; }
figure { margin: .6rem 0; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid #888; }
figcaption { font-weight: bold; margin-bottom: .3rem; }
.removed { text-decoration: line-through; }
.lines { white-space: pre-wrap; margin: .3rem 0; padding: .3rem .8rem; border-left: 4px solid #ccc; }
.when { white-space: nowrap; }  /* a date is not broken at its hyphens */
mark { background: #ff6; color: #000; }
a { color: #1a4d8f; }
@media (max-width: 36rem) {  /* a phone held upright: each label above its value */
  dl { grid-template-columns: minmax(0, 1fr); }
  dd { margin-bottom: .3rem; }
}
@media print {
  body { max-width: none; margin: 0; font-size: 10pt; }
  a { color: inherit; text-decoration: none; }
  pre { background: none; }
  h2, h3 { break-after: avoid; }
  .item, pre, tr { break-inside: avoid; }
}
@page { margin: 18mm; }
"""


def render_report(view: dict) -> str:
    """The complete HTML page for `view`, the structure `archiver.exchange.bundle` assembles."""
    screenshots = any((capture.get("page") or {}).get("screenshot") for capture in view["captures"])
    return "".join([
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{escape(CSP_WITH_SCREENSHOTS if screenshots else CSP)}\">\n",
        "<meta name=\"referrer\" content=\"no-referrer\">\n",
        f"<title>{escape(_heading(view, as_html=False))}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        f"<h1>{_heading(view, as_html=True)}</h1>\n",
        _summary(view),
        verification_section(view),
        claims_section(view, {document["key"]: document for document in view["documents"]}),
        captures_section(view),
        _left_out(view),
        _documents(view),
        _keys(view),
        _bundle_and_manifest(view),
        _files(view),
        "</body>\n</html>\n",
    ])


def _heading(view: dict, as_html: bool) -> str:
    """What the bundle is evidence of, the collection it came from and when it was made, in words:
    the heading a reader sees first (the bundle's id is in the details below). As HTML, the
    strings from documents and the collection are isolated like all prose; else plain text."""
    text, quoted = (escape, prose) if as_html else (str, str)
    claims, documents, captures = view["claims"], view["documents"], view["captures"]
    notes = _notes(claims)
    if len(claims) > notes:
        subject = text(f"Web pages cited by {count(len(claims) - notes, 'claim')}")
        if len(documents) == 1:
            subject += text(" in “") + quoted(documents[0]["title"] or documents[0]["key"]) + text("”")
        elif documents:
            subject += text(f" in {len(documents)} documents")
        subject += text(f" and {count(notes, 'note')}") if notes else ""
    elif notes:
        subject = text(f"Web pages cited by {count(notes, 'note')}")
    else:
        subject = text(f"{count(len(captures), 'capture')} of {count(len({c['url'] for c in captures}), 'web page')}")
    bundle = view["bundle"]
    made = (text("Evidence bundle from the collection “") + quoted(bundle["collection"]["name"]) + text("”, made on ")
            + (utc(bundle["created"]) if as_html else when(bundle["created"])))
    return f"{subject}<span class=\"made\">{made}</span>" if as_html else f"{subject}, {made}"


# -- sections ---------------------------------------------------------------------------

def _summary(view: dict) -> str:
    bundle, captures = view["bundle"], view["captures"]
    collection, selection = bundle["collection"], bundle["selection"]
    collection_id = f" ({literal(collection['id'])})" if collection["id"] is not None else ""
    cited = {capture_id for claim in view["claims"] for capture_id in claim["captures"]}
    uncited = sum(capture["id"] not in cited for capture in captures)
    pages = "of the pages they cite" if not uncited else f"of web pages, {uncited} of them cited by no claim in this bundle"
    if selection["all"]:
        scope = "everything in the collection"
    else:
        scope = (f"a selection of {count(len(selection['claims']), 'claim')}, {count(len(selection['urls']), 'URL')} "
                 f"and {count(len(selection['documents']), 'document')} (listed under "
                 f"<a href=\"#bundle\">The bundle and its manifest</a>)")
    return (
        f"<p>This is evidence bundle {literal(bundle['id'])}, the file {literal(bundle['file'])}, made on "
        f"{literal(bundle['created'])} by {prose(collection['operator'])} with {prose(bundle['software'])} "
        f"from the collection “{prose(collection['name'])}”{collection_id}. It preserves web pages cited by claims "
        f"in documents: it holds {_claims_held(view)} "
        f"and {count(len(captures), 'capture')} {pages}{_made_and_imported(captures)}. It was made for {scope}.</p>\n"
        f"<p>{_whose_clock(view['manifest']['timestamp'])}</p>\n"
        + _unrecorded(captures) + _not_the_page(captures, view["claims"]) + _left_out_summary(view))


def _made_and_imported(captures: list[dict]) -> str:
    """Of the captures, those archiver made and those imported from another tool's files, which
    archiver vouches for only since their import."""
    made = [capture["outcome"] for capture in captures if not capture.get("imported")]
    imported = len(captures) - len(made)
    said = (f"({made.count('ok')} complete, {made.count('truncated')} truncated, {made.count('failed')} failed), "
            "each stored byte for byte in WARC files, with the signatures and digests needed to show it has not changed "
            "since it was captured")
    if not imported:
        return " " + said
    ours = f"{len(made)} made by archiver {said}" if made else "none made by archiver"
    return (f": {ours}; and <span class=\"warn\">{imported} imported</span> from files made by other tools (each "
            "named in its section under Captures): their time, server address and certificate are the imported file's "
            "word, which nobody signed, and archiver vouches only that their bytes have not changed since they were "
            "imported")


def _whose_clock(timestamp: dict | None) -> str:
    """What the times this page gives for the captures rest on: said always, for the reader
    takes a capture's date for a fact (a clock set a day ahead or a month behind makes one up)."""
    said = ("The time each capture gives (when it was captured) was read from the clock of the machine that captured "
            "it: nothing in this bundle sets that clock or vouches for it. ")
    if timestamp is None:
        return said + "There is no RFC 3161 timestamp in this bundle, so nothing independent vouches for when they existed either."
    return said + (f"The RFC 3161 timestamp {prose(timestamp['tsa'])} issued at {literal(timestamp['gen_time'])} proves "
                   "that the captures the manifest lists existed no later than that time; not when, before it, they "
                   "were made.")


def _unrecorded(captures: list[dict]) -> str:
    """Failed captures that received nothing: no WARC record holds them, so they are signed otherwise."""
    failed = sum(capture["outcome"] == "failed" and not capture["records"] for capture in captures)
    if not failed:
        return ""
    return (f"<p>Of these, {count(failed, 'capture')} failed with nothing received, so no WARC record holds "
            f"{'it' if failed == 1 else 'them'}: each failure (its URL, time and error) is signed by the custody entry "
            "logging it when it failed, carried in evidence/custody.jsonl, and its manifest entry is proven to be in "
            "the signed manifest. A failure shows that the URL could not be fetched then, as its error says.</p>\n")


def _notes(claims: list[dict]) -> int:
    """How many of the claims are notes: made with `archiver cite`, in no document."""
    return sum(claim["document"] is None for claim in claims)


def _claims_held(view: dict) -> str:
    """The claims, by where they come from: documents, or notes (made with `archiver cite`)."""
    notes = _notes(view["claims"])
    said = [f"{count(len(view['claims']) - notes, 'claim')} from {_sources(view)}"] if len(view["claims"]) > notes else []
    made = "a claim made" if notes == 1 else "claims made"
    said += [f"{count(notes, 'note')} ({made} with archiver cite, in no document)"] if notes else []
    return " and ".join(said) or "no claim"


def _sources(view: dict) -> str:
    """The documents the claims come from, and how many of them the bundle carries whole (a
    claim chosen alone travels with its proof, not its document)."""
    named = {claim["document"] for claim in view["claims"] if claim["document"] is not None}
    carried = len(view["documents"])
    said = count(len(named), "document")
    if named and carried < len(named):
        said += f" ({'none' if not carried else carried} of them carried whole in this bundle)"
    return said


def _not_the_page(captures: list[dict], claims: list[dict]) -> str:
    """What the reader must not take for the pages cited: captures judged not to be the page (an
    error, a wall, a page not found, an empty one) and cited URLs the bundle holds no capture of."""
    judged = sum(capture["verdict"] not in (None, "content") for capture in captures)
    missing = sum(len(claim["not_bundled"]) for claim in claims)
    said = []
    if judged:
        said.append(f"{count(judged, 'capture')} recorded what the server sent in place of the page cited "
                    "(an error, a sign-in or bot wall, a page saying it was not found, or an empty page): each says "
                    "which under <em>Page verdict</em>")
    if missing:
        said.append(f"{count(missing, 'cited URL')} of the claims {'has' if missing == 1 else 'have'} no capture in this "
                    "bundle (each is listed with its claim, with what became of its capture)")
    return f"<p class=\"warn\">Of these, {'; and '.join(said)}.</p>\n" if said else ""


def _left_out_summary(view: dict) -> str:
    left_out = len(view["left_out"]["captures"])
    return (f"<p class=\"warn\">Left out: {count(left_out, 'capture')} of the selection, each attested by a key "
            "revoked from before it was made, or a revisit of one (listed under <a href=\"#left-out\">Left out of "
            "this bundle</a>).</p>\n") if left_out else ""


def _left_out(view: dict) -> str:
    """What the bundle does not carry because a revoked key signed it: anyone holding the key
    (a thief) may have made it."""
    captures, entries = view["left_out"]["captures"], view["left_out"]["custody"]
    if not captures and not entries:
        return ""
    items = [f"<li>capture {literal(item['capture'])} of {literal(item['url'])}, started {literal(item['started_at'])}: "
             f"{escape(item['why'])}</li>" for item in captures]
    items += [f"<li>custody entry {escape(item['why'])}</li>" for item in entries]
    return ("<h2 id=\"left-out\">Left out of this bundle</h2>\n<p class=\"warn\">Signed by a key revoked from "
            "before it was signed, so not to be trusted: whoever held the key (a thief) may have made it. A capture of "
            "the same URL made since with the collection's current key is bundled in its place, if there is one.</p>\n"
            f"<ul>{''.join(items)}</ul>\n")


def _documents(view: dict) -> str:
    if not view["documents"]:
        return "<h2 id=\"documents\">Documents</h2>\n<p>This bundle holds no documents.</p>\n"
    rows = "".join(f"<tr id=\"{anchor('document', document['key'])}\"><td>{literal(document['key'])}</td>"
                   f"<td>{'untitled' if document['title'] is None else prose(document['title'])}</td>"
                   f"<td>{or_absent(document['date'], 'undated')}</td><td>{literal(document['sha256'])}</td></tr>\n"
                   for document in view["documents"])
    return ("<h2 id=\"documents\">Documents</h2>\n<p>The documents the claims were read from, with the SHA-256 of "
            "each as it was read.</p>\n<table><thead><tr><th scope=\"col\">Document</th><th scope=\"col\">Title</th>"
            f"<th scope=\"col\">Date</th><th scope=\"col\">SHA-256</th></tr></thead>\n<tbody>{rows}</tbody></table>\n")


def _keys(view: dict) -> str:
    bundle_signer, manifest_signer = view["bundle"]["signed_by"], view["manifest"]["signed_by"]
    parts = ["<h2 id=\"keys\">Signing keys</h2>\n<p>Each key is named by its fingerprint, the SHA-256 of its public "
             "key, in groups of four hex digits to compare with the one you were given.</p>\n"]
    for key in view["keys"]:
        fingerprint = key["fingerprint"]
        signed = [label for label, signer in (("this bundle", bundle_signer),
                                              (f"manifest number {view['manifest']['sequence']}", manifest_signer))
                  if signer == fingerprint]
        key_path = public_key_path(fingerprint, view["files"]) if sha256_hex(fingerprint) else None
        rows = [("Fingerprint", fingerprint_literal(fingerprint)), ("Algorithm", escape(key["algorithm"])),
                ("Public key", or_absent(key_path, "not in this bundle")),
                ("Role", escape(key["role"])),
                ("Status", f"{escape(key['status'])} when this bundle was made ({literal(view['bundle']['created'])})"),
                ("Announced", or_absent(key["announced_at"], "not recorded")),
                ("Revoked", "not when this bundle was made" if key["revoked_from"] is None
                 else f"<span class=\"warn\">nothing it signed from {literal(key['revoked_from'])} on is to be trusted</span>")]
        if signed:
            rows.append(("Signed", escape(" and ".join(signed))))
        parts.append(f"<section class=\"item\" id=\"{anchor('key', fingerprint)}\">\n{definition_list(rows)}</section>\n")
    return "".join(parts)


def _bundle_and_manifest(view: dict) -> str:
    bundle, manifest = view["bundle"], view["manifest"]
    collection, selection = bundle["collection"], bundle["selection"]
    keys = {key["fingerprint"]: key for key in view["keys"]}
    if selection["all"]:
        chosen = "the whole collection"
    else:
        chosen = definition_list([(label, ", ".join(literal(item) for item in selection[field]) or "none")
                      for label, field in (("Claims", "claims"), ("URLs", "urls"), ("Documents", "documents"))])
    timestamp = manifest["timestamp"]
    if timestamp is None:
        stamped = "no RFC 3161 timestamp in this bundle"
    else:
        stamped = (f"issued at {literal(timestamp['gen_time'])} by {prose(timestamp['tsa'])} over "
                   f"{literal(timestamp['data'])}, in {literal(timestamp['file'])}")
    rows = [
        ("Bundle id", literal(bundle["id"])), ("Bundle file", literal(bundle["file"])),
        ("Made", literal(bundle["created"])), ("Software", prose(bundle["software"])),
        ("Collection", f"“{prose(collection['name'])}”, id {or_absent(collection['id'], 'not recorded')}, "
                       f"operator {prose(collection['operator'])}"),
        ("Bundle signed by", key_link(bundle["signed_by"], keys)),
        ("Selected", chosen),
        ("Manifest number", escape(manifest["sequence"])),
        ("Manifest SHA-256", literal(manifest["sha256"])),
        ("Captures Merkle root", f"{literal(manifest['captures_merkle_root'])}: the root of an RFC 6962 Merkle tree "
                                 f"over the {count(manifest['captures_in_manifest'], 'capture')} in the manifest, "
                                 f"of which this bundle carries {len(view['captures'])}"),
        ("Manifest signed by", key_link(manifest["signed_by"], keys)),
        ("Timestamp", stamped),
    ]
    return f"<h2 id=\"bundle\">The bundle and its manifest</h2>\n{definition_list(rows)}"


def _files(view: dict) -> str:
    rows = "".join(f"<tr><td>{literal(entry['path'])}</td><td>{escape(format(entry['bytes'], ','))}</td>"
                   f"<td>{literal(entry['sha256'])}</td></tr>\n" for entry in view["files"])
    return ("<h2 id=\"files\">Files</h2>\n<p>The files of this bundle with their sizes in bytes and SHA-256 "
            "digests, as checked in the verification steps above.</p>\n<table><thead><tr><th scope=\"col\">Path</th>"
            f"<th scope=\"col\">Bytes</th><th scope=\"col\">SHA-256</th></tr></thead>\n<tbody>{rows}</tbody></table>\n")
