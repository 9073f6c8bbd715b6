"""The part of evidence/report.html that shows a browser capture's page as a reader saw it: the
screenshot with its URL and UTC date and time beside it (what the Berkeley Protocol, ¶155, asks
of a capture shown in court), the title, the first lines of the visible text, where each citing
claim's words appear in that text, and the frames it showed (an article or a post embedded in
it), each with the record that holds its DOM.

The screenshot is embedded as a data: URI holding the signed record's block byte for byte, not
linked as a file beside the report: the report stays one self-contained page that can be
opened, printed or sent alone, its CSP needs to allow images from data: only (a file: page's
'self' is treated differently by each browser), and the report's own hash in the bundle
statement covers the image it shows. Next to it the report names the record and its SHA-256,
which the PNG decoded from the report must match."""

from __future__ import annotations

import base64
from datetime import datetime, timezone

from archiver.capture.shortfalls import SCREENSHOT_LEFT_OUT
from archiver.exchange.report_markup import count, escape, literal, prose


def page_section(capture: dict) -> str:
    """The page of one browser capture (`capture["page"]` from report_view), as HTML."""
    page = capture["page"]
    claims = "".join(_claim_words(item) for item in page["claims"])
    rows = [("Title the browser showed", "none" if page["title"] is None else prose(page["title"])),
            ("First lines of its text", _lines(page["lines"]))]
    if claims:
        rows.append(("Claims' words on the page", f"<ul>{claims}</ul>"))
    if frames := _frames(capture):
        rows.append(("Frames it showed", frames))
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
    if shot is None:  # made, but past the page's byte budget: its record (below) says so
        left_out = SCREENSHOT_LEFT_OUT in (capture.get("incomplete") or "")
        said = "the screenshot was left out of the record" if left_out else "no screenshot was made"
        return f"<p>{caption}: {said}.</p>\n"
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


def _frames(capture: dict) -> str:
    """The frames the page showed, each document's URL and the record of its DOM; nothing when it
    showed none. A capture made before frames were recorded says so: a reader must not take its
    silence for a page without frames."""
    frames = capture.get("frames")
    if frames is None:
        return ("<span class=\"warn\">not recorded</span>: this capture was made before archiver recorded the frames "
                "a page showed (an article or a post embedded in it), so whether it showed any, and what they held, "
                "is not in its records beyond what its screenshot shows")
    if not frames:
        return ""
    if capture.get("imported"):
        said = (f"the file holds the DOMs of {count(len(frames), 'frame')} the page showed; which URL each came from "
                "is not read (the file's metadata is another tool's)")
    else:
        said = (f"the page showed {count(len(frames), 'frame')} (an article or a post embedded in it), each a document "
                "of its own whose DOM is recorded apart from the page's, so its text is not among the first lines above")
    return f"{said}:<ol>" + "".join(f"<li>{_frame(frame)}</li>" for frame in frames) + "</ol>"


def _frame(frame: dict) -> str:
    where = "URL not read" if frame["url"] is None else literal(frame["url"])
    if not frame["held"]:
        return (f"{where}; its DOM named as in WARC record {literal(frame['record_id'])}, "
                "<span class=\"warn\">which is not among this capture's records</span>")
    said = (f"{where}; its DOM in WARC record {literal(frame['record_id'])}, "
            f"block digest {literal(frame['block_digest'])}")
    if frame["cut"]:
        said += (f" <span class=\"warn\">(cut: the record holds only the first part of the frame's DOM, "
                 f"WARC-Truncated {literal(frame['cut'])}; the rest was not recorded)</span>")
    return said
