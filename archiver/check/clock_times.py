"""Whether the times a collection wrote agree with each other and with the RFC 3161 tokens over
them. Every time archiver writes (a capture's start and end, each custody entry's) is read from
the clock of the machine that wrote it; nothing checks that clock as it is read. A clock that
was wrong shows only where those times contradict what is known of their order: an entry of the
custody log dated before one the chain puts before it (a capture dated before the key that
signed it was made), or a capture dated after the genTime of a token over a manifest listing it.
verify (check/custody_log.py, check/manifests.py) and verify-bundle (exchange/bundle_verify.py)
hold the times they read to these same rules."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from archiver.check.findings import Report
from archiver.evidence.custody import entry_time, zoned_time

if TYPE_CHECKING:  # X.509 parsing costs a tenth of a second to import; a verify without tokens needs none
    from archiver.evidence.timestamps.verification import TimestampCheck

# NTP steps an honest machine's clock back when it has run fast: by a fraction of a second
# usually, a second or two after a suspend or at boot; and the workers of a team collection each
# append to one log by their own clocks, which agree only as well as each is kept in sync. A step
# back within a minute is named, not failed (no capture's time matters to a court to the second,
# and a failed verify cannot be undone); a larger one is a clock that was wrong, and the times
# logged around it rest on it.
CLOCK_STEP_ALLOWANCE = timedelta(seconds=60)

IN_ORDER = "custody times in order"
BEFORE_TOKEN = "capture time before timestamp"


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class CustodyClock:
    """Follows custody entries in the order of their chain (all of them, or the ones a bundle
    carries, in the same order) and names each step back in their times: once, where it is."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self.previous: tuple[datetime, object] | None = None  # the entry before's time and seq
        self.latest: datetime | None = None  # the latest time before: small steps back must not add up

    def follow(self, entry: dict, where: str) -> None:
        """Hold `entry` (its signature checked) to the entries followed before it."""
        moment = entry_time(entry)
        if moment is None:  # not as archiver writes a time: its signature or shape check names it
            return
        previous, self.previous = self.previous, (moment, entry.get("seq"))
        latest, self.latest = self.latest, max(moment, self.latest or moment)
        if previous is None or moment >= previous[0]:
            self.report.count_passed(IN_ORDER)
            return
        subject = entry.get("subject") if isinstance(entry.get("subject"), dict) else {}
        named = subject.get("capture") if entry.get("event") == "capture" else None
        step = (f"times in the custody log go back from {_iso(previous[0])} (seq {previous[1]}) to {_iso(moment)} "
                f"at seq {entry.get('seq')} ({entry.get('event')}{f' {named}' if isinstance(named, str) else ''})")
        back = latest - moment
        if back <= CLOCK_STEP_ALLOWANCE:
            self.report.not_checked.append(
                f"{where}: {step}, {back.total_seconds():.3f} s before the latest time logged before it: within the "
                f"{CLOCK_STEP_ALLOWANCE.seconds} s an honest clock is stepped back by NTP, so the times logged around "
                "it are good to about that")
        else:
            self.report.check(IN_ORDER, False, where,
                              f"{step}: the capturing machine's clock was wrong; capture times rest on it")


def check_capture_before_token(capture: dict, token: "TimestampCheck", over: str, where: str, report: Report) -> bool:
    """Hold a capture's manifest entry to a verified token over `over`, the file listing it:
    the capture cannot have ended after the token was issued. Whether it held. A failure, not a
    note as a genTime before the manifest's signing is (manifests.py): a capture's time is what
    the report gives as when it was captured, and here it, or the token's, is false. Of an
    imported capture, whose time is the imported file's word, named under not checked instead."""
    stated = {name: (capture[f"{name}_at"], moment) for name in ("started", "finished")
              if (moment := zoned_time(capture.get(f"{name}_at"))) is not None}
    if not stated:  # no time to hold: the entry's shape is the manifest checks'
        return True
    latest = max(moment for _, moment in stated.values())
    times = ", ".join(f"{name} {text}" for name, (text, _) in stated.items())
    if capture.get("imported_from"):
        # Another tool's file gave its time, which every listing already gives as that file's word
        # and nobody signed: no clock of this collection's was wrong, and no verify could ever pass again.
        if after := token.dated_before(latest):
            report.not_checked.append(
                f"{where}: capture {capture.get('id')}, imported ({capture['imported_from']}), is dated {times} by "
                f"that file, after the RFC 3161 token over {over} that lists it (genTime "
                f"{token.gen_time:%Y-%m-%dT%H:%M:%SZ}): the file's date is not when it was captured")
        return not after
    return report.check(
        BEFORE_TOKEN, not token.dated_before(latest), where,
        lambda: f"capture {capture.get('id')} is dated {times}, after the RFC 3161 token over {over} that lists it "
                f"(genTime {token.gen_time:%Y-%m-%dT%H:%M:%SZ}, beyond the token's accuracy and the clock skew "
                "allowed): the capturing machine's clock was ahead, and its stated time is not when it was captured, "
                "or the TSA's was behind; the evidence cannot tell which, so neither time can be relied on")
