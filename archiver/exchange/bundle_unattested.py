"""verify-bundle's checks of the captures a bundle carries with no attestation: ones that failed
with nothing received, which no WARC record holds (imported ones, made by another tool, are
bundle_imports'), and any other, which lacks the attestation it should have. What signs a
failure is its manifest entry (proven into the checkpoint like any capture's: bundle_verify)
and the custody entry the capture logged when it failed, naming its URL, outcome and error
(capture/run.py); here each is held to the other. The bundle statement commits to
evidence/captures.json and evidence/custody.jsonl, its lists of them: a failure logged in one
and missing from the other is named too."""

from __future__ import annotations

from typing import Iterable

from archiver.check.custody_log import LOGGED_FAILURE
from archiver.check.findings import Report
from archiver.evidence.custody import verify_entry
from archiver.evidence.key_status import KeyStatus, entry_distrust
from archiver.evidence.signing import PublicKey


def failure_signers(custody: Iterable[dict | None]) -> dict[str, str]:
    """The key that signed each capture's custody entry logging it with no attestation (a failure
    with nothing received), by capture id, of the entries read (None: a line not an entry)."""
    return {subject.get("capture"): entry.get("key") for entry in custody if entry is not None
            and entry.get("event") == "capture" and (subject := entry.get("subject") or {}).get("attestation") is None}


def unrecorded_failure(entry: dict) -> bool:
    """Whether a manifest entry is of a capture that failed with nothing received."""
    return entry.get("outcome") == "failed" and not entry.get("records")


def check_unattested(entries: dict[str, dict], attested: set[str], custody: list[dict], keys: dict[str, PublicKey],
                     statuses: dict[str, KeyStatus], report: Report) -> None:
    """Each capture of the proven manifest entries (`entries`, by capture id) not `attested`: an
    unrecorded failure is held to the custody entries carried (`custody`) that log a capture with
    no attestation, signed by `keys`; an imported one has none of ours (bundle_imports names it);
    any other is missing its attestation."""
    failures = {}
    for capture_id in sorted(set(entries) - attested):
        entry = entries[capture_id]
        if unrecorded_failure(entry):
            failures[capture_id] = entry
        elif not entry.get("imported_from"):
            report.check("attestation present", False, f"capture {capture_id}", "no signed attestation in the bundle")
    _check_failures(failures, custody, keys, statuses, report)


def _check_failures(failures: dict[str, dict], custody: list[dict], keys: dict[str, PublicKey],
                    statuses: dict[str, KeyStatus], report: Report) -> None:
    """Each failure against the custody entry carried that logged it, and each such entry against a failure."""
    logged: dict[str, dict] = {}
    for entry in custody:
        subject = entry.get("subject") or {}
        if entry.get("event") == "capture" and subject.get("attestation") is None and verify_entry(entry, keys) is None:
            logged.setdefault(str(subject.get("capture")), entry)
    for capture_id, entry in sorted(failures.items()):
        where = f"evidence/captures.json capture {capture_id}"
        found = logged.get(capture_id)
        if not report.check("failed capture logged", found is not None, where,
                            "failed with no record, and no custody entry carried signs its failure"):
            continue
        distrust = entry_distrust(found, statuses)
        report.check("failed capture key status", distrust is None, where, distrust or "")
        subject = found["subject"]
        differ = [name for name in LOGGED_FAILURE if subject.get(name) != entry.get(name)]
        report.check("failed capture as logged", not differ, where, f"its manifest entry's {' and '.join(differ)} "
                     f"differ{'s' if len(differ) == 1 else ''} from the custody entry logging its failure")
    for capture_id in sorted(set(logged) - set(failures)):
        report.check("failed capture carried", False, f"evidence/custody.jsonl capture {capture_id}",
                     "a failure logged in the custody entries carried, with no proven manifest entry in "
                     "evidence/captures.json")
