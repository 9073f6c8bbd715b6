"""The part of evidence/report.html that shows a browser capture's page as a reader saw it: the
screenshot with its URL and UTC date and time beside it (what the Berkeley Protocol, ¶155, asks
of a capture shown in court), the title, the first lines of the visible text, and where each
citing claim's words appear in that text.

The screenshot is embedded as a data: URI holding the signed record's block byte for byte, not
linked as a file beside the report: the report stays one self-contained page that can be
opened, printed or sent alone, its CSP needs to allow images from data: only (a file: page's
'self' is treated differently by each browser), and the report's own hash in the bundle
statement covers the image it shows. Next to it the report names the record and its SHA-256,
which the PNG decoded from the report must match."""

from __future__ import annotations

import base64
from datetime import datetime, timezone

from archiver.exchange.report_markup import escape, literal, prose


def page_section(capture: dict) -> str:
    """The page of one browser capture (`capture["page"]` from report_view), as HTML."""
    page = capture["page"]
    claims = "".join(_claim_words(item) for item in page["claims"])
    rows = [("Title the browser showed", "none" if page["title"] is None else prose(page["title"])),
            ("First lines of its text", _lines(page["lines"]))]
    if claims:
        rows.append(("Claims' words on the page", f"<ul>{claims}</ul>"))
    return (_screenshot(capture) + "<dl>\n"
            + "".join(f"<dt>{label}</dt><dd>{value}</dd>\n" for label, value in rows) + "</dl>\n")


def when(stamp: str) -> str:
    """An ISO 8601 time as plain text, "YYYY-MM-DD at HH:MM:SS UTC", or the string itself if it is not one."""
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    if moment.tzinfo is None:
        return stamp
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d at %H:%M:%S UTC")


def utc(stamp: str) -> str:
    """when(stamp) as HTML: a string that is not a time is shown as the machine string it is."""
    shown = when(stamp)
    return literal(stamp) if shown == stamp else f"<span class=\"when\">{escape(shown)}</span>"


def _screenshot(capture: dict) -> str:
    shot = capture["page"]["screenshot"]
    where = literal(capture["url"])
    if capture["final_url"] and capture["final_url"] != capture["url"]:
        where += f" (which led to {literal(capture['final_url'])})"
    caption = f"{where}, captured on {utc(capture['started_at'])}"
    if shot is None:
        return f"<p>{caption}: no screenshot was made.</p>\n"
    about = (f"Screenshot in WARC record {literal(shot['record_id'])}, taken on {utc(shot['taken_at'])}; "
             f"its digest, the SHA-256 of the PNG file, is {literal(shot['block_digest'])}.")
    if shot["size"] is None:
        return f"<p>{caption}. {about} <span class=\"warn\">The record does not hold a PNG image.</span></p>\n"
    width, height = shot["size"]
    data = base64.b64encode(shot["png"]).decode("ascii")
    return (f"<figure>\n<figcaption>{caption}</figcaption>\n"
            f"<img src=\"data:image/png;base64,{data}\" width=\"{width}\" height=\"{height}\" "
            f"alt=\"The full page as Chromium rendered it\">\n<p>{about}</p>\n</figure>\n")


def _lines(lines: list[str]) -> str:
    if not lines:
        return "none: the page showed no text"
    return "<div class=\"lines\">" + "\n".join(prose(line) for line in lines) + "</div>"


def _claim_words(item: dict) -> str:
    words = f"claim {literal(item['claim'])}: “{prose(item['words'])}”"
    found = item["found"]
    if found is None:
        return f"<li>{words} does not appear in the page's text</li>"
    return (f"<li>{words} appears in the page's text: "
            f"<div class=\"lines\">{prose(found['before'])}<mark>{prose(found['words'])}</mark>"
            f"{prose(found['after'])}</div></li>")
