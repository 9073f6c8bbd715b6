"""The replay's steady clock and dice: a script run in every frame of a replay's context (never a
capture's) before the page's own, so that the page sees the time it was captured at (then
running on from there, as pywb's wombat does) and a Math.random() that gives the same numbers
each replay. A page that prints the date or picks a random story then shows what it showed when
captured as nearly as a replay can, and asks for the same URLs each time it is replayed."""

from __future__ import annotations

_SCRIPT = """(() => {
  const captured = %d, started = Date.now(), Real = Date;
  const now = () => captured + (Real.now() - started);
  function ReplayDate(...args) {  // Date() alone is the time as text; new Date() the time
    if (!new.target) return new Real(now()).toString();
    return args.length ? new Real(...args) : new Real(now());
  }
  ReplayDate.prototype = Real.prototype;
  Object.assign(ReplayDate, {now, parse: Real.parse, UTC: Real.UTC});
  globalThis.Date = ReplayDate;
  let seed = 0x2f6b4a1d;
  Math.random = () => {  // mulberry32
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
})();"""


def replay_clock(captured_at: float) -> str:
    """The script, its clock set to `captured_at` (epoch seconds)."""
    return _SCRIPT % round(captured_at * 1000)
