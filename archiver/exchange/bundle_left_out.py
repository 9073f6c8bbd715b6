"""What a bundle leaves out for a revoked key: each capture attested by a key revoked from
before it was made, and each custody entry a key signed after its revocation took effect (a
stolen key's thief may have made them), with why; and how verify-bundle names them under not
checked. A revisit of a capture left out goes with it (its payload is in that capture's
records); a capture of the same URL made since with the collection's current key stores its
payload in full (capture/revisits.py) and is bundled in their place. A failure with nothing
received goes with the custody entry logging it, its one signature. Asked to (`bundle
--include-revoked`), a bundle carries them all, and verify-bundle fails them."""

from __future__ import annotations

from dataclasses import dataclass

from archiver.evidence.custody import parse_entry
from archiver.evidence.key_status import KeyStatus, attestation_distrust, entry_distrust
from archiver.exchange.capture_evidence import CaptureEvidence


@dataclass(frozen=True)
class Kept:
    evidence: list[CaptureEvidence]
    custody: list[bytes]
    left_out: dict  # {"captures": [...], "custody": [...]}: what the bundle statement lists as left out


def leave_out_revoked(evidence: list[CaptureEvidence], custody: list[bytes], statuses: dict[str, KeyStatus]) -> Kept:
    """The captures (`evidence`, oldest first) and custody lines a bundle carries, and those it
    leaves out for a revoked key: with a capture, each revisit of it; with the custody entry
    logging a failure with nothing received, that failure."""
    entries, kept_custody = [], []
    failures_left: dict[str, str] = {}  # capture id → why the custody entry logging its failure is left out
    for line in custody:
        entry = parse_entry(line)
        why = entry_distrust(entry, statuses, revocations_only=True) if entry is not None else None
        if why is None:
            kept_custody.append(line)
        else:
            entries.append({"seq": entry["seq"], "event": entry.get("event"), "why": why})
            subject = entry.get("subject") or {}
            if entry.get("event") == "capture" and subject.get("attestation") is None:
                failures_left[str(subject.get("capture"))] = why
    captures, kept_evidence, left = [], [], set()
    for item in evidence:
        why = attestation_distrust(item.attestation, item.capture.finished_at, statuses)
        if why is None and not item.records and item.capture.id in failures_left:
            # A failure with nothing received is signed by its custody entry alone: carried without it, it is unproven.
            why = f"its failure is signed only by a custody entry left out: {failures_left[item.capture.id]}"
        elif why is None and item.capture.revisit_of in left:
            # Its payload is in that capture's records alone: carried without them, it shows nothing.
            why = f"its payload is stored only in capture {item.capture.revisit_of}, itself left out"
        elif why is not None:
            why = f"attested by a revoked key ({why}, before this capture was made)"
        if why is None:
            kept_evidence.append(item)
        else:
            left.add(item.capture.id)
            captures.append({"capture": item.capture.id, "url": item.capture.url, "started_at": item.capture.started_at,
                             "why": why})
    return Kept(kept_evidence, kept_custody, {"captures": captures, "custody": entries})


def left_out_lines(statement: dict) -> list[str]:
    """What verify-bundle lists under not checked of what the bundle statement says it left out."""
    left_out = statement.get("left_out") or {}
    return ([f"capture {item.get('capture')} of {item.get('url')} (started {item.get('started_at')}): left out: "
             f"{item.get('why')}" for item in left_out.get("captures", [])]
            + [f"custody entry {item.get('why')}: left out: signed by a revoked key" for item in left_out.get("custody", [])])
