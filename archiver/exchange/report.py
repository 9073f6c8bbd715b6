"""evidence/report.html: the page a lawyer or court clerk reads inside an evidence bundle.

It explains what the bundle holds and, first of all, how to check it with ordinary tools.
Every string in the view comes from web pages, documents or the bundle itself, so all of
it is untrusted: each one is HTML-escaped, the page makes no link away from itself, and its
Content-Security-Policy forbids loading anything, so even a string that slipped through
escaping could neither run nor fetch. Strings placed in shell commands a clerk will paste
are quoted, or left out when quoting cannot make them safe."""

from __future__ import annotations

import html
import re
import shlex
import unicodedata

from archiver.evidence.signing import grouped

CSP = "default-src 'none'; style-src 'unsafe-inline'"

# System fonts only: a web font would be an external resource, and the CSP would block it anyway.
STYLE = """
html { background: #fff; color: #111; }
body { font: 11pt/1.5 Georgia, "Times New Roman", serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .5rem; }
h2 { font-size: 1.25rem; border-bottom: 1px solid #888; margin-top: 2.2rem; }
h3 { font-size: 1.05rem; margin-bottom: .3rem; }
code, pre, .mono { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: .88em; }
code, td, dd, li, p, blockquote { overflow-wrap: anywhere; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #f3f3f3; border: 1px solid #ccc; padding: .5rem .7rem; }
blockquote { white-space: pre-wrap; margin: .4rem 0 .6rem; padding: .3rem .8rem; border-left: 4px solid #888; }
table { border-collapse: collapse; width: 100%; margin: .4rem 0; }
th, td { text-align: left; vertical-align: top; border: 1px solid #bbb; padding: .25rem .4rem; }
dl { display: grid; grid-template-columns: minmax(8rem, 12rem) 1fr; gap: .15rem 1rem; margin: .3rem 0; }
dt { font-weight: bold; }
dd { margin: 0; }
.item { border-top: 1px solid #ddd; padding-top: .3rem; }
.warn { font-weight: bold; }
.ctl { border: 1px solid #888; font-size: .75em; padding: 0 .15em; }
a { color: #1a4d8f; }
@media print {
  body { max-width: none; margin: 0; font-size: 10pt; }
  a { color: inherit; text-decoration: none; }
  pre { background: none; }
  h2, h3 { break-after: avoid; }
  .item, pre, tr { break-inside: avoid; }
}
@page { margin: 18mm; }
"""

TRUNCATION = {
    "length": "stopped at the size limit",
    "time": "stopped at the time limit",
    "disconnect": "the server closed the connection before the end",
}

# Placeholders for values that are missing or malformed, so a command never carries them.
NO_FINGERPRINT = "FINGERPRINT"
NO_KEY_FILE = "PUBLIC-KEY.pem"


def render_report(view: dict) -> str:
    """The complete HTML page for `view`, the structure `archiver.exchange.bundle` assembles."""
    bundle = view["bundle"]
    title = f"Evidence bundle {bundle['id']}: {bundle['collection']['name']}"
    return "".join([
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{_e(CSP)}\">\n",
        "<meta name=\"referrer\" content=\"no-referrer\">\n",
        f"<title>{_e(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        f"<h1>{_e(title)}</h1>\n",
        _summary(view),
        _verification(view),
        _claims(view),
        _captures(view),
        _documents(view),
        _keys(view),
        _bundle_and_manifest(view),
        _files(view),
        "</body>\n</html>\n",
    ])


# -- escaping and small pieces ----------------------------------------------------------

def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _literal(value: object) -> str:
    """A machine string (URL, id, path, digest) in <code>, with invisible and control
    characters shown as their code points: in evidence, a right-to-left override or a
    zero-width space inside a URL must be seen, not silently obey or vanish."""
    out = []
    for char in str(value):
        if unicodedata.category(char) in ("Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"):
            out.append(f"<span class=\"ctl\">U+{ord(char):04X}</span>")
        else:
            out.append(_e(char))
    return f"<code>{''.join(out)}</code>"


def _prose(value: object) -> str:
    """Text from a page or document, isolated so its direction cannot reorder what surrounds it."""
    return f"<bdi>{_e(value)}</bdi>"


def _anchor(kind: str, identifier: str) -> str:
    """An element id made only of [A-Za-z0-9-], so the same string works unescaped in
    `id` and in a `#fragment`; other characters become _<hex>_ (injective, `_` included)."""
    safe = re.sub(r"[^A-Za-z0-9-]", lambda match: f"_{ord(match.group()):x}_", identifier)
    return f"{kind}-{safe}"


def _sha256_hex(value: object) -> str | None:
    """`value` in lower case if it is 64 hex digits, else None: only such strings enter commands unquoted."""
    text = str(value).lower()
    return text if re.fullmatch(r"[0-9a-f]{64}", text) else None


def _shell_word(value: str, placeholder: str) -> str:
    """`value` quoted for a POSIX shell. Non-printable characters (newlines, escapes,
    direction overrides) could break a pasted command or hide part of it, so such a value
    is replaced by a placeholder the reader must fill in."""
    return shlex.quote(value) if value.isprintable() else placeholder


def _fingerprint(fingerprint: str) -> str:
    return _literal(grouped(fingerprint))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _dl(rows: list[tuple[str, str]]) -> str:
    """A definition list; labels are fixed text, values are already HTML."""
    return "<dl>\n" + "".join(f"<dt>{label}</dt><dd>{value}</dd>\n" for label, value in rows) + "</dl>\n"


def _or(value: object, absent: str) -> str:
    return absent if value is None else _literal(value)


def _key_link(fingerprint: str, keys: dict[str, dict]) -> str:
    if fingerprint in keys:
        return f"<a href=\"#{_anchor('key', fingerprint)}\">{_fingerprint(fingerprint)}</a>"
    return f"{_fingerprint(fingerprint)} <span class=\"warn\">(not among the keys in this bundle)</span>"


# -- sections ---------------------------------------------------------------------------

def _summary(view: dict) -> str:
    bundle, captures = view["bundle"], view["captures"]
    collection, selection = bundle["collection"], bundle["selection"]
    outcomes = [capture["outcome"] for capture in captures]
    collection_id = f" ({_literal(collection['id'])})" if collection["id"] is not None else ""
    if selection["all"]:
        scope = "everything in the collection"
    else:
        scope = (f"a selection of {_count(len(selection['claims']), 'claim')}, {_count(len(selection['urls']), 'URL')} "
                 f"and {_count(len(selection['documents']), 'document')} (listed under "
                 f"<a href=\"#bundle\">The bundle and its manifest</a>)")
    return (
        f"<p>This is evidence bundle {_literal(bundle['id'])}, the file {_literal(bundle['file'])}, made on "
        f"{_literal(bundle['created'])} by {_prose(collection['operator'])} with {_prose(bundle['software'])} "
        f"from the collection “{_prose(collection['name'])}”{collection_id}. It preserves web pages cited by claims "
        f"in documents: it holds {_count(len(view['claims']), 'claim')} from "
        f"{_count(len(view['documents']), 'document')} and {_count(len(captures), 'capture')} of the pages they cite "
        f"({outcomes.count('ok')} complete, {outcomes.count('truncated')} truncated, {outcomes.count('failed')} failed), "
        f"each stored byte for byte in WARC files, with the signatures and digests needed to show it has not changed "
        f"since it was captured. It was made for {scope}.</p>\n")


def _verification(view: dict) -> str:
    bundle, manifest = view["bundle"], view["manifest"]
    keys = {key["fingerprint"]: key for key in view["keys"]}
    signer = bundle["signed_by"]
    fingerprint = _sha256_hex(signer)
    key_path = _public_key_path(fingerprint, view["files"]) if fingerprint else None
    key_file = _shell_word(key_path, NO_KEY_FILE) if key_path else NO_KEY_FILE
    wacz = _shell_word(bundle["file"], "BUNDLE.wacz")
    fingerprint_option = shlex.quote(grouped(fingerprint)) if fingerprint else NO_FINGERPRINT
    tsa_option = " --tsa-roots TSA-ROOTS.pem" if manifest["timestamp"] is not None else ""
    missing_key = ("" if key_file != NO_KEY_FILE else
                   f"<p class=\"warn\">This bundle lists no public key file for that key: put the key the sender "
                   f"gave you in place of <code>{NO_KEY_FILE}</code>.</p>")
    steps = [
        ("Unpack the bundle into a new folder and go into it.",
         f"unzip -d bundle {wacz}\ncd bundle", ""),
        (f"Check the signing key. This bundle says it was signed by the key {_key_link(signer, keys)}.",
         f"openssl pkey -pubin -in {key_file} -outform DER | sha256sum",
         missing_key + "<p>The 64 hex digits printed must be the fingerprint you were given by the sender. "
         "If they differ, stop: the bundle was not signed by the key you expect.</p>"),
        ("Check the signature over <code>evidence/bundle.json</code>, the signed statement that names every file of "
         "this bundle with its SHA-256.",
         f"openssl pkeyutl -verify -pubin -inkey {key_file} -rawin "
         "-in evidence/bundle.json -sigfile evidence/bundle.json.sig",
         "<p>It must print <code>Signature Verified Successfully</code>.</p>"),
        _file_hash_step(view["files"]),
        _timestamp_step(manifest),
        ("Check every WARC record's digests (needs <code>pip install warcio</code>).",
         "warcio check archive/*.warc.gz",
         "<p>It prints nothing when every record is intact, and names each record that is not.</p>"),
        ("Or do all of the above in one go with <code>archiver</code>, from the folder holding the bundle file. "
         "Check that the fingerprint in the command is the one you were given; if not, type yours instead.",
         f"cd ..\narchiver verify-bundle {wacz} --fingerprint {fingerprint_option}{tsa_option}", ""),
    ]
    items = "".join(f"<li><p>{intro}</p>\n<pre>{_e(command)}</pre>\n{after}</li>\n" if command
                    else f"<li><p>{intro}</p>\n{after}</li>\n" for intro, command, after in steps)
    return (
        "<h2 id=\"verify\">How to verify this bundle independently</h2>\n"
        "<p>This page is inside the bundle it describes, so whoever could alter the bundle could alter this page "
        "too. The one fact to take from outside it is the fingerprint of the key that signed it, which the sender "
        "should give you separately (on paper, or read out over the phone). The commands need OpenSSL 3 and GNU "
        "coreutils, as on any current Linux; type them in a terminal in the folder holding the bundle file.</p>\n"
        f"<ol>\n{items}</ol>\n")


def _public_key_path(fingerprint: str, files: list[dict]) -> str | None:
    """The bundle's file holding the public key with this fingerprint: public keys are
    `*.pub.pem` files named after their fingerprint."""
    for entry in files:
        name = entry["path"].rsplit("/", 1)[-1]
        if fingerprint in name and name.endswith(".pub.pem"):
            return entry["path"]
    return None


def _file_hash_step(files: list[dict]) -> tuple[str, str, str]:
    """`sha256sum -c` fed the listed hashes. A line with a malformed hash or a path that is
    not printable is left out, since a newline in a path could end the here-document and
    run whatever follows; such files are named for a check by hand."""
    lines, by_hand = [], []
    for entry in files:
        digest = _sha256_hex(entry["sha256"])
        if digest is not None and entry["path"].isprintable():
            lines.append(f"{digest}  {entry['path']}")
        else:
            by_hand.append(entry["path"])
    command = ("sha256sum -c <<'END'\n" + "".join(f"{line}\n" for line in lines) + "END\n"
               "sha256sum datapackage.json\ncat datapackage-digest.json")
    after = ("<p>Every line of the first command must end in <code>OK</code>. The digest the second command prints "
             "must equal the one after <code>sha256:</code> in the third.</p>")
    if by_hand:
        after += ("<p class=\"warn\">Not in the command because its name or listed hash is malformed; compare by hand "
                  "with the <a href=\"#files\">file list</a>: " + ", ".join(_literal(path) for path in by_hand) + ".</p>")
    return ("Check that every file is the one listed under <a href=\"#files\">Files</a>: these are the digests "
            "<code>evidence/bundle.json</code> lists, and <code>archiver verify-bundle</code> (the last step) compares "
            "the files with that signed list itself.", command, after)


def _timestamp_step(manifest: dict) -> tuple[str, str, str]:
    timestamp = manifest["timestamp"]
    if timestamp is None:
        return ("There is <strong>no RFC 3161 timestamp in this bundle</strong>, so no independent authority vouches "
                "for when its manifest existed: the times on this page rest on the signer's own clock.", "", "")
    return (f"Check the RFC 3161 timestamp that {_prose(timestamp['tsa'])} issued at "
            f"{_literal(timestamp['gen_time'])} over {_literal(timestamp['data'])}, for manifest number "
            f"{_literal(manifest['sequence'])}. <code>TSA-ROOTS.pem</code> is that authority's root "
            "certificate, obtained from the authority itself and not from this bundle, saved beside the bundle file "
            "(the last step reads it there too).",
            f"openssl ts -verify -data {_shell_word(timestamp['data'], 'TIMESTAMPED-FILE')} "
            f"-in {_shell_word(timestamp['file'], 'TIMESTAMP.tsr')} -CAfile ../TSA-ROOTS.pem",
            "<p>It must print <code>Verification: OK</code>. If it cannot find the authority's certificate, add "
            "<code>-untrusted ../TSA-CERT.pem</code> with that certificate, also from the authority and saved beside "
            "the bundle file.</p>")


def _claims(view: dict) -> str:
    documents = {document["key"]: document for document in view["documents"]}
    captures = {capture["id"]: capture for capture in view["captures"]}
    parts = ["<h2 id=\"claims\">Claims</h2>\n"]
    if not view["claims"]:
        parts.append("<p>This bundle holds no claims.</p>\n")
    for claim in view["claims"]:
        document = claim["document"]
        if document is None:
            source = "none (the claim was entered directly)"
        elif document in documents:
            source = f"<a href=\"#{_anchor('document', document)}\">{_literal(document)}</a>"
            if documents[document]["title"] is not None:
                source += f", “{_prose(documents[document]['title'])}”"
        else:
            source = f"{_literal(document)} (not in this bundle)"
        if claim["start"] is None or claim["end"] is None:
            span = "not recorded"
        else:
            span = f"characters {_e(claim['start'])} to {_e(claim['end'])} of the document"
        cited = []
        for capture_id in claim["captures"]:
            if capture_id in captures:
                capture = captures[capture_id]
                cited.append(f"<li><a href=\"#{_anchor('capture', capture_id)}\">capture {_literal(capture_id)}</a>: "
                             f"{_literal(capture['url'])}, {_literal(capture['started_at'])}, {_e(capture['outcome'])}</li>")
            else:
                cited.append(f"<li>capture {_literal(capture_id)} (not in this bundle)</li>")
        parts.append(
            f"<section class=\"item\" id=\"{_anchor('claim', claim['id'])}\">\n<h3>Claim {_literal(claim['id'])}</h3>\n"
            f"<blockquote>{_prose(claim['text'])}</blockquote>\n"
            + _dl([("Kind", _e(claim["kind"])), ("Document", source), ("Place", span),
                   ("Captures", f"<ul>{''.join(cited)}</ul>" if cited else "none in this bundle")])
            + "</section>\n")
    return "".join(parts)


def _captures(view: dict) -> str:
    keys = {key["fingerprint"]: key for key in view["keys"]}
    citing: dict[str, list[str]] = {}
    for claim in view["claims"]:
        for capture_id in claim["captures"]:
            citing.setdefault(capture_id, []).append(claim["id"])
    parts = ["<h2 id=\"captures\">Captures</h2>\n"]
    if not view["captures"]:
        parts.append("<p>This bundle holds no captures.</p>\n")
    for capture in view["captures"]:
        rows = [
            ("URL requested", _literal(capture["url"])),
            ("Final URL", _or(capture["final_url"], "none recorded")),
            ("Redirects", _redirects(capture["redirects"])),
            ("Page title", "none recorded" if capture["title"] is None else _prose(capture["title"])),
            ("Time", f"started {_literal(capture['started_at'])}, finished {_literal(capture['finished_at'])}"),
            ("Server IP address", _or(capture["ip"], "not recorded")),
            ("TLS certificate", _certificate(capture["certificate"])),
            ("HTTP status", "no HTTP response" if capture["http_status"] is None else _e(capture["http_status"])),
            ("Outcome", _outcome(capture)),
            ("Payload digest", _or(capture["payload_digest"], "none (no payload stored)")),
            ("WARC records", _records(capture["records"])),
            ("Attested by key", "not attested" if capture["attestation_key"] is None
             else _key_link(capture["attestation_key"], keys)),
            ("Cited by", ", ".join(f"<a href=\"#{_anchor('claim', claim_id)}\">claim {_literal(claim_id)}</a>"
                                   for claim_id in citing.get(capture["id"], [])) or "no claim in this bundle"),
        ]
        parts.append(f"<section class=\"item\" id=\"{_anchor('capture', capture['id'])}\">\n"
                     f"<h3>Capture {_literal(capture['id'])}</h3>\n{_dl(rows)}</section>\n")
    return "".join(parts)


def _redirects(redirects: list[dict]) -> str:
    if not redirects:
        return "none"
    hops = "".join(f"<li>{_e(hop['status'])} → {_literal(hop['url'])}</li>" for hop in redirects)
    return f"<ol>{hops}</ol>"


def _certificate(certificate: dict | None) -> str:
    if certificate is None:
        return "no TLS certificate recorded for this capture (plain HTTP, or no TLS connection was completed)"
    return _dl([("SHA-256", _literal(certificate["sha256"])), ("Subject", _literal(certificate["subject"])),
                ("Issuer", _literal(certificate["issuer"])),
                ("Valid", f"from {_literal(certificate['not_before'])} to {_literal(certificate['not_after'])}")])


def _outcome(capture: dict) -> str:
    outcome = capture["outcome"]
    if outcome == "ok":
        return "complete"
    if outcome == "truncated":
        reason = capture["truncated"]
        if reason is None:
            why = "reason not recorded"
        elif reason in TRUNCATION:
            why = f"{TRUNCATION[reason]} ({_literal(reason)})"
        else:
            why = _literal(reason)
        return f"<span class=\"warn\">truncated</span>: {why}"
    error = capture["error"]
    return (f"<span class=\"warn\">{_e(outcome)}</span>: "
            + ("no reason recorded" if error is None else _prose(error)))


def _records(records: list[dict]) -> str:
    if not records:
        return "none"
    rows = "".join(f"<tr><td>{_literal(record['id'])}</td><td>{_e(record['type'])}</td><td>{_literal(record['file'])}</td>"
                   f"<td>{_literal(record['block_digest'])}</td><td>{_or(record['payload_digest'], 'none')}</td></tr>\n"
                   for record in records)
    return ("<table><thead><tr><th scope=\"col\">Record id</th><th scope=\"col\">Type</th><th scope=\"col\">File</th>"
            f"<th scope=\"col\">Block digest</th><th scope=\"col\">Payload digest</th></tr></thead>\n<tbody>{rows}</tbody></table>")


def _documents(view: dict) -> str:
    if not view["documents"]:
        return "<h2 id=\"documents\">Documents</h2>\n<p>This bundle holds no documents.</p>\n"
    rows = "".join(f"<tr id=\"{_anchor('document', document['key'])}\"><td>{_literal(document['key'])}</td>"
                   f"<td>{'untitled' if document['title'] is None else _prose(document['title'])}</td>"
                   f"<td>{_or(document['date'], 'undated')}</td><td>{_literal(document['sha256'])}</td></tr>\n"
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
        key_path = _public_key_path(fingerprint, view["files"]) if _sha256_hex(fingerprint) else None
        rows = [("Fingerprint", _fingerprint(fingerprint)), ("Algorithm", _e(key["algorithm"])),
                ("Public key", _or(key_path, "not in this bundle")),
                ("Role", _e(key["role"])), ("Status", _e(key["status"])),
                ("Announced", _or(key["announced_at"], "not recorded")),
                ("Revoked", "not revoked" if key["revoked_from"] is None
                 else f"<span class=\"warn\">nothing it signed from {_literal(key['revoked_from'])} on is to be trusted</span>")]
        if signed:
            rows.append(("Signed", _e(" and ".join(signed))))
        parts.append(f"<section class=\"item\" id=\"{_anchor('key', fingerprint)}\">\n{_dl(rows)}</section>\n")
    return "".join(parts)


def _bundle_and_manifest(view: dict) -> str:
    bundle, manifest = view["bundle"], view["manifest"]
    collection, selection = bundle["collection"], bundle["selection"]
    keys = {key["fingerprint"]: key for key in view["keys"]}
    if selection["all"]:
        chosen = "the whole collection"
    else:
        chosen = _dl([(label, ", ".join(_literal(item) for item in selection[field]) or "none")
                      for label, field in (("Claims", "claims"), ("URLs", "urls"), ("Documents", "documents"))])
    timestamp = manifest["timestamp"]
    if timestamp is None:
        stamped = "no RFC 3161 timestamp in this bundle"
    else:
        stamped = (f"issued at {_literal(timestamp['gen_time'])} by {_prose(timestamp['tsa'])} over "
                   f"{_literal(timestamp['data'])}, in {_literal(timestamp['file'])}")
    rows = [
        ("Bundle id", _literal(bundle["id"])), ("Bundle file", _literal(bundle["file"])),
        ("Made", _literal(bundle["created"])), ("Software", _prose(bundle["software"])),
        ("Collection", f"“{_prose(collection['name'])}”, id {_or(collection['id'], 'not recorded')}, "
                       f"operator {_prose(collection['operator'])}"),
        ("Bundle signed by", _key_link(bundle["signed_by"], keys)),
        ("Selected", chosen),
        ("Manifest number", _e(manifest["sequence"])),
        ("Manifest SHA-256", _literal(manifest["sha256"])),
        ("Captures Merkle root", f"{_literal(manifest['captures_merkle_root'])}: the root of an RFC 6962 Merkle tree "
                                 f"over the {_count(manifest['captures_in_manifest'], 'capture')} in the manifest, "
                                 f"of which this bundle carries {len(view['captures'])}"),
        ("Manifest signed by", _key_link(manifest["signed_by"], keys)),
        ("Timestamp", stamped),
    ]
    return f"<h2 id=\"bundle\">The bundle and its manifest</h2>\n{_dl(rows)}"


def _files(view: dict) -> str:
    rows = "".join(f"<tr><td>{_literal(entry['path'])}</td><td>{_e(format(entry['bytes'], ','))}</td>"
                   f"<td>{_literal(entry['sha256'])}</td></tr>\n" for entry in view["files"])
    return ("<h2 id=\"files\">Files</h2>\n<p>The files of this bundle with their sizes in bytes and SHA-256 "
            "digests, as checked in the verification steps above.</p>\n<table><thead><tr><th scope=\"col\">Path</th>"
            f"<th scope=\"col\">Bytes</th><th scope=\"col\">SHA-256</th></tr></thead>\n<tbody>{rows}</tbody></table>\n")
