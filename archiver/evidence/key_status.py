"""What the custody log's key events say of each key (announced, rotated out, revoked from
when), and the one rule by which `verify` and `verify-bundle` judge a custody entry by the key
that signed it (entry_distrust).

A revocation names the moment from which its key is not to be trusted: what the key signed
from then fails, and so does every entry the chain puts after a revocation already in effect
as it was logged, whatever clock dated that entry (a thief's, or one set back). A rotation
counts by the chain's order alone: a rotated-out key's last signature is the entry rotating
it out (by that key itself; a key already revoked is replaced by a key announcing itself, so
no revoked key's word announces its successor). Machines' clocks differ; the chain's order does
not, and every signer looks at its key again under the log's lock as it appends (key_watch.py),
so an honest entry never follows the key event that took its key out of service."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator

from archiver.evidence.custody import now, parse_entry

WORKER_KEY_ANNOUNCED = "worker key announced"
# What only a collection key may sign: a worker key's word about keys counts for nothing.
KEY_EVENTS = ("key generated", "key adopted", "key rotated", "key revoked", "wacz key generated", WORKER_KEY_ANNOUNCED)


@dataclass
class KeyStatus:
    fingerprint: str
    announced_at: str | None = None
    rotated_out_at: str | None = None
    revoked_from: str | None = None
    reasons: list[str] = field(default_factory=list)
    machine: str | None = None  # for a worker key: the machine its announcement names
    announced_by: str | None = None  # for a worker key: the collection key that signed its announcement
    bundle_key_of: str | None = None  # for a bundle key (ECDSA P-384, signs WACZs): the collection key it belongs to
    announced_seq: int | None = None  # the custody entry announcing it
    rotated_out_seq: int | None = None  # the first custody entry rotating it out
    revoked_seq: int | None = None  # the first custody entry revoking it from a moment come as it was logged

    @property
    def state(self) -> str:
        return "revoked" if self.revoked_from else "rotated out" if self.rotated_out_at else "active"

    def revoked_at(self, moment: str) -> bool:
        """Whether a revocation is in effect at `moment` (one dated later is not yet)."""
        return self.revoked_from is not None and moment >= self.revoked_from

    def revoked_now(self) -> bool:
        """Whether a revocation is in effect now: its moment has come by this machine's clock, or
        had by the clock of the machine that logged it (a clock behind must not keep it signing)."""
        return self.revoked_seq is not None or self.revoked_at(now())

    def in_service(self) -> bool:
        """Whether the key may sign now: not rotated out (whatever this machine's clock says of
        the rotation's time), and no revocation in effect yet."""
        return self.rotated_out_at is None and not self.revoked_now()

    def distrust(self, moment: str, seq: int | None = None, revocations_only: bool = False) -> str | None:
        """Why what this key signed at `moment` (as custody entry `seq`, when it is one) is not
        to be trusted, as the words after "the key was"; None when it may be (see the module).
        revocations_only: None for what it signed after a rotation took it out of service."""
        if self.revoked_at(moment):
            return f"revoked from {self.revoked_from}"
        if seq is not None and self.revoked_seq is not None and seq > self.revoked_seq:
            return f"revoked (from {self.revoked_from}) by custody entry seq {self.revoked_seq}, before this was signed"
        if not revocations_only and seq is not None and self.rotated_out_seq is not None and seq > self.rotated_out_seq:
            return f"rotated out by custody entry seq {self.rotated_out_seq}, before this was signed"
        return None

    def trusted_at(self, moment: str, seq: int | None = None) -> str | None:
        """Why a signature made at `moment` (as custody entry `seq`) must not be trusted, or None when it may be."""
        why = self.distrust(moment, seq)
        return None if why is None else f"key {self.fingerprint[:16]} was {why}"


def entry_distrust(entry: dict, statuses: dict[str, KeyStatus], revocations_only: bool = False) -> str | None:
    """Why the custody `entry` (as parse_entry reads it) is not to be trusted, its key having been revoked or rotated out
    (revoked only, with revocations_only) as `statuses` (key_statuses_in over the same chain)
    say, in one line naming the entry and the key; None when it may be. A revocation is never
    held to it: a key may sign its own, a revoked collection key another's, and a revocation
    only takes trust away."""
    status = statuses.get(entry.get("key"))
    if entry.get("event") == "key revoked" or status is None:
        return None
    why = status.distrust(entry.get("time", ""), entry["seq"], revocations_only)
    return None if why is None else \
        f"seq {entry.get('seq')} ({entry.get('event')}) is signed by key {status.fingerprint}, which was {why}"


def attestation_distrust(envelope: dict | None, finished_at: str, statuses: dict[str, KeyStatus]) -> str | None:
    """Why a capture's attestation `envelope` is not to be trusted (its key revoked from before
    the capture finished, at `finished_at`), or None when it may be or there is none (imported)."""
    signer = (envelope or {}).get("signatures", [{}])[0].get("keyid")
    return statuses[signer].trusted_at(finished_at) if signer in statuses else None


# A key event's name, as a line can hold it without escapes: "key revoked" can only be
# spelled otherwise with a backslash, so a line with neither holds no key event. Every name
# has "key " in it: one search rules out nearly every line of a large log.
_KEY_EVENT_SPELLINGS = tuple(f'"{event}"'.encode("utf-8") for event in KEY_EVENTS)
_IN_EVERY_KEY_EVENT = b"key "


def key_event_entries(lines: Iterable[bytes]) -> Iterator[dict]:
    """The entries among the custody `lines` that may be key events, parsed (the other lines,
    nearly all of a large log, are not: key statuses are read before the log is checked)."""
    for line in lines:
        if b"\\" in line or (_IN_EVERY_KEY_EVENT in line and any(spelling in line for spelling in _KEY_EVENT_SPELLINGS)):
            if (entry := parse_entry(line)) is not None:
                yield entry


def key_statuses_in(entries: Iterable[dict | None]) -> dict[str, KeyStatus]:
    """What custody entries already read (parsed, in the chain's order; None for a line that is
    not an entry) say about each key."""
    statuses: dict[str, KeyStatus] = {}
    for entry in entries:
        subject = entry.get("subject") if entry else None
        if not isinstance(subject, dict) or not isinstance(entry.get("time"), str):
            continue  # an altered line: verify names it; it says nothing about keys
        event, moment, seq = entry.get("event"), entry["time"], entry["seq"]
        signer = statuses.get(entry.get("key"))
        if event in KEY_EVENTS and signer is not None and signer.machine is not None:
            continue
        named = {name: subject.get(name) for name in ("fingerprint", "from", "to", "revoked_from")}
        if event in ("key generated", "key adopted", "wacz key generated") and isinstance(named["fingerprint"], str):
            status = statuses.setdefault(named["fingerprint"], KeyStatus(named["fingerprint"]))
            status.announced_at, status.announced_seq = moment, seq
            if event == "wacz key generated":
                status.bundle_key_of = entry.get("key")
        elif event == WORKER_KEY_ANNOUNCED and isinstance(named["fingerprint"], str):
            status = statuses.setdefault(named["fingerprint"], KeyStatus(named["fingerprint"]))
            status.announced_at, status.announced_seq, status.machine = moment, seq, str(subject.get("machine"))
            status.announced_by = entry.get("key")
        elif event == "key rotated" and isinstance(named["from"], str) and isinstance(named["to"], str):
            status = statuses.setdefault(named["from"], KeyStatus(named["from"]))
            if status.rotated_out_seq is None:  # the first holds: one the rotated-out key signs later must not move it
                status.rotated_out_at, status.rotated_out_seq = moment, seq
            status = statuses.setdefault(named["to"], KeyStatus(named["to"]))
            status.announced_at, status.announced_seq = moment, seq
        elif event == "key revoked" and isinstance(named["fingerprint"], str) and isinstance(named["revoked_from"], str):
            status = statuses.setdefault(named["fingerprint"], KeyStatus(named["fingerprint"]))
            status.revoked_from = _earliest(status.revoked_from, named["revoked_from"])
            if named["revoked_from"] <= moment:  # in effect as it was logged: for every entry after it
                status.revoked_seq = _earliest(status.revoked_seq, seq)
            status.reasons.append(str(subject.get("reason", "")))
    # A worker key is only as good as the announcement that vouched for it: one signed by a key
    # no longer trusted (a thief holding the stolen key, the revocation dated back afterwards, or
    # a rotated-out key's old file) vouches for nothing, so the worker key is distrusted from its
    # announcement on, whatever came first in the log.
    for status in statuses.values():
        announcer = statuses.get(status.announced_by or "")
        void = announcer.distrust(status.announced_at, status.announced_seq) \
            if status.machine is not None and announcer is not None and status.announced_at else None
        if void is not None:
            status.revoked_from = _earliest(status.revoked_from, status.announced_at)
            status.revoked_seq = _earliest(status.revoked_seq, status.announced_seq)
            status.reasons.append(f"announced by key {announcer.fingerprint[:16]} after it was {void}")
    return statuses


def _earliest(*values):
    """The least of the values given that are not None; None when none is."""
    present = [value for value in values if value is not None]
    return min(present) if present else None
