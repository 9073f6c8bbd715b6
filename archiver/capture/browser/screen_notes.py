"""What a page's screenshot does not show as the page holds it, noted on the capture just before
the screenshot is taken (nothing on the page is clicked, moved or removed: the screenshot is what
a reader first saw): an overlay over most of the first screen (a cookie or consent prompt, a
newsletter sign-up, a paywall), the article behind it; and a large inner scroll container (an
app whose <body> does not scroll, its article in a box of its own), of which the screenshot
shows only the part in view, the rest only in the DOM."""

from __future__ import annotations

from playwright.async_api import Page

from archiver.capture.browser.scrolling import INNER_MINIMUM
from archiver.capture.verdict_markup import consent_words

OVERLAY_SHARE = 0.5   # of the first screen an overlay covers, on top of everything else, to be noted
BOX_SHARE = 0.25      # of the window's area an inner scroll container takes, to be noted
MOST_BOXES = 3        # noted at most, the largest first
_GRID = 7             # points each way at which what is on top of the first screen is looked at
OVERLAY_CHARS = 2000  # of an overlay's text read for consent words
NAME_CHARS = 200      # of an element's name (tag#id, tag.class): a page can make an id of megabytes

# [grid, minimum, boxShare, most, chars, nameChars, seconds]: the fixed or sticky element on top at most
# points of a grid over the window (its share of them, its text, open shadow root's too, and
# whether that is half the page's text or more: then it holds the page, an app's frame, and is
# no overlay over it; a prompt alone on the page is judged by the verdict), and the largest inner
# scroll containers taking at least boxShare of the window (how each is named, its height and that of
# its content). Elements are looked at for scroll containers as long as time allows.
_LOOK = """([grid, minimum, boxShare, most, chars, nameChars, seconds]) => {
  const end = performance.now() + seconds * 1000;
  const pinned = element => { let found = null;
    for (let e = element; e && e !== document.documentElement; e = e.parentElement)
      if (["fixed", "sticky"].includes(getComputedStyle(e).position)) found = e;
    return found; };
  const hits = new Map();
  for (let i = 0; i < grid; i++) for (let j = 0; j < grid; j++) {
    const top = pinned(document.elementFromPoint((i + 0.5) * innerWidth / grid, (j + 0.5) * innerHeight / grid));
    if (top) hits.set(top, (hits.get(top) ?? 0) + 1);
  }
  const [overlay, count] = [...hits].sort((a, b) => b[1] - a[1])[0] ?? [null, 0];
  const name = e => (e.tagName.toLowerCase() + (e.id ? "#" + e.id : e.classList.length ? "." + e.classList[0] : ""))
    .slice(0, nameChars);
  const boxes = [];
  let searched = true, looked = 0;
  for (const box of document.querySelectorAll("body *")) {
    if (++looked % 4096 === 0 && performance.now() >= end) { searched = false; break; }
    if (box.clientHeight >= minimum && box.clientWidth >= minimum && box.scrollHeight > box.clientHeight + 1
        && box.clientWidth * box.clientHeight >= boxShare * innerWidth * innerHeight
        && ["auto", "scroll", "overlay"].includes(getComputedStyle(box).overflowY)) boxes.push(box);
  }
  boxes.sort((a, b) => b.clientWidth * b.clientHeight - a.clientWidth * a.clientHeight);
  const shadow = overlay?.shadowRoot ? [...overlay.shadowRoot.children].filter(c => c.checkVisibility())
    .map(c => c.innerText).join("\\n") : "";
  const text = overlay ? (overlay.innerText ?? "") + "\\n" + shadow : "";
  return {overlay: overlay && {share: count / (grid * grid), name: name(overlay),
                               position: getComputedStyle(overlay).position, text: text.slice(0, chars),
                               alone: text.length * 2 > (document.body?.innerText ?? "").length + shadow.length},
          boxes: boxes.slice(0, most).map(b => ({name: name(b), shown: b.clientHeight, height: b.scrollHeight})),
          found: boxes.length, searched};
}"""


async def screen_notes(page: Page, seconds: float) -> list[str]:
    """The notes on what the screenshot about to be taken of `page` does not show as the page
    holds it (see above), looked for within `seconds`."""
    seen = await page.evaluate(_LOOK, [_GRID, INNER_MINIMUM, BOX_SHARE, MOST_BOXES, OVERLAY_CHARS, NAME_CHARS,
                                      seconds])
    notes = []
    overlay = seen["overlay"]
    over_page = overlay and overlay["share"] > OVERLAY_SHARE and not overlay["alone"]
    if over_page:
        notes.append(_overlay_note(overlay))
    for box in seen["boxes"]:
        notes.append(f"screenshot: shows only the first {box['shown']} px of an inner scroll container "
                     f"({box['name']}) whose content is {box['height']} px high; the rest is in the DOM, "
                     "not in the screenshot")
    if seen["found"] > len(seen["boxes"]):
        notes.append(f"screenshot: the {len(seen['boxes'])} largest of {seen['found']} large inner scroll "
                     "containers noted")
    if not seen["searched"]:
        notes.append("screenshot: not every element looked at for inner scroll containers before the time ran out")
    return notes


def _overlay_note(overlay: dict) -> str:
    """The note on a fixed or sticky `overlay` over most of the first screen: a cookie or consent
    prompt when its text has consent words, else whatever it is (a newsletter sign-up, a paywall)."""
    opening = " ".join(overlay["text"].split()[:12])
    if asked := consent_words(overlay["text"]):
        what, said = "a cookie or consent overlay", f"'{asked}' in its text: {opening!r}"
    else:
        what, said = "an overlay", f"its text: {opening!r}" if opening else "no text of its own"
    return (f"screenshot: {what} ({overlay['name']}, position: {overlay['position']}, {said}) covers "
            f"{overlay['share']:.0%} of the first screen; the screenshot shows it over the page, as a reader first saw it")
