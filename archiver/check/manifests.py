"""Checks of the manifest chain: each manifest's signature and key status at signing time,
its sequence and previous-hash link, its signed checkpoint and Merkle root, its RFC 3161
tokens (imprint, TSA signature, chain to trusted roots, the file's SHA-256 as logged, a
genTime not before the signing logged, nor before any capture the manifest lists:
check/clock_times.py), every manifest the custody log signed present,
manifest.json the newest, and the entries of the newest one the custody log signed still as
the catalog holds them (check/manifest_entries.py)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from archiver.check.clock_times import check_capture_before_token
from archiver.check.custody_log import Logged
from archiver.check.manifest_entries import ManifestEntries
from archiver.errors import ArchiverError
from archiver.check.findings import Report
from archiver.evidence import merkle
from archiver.evidence.key_status import KeyStatus
from archiver.evidence.claim_tree import document_leaf
from archiver.evidence.custody import entry_time
from archiver.evidence.manifest import MANIFEST_NAME, points_at, read_manifest
from archiver.evidence.seal_files import checkpoint_path, signature_path, token_path, trusted_roots
from archiver.evidence.signing import PublicKey
from archiver.store.catalog import Catalog
from archiver.store.collection import Collection

if TYPE_CHECKING:  # imported where a token is checked: X.509 parsing costs a tenth of a second to import
    from archiver.evidence.timestamps.verification import TimestampCheck

_NOT_COMPARED = "manifest entries: not compared with the catalog"


def check_manifests(collection: Collection, catalog: Catalog, keys: dict[str, PublicKey],
                    statuses: dict[str, KeyStatus], custody: Logged, report: Report) -> None:
    folder = collection.root / "manifests"
    listed = {row[0]: row for row in catalog.query("SELECT sequence, sha256, file FROM manifests ORDER BY sequence")}
    on_disk = {int(m.group(1)): p for p in folder.iterdir() if (m := MANIFEST_NAME.match(p.name))}
    # Each manifest the custody log signed is held to it, though its file and row are gone too.
    sequences = {*listed, *on_disk, *custody.manifests}
    if not sequences:
        report.not_checked.append("manifests: none exported yet (`archiver manifest`)")
        return
    roots = _trusted_roots(collection, report)
    # Only the newest signed manifest is held to the catalog: an older one would differ by all
    # that the newer signed since, failing on what the one real failure (it gone, or altered) explains.
    compared = max(custody.manifests, default=None)
    if compared is None:
        report.not_checked.append(f"{_NOT_COMPARED}: the custody log records signing no manifest")
    previous_sha: str | None = None
    newest: Path | None = None
    dated_after: set = set()  # captures dated after a token over a manifest listing them
    for sequence in range(1, max(sequences) + 1):
        where = f"manifests/manifest-{sequence}.json"
        path = on_disk.get(sequence)
        if path is None:
            signed = custody.manifests.get(sequence, {}).get("subject", {}).get("sha256")
            report.check("manifest present", False, where, "missing from the chain of manifests" + (
                f", though the custody log records signing it (sha256 {signed})" if signed else ""))
            _check_tokens_of_missing(folder / f"manifest-{sequence}.json", sequence, custody, report)
            previous_sha = signed  # the next one is still held to its link in the chain
            if sequence == compared:
                report.not_checked.append(f"{_NOT_COMPARED}: {where}, the newest the custody log signed, is missing")
            continue
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        row = listed.get(sequence)
        report.check("manifest listed", row is not None and row[1] == digest, where,
                     f"sha256: catalog has {row[1] if row else 'no such manifest'}, file is {digest}")
        trusted = _check_manifest_signature(path, data, digest, sequence, keys, statuses, custody, report)
        against = None
        if sequence == compared and trusted:
            against = ManifestEntries(catalog, where, custody, sequence, report)
        elif sequence == compared:
            report.not_checked.append(f"{_NOT_COMPARED}: {where}, the newest the custody log signed, "
                                      "is not the manifest it signed (see its failures)")
        # Its tokens first: each capture the manifest lists is held to the token's time as it is read.
        stamped = _check_timestamps(path, data, sequence, roots, custody, report)
        # Read in one pass, one entry at a time: the one compared with the catalog as it goes.
        leaves, documents = merkle.Root(), merkle.Root()  # of the capture and document entries, as read

        def on_capture(entry, raw: bytes) -> None:
            leaves.add(merkle.leaf_hash(raw))
            if stamped is not None and isinstance(entry, dict) and entry.get("id") not in dated_after:
                if not check_capture_before_token(entry, stamped, path.name, f"{where} capture {entry.get('id')}", report):
                    dated_after.add(entry.get("id"))  # named once, by the first token it contradicts
            if against is not None:
                against.capture(entry, raw)

        def on_document(entry, raw: bytes) -> None:
            try:
                documents.add(merkle.leaf_hash(document_leaf(entry)))
            except (KeyError, TypeError):
                documents.add(b"")  # not a document entry as archiver writes one: no root will match
            if against is not None:
                against.document(entry, raw)
        try:
            fields = read_manifest(data, on_capture, against.claim if against else None, on_document,
                                   against.warc_file if against else None)
            chained_to, declared_sequence = fields["previous_manifest_sha256"], fields["sequence"]
        except (ValueError, RecursionError):
            report.check("manifest readable", False, where, "not a manifest (altered or truncated)")
            chained_to, declared_sequence, fields = "?", None, None
        report.check("manifest sequence", type(declared_sequence) is int and declared_sequence == sequence, where,
                     f"sequence: file name says {sequence}, content says {declared_sequence}")
        if sequence > 1:
            report.check("manifest chain", previous_sha is not None and chained_to == previous_sha, where,
                         f"previous_manifest_sha256: expected {previous_sha}, found {chained_to}")
        if fields is not None:
            _check_checkpoint(path, fields, leaves, documents, digest, keys, report)
            if against is not None:
                report.check("manifest readable", {"captures", "claims"} <= fields["counts"].keys(), where,
                             "has no list of captures and claims")
        previous_sha, newest = digest, path
        del data
    report.check("manifest.json newest", newest is not None and points_at(newest),
                 "manifests/manifest.json", "is not the newest manifest in the chain")


def _check_manifest_signature(path: Path, data: bytes, digest: str, sequence: int, keys: dict[str, PublicKey],
                              statuses: dict[str, KeyStatus], custody: Logged, report: Report) -> bool:
    """Whether the manifest is the one the custody log records signing, by a key trusted then."""
    where = f"manifests/{signature_path(path).name}"
    try:
        signature = signature_path(path).read_bytes()
    except OSError:
        report.check("manifest signature", False, where, "the signature file is missing")
        return False
    signer = next((fp for fp, public in keys.items() if public.verify(signature, data)), None)
    if not report.check("manifest signature", signer is not None, where, "does not verify with any key of this collection"):
        return False
    logged = custody.manifests.get(sequence)
    if not report.check("manifest in custody log", logged is not None and logged["subject"].get("sha256") == digest,
                        where, "the custody log records no signing of these bytes"):
        return False
    same_key = report.check("manifest key", logged["key"] == signer, where,
                            f"signed by {signer[:16]}, but the custody log says {logged['key'][:16]}")
    distrust = statuses[signer].trusted_at(logged["time"], logged["seq"]) if signer in statuses else "key never announced"
    return report.check("manifest key status", distrust is None, where, distrust or "") and same_key


def _check_checkpoint(path: Path, fields: dict, leaves: merkle.Root, documents: merkle.Root, digest: str,
                      keys: dict[str, PublicKey], report: Report) -> None:
    """The signed checkpoint a bundle carries must say exactly what the manifest holds."""
    where = f"manifests/{checkpoint_path(path).name}"
    try:
        data = checkpoint_path(path).read_bytes()
        signature = signature_path(checkpoint_path(path)).read_bytes()
        checkpoint = json.loads(data)
    except (OSError, ValueError):
        report.check("manifest checkpoint", False, where, "missing or unreadable")
        return
    report.check("checkpoint signature", any(public.verify(signature, data) for public in keys.values()), where,
                 "does not verify with any key of this collection")
    tree = leaves.hex()
    stated = fields["content"].get("captures_merkle_root")
    report.check("manifest Merkle root", stated == tree, f"manifests/{path.name}",
                 f"captures_merkle_root: stated {stated}, computed {tree}")
    expected = {"manifest_sha256": digest, "sequence": fields["sequence"], "captures": leaves.size,
                "previous_manifest_sha256": fields["previous_manifest_sha256"], "captures_merkle_root": tree}
    if "documents_merkle_root" in fields["content"]:  # manifests made before documents' claim trees have none
        documents_tree = documents.hex()
        stated = fields["content"]["documents_merkle_root"]
        report.check("manifest Merkle root", stated == documents_tree, f"manifests/{path.name}",
                     f"documents_merkle_root: stated {stated}, computed {documents_tree}")
        expected |= {"documents": documents.size, "documents_merkle_root": documents_tree}
    for name, value in expected.items():
        report.check("manifest checkpoint", isinstance(checkpoint, dict) and checkpoint.get(name) == value, where,
                     f"{name}: checkpoint says {checkpoint.get(name) if isinstance(checkpoint, dict) else '?'}, "
                     f"manifest gives {value}")


def _trusted_roots(collection: Collection, report: Report) -> bytes | None:
    try:
        return trusted_roots(collection)
    except ArchiverError as exc:
        report.check("timestamp roots", False, str(collection.config.timestamps.trusted_roots), str(exc))
        return None


def _check_timestamps(path: Path, data: bytes, sequence: int, roots: bytes | None, custody: Logged,
                      report: Report) -> "TimestampCheck | None":
    """The manifest's RFC 3161 token, and its checkpoint's (the one a bundle carries), each
    asked for after the signing the custody log records. The manifest's token's verdict when
    it verified, for the captures it lists to be held to its time."""
    logged = custody.timestamps.get(sequence, {}).get("subject", {})
    signed = entry_time(custody.manifests[sequence]) if sequence in custody.manifests else None
    checkpoint = checkpoint_path(path)
    verified = [_check_token(token, stamped, recorded, token_sha256, roots, signed, report)
                for token, stamped, recorded, token_sha256 in (
                    (token_path(path), data, sequence in custody.timestamps, logged.get("token_sha256")),
                    (token_path(checkpoint), checkpoint.read_bytes() if checkpoint.exists() else b"",
                     bool(logged.get("checkpoint_token")), logged.get("checkpoint_token_sha256")))]
    return verified[0]


def _check_tokens_of_missing(path: Path, sequence: int, custody: Logged, report: Report) -> None:
    """The RFC 3161 tokens the custody log records of a manifest whose file is missing: each
    is held to what the log says of it, though what it stamped is gone."""
    if sequence not in custody.timestamps:
        return
    logged = custody.timestamps[sequence].get("subject", {})
    recorded = [(token_path(path), logged.get("token_sha256"))]
    if logged.get("checkpoint_token"):
        recorded.append((token_path(checkpoint_path(path)), logged.get("checkpoint_token_sha256")))
    for token, token_sha256 in recorded:
        where = f"manifests/{token.name}"
        if token.exists() and token_sha256 is not None:
            found = hashlib.sha256(token.read_bytes()).hexdigest()
            report.check("timestamp token unchanged", found == token_sha256, where,
                         f"sha256: custody log has {token_sha256}, file is {found}")
        report.check("manifest timestamp", False, where, f"the custody log records this timestamp of {path.name}"
                     + (", whose file is missing" if token.exists() else ", but the token and the manifest are missing"))


def _check_token(token: Path, data: bytes, recorded: bool, token_sha256: str | None, roots: bytes | None,
                 signed: datetime | None, report: Report) -> "TimestampCheck | None":
    """The token's verdict, when it verified."""
    where = f"manifests/{token.name}"
    if not token.exists():
        if recorded:
            report.check("manifest timestamp", False, where, "the custody log records a timestamp, but the token is missing")
        else:
            report.not_checked.append(f"{token.name.removesuffix('.tsr')}: no RFC 3161 timestamp")
        return None
    if token_sha256 is not None:
        # The TSA signs the token's content, not its wrapping (versions, certificates): the
        # custody log's hash of the whole file catches a change there too.
        found = hashlib.sha256(token.read_bytes()).hexdigest()
        report.check("timestamp token unchanged", found == token_sha256, where,
                     f"sha256: custody log has {token_sha256}, file is {found}")
    if roots is None:
        report.not_checked.append(f"{token.name}: no trusted_roots in archiver.toml to check it against")
        return None
    # imported here: X.509 parsing costs a tenth of a second to import
    from archiver.evidence.timestamps.verification import predates_signing, verify_timestamp
    check = verify_timestamp(token.read_bytes(), data, roots)
    report.check("manifest timestamp", check.ok, where, "; ".join(check.problems))
    # Not a failure: a genuine token can be so when either clock was off, and which one the
    # evidence cannot tell (a token that does so is refused as it arrives, since this check).
    if signed is not None and (clock := predates_signing(check, signed)):
        report.not_checked.append(f"{where}: {clock}")
    return check if check.ok else None
