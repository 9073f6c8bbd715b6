"""The captures of evidence/report.html: for each, what was asked and received, from where and
under which certificate, whether it arrived whole, what the page was judged to be, the
records that hold it, and the key that attested it; for a browser capture, the page a reader saw."""

from __future__ import annotations

from archiver.capture.verdict import verdict_label
from archiver.store.rows import outcome_label
from archiver.exchange.report_markup import anchor, count, definition_list, escape, key_link, literal, or_absent, prose
from archiver.exchange.report_page import page_section, utc

TRUNCATION = {
    "length": "stopped at the size limit",
    "time": "stopped at the time limit",
    "disconnect": "the server closed the connection before the end",
}

# Where a capture falls against the period its claim cited its URL (report_claims); or, of a claim
# citing captures of the URL by id (`archiver cite --capture`), whether it is one of them.
BEFORE, WHILE, AFTER, UNSURE, CITED, NOT_CITED = "before", "while", "after", "unsure", "cited", "not cited"
CITING = {WHILE: "made while the claim cited this URL", BEFORE: "made before the claim cited this URL",
          AFTER: "made after the claim stopped citing this URL",
          UNSURE: "made after the claim was first read, but whether it cited this URL then is not recorded",
          CITED: "cited by its id, with archiver cite --capture",
          NOT_CITED: "not cited: the claim cites another capture of this URL by its id"}


def made(timing: str) -> str:
    """When a capture was made against the period its claim cited its URL, or whether the claim
    cites it by id, in words: a warning when it is no evidence of what the claim cited."""
    return CITING[timing] if timing in (WHILE, CITED) else f"<span class=\"warn\">{CITING[timing]}</span>"


def captures_section(view: dict) -> str:
    keys = {key["fingerprint"]: key for key in view["keys"]}
    citing: dict[str, list[tuple[str, str]]] = {}
    for claim in view["claims"]:
        for url in claim["urls"]:
            for capture_id, timing in url["captures"]:
                citing.setdefault(capture_id, []).append((claim["id"], timing))
    parts = ["<h2 id=\"captures\">Captures</h2>\n"]
    if not view["captures"]:
        parts.append("<p>This bundle holds no captures.</p>\n")
    for capture in view["captures"]:
        imported = capture.get("imported")
        # Of an imported capture, what archiver did not see: the file's word, said as such.
        said = _the_file_says if imported else (lambda text: text)
        rows = [
            *([("Made by", _imported(imported, keys))] if imported else []),
            ("URL requested", literal(capture["url"])),
            _where_it_ended(capture),
            ("Redirects", _redirects(capture["redirects"])),
            ("Page title", "none recorded" if capture["title"] is None else prose(capture["title"])),
            ("Time", said(f"started {literal(capture['started_at'])}, finished {literal(capture['finished_at'])}")),
            *([("Since the previous capture", _change(capture["change"]))] if capture.get("change") else []),
            ("Server IP address", "not recorded" + (" in the file" if imported else "") if capture["ip"] is None
             else said(literal(capture["ip"]))),
            ("TLS certificate", _certificate(capture["certificate"], imported is not None)),
            ("HTTP status", "no HTTP response" if capture["http_status"] is None else said(escape(capture["http_status"]))),
            ("Outcome", said(_outcome(capture))),
            *([("Record of the page", f"<span class=\"warn\">{escape(capture['incomplete'])}</span>")]
              if capture.get("incomplete") else []),
            ("Page verdict", _verdict(capture)),
            ("Payload digest", or_absent(capture["payload_digest"], "none (no payload stored)")),
            ("WARC records", _records(capture["records"])),
            ("Captured with", _made_with(capture.get("made_with"))),
            ("Attested by key", _attested(capture, keys)),
            ("Cited by", _cited_by(citing.get(capture["id"], []))),
        ]
        page = page_section(capture) if capture.get("page") else ""  # only browser captures have one
        parts.append(f"<section class=\"item\" id=\"{anchor('capture', capture['id'])}\">\n"
                     f"<h3>Capture {literal(capture['id'])}</h3>\n{page}{definition_list(rows)}</section>\n")
    return "".join(parts)


def _made_with(made_with: dict | None) -> str:
    """The software, browser and settings a capture's metadata record names (a record its
    attestation signs), as a court asks for them: what made it, and how it was set."""
    if not made_with:
        return "not recorded (a capture imported from another tool, or made before archiver recorded it)"
    said = [f"software {literal(made_with['software'])}"] if made_with.get("software") else []
    if browser := made_with.get("browser"):
        viewport = browser.get("viewport") or {}
        said.append(f"rendered in {escape(browser.get('name'))} {literal(browser.get('version'))}"
                    f"{', headless' if browser.get('headless') else ''}, window {escape(viewport.get('width'))}×"
                    f"{escape(viewport.get('height'))} px, language {literal(browser.get('accept_language'))}, "
                    f"user agent {literal(browser.get('user_agent'))}")
    else:
        said.append("fetched over HTTP alone, not rendered in a browser")
    if "tls_verification" in made_with:
        said.append("set to check server certificates against trusted roots (on HTTPS)" if made_with["tls_verification"]
                    else "<span class=\"warn\">server certificates not checked (--insecure)</span>")
    settings = made_with.get("settings") or {}
    if settings:
        said.append("settings: " + ", ".join(f"{escape(name)} = {_setting(value)}" for name, value in sorted(settings.items())))
    return "<ul>" + "".join(f"<li>{line}</li>" for line in said) + "</ul>"


def _setting(value: object) -> str:
    if value is None:
        return "not set"
    return literal(", ".join(map(str, value)) if isinstance(value, list) else value)


def _cited_by(citing: list[tuple[str, str]]) -> str:
    """The claims citing a capture's URL; those citing another capture of it by id named apart."""
    said = ", ".join(f"{_claim_link(claim_id)} ({made(timing)})" for claim_id, timing in citing if timing != NOT_CITED)
    passed = [_claim_link(claim_id) for claim_id, timing in citing if timing == NOT_CITED]
    if passed:
        said = (f"{said or 'no claim in this bundle'}; not {', '.join(passed)}, which cite{'s' if len(passed) == 1 else ''} "
                "another capture of this URL by its id")
    return said or "no claim in this bundle"


def _claim_link(claim_id: str) -> str:
    return f"<a href=\"#{anchor('claim', claim_id)}\">claim {literal(claim_id)}</a>"


def _imported(imported: dict, keys: dict[str, dict]) -> str:
    """Where an imported capture came from, and what archiver vouches for of it: its bytes alone."""
    sha256 = f" (SHA-256 {literal(imported['sha256'])})" if imported["sha256"] else ""
    if imported["at"] is None:
        when = "when, and by which key, is not recorded in this bundle"
    else:
        when = f"on {utc(imported['at'])}, signed by the key {key_link(imported['key'], keys)}"
    return (f"<span class=\"warn\">another tool, not archiver</span>: imported from the file "
            f"{literal(imported['source'])}{sha256} {when}. Its time, server address, status and outcome below are "
            "what that file says, which nobody signed; archiver vouches only that its bytes have not changed since "
            "they were imported")


def _the_file_says(text: str) -> str:
    return f"the file says {text}"


def _attested(capture: dict, keys: dict[str, dict]) -> str:
    if capture["attestation_key"] is not None:
        return key_link(capture["attestation_key"], keys) + _distrusted(capture)
    if capture.get("imported"):
        return "not attested: imported, so archiver made no capture of it to attest (its import is signed, see Made by)"
    if capture.get("logged_by"):
        return ("not attested: nothing was received to attest; its failure is signed by its custody entry "
                f"(in evidence/custody.jsonl), by {key_link(capture['logged_by'], keys)}")
    return "not attested"


def _where_it_ended(capture: dict) -> tuple[str, str]:
    """The final URL; of a failed capture, the last URL that answered, which was not the end:
    its status, address and certificate below are that answer's."""
    if capture["outcome"] != "failed":
        return "Final URL", or_absent(capture["final_url"], "none recorded")
    if capture["final_url"] is None:
        return "Final URL", "none: no server answered"
    return "Last answer", (f"{literal(capture['final_url'])} <span class=\"warn\">(not the end of the chain: the capture "
                           "failed after it, see Outcome; the status, address and certificate shown are this answer's)</span>")


def _redirects(redirects: list[dict]) -> str:
    if not redirects:
        return "none"
    hops = "".join(f"<li>{escape(hop['status'])} from {literal(hop['url'])} to {literal(hop['location'])}</li>"
                   for hop in redirects)
    return f"<ol>{hops}</ol>"


# What differs in a page of the same payload, by (the previous capture rendered, this one rendered).
_SAME_HTML = {(True, True): "the page the browser rendered from it differs",
              (False, True): "this capture rendered it in a browser and the previous one fetched it alone",
              (True, False): "this capture fetched it alone and the previous one rendered it in a browser",
              (False, False): "it was judged another page"}


def _change(change: dict) -> str:
    """How this capture compares with the previous capture of its URL in the bundle."""
    previous = (f"<a href=\"#{anchor('capture', change['previous'])}\">{literal(change['previous'])}</a> "
                f"of {utc(change['previous_started_at'])}")
    if change["another_way"]:
        verdicts = (f"; judged {escape(change['previous_verdict'])} then and {escape(change['verdict'])} now, "
                    "as a rendered and a plain capture of the same page can be" if change.get("verdict") else "")
        return (f"the same payload digest as the previous capture, {previous}, captured another way: "
                f"{_SAME_HTML[tuple(change['rendered'])]}{verdicts}; the two are not compared further")
    if not change["changed"]:
        return f"unchanged since the previous capture, {previous}: the same payload digest"
    said = f"<span class=\"warn\">changed since the previous capture</span>, {previous}: " + (
        "the payload digest differs" if change["payload_changed"]
        else f"the same payload digest, but {_SAME_HTML[tuple(change['rendered'])]}")
    if change.get("verdict"):
        said += f" (page verdict now {escape(change['verdict'])})"
    if not change["text_compared"]:
        return said + "; one of the two has no text to compare (it is not an HTML page)"
    if not change["lines"]:
        return said + "; the visible text is the same, so what changed is the markup or other bytes of the page"
    lines = "".join(f"<div class=\"{'removed' if sign == '−' else 'added'}\">{sign} {prose(line)}</div>"
                    for sign, line in change["lines"])
    more = f"<p>and {count(change['more_lines'], 'more changed line')}</p>" if change["more_lines"] else ""
    return (said + "; the lines of its visible text that changed, − removed and + added:"
            f"<div class=\"lines\">{lines}</div>{more}")


def _certificate(certificate: dict | None, imported: bool) -> str:
    if certificate is None and imported:
        return "none recorded: the tool that made the imported file recorded no TLS details archiver can read"
    if certificate is None:
        return "no TLS certificate recorded for this capture (plain HTTP, or no TLS connection was completed)"
    verified = certificate.get("verified")
    if verified is None:
        checked = "not recorded"
    elif verified:
        checked = ("verified when captured: the server's chain led to a certificate authority the capture trusted "
                   "(the machine's, or one the collection named) and named the host")
    else:
        checked = ("<span class=\"warn\">not verified</span>: the capture ran with certificate checks off "
                   "(--insecure); this is the certificate the server presented, which no authority was asked to vouch for")
    return definition_list([("SHA-256", literal(certificate["sha256"])), ("Subject", literal(certificate["subject"])),
                ("Issuer", literal(certificate["issuer"])), ("Checked", checked),
                ("Validity period", f"from {literal(certificate['not_before'])} to {literal(certificate['not_after'])}")])


def in_brief(capture: dict) -> str:
    """A capture's outcome and page verdict in a few words, for the list of a claim's captures."""
    outcome = outcome_label(capture["outcome"])
    said = escape(outcome) if outcome == "complete" else f"<span class=\"warn\">{escape(outcome)}</span>"
    if capture.get("imported"):
        said = f"<span class=\"warn\">imported from {literal(capture['imported']['source'])}</span>, the file says {said}"
    if capture["verdict"] not in (None, "content"):
        said += f", <span class=\"warn\">not the page: {escape(verdict_label(capture['verdict'], capture['http_status']))}</span>"
    return said


def _verdict(capture: dict) -> str:
    """What the bytes received are: the page cited, or what stood in its place (capture/verdict.py)."""
    verdict = capture["verdict"]
    if verdict is None and capture.get("imported"):
        return "not judged: imported, and archiver judges only the pages it captures"
    if verdict is None and capture["outcome"] == "failed":
        return "none: the capture failed, so no page was received to judge"
    if verdict is None:
        return "not judged (captured before archiver judged pages, or imported)"
    if verdict == "content":
        return "content: the page itself, as far as its status and text show (no error, wall or not-found page)"
    reason = f": {prose(capture['verdict_reason'])}" if capture["verdict_reason"] else ""
    return f"<span class=\"warn\">{escape(verdict_label(verdict, capture['http_status']))}</span>{reason}"


def _outcome(capture: dict) -> str:
    outcome = capture["outcome"]
    if outcome == "ok":
        return "complete"
    if outcome == "truncated":
        reason = capture["truncated"]
        if reason is None:
            why = "reason not recorded"
        elif reason in TRUNCATION:
            why = f"{TRUNCATION[reason]} ({literal(reason)})"
        else:
            why = literal(reason)
        return f"<span class=\"warn\">truncated</span>: {why}"
    error = capture["error"]
    return (f"<span class=\"warn\">{escape(outcome)}</span>: "
            + ("no reason recorded" if error is None else prose(error)))


def _records(records: list[dict]) -> str:
    if not records:
        return "none"
    rows = "".join(f"<tr><td>{literal(record['id'])}</td><td>{escape(record['type'])}</td><td>{literal(record['file'])}</td>"
                   f"<td>{literal(record['block_digest'])}</td><td>{or_absent(record['payload_digest'], 'none')}</td></tr>\n"
                   for record in records)
    return ("<table><thead><tr><th scope=\"col\">Record id</th><th scope=\"col\">Type</th><th scope=\"col\">File</th>"
            f"<th scope=\"col\">Block digest</th><th scope=\"col\">Payload digest</th></tr></thead>\n<tbody>{rows}</tbody></table>")


def _distrusted(capture: dict) -> str:
    reason = capture.get("attestation_distrusted")
    if not reason:
        return ""
    return (f" <span class=\"warn\">not to be trusted: {escape(reason)}, before this capture was made; verifying this "
            "bundle fails it</span>")
