"""Checks of the signed attestations: each capture's signature by a collection key trusted at
capture time, its claims as the catalog holds them, its copy in the WARC identical to the
catalog's, and once the WARC files are read, every record it names present with the digests
it signed. Captures in the custody log and in the catalog must match both ways.

Reading each envelope and checking its signatures needs neither the log nor the WARC files,
so it is done apart (open_attestations, in parts, each by a worker process done reading the
WARC files or by the main process waiting for one), by every key that could count;
check_attestations then judges, in order and as the parts come in, which signers count and
what the statements say."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Iterator, NamedTuple

from archiver.check.custody_log import Logged
from archiver.check.findings import Report
from archiver.evidence.attestation import (CAPTURE_FIELDS, PREDICATE_TYPE, SIGNED_FIELDS, SIGNED_SINCE, UNNAMED, shared,
                                           signed_record, signed_values, statement_problems)
from archiver.evidence.key_status import KeyStatus
from archiver.evidence.signing import (NO_VALID_SIGNATURE, NOT_JSON, STATEMENT_TYPE, BadEnvelope, PublicKey, canonical_json,
                                       envelope_signers, signed_statement)
from archiver.store.catalog import Catalog
from archiver.store.database import in_batches, placeholders

ATTESTED = CAPTURE_FIELDS  # the capture's columns its attestation signs
_ATTESTED_COLUMNS = ", ".join("c." + name for name in ATTESTED)
_FINISHED_AT = ATTESTED.index("finished_at")
_TYPE, _REFERS_TO = SIGNED_FIELDS.index("type"), SIGNED_FIELDS.index("refers_to")
MIN_PART = 250  # attestations opened by one task: about 25 ms, against a few for the task's catalog connection and keys


class Signed(NamedTuple):
    """Of a verified statement, what the record checks need: whether it is an archiver capture
    statement, and each record it names, as (id, signed_values)."""

    capture_statement: bool
    records: tuple[tuple[object, tuple], ...]


@dataclass(frozen=True)
class Opened:
    """One attestation envelope, read: its digest, and what its signatures and statement say."""

    digest: str                  # "sha256:" of its canonical JSON, as the log and the WARC record hold it
    problem: str | None = None   # why it is no envelope (malformed, another payload type)
    signers: tuple[str, ...] = ()  # the fingerprints whose signatures on it hold, in its order
    statement: Signed | None = None  # of its statement, the records it names (None: unsigned, or not JSON)
    differing: tuple[tuple[str, object, object], ...] = ()  # (claim, attested, cataloged) of each claim ≠ the catalog's
    unnamed: tuple[str, ...] = ()  # of SIGNED_SINCE, the columns it does not sign (made before they were)


def opening_parts(catalog: Catalog, parts: int) -> list[tuple[str, str | None]]:
    """Ranges [first, end) of attested capture ids, up to `parts` of about one size and none
    smaller than MIN_PART (end None: to the last)."""
    ids = [row[0] for row in catalog.query("SELECT capture_id FROM attestations ORDER BY capture_id")]
    size = max(MIN_PART, -(-len(ids) // max(1, parts)))
    starts = ids[::size] if ids else []
    return list(zip(starts, [*starts[1:], None]))


def open_attestations(location: Path | str, first: str, end: str | None, key_pems: dict[str, bytes]) -> dict[str, Opened]:
    """Of each capture whose id is in [first, end) in the catalog at `location`, its
    attestation read and hashed, its signatures checked by every key of `key_pems` (by
    fingerprint), its claims compared with the catalog's; picklable, for a worker process."""
    keys = {fingerprint: PublicKey.from_pem(pem) for fingerprint, pem in key_pems.items()}
    catalog = Catalog(location)
    try:
        in_range = "a.capture_id >= ?" + ("" if end is None else " AND a.capture_id < ?")
        return {capture_id: _opened(text, keys, capture_id, row) for capture_id, text, *row in catalog.query(
            f"SELECT a.capture_id, a.envelope, {_ATTESTED_COLUMNS} FROM attestations a"
            f" JOIN captures c ON c.id = a.capture_id WHERE {in_range}", (first,) if end is None else (first, end))}
    finally:
        catalog.close()


def _opened(text: str, keys: dict[str, PublicKey], capture_id: str, cataloged: list, canonical: bool = False) -> Opened:
    """The envelope `text` read, hashed and checked against the capture's columns ATTESTED
    `cataloged`. Its digest is that of its canonical JSON, which the catalog stores, so the
    text's own serves (`canonical` False) where it is the digest the custody log has: only
    that canonical JSON has it. Anywhere else, check_attestations opens it again, canonical."""
    try:
        envelope = json.loads(text)
    except ValueError:  # edited in the catalog into no JSON at all: a finding, as any other envelope that fails
        return Opened("sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest(),
                      problem="the stored attestation is no JSON")
    digest = "sha256:" + hashlib.sha256(canonical_json(envelope) if canonical else text.encode("utf-8")).hexdigest()
    try:
        payload, signers = envelope_signers(envelope, keys)
    except BadEnvelope as exc:
        return Opened(digest, problem=str(exc))
    try:
        statement, _ = signed_statement(payload, signers)
    except BadEnvelope:
        return Opened(digest, signers=tuple(signers))
    statement = statement if isinstance(statement, dict) else {}
    predicate = statement.get("predicate") if isinstance(statement.get("predicate"), dict) else {}
    records = predicate.get("records") if isinstance(predicate.get("records"), list) else []
    # Only what the record checks need is kept: memory stays flat however many captures.
    kept = Signed(statement.get("_type") == STATEMENT_TYPE and statement.get("predicateType") == PREDICATE_TYPE,
                  tuple(map(_kept_record, records)))
    differing = tuple((name, predicate.get(name), expected)
                      for name, expected in zip(("id",) + ATTESTED, (capture_id, *cataloged))
                      if predicate.get(name) != expected and (name in predicate or name not in SIGNED_SINCE))
    return Opened(digest, signers=tuple(signers), statement=kept, differing=differing,
                  unnamed=tuple(name for name in SIGNED_SINCE if name not in predicate))


def _kept_record(record) -> tuple[object, tuple]:
    """(id, signed_values) of a record a statement names. A signer, broken or hostile, may name
    one by no string, or name no object at all: such a record is named as written, and matches
    no record found."""
    if not isinstance(record, dict):
        return json.dumps(record)[:100], ()
    record_id = record.get("id")
    return shared(record_id) if isinstance(record_id, str) else repr(record_id), signed_values(record)


class OpenedInOrder:
    """The attestations opened, part after part (open_attestations over opening_parts, in
    order), as check_attestations pops them: it walks the captures in that same order, so each
    part is waited for only when the walk reaches it."""

    def __init__(self, parts: Iterator[dict[str, Opened]]) -> None:
        self._parts = parts
        self._opened: dict[str, Opened] = {}

    def pop(self, capture_id: str, default: Opened | None = None) -> Opened | None:
        while capture_id not in self._opened:
            part = next(self._parts, None)
            if part is None:  # in no part: listed since they were opened
                return default
            self._opened.update(part)
        return self._opened.pop(capture_id)


def check_attestations(catalog: Catalog, opened: OpenedInOrder, keys: dict[str, PublicKey],
                       statuses: dict[str, KeyStatus], custody: Logged, report: Report) -> dict[str, Signed]:
    """Every attestation's signature, key and claims against the catalog, each read from
    `opened` (open_attestations) or here when it is not there; of each verified statement, the
    records it signed, for them to be checked once the WARCs are read."""
    statements: dict[str, Signed] = {}
    attestation_records = {row[0]: (row[1], row[2]) for row in catalog.query(
        "SELECT capture_id, record_id, block_digest FROM records WHERE role = 'attestation'")}
    cataloged = set()
    older = 0  # captures whose attestation predates SIGNED_SINCE
    unsigned: set[str] = set()  # of SIGNED_SINCE, the columns some of them do not sign
    # Whether each capture has an attestation, not its text: the workers read that (opened).
    for row in catalog.query(f"SELECT c.id, c.warc_file, c.imported_from, c.response_record_id, a.capture_id IS NOT NULL,"
                             f" {_ATTESTED_COLUMNS}"
                             " FROM captures c LEFT JOIN attestations a ON a.capture_id = c.id ORDER BY c.id"):
        capture_id, warc_file, imported_from, response_record_id, attested = row[:5]
        cataloged.add(capture_id)
        where = f"capture {capture_id}"
        if imported_from is not None:
            report.check("import in custody log", capture_id in custody.imports, where,
                         "imported, but no import entry in the custody log names it")
            continue
        logged = capture_id in custody.captures
        report.check("capture in custody log", logged, where, "the custody log has no entry for this capture")
        if warc_file is None and not attested and custody.captures.get(capture_id) is None:
            # Failed before any byte was stored: nothing to attest, and the log's entry is what holds it.
            if logged:
                as_logged = custody.unattested.get(capture_id, {})
                cataloged_now = dict(zip(ATTESTED, row[5:]))
                changed = [f"{name}: logged {value!r}, catalog has {cataloged_now[name]!r}"
                           for name, value in as_logged.items() if cataloged_now[name] != value]
                # Nothing stored, so nothing to point at: no payload, no response record.
                changed += [f"{name}: {value!r}, for a capture that stored nothing" for name, value in (
                    ("payload_digest", cataloged_now["payload_digest"]), ("response_record_id", response_record_id))
                    if value is not None]
                report.check("failed capture as logged", not changed, where, lambda: "; ".join(changed))
            continue
        if not report.check("attestation present", bool(attested), where, "no signed attestation"):
            continue
        envelope = opened.pop(capture_id, None)
        if envelope is None or not logged or custody.captures[capture_id] != envelope.digest:
            envelope = _open_here(catalog, capture_id, keys, row[5:])  # its digest as canonical JSON (see _opened)
        if logged:
            report.check("attestation in custody log", custody.captures[capture_id] == envelope.digest, where,
                         f"attestation: custody log has {custody.captures[capture_id]}, catalog has {envelope.digest}")
        stored = attestation_records.get(capture_id)
        report.check("attestation record", stored is not None and stored[1] == envelope.digest, where,
                     f"the attestation in the WARC ({stored[1] if stored else 'missing'}) differs from the catalog's ({envelope.digest})")
        signer = next((fingerprint for fingerprint in envelope.signers if fingerprint in keys), None)
        problem = envelope.problem or (NO_VALID_SIGNATURE if signer is None else NOT_JSON if envelope.statement is None else None)
        if not report.check("attestation signature", problem is None, where, problem or ""):
            continue
        distrust = statuses[signer].trusted_at(row[5 + _FINISHED_AT]) if signer in statuses else f"key {signer[:16]} never announced in the custody log"
        report.check("attestation key status", distrust is None, where, distrust or "")
        differing = {name: (attested, expected) for name, attested, expected in envelope.differing}
        if envelope.unnamed:
            older += 1
            unsigned.update(envelope.unnamed)
        for name in ("id",) + tuple(name for name in ATTESTED if name not in envelope.unnamed):
            attested, expected = differing.get(name, (None, None))
            report.check("attestation claims", name not in differing, where,
                         f"{name}: attested {attested}, catalog has {expected}")
        statements[capture_id] = envelope.statement
    for capture_id in sorted(custody.captures.keys() - cataloged):
        report.check("capture in catalog", False, f"capture {capture_id}", "in the custody log but missing from the catalog")
    if older:
        named = " and ".join(name for name in SIGNED_SINCE if name in unsigned)
        report.not_checked.append(f"captures: {older} attested before archiver signed their {named}; "
                                  "those catalog values are held to nothing signed")
    return statements


def _open_here(catalog: Catalog, capture_id: str, keys: dict[str, PublicKey], cataloged: tuple) -> Opened:
    """The attestation of a capture not opened ahead (listed since), or whose stored text's
    digest is not the one the custody log has, opened with its digest as canonical JSON."""
    [(text,)] = catalog.query("SELECT envelope FROM attestations WHERE capture_id = ?", (capture_id,)).fetchall()
    return _opened(text, keys, capture_id, list(cataloged), canonical=True)


def listing_problems(catalog: Catalog, statements: dict[str, Signed]) -> dict[str, list[str]]:
    """Of each capture whose records the catalog lists otherwise than its statement names
    them, how (which capture a record is, and which record its response, decide what `show`,
    `history` and a bundle give as a capture's page); none of it needs the WARC files read."""
    cataloged = groupby(catalog.query("SELECT capture_id, record_id FROM records WHERE role <> 'attestation'"
                                      " ORDER BY capture_id"), key=lambda row: row[0])
    as_cataloged = {capture_id: {row[1] for row in rows} for capture_id, rows in cataloged if capture_id in statements}
    responses = {row[0]: row[1:] for row in catalog.query(
        "SELECT id, response_record_id, revisit_of FROM captures WHERE response_record_id IS NOT NULL OR revisit_of IS NOT NULL")}
    holders = _holders(catalog, statements, responses)
    listing = {}
    for capture_id, statement in statements.items():
        named = dict(statement.records)
        listed = as_cataloged.get(capture_id, set())
        problems = [f"record {r} is cataloged as this capture's, but its attestation does not name it"
                    for r in sorted(listed - named.keys())]
        problems += [f"record {r} named by the attestation is not cataloged as this capture's"
                     for r in sorted(named.keys() - listed, key=str)]
        response, revisit_of = responses.get(capture_id, (None, None))
        if response is not None and response not in named:
            problems.append(f"response record {response} is not one its attestation names")
        elif (problem := _revisit_problem(named.get(response), revisit_of, holders)) is not None:
            problems.append(problem)
        if problems:
            listing[capture_id] = problems
    return listing


def _signed_revisit(values: tuple | None) -> tuple[bool, object] | None:
    """Of a response record's signed_values: whether it is a revisit, and the record it refers
    to; None when its statement signed no WARC-Type (made before headers were signed)."""
    if values is None or values[_TYPE] == UNNAMED:
        return None
    return values[_TYPE] == "revisit", values[_REFERS_TO]


def _holders(catalog: Catalog, statements: dict[str, Signed], responses: dict[str, tuple]) -> dict[str, str]:
    """The capture the catalog lists as holding each record a signed revisit response refers to."""
    referred = set()
    for capture_id, (response, _) in responses.items():
        statement = statements.get(capture_id)
        signed = _signed_revisit(dict(statement.records).get(response)) if statement and response else None
        if signed is not None and signed[0] and isinstance(signed[1], str):
            referred.add(signed[1])
    holders = {}
    for batch in in_batches(sorted(referred)):
        holders.update(catalog.query(f"SELECT record_id, capture_id FROM records WHERE record_id IN ({placeholders(batch)})",
                                     tuple(batch)))
    return holders


def _revisit_problem(response: tuple | None, revisit_of: str | None, holders: dict[str, str]) -> str | None:
    """How the catalog's revisit_of (whose response record holds the capture's payload, which
    `show` and a bundle give as its page) disagrees with the revisit response its attestation
    signed (`response`: its signed_values), whose WARC-Refers-To names the record it stands for."""
    if response is None:
        return None if revisit_of is None else f"revisit_of {revisit_of}, but the capture has no response record"
    signed = _signed_revisit(response)
    if signed is None:  # nothing signed says whether it is a revisit: the WARC record's header is held to the catalog's
        return None
    is_revisit, refers_to = signed
    if not is_revisit:
        return None if revisit_of is None else f"revisit_of {revisit_of}, but its signed response record is no revisit"
    holder = holders.get(refers_to)
    if revisit_of == holder and holder is not None:
        return None
    return (f"revisit_of: catalog has {revisit_of}, but its signed revisit record refers to record {refers_to}, "
            + (f"held by capture {holder}" if holder else "which no capture of the collection holds"))


def check_records_attested(catalog: Catalog, report: Report) -> None:
    """Every record the catalog lists is a capture's that has an attestation (which must verify
    and name it: check_attestations, listing_problems), or an imported capture's (its file's
    import is signed): a record under a capture with none, one that failed or one that does not
    exist, is no signed evidence, yet a replay of the WARC files shows it."""
    unattested = catalog.query(
        "SELECT capture_id, record_id FROM records WHERE role <> 'attestation'"
        " AND capture_id NOT IN (SELECT capture_id FROM attestations)"
        " AND capture_id NOT IN (SELECT id FROM captures WHERE imported_from IS NOT NULL)"
        " ORDER BY capture_id, record_id").fetchall()
    for capture_id, record_id in unattested:
        report.check("record attested", False, f"record {record_id}",
                     f"cataloged as capture {capture_id}'s, which has no attestation")
    [(listed,)] = catalog.query("SELECT COUNT(*) FROM records WHERE role <> 'attestation'").fetchall()
    if listed > len(unattested):
        report.count_passed("record attested", listed - len(unattested))


def check_attested_records(statements: dict[str, Signed], listing: dict[str, list[str]], found: dict[str, tuple],
                           report: Report) -> None:
    """Each record an attestation names, present with the digests it signed, and cataloged as
    that capture's (`listing`: what listing_problems found); `found`: records.found_values of
    each record read, by id."""
    for capture_id, statement in sorted(statements.items()):
        # Nearly always every record is found exactly as signed: one comparison of each, not field by field.
        as_signed = statement.capture_statement and all(found.get(record_id) == values for record_id, values in statement.records)
        problems = ([] if as_signed else _signed_problems(statement, found)) + listing.get(capture_id, [])
        report.check("attested records", not problems, f"capture {capture_id}", lambda: "; ".join(problems))


def _signed_problems(statement: Signed, found: dict[str, tuple]) -> list[str]:
    """statement_problems() of a statement kept as Signed, field by field."""
    named = [signed_record(record_id, values) for record_id, values in statement.records]
    as_found = {record_id: dict(zip(SIGNED_FIELDS, found[record_id])) for record_id, _ in statement.records
                if record_id in found}
    kind = {"_type": STATEMENT_TYPE, "predicateType": PREDICATE_TYPE} if statement.capture_statement else {}
    return statement_problems({**kind, "predicate": {"records": named}}, as_found)
