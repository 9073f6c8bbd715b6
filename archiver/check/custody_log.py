"""Checks of the custody log and of the public key files it announces. The log is read once
here; what its verified entries say (captures, manifests, timestamps, imports, keys) is kept
for the other checks to hold the catalog and the files to. (The log itself is written and
parsed by evidence/custody.py; this module only judges it.)"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from archiver.check.clock_times import CustodyClock
from archiver.check.findings import Report
from archiver.evidence.custody import (LOG_NAME, WARC_CLOSED, line_hash, parse_entry, read_entries, recorded_torn_line,
                                      verify_entry)
from archiver.evidence.key_status import KEY_EVENTS, WORKER_KEY_ANNOUNCED, KeyStatus, entry_distrust
from archiver.evidence.signing import PublicKey, canonical_json
from archiver.evidence.worker_keys import announced_public_key
from archiver.store.collection import Collection

_SELF_ANNOUNCING = ("key generated", "key adopted")  # a key's first announcement, signed by the key itself


@dataclass
class Logged:
    """What the custody log says, for the other checks to hold the catalog to."""

    captures: dict[str, str | None] = field(default_factory=dict)  # capture id → the attestation digest logged
    unattested: dict[str, dict] = field(default_factory=dict)  # capture id → url, outcome, error of one logged with none
    manifests: dict[int, dict] = field(default_factory=dict)  # sequence → "manifest signed" entry
    timestamps: dict[int, dict] = field(default_factory=dict)  # sequence → "timestamp" entry
    imports: set[str] = field(default_factory=set)  # captures named by "import" entries
    imported_files: dict[str, object] = field(default_factory=dict)  # file name → the SHA-256 its "import" entry signed
    closed_files: dict[str, tuple] = field(default_factory=dict)  # file name → (size, SHA-256) its first close signed
    late_reads: list[str] = field(default_factory=list)  # documents and notes doctor recorded after a run stopped
    public_keys: dict[str, str] = field(default_factory=dict)  # fingerprint → the PEM announced
    claims_read: dict[str, int] = field(default_factory=dict)  # claim id → seq of the last entry reading it (document, note)
    documents_read: set[str] = field(default_factory=set)  # SHA-256 of every document version read
    claims_trees: dict[str, object] = field(default_factory=dict)  # document key → the claims tree its latest read signed
    documents_last_read: dict[str, int] = field(default_factory=dict)  # document key → seq of its latest read
    note_urls: dict[str, list] = field(default_factory=dict)  # note claim id → every URL its entries say it cites
    notes_at: dict[str, list[tuple[object, list]]] = field(default_factory=dict)  # note claim id → (at, URLs) of
    # each entry recording it (at None: recorded before archiver signed when)
    documents_path: dict[str, object] = field(default_factory=dict)  # document key → the path its latest read signed
    timed_reads: dict[str, dict[str, TimedRead]] = field(default_factory=dict)  # document key → read_at → that read
    # claim id → the earliest read_at of the reads listing it (None: one of them signed no time)
    claims_first_read: dict[str, str | None] = field(default_factory=dict)
    # capture id → (seq, the capture it was resolved to) of the import giving an imported revisit its original
    revisits_resolved: dict[str, tuple[int, object]] = field(default_factory=dict)


@dataclass(frozen=True)
class TimedRead:
    """A document read that signed its time and what it changed in what claims cite (evidence/citation_changes.py)."""

    seq: int
    begun: frozenset[tuple[str, str]]  # (claim id, url_key) a claim found before began citing at this read
    dropped: frozenset[tuple[str, str]]  # (claim id, url_key) a claim stopped citing at this read


def check_custody(collection: Collection, keys: dict[str, PublicKey], statuses: dict[str, KeyStatus],
                  report: Report) -> Logged:
    """Check the log against the collection's public keys `keys`. Each worker key a collection
    key announces is added to `keys` from its announcement on, so that the entries after it,
    and the checks after this one (attestations, manifests), accept what it signed."""
    custody = Logged()
    collection_keys = frozenset(keys)
    path = collection.root / LOG_NAME
    if not path.exists():
        report.check("custody log", False, LOG_NAME, "the custody log is missing")
        return custody
    previous: bytes | None = None
    expected_seq = 1
    roots = 0  # keys announced by themselves: the first key, and any the log does not vouch for
    unreadable: dict[int, str] = {}  # line number → SHA-256 of a line holding no entry
    recorded_torn: dict[tuple[int, str], int] = {}  # (line, SHA-256) → the line of the entry recording it as torn
    clock = CustodyClock(report)
    for number, line in read_entries(path):
        where = f"{LOG_NAME} line {number}"
        entry = parse_entry(line)
        if entry is None:
            unreadable[number] = line_hash(line)  # judged at the end: a later entry may record it as torn
            continue
        report.count_passed("custody entry readable")
        # Another spelling of the same JSON (spacing, key order, escapes, a trailing CR) keeps the
        # signature but not the line's SHA-256: a later entry chains to it, but none to the last
        # line, whose hash verify names to keep outside the collection.
        report.check("custody entry canonical", line == canonical_json(entry), where,
                     "not byte for byte the JSON archiver writes (spacing, key order, escapes or a stray byte changed "
                     "since): restore custody.jsonl from a copy")
        report.check("custody chain", entry.get("prev") == (line_hash(previous) if previous else None), where,
                     f"prev: expected {line_hash(previous) if previous else None}, found {entry.get('prev')}")
        report.check("custody sequence", entry["seq"] == expected_seq, where,
                     f"seq: expected {expected_seq}, found {entry['seq']}")
        problem = verify_entry(entry, keys)
        report.check("custody signature", problem is None, where, problem or "")
        if problem is None:
            clock.follow(entry, where)
        distrust = entry_distrust(entry, statuses)
        report.check("custody key status", distrust is None, where, distrust or "")
        subject = entry.get("subject") if isinstance(entry.get("subject"), dict) else {}
        if entry.get("event") == "key rotated":
            report.check("custody key rotation", entry.get("key") == subject.get("from"), where,
                         "a new key must be announced by the key it replaces")
        if problem is None and entry.get("event") in KEY_EVENTS and \
                report.check("key event signer", entry.get("key") in collection_keys, where,
                             "only a collection key may announce, rotate or revoke keys, not a worker key") and \
                entry.get("event") == WORKER_KEY_ANNOUNCED and distrust is None:
            _admit_worker_key(keys, subject, where, report)
        if problem is None:  # only what the collection's keys signed is held against the rest
            unreadable_subject = _remember(custody, entry, subject)
            if entry.get("event") in _SUBJECT_SHAPES:
                report.check("custody entry subject", unreadable_subject is None, where, unreadable_subject or "")
            if (torn := recorded_torn_line(entry)) is not None and entry.get("key") in collection_keys:
                recorded_torn[torn] = number
            if entry.get("event") in _SELF_ANNOUNCING and entry.get("key") == subject.get("fingerprint"):
                roots += 1
                if roots > 1:
                    report.not_checked.append(_second_root(entry, subject, where))
        previous, expected_seq = line, entry["seq"] + 1
    for number, sha256 in unreadable.items():
        recorded_at = recorded_torn.get((number, sha256))
        if recorded_at is None:
            report.check("custody entry readable", False, f"{LOG_NAME} line {number}",
                         "not a custody entry (torn or altered line)")
        else:
            # The chain checks above hold only if the entries after it chain past it, as after a crash.
            report.not_checked.append(f"{LOG_NAME} line {number}: an append a crash cut short, as line {recorded_at} "
                                      "records (`archiver doctor --fix`): no entry, and what it was to record is not logged")
    if previous is not None:
        # Each entry signs the one before it, none the one after: a log cut back, with all its
        # last entries recorded, checks out. Only the last entry, known elsewhere, tells.
        report.not_checked.append(f"{LOG_NAME}: that no entry was dropped after its last (seq {expected_seq - 1}, "
                                  f"sha256 {line_hash(previous)}): only a copy of it kept outside the collection "
                                  "can tell (a bundle, a manifest's SHA-256 or RFC 3161 token)")
    return custody


def announced_keys(key_events: Iterable[dict]) -> dict[str, PublicKey]:
    """Every worker key the log's key events (evidence.keys.key_event_entries) announce,
    whoever signed the announcement: the keys whose signatures are worth checking ahead
    (open_attestations), before check_custody decides which of them count from when."""
    announced = {}
    for entry in key_events:
        subject = entry.get("subject") if entry.get("event") == WORKER_KEY_ANNOUNCED else None
        if isinstance(subject, dict) and (public := announced_public_key(subject)) is not None:
            announced[public.fingerprint] = public
    return announced


def check_key_files(collection: Collection, custody: Logged, report: Report) -> None:
    """Each public key file holds exactly the key the custody log announced under that
    fingerprint (a PEM parser forgives changes its signature checks would never see)."""
    for path in sorted((collection.root / "keys").glob("*.pem")):
        announced = custody.public_keys.get(path.name.split(".", 1)[0])
        where = f"keys/{path.name}"
        if report.check("public key announced", announced is not None, where,
                        "no custody entry announces a key with this fingerprint"):
            report.check("public key file", path.read_bytes() == announced.encode("utf-8"), where,
                         "differs from the key the custody log announced")


def _second_root(entry: dict, subject: dict, where: str) -> str:
    """A key that announced itself after the first: an owner's key replacing a lost or revoked
    one, or an intruder's; no earlier key vouches for it, so only its fingerprint can."""
    replacing = f", replacing {subject['replaces']}" if isinstance(subject.get("replaces"), str) else ""
    return (f"key {entry['key']}: announced by itself at {entry.get('time')} ({where}{replacing}), by no earlier "
            "collection key: what it signed holds only if its owner confirms that fingerprint outside the collection")


def _admit_worker_key(keys: dict[str, PublicKey], subject: dict, where: str, report: Report) -> None:
    """Trust the worker key a collection key announced, from its announcement on."""
    public = announced_public_key(subject)
    if report.check("worker key announcement", public is not None, where,
                    "the announced public key is not the key its fingerprint names"):
        keys[public.fingerprint] = public


LOGGED_FAILURE = ("url", "outcome", "error")  # what a capture's entry says of a capture with no attestation

# Of each event the other checks hold the catalog to, what its subject must hold: a key's
# signature on an entry says who made it, not that it has the shape archiver writes.
_SUBJECT_SHAPES = {"capture": ("capture", str), "manifest signed": ("sequence", int), "timestamp": ("sequence", int),
                   "import": ("captures", list), "document read": ("sha256", str), "note recorded": ("claim", str),
                   WARC_CLOSED: ("file", str)}


def _remember(custody: Logged, entry: dict, subject: dict) -> str | None:
    """Keep what the entry says for the checks after this one; why it cannot be read so, if not."""
    event = entry.get("event")
    named = subject.get("to") if event == "key rotated" else subject.get("fingerprint")
    if isinstance(subject.get("public_key"), str) and isinstance(named, str):  # key generated, adopted, rotated…
        custody.public_keys[named] = subject["public_key"]
    if event not in _SUBJECT_SHAPES:
        return None
    name, kind = _SUBJECT_SHAPES[event]
    value = subject.get(name)
    claims = subject.get("claims", []) if event == "document read" else []
    if type(value) is not kind or not isinstance(claims, list) or \
            not all(isinstance(item, str) for item in (value if kind is list else []) + claims):
        return f"{event}: its subject's {name} is not what archiver writes there"
    if event == "capture":
        custody.captures[value] = subject.get("attestation")
        if subject.get("attestation") is None:  # a failure: what the log says of it is all there is to hold it to
            custody.unattested[value] = {name: subject[name] for name in LOGGED_FAILURE if name in subject}
    elif event == "manifest signed":
        custody.manifests[value] = entry
    elif event == "timestamp":
        custody.timestamps[value] = entry
    elif event == "import":
        custody.imports.update(value)
        if isinstance(subject.get("file"), str):
            custody.imported_files[subject["file"]] = subject.get("sha256")
        for resolved in subject.get("revisits_resolved") or ():  # a revisit imported before, given its original
            if isinstance(resolved, dict) and isinstance(resolved.get("capture"), str):
                custody.revisits_resolved[resolved["capture"]] = (entry["seq"], resolved.get("revisit_of"))
    elif event == WARC_CLOSED:
        # The first: a repair that closed it again late (after a crash) read the bytes then, not at the close.
        custody.closed_files.setdefault(value, (subject.get("size"), subject.get("sha256")))
    elif event == "document read":
        custody.documents_read.add(value)
        if subject.get("recorded_late"):
            custody.late_reads.append(f"document {subject.get('document')} (read again from the copy kept of it)")
        custody.claims_read.update(dict.fromkeys(claims, entry["seq"]))
        if isinstance(subject.get("document"), str):  # None: read before archiver signed claims trees
            custody.claims_trees[subject["document"]] = subject.get("claims_tree")
            custody.documents_last_read[subject["document"]] = entry["seq"]
            custody.documents_path[subject["document"]] = subject.get("path")  # None: read before it was signed
            return _remember_changes(custody, entry["seq"], subject, claims)
    else:  # note recorded
        custody.claims_read[value] = entry["seq"]
        if subject.get("recorded_late"):
            custody.late_reads.append(f"note {value} (as the catalog held it)")
        urls = subject.get("urls") if isinstance(subject.get("urls"), list) else []
        custody.note_urls.setdefault(value, []).extend(urls)
        custody.notes_at.setdefault(value, []).append((subject.get("at"), urls))
    return None


def _remember_changes(custody: Logged, seq: int, subject: dict, claims: list[str]) -> str | None:
    """Keep when a document read says it was, and what it changed in what claims cite."""
    read_at = subject.get("read_at")
    first_read = read_at if isinstance(read_at, str) else None
    for claim_id in claims:  # the earliest time a read listing it signed (doctor logs a lost read late)
        known = custody.claims_first_read.get(claim_id, first_read)
        custody.claims_first_read[claim_id] = None if known is None or first_read is None else min(known, first_read)
    if "read_at" not in subject:
        return None  # read before archiver signed them
    changes = [subject.get(name) for name in ("citations_begun", "citations_dropped")]
    if first_read is None or not all(isinstance(listed, list) and all(
            isinstance(item, list) and len(item) == 2 and all(isinstance(part, str) for part in item)
            for item in listed) for listed in changes):
        return "document read: its subject's read_at and citation changes are not what archiver writes there"
    begun, dropped = (frozenset(map(tuple, listed)) for listed in changes)
    custody.timed_reads.setdefault(subject["document"], {})[first_read] = TimedRead(seq, begun, dropped)
    return None
