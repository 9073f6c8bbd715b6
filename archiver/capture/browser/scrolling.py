"""The scripts that scroll a page in the browser, as a reader would, so that what loads only when
seen (lazy images, IntersectionObserver loaders, infinite lists) loads: first the window, a
viewport at a time, then the page's large inner scroll containers (a feed, a comment thread or
a gallery in a box of its own), each brought into view and scrolled a box's height at a time.

After each step the next frame starts (the IntersectionObservers behind lazy images see the new
position in that frame, after its animation callbacks; a page that draws none is not waited for
beyond 250 ms), then a short pause for the loaders they start. Every jump is instant even where
the page asks for smooth scrolling, which would still be on its way at the next step. Each
script keeps to the seconds it is given, by the page's own clock."""

from __future__ import annotations

_STEPPING = """
  const frame = () => new Promise(done => { requestAnimationFrame(done); setTimeout(done, 250); });
  const stepped = async () => { await frame(); await new Promise(done => setTimeout(done, pause * 1000)); };
  const end = performance.now() + seconds * 1000;"""

# [y, step, limit, pause, seconds]: on down from y; where it stopped, the page's height, and why
# ("height" at the limit, "time", or null at the end of the page).
WINDOW_SCROLL = """async ([y, step, limit, pause, seconds]) => {""" + _STEPPING + """
  const height = () => Math.max(document.documentElement?.scrollHeight ?? 0, document.body?.scrollHeight ?? 0);
  while (y + step < height()) {
    if (y + step >= limit) return {y, height: height(), stopped: "height"};
    if (performance.now() >= end) return {y, height: height(), stopped: "time"};
    y += step;
    window.scrollTo({top: y, behavior: "instant"});
    await stepped();
  }
  return {y, height: height(), stopped: null};
}"""

# Boxes smaller than this (px, each way) are not a part of the page a reader scrolls through.
INNER_MINIMUM = 150
# [most, steps, minimum, pause, seconds]: the `most` largest boxes at least `minimum` px each way
# whose content overflows them and that scroll it (not the window's own scroller), each scrolled
# at most `steps` steps and set back to its top, and the window set back where it was. A page
# with more elements than can be looked at in time is looked at as far as time allowed.
INNER_SCROLL = """async ([most, steps, minimum, pause, seconds]) => {""" + _STEPPING + """
  const scrolls = box => box !== document.scrollingElement && box.clientHeight >= minimum
    && box.clientWidth >= minimum && box.scrollHeight > box.clientHeight + 1
    && ["auto", "scroll", "overlay"].includes(getComputedStyle(box).overflowY);
  const boxes = [];
  let looked = 0, searched = true;
  for (const box of document.querySelectorAll("*")) {
    if (++looked % 4096 === 0 && performance.now() >= end) { searched = false; break; }
    if (scrolls(box)) boxes.push(box);
  }
  boxes.sort((a, b) => b.clientWidth * b.clientHeight - a.clientWidth * a.clientHeight);
  const [x, y] = [window.scrollX, window.scrollY];
  const atEnd = box => box.scrollTop + box.clientHeight >= box.scrollHeight - 1;
  let scrolled = 0, unfinished = 0;
  for (const box of boxes.slice(0, most)) {
    if (performance.now() >= end) break;
    box.scrollIntoView({block: "start", inline: "nearest", behavior: "instant"});
    for (let step = 0; step < steps && !atEnd(box) && performance.now() < end; step++) {
      box.scrollTo({top: box.scrollTop + box.clientHeight, behavior: "instant"});
      await stepped();
    }
    unfinished += atEnd(box) ? 0 : 1;
    box.scrollTo({top: 0, behavior: "instant"});
    scrolled += 1;
  }
  window.scrollTo({left: x, top: y, behavior: "instant"});
  return {found: boxes.length, searched, scrolled, unfinished};
}"""


def inner_notes(outcome: dict, most: int, steps: int) -> list[str]:
    """What INNER_SCROLL's `outcome` left unscrolled, in words for the capture's notes."""
    found, scrolled, unfinished = outcome["found"], outcome["scrolled"], outcome["unfinished"]
    notes = [] if outcome["searched"] else ["scroll: not every element looked at for inner scroll containers "
                                              "before the time ran out"]
    if scrolled < min(found, most):
        notes.append(f"scroll: {scrolled} of {found} inner scroll containers scrolled before the time ran out")
    elif found > most:
        notes.append(f"scroll: the {most} largest of {found} inner scroll containers scrolled")
    if unfinished:
        notes.append(f"scroll: {unfinished} inner scroll container(s) not scrolled to their end "
                     f"(at most {steps} steps each, and the time)")
    return notes
