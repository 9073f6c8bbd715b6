"""The replay check: does a browser capture hold everything its page needs to be seen again?

The capture's page is rendered once more in Chromium, set up as for a capture, behind a proxy
that serves only the capture's own records and opens no connection (capture.browser.replay).
The new screenshot is compared with the capture's pixel by pixel and the visible words of the
new DOM and of its shown frames' with the capture's (its own DOM's alone, and said, for a capture
made before frames were recorded); every request the replay made that the capture cannot answer
is listed. The replay's clock stands at the capture's time and its Math.random() is steady; a
request differing from a recorded one only in cache-busting values (`?_=` and the time, a random
number) is answered with that one's and named in the replay's notes. A page that loads
something different each time otherwise shows up as missing, as does a resource the capture
refused or lost. Each replay gets a verdict: alike only when every comparison made holds; a
replay that differs, or that could not be compared at all, is never called alike. Each result is logged in the custody log."""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass, field
from typing import Callable

from PIL import Image, ImageChops

from archiver.capture.browser.replay import CaptureArchive, Replayer
from archiver.capture.browser.screenshot import SCREENSHOT_CUT_NOTE, TALL_WINDOW_NOTE
from archiver.capture.recorded_frames import DOM_CUT, FRAMES_NOT_COMPARED, holds_cut_dom, recorded_frames
from archiver.check.drift_text import frames_words, holds_shadow_roots, similarity, visible_words
from archiver.errors import UsageProblem
from archiver.store.collection import Collection
from archiver.store.database import placeholders
from archiver.store.record_blocks import read_record_block
from archiver.store.rows import CaptureRow

EVENT = "replay check"
# Per colour channel: two renders of one page may round colours and anti-alias edges differently.
PIXEL_TOLERANCE = 16
# Two renders of an unchanged page from the same records are alike in 99% or more of their
# pixels and words (the tests' pages); a replay below either shows another page than was seen.
# Both are needed: a page that empties itself on replay keeps most of a white screen.
PIXELS_ALIKE = 0.95
TEXT_ALIKE = 0.95
ALIKE, DIFFERS, NOT_COMPARED, NOT_REPLAYED = "alike", "differs", "not compared", "not replayed"
# What a browser capture adds to a plain one; a capture with none of these was not rendered.
_ARTIFACT_ROLES = ("screenshot", "pdf", "dom")


@dataclass
class ReplayCheck:
    """One capture replayed: `replayed` False (with `error`) when no page could be rendered from it;
    similarities from 0 to 1 (None when either side has no screenshot or DOM)."""

    capture_id: str
    url: str
    replayed: bool
    error: str | None = None
    pixel_similarity: float | None = None
    text_similarity: float | None = None
    missing: list[str] = field(default_factory=list)  # "METHOD url" the replay asked for, not in the capture
    # "METHOD url" the replay asked for, answered with the recorded URL differing from it only in cache-busting values
    loosely_matched: dict[str, str] = field(default_factory=dict)
    requests: int = 0  # requests the replay made
    notes: list[str] = field(default_factory=list)
    recorded_in_custody_log: bool = False
    not_recorded_because: str | None = None

    @property
    def differences(self) -> list[str]:
        """How the replay is unlike the capture, by the thresholds above."""
        found = []
        if self.pixel_similarity is not None and self.pixel_similarity < PIXELS_ALIKE:
            found.append(f"{self.pixel_similarity:.0%} of the screenshot's pixels alike (at least {PIXELS_ALIKE:.0%} expected)")
        if self.text_similarity is not None and self.text_similarity < TEXT_ALIKE:
            found.append(f"its visible text {self.text_similarity:.0%} alike (at least {TEXT_ALIKE:.0%} expected)")
        return found

    @property
    def verdict(self) -> str:
        """alike, differs, not compared (neither screenshots nor texts could be), or not replayed."""
        if not self.replayed:
            return NOT_REPLAYED
        if self.differences:
            return DIFFERS
        return NOT_COMPARED if self.pixel_similarity is None and self.text_similarity is None else ALIKE

    @property
    def alike(self) -> bool:
        return self.verdict == ALIKE

    def as_dict(self) -> dict:
        return {**self.__dict__, "verdict": self.verdict, "differences": self.differences}


def browser_captures(collection: Collection, rows: list[CaptureRow] | None = None) -> list[CaptureRow]:
    """The captures rendered in a browser (those with a screenshot, PDF or DOM), oldest first."""
    rendered = {capture_id for (capture_id,) in collection.catalog.query(
        f"SELECT DISTINCT capture_id FROM records WHERE role IN ({placeholders(_ARTIFACT_ROLES)})",
        _ARTIFACT_ROLES)}
    return [row for row in (collection.catalog.captures() if rows is None else rows) if row.id in rendered]


def replay_captures(collection: Collection, rows: list[CaptureRow], log: Callable[[str, dict], str | None],
                    replaying: Callable[[str], None] = lambda url: None) -> list[ReplayCheck]:
    """Check each of `rows` in one Chromium, started only if there is something to replay;
    `replaying` is told each URL as its replay begins (a progress bar)."""
    if not rows:
        return []
    from archiver.capture.browser.chromium import find_chromium  # Playwright loads only when replaying

    executable = find_chromium()
    if executable is None:
        raise UsageProblem("replaying browser captures needs Chromium, and none was found",
                           "install it (Debian/Ubuntu: apt-get install chromium) or set $ARCHIVER_CHROMIUM")
    with collection, Replayer(executable) as replayer:
        checks = []
        for row in rows:
            replaying(row.url)
            checks.append(check_replay(collection, row, replayer, log))
        return checks


def check_replay(collection: Collection, row: CaptureRow, replayer: Replayer,
                 log: Callable[[str, dict], str | None]) -> ReplayCheck:
    """Replay one capture in `replayer`'s browser, compare, and log the result with `log(event,
    subject)`, which returns why it could not be logged, or None."""
    result = _replay(collection, row, replayer)
    why_not = log(EVENT, {"capture": row.id, "url": row.url, "verdict": result.verdict, "replayed": result.replayed,
                          "error": result.error,
                          "pixel_similarity": result.pixel_similarity, "text_similarity": result.text_similarity,
                          "requests": result.requests, "missing": result.missing,
                          "loosely_matched": result.loosely_matched})
    result.recorded_in_custody_log, result.not_recorded_because = why_not is None, why_not
    return result


def _replay(collection: Collection, row: CaptureRow, replayer: Replayer) -> ReplayCheck:
    storage, catalog = collection.storage, collection.catalog
    records = catalog.records(row.id)
    artifacts = {record.role: record for record in records if record.role in _ARTIFACT_ROLES}
    if not artifacts:
        return ReplayCheck(row.id, row.url, False, "not a browser capture: there is no rendered page to compare with")
    if row.response_record_id is None:
        return ReplayCheck(row.id, row.url, False, "the capture holds no response for its page")
    archive = CaptureArchive.of_capture(storage, catalog, row.id)
    captured = _as_captured(storage, catalog, row.id)
    wait = captured.wait_after_load
    if wait is None:
        wait = collection.config.capture.wait_after_load
    replay = replayer.replay(row.url, archive, time.monotonic() + collection.config.capture.timeout,
                             tall_window=captured.tall_window, wait_after_load=wait)
    page = replay.page
    check = ReplayCheck(row.id, row.url, True, missing=replay.missing, requests=len(replay.asked),
                        loosely_matched=replay.loosely)
    if captured.wait_after_load is None:
        check.notes.append(f"watched after load for up to {wait:g} s, archiver.toml's wait_after_load now: "
                           "the capture does not record the wait it was made with (made before it was recorded)")
    check.notes.extend(f"matched loosely (only cache-busting query values differ): {asked} answered as {recorded}"
                       for asked, recorded in replay.loosely.items())
    check.notes.extend(f"left unanswered, as at capture (sent, and no response recorded): {asked}"
                       for asked in replay.unanswered)
    if page.screenshot is None and page.dom is None:
        check.replayed, check.error = False, page.error or "the browser made nothing of the page"
        return check
    if page.error:
        check.notes.append(f"the replay ended early: {page.error}")
    if "screenshot" in artifacts and page.screenshot is not None:
        try:
            # The replay's screenshot cut to its bounds: compared where it reaches, along each side cut
            # (one made before the bounds were by area, of a wide page, reaches further, and that extra
            # is no change); along a side not cut, what the capture holds beyond it is the page shrunk.
            cut = {note.rsplit(" ", 1)[-1] for note in page.notes if note.startswith(SCREENSHOT_CUT_NOTE)}
            check.pixel_similarity = round(pixel_similarity(read_record_block(storage, artifacts["screenshot"]),
                                                            page.screenshot, cut), 4)
            if cut:
                check.notes.append("screenshots compared within the replay's, which the page's size cut to its bounds")
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            check.notes.append(f"screenshots not compared: {exc}")
    else:
        check.notes.append("screenshots not compared: " + ("the capture has none" if "screenshot" not in artifacts
                                                           else "the replay made none"))
    if "dom" in artifacts and page.dom is not None and (holds_cut_dom(records) or page.dom_cut):
        check.notes.append(f"texts {DOM_CUT}")
    elif "dom" in artifacts and page.dom is not None:
        captured = read_record_block(storage, artifacts["dom"])
        # Like with like: a DOM recorded before open shadow roots were (none in it) is compared
        # with the replay's read without them, and a capture made before its frames' DOMs were
        # recorded without the replay's frames, or their text would read as the archive's change.
        before, after = visible_words(captured), visible_words(page.dom, holds_shadow_roots(captured))
        if (frames := recorded_frames(storage, records)) is not None:
            before += frames_words([read_record_block(storage, frame) for frame in frames])
            after += frames_words([frame.dom.markup.encode("utf-8") for frame in page.frames])
        elif page.frames:
            check.notes.append(FRAMES_NOT_COMPARED)
        check.text_similarity = round(similarity(before, after), 4)
    else:
        check.notes.append("texts not compared: " + ("the capture has no DOM" if "dom" not in artifacts
                                                     else "the replay made none"))
    return check


@dataclass(frozen=True)
class AsCaptured:
    """How a capture's page was rendered, as its metadata record says, so that the replay renders
    it the same way: its screenshot taken in a window as tall as the page (a frame painted in one
    and blank in the other would read as a change of the page), and its wait after load (late
    content come in one and not the other would too); `wait_after_load` None: not recorded (a
    capture made before it was)."""

    tall_window: bool = False
    wait_after_load: float | None = None


def as_captured(details: object) -> AsCaptured:
    """What a capture's metadata (`details`, its JSON) says of how its page was rendered."""
    if not isinstance(details, dict):
        return AsCaptured()
    page, settings = details.get("page"), details.get("settings")
    notes = page.get("notes") if isinstance(page, dict) else None
    wait = settings.get("wait_after_load") if isinstance(settings, dict) else None
    return AsCaptured(isinstance(notes, list) and TALL_WINDOW_NOTE in notes,
                      float(wait) if isinstance(wait, (int, float)) and not isinstance(wait, bool) and wait >= 0 else None)


def _as_captured(storage, catalog, capture_id: str) -> AsCaptured:
    for record in catalog.records(capture_id):
        if record.role == "metadata":
            try:
                return as_captured(json.loads(read_record_block(storage, record)))
            except ValueError:
                continue
    return AsCaptured()


def pixel_similarity(before: bytes, after: bytes, second_cut: set[str] | tuple[str, ...] = ()) -> float:
    """The share of pixels alike (each channel within PIXEL_TOLERANCE) in two PNGs, over the
    area that either covers: a page that grew or shrank counts its extra part as unlike.
    `second_cut`: the sides ("wide", "high") along which the second was cut to its bounds; the
    first's part beyond the second along those is not compared."""
    first, second = (Image.open(io.BytesIO(data)).convert("RGB") for data in (before, after))
    first = first.crop((0, 0, min(first.width, second.width) if "wide" in second_cut else first.width,
                        min(first.height, second.height) if "high" in second_cut else first.height))
    width, height = min(first.width, second.width), min(first.height, second.height)
    union = max(first.width, second.width) * max(first.height, second.height)
    if union == 0:
        return 1.0
    box = (0, 0, width, height)
    red, green, blue = ImageChops.difference(first.crop(box), second.crop(box)).split()
    largest = ImageChops.lighter(ImageChops.lighter(red, green), blue)
    alike = largest.point(lambda value: 255 if value <= PIXEL_TOLERANCE else 0).histogram()[255]
    return alike / union
