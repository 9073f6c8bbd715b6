"""Mutation testing of `verify_collection`: every single-byte flip or single-field change to an
honest collection's evidence files must be caught, never crash the verifier.

One small honest collection (two captures, two signed and RFC 3161-timestamped manifests) is
built per test through the CLI; the loop then changes one thing at a time in a copy of the
evidence files' bytes, runs `verify_collection(collection, workers=1)`, and puts the pristine
bytes back. Mutations are drawn from a seeded `random.Random`, so any failure is replayable:
the assertion message gives the seed, the mutation's index and exactly what was changed.

`ARCHIVER_MUTATIONS` sets how many mutations to try (default 300; the long run uses 1000+),
`ARCHIVER_MUTATION_SEED` the seed.

What is mutated: warcs/*.warc.gz (a byte anywhere in the file, gzip headers and deflate
streams included, and a byte of a record's inflated bytes, deflated back), every file in
manifests/ (manifest-N.json, manifest.json, their .sig, .checkpoint.json, .checkpoint.json.sig
and .tsr), custody.jsonl and keys/*.pem. Nothing is excluded: every closed WARC file's size
and SHA-256 are recorded in the catalog, so even a flip in a gzip member's MTIME/XFL/OS
bytes (which no decompressor looks at) changes the file's hash and must be reported; the
JSON files are all signed or hashed byte for byte; keys/*.pem must still load and match the
fingerprint in their name, or no signature verifies.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import time
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from archiver.store.collection import Collection
from archiver.evidence.signing import canonical_json
from archiver.check.verify import verify_collection
from tests.conftest import http_response, make_collection, send_bytes, use_tsa
from tests.tsa import local_tsa  # noqa: F401  (a fixture)

MUTATIONS = int(os.environ.get("ARCHIVER_MUTATIONS", "300"))
SEED = int(os.environ.get("ARCHIVER_MUTATION_SEED", "20261124"))


@pytest.fixture
def honest(run_cli, raw_server, tmp_path, local_tsa) -> Collection:
    """Two captures (one read from a document), two signed manifests, each with a token."""
    collection = make_collection(tmp_path / "honest")
    use_tsa(collection.root, local_tsa)
    server = raw_server({"/a": send_bytes(http_response(b"<p>page a</p>")),
                         "/b": send_bytes(http_response(b"<p>page b</p>"))})
    (collection.root / "seeds" / "doc.md").write_text(f"# Claim\n\nSee {server.url('/a')}.\n")
    assert run_cli("capture", "-C", collection.root, collection.root / "seeds").exit_code == 0
    assert run_cli("manifest", "-C", collection.root).exit_code == 0
    assert run_cli("capture", "-C", collection.root, server.url("/b")).exit_code == 0
    assert run_cli("manifest", "-C", collection.root).exit_code == 0
    return Collection.open(collection.root)


def evidence_files(collection: Collection) -> list[Path]:
    root = collection.root
    files = [*sorted(collection.storage.folder.glob("*.warc.gz")), *sorted((root / "manifests").iterdir()),
             root / "custody.jsonl", *sorted((root / "keys").glob("*.pem"))]
    return [f for f in files if f.is_file()]


def put(path: Path, data: bytes) -> None:
    """Replace the file (manifest.json is a hard link to the newest manifest: writing through
    it would change both, which is another mutation than the one drawn)."""
    path.unlink()
    path.write_bytes(data)


# -- mutations --------------------------------------------------------------------------

@dataclass
class Mutation:
    path: Path
    data: bytes  # the file's mutated bytes
    what: str    # exactly what changed, to replay it
    kind: str    # the class of mutation, for the counts


def gzip_members(data: bytes) -> list[tuple[int, int]]:
    """(offset, length) of each gzip member of a .warc.gz."""
    found, position = [], 0
    while position < len(data):
        inflater = zlib.decompressobj(31)
        inflater.decompress(data[position:])
        used = len(data) - position - len(inflater.unused_data)
        found.append((position, used))
        position += used
    return found


def flip(rng: random.Random, path: Path, data: bytes) -> Mutation:
    offset = rng.randrange(len(data))
    mask = rng.randrange(1, 256)
    changed = bytearray(data)
    changed[offset] ^= mask
    region = ""
    if path.name.endswith(".warc.gz"):
        start, length = next((s, n) for s, n in gzip_members(data) if s <= offset < s + n)
        inner = offset - start
        region = (" (gzip header MTIME/XFL/OS)" if 4 <= inner <= 9 else " (gzip header)" if inner < 10
                  else " (gzip trailer CRC32/ISIZE)" if inner >= length - 8 else " (deflate data)")
        region += f" of the member at {start}"
    return Mutation(path, bytes(changed), f"byte {offset} ^= 0x{mask:02x}{region}",
                    f"{_kind(path)}: byte flip{region.split(' of ')[0] if region else ''}")


def flip_inflated(rng: random.Random, path: Path, data: bytes) -> Mutation:
    """A byte of one record's inflated bytes changed, the member deflated back: a valid gzip
    file whose record differs."""
    start, length = rng.choice(gzip_members(data))
    record = bytearray(gzip.decompress(data[start:start + length]))
    offset = rng.randrange(len(record))
    mask = rng.randrange(1, 256)
    record[offset] ^= mask
    member = gzip.compress(bytes(record), mtime=0)
    return Mutation(path, data[:start] + member + data[start + length:],
                    f"inflated byte {offset} ^= 0x{mask:02x} of the member at {start}",
                    f"{_kind(path)}: inflated byte flip")


def _leaves(value, trail=()):
    """(trail, value) for every scalar in a JSON value, and every dict key as ('key', trail)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield ("drop", trail + (key,)), None
            yield from _leaves(item, trail + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, trail + (index,))
    else:
        yield ("set", trail), value


def _changed(rng: random.Random, value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + rng.choice([-1, 1, 1000])
    if isinstance(value, float):
        return value + 1.5
    if value is None:
        return "x"
    if not value:
        return "x"
    text = list(value)
    index = rng.randrange(len(text))
    text[index] = rng.choice([c for c in "0af9Zx-:. " if c != text[index]])
    return "".join(text)


def change_field(rng: random.Random, document):
    """One field of a JSON document changed or dropped; the document and what was done."""
    (action, trail), value = rng.choice(list(_leaves(document)))
    target = document
    for step in trail[:-1]:
        target = target[step]
    if action == "drop":
        del target[trail[-1]]
        return document, f"dropped {'.'.join(map(str, trail))}"
    new = _changed(rng, value)
    if trail:
        target[trail[-1]] = new
    else:
        document = new
    return document, f"{'.'.join(map(str, trail))}: {value!r} -> {new!r}"


def field_change(rng: random.Random, path: Path, data: bytes) -> Mutation:
    if path.name == "custody.jsonl":
        lines = data.split(b"\n")
        number = rng.randrange(len(lines) - 1)  # the last element is after the final newline
        entry, what = change_field(rng, json.loads(lines[number]))
        lines[number] = canonical_json(entry)
        return Mutation(path, b"\n".join(lines), f"line {number + 1} {what}", "custody.jsonl: field change")
    document, what = change_field(rng, json.loads(data))
    return Mutation(path, canonical_json(document), what, f"{_kind(path)}: field change")


def _kind(path: Path) -> str:
    name = path.name
    if name.endswith(".warc.gz"):
        return "WARC"
    if path.parent.name == "keys":
        return "keys/*.pem"
    for suffix in (".checkpoint.json.sig", ".checkpoint.json.tsr", ".checkpoint.json", ".json.sig", ".json.tsr"):
        if name.endswith(suffix):
            return f"manifest{suffix}"
    return "manifest.json" if name == "manifest.json" else "manifest-N.json" if name.endswith(".json") else name


def draw(rng: random.Random, files: list[Path], pristine: dict[Path, bytes]) -> Mutation:
    path = rng.choice(files)
    data = pristine[path]
    is_json = path.name.endswith(".json") or path.name == "custody.jsonl"
    roll = rng.random()
    if is_json and roll < 0.4:
        return field_change(rng, path, data)
    if path.name.endswith(".warc.gz") and roll < 0.4:
        return flip_inflated(rng, path, data)
    return flip(rng, path, data)


# -- the loop ---------------------------------------------------------------------------

def test_every_single_mutation_is_caught(honest):
    assert verify_collection(honest, workers=1).ok
    files = evidence_files(honest)
    names = {_kind(f) for f in files}
    assert {"WARC", "manifest-N.json", "manifest.json", "manifest.json.sig", "manifest.checkpoint.json",
            "manifest.checkpoint.json.sig", "manifest.json.tsr", "manifest.checkpoint.json.tsr", "custody.jsonl",
            "keys/*.pem"} <= names, names
    for path in files:  # field changes re-serialise canonically: they must start canonical
        if path.name.endswith(".json"):
            assert canonical_json(json.loads(path.read_bytes())) == path.read_bytes(), path
    pristine = {path: path.read_bytes() for path in files}
    rng = random.Random(SEED)
    tried: Counter = Counter()
    missed, crashed = [], []
    started = time.monotonic()
    for index in range(MUTATIONS):
        mutation = draw(rng, files, pristine)
        assert mutation.data != pristine[mutation.path], mutation.what
        tried[mutation.kind] += 1
        where = f"#{index} (seed {SEED}) {mutation.path.relative_to(honest.root)}: {mutation.what}"
        put(mutation.path, mutation.data)
        try:
            report = verify_collection(honest, workers=1)
        except Exception as exc:  # noqa: BLE001 - any exception is the finding
            crashed.append(f"{where}: {type(exc).__name__}: {exc}")
        else:
            if report.ok:
                missed.append(where)
        finally:
            put(mutation.path, pristine[mutation.path])
    elapsed = time.monotonic() - started
    total = sum(tried.values())
    print(f"\n{total} mutations in {elapsed:.1f}s: {total - len(missed) - len(crashed)} reported as failures, "
          f"{len(missed)} undetected, {len(crashed)} raised")
    for kind, count in sorted(tried.items()):
        print(f"  {kind}: {count}")
    for line in missed + crashed:
        print("  " + line)
    assert verify_collection(honest, workers=1).ok, "the pristine bytes were not put back"
    assert not crashed, "verify_collection raised:\n" + "\n".join(crashed)
    assert not missed, "mutations that verified:\n" + "\n".join(missed)


def test_every_gzip_header_and_trailer_byte_is_caught(honest):
    """Exhaustively, the bytes a decompressor ignores or that only guard the deflate stream:
    each member's header (MTIME, XFL and OS included) and its CRC32/ISIZE trailer. Only the
    file's recorded SHA-256 and size can see a change to MTIME/XFL/OS."""
    checked = 0
    for path in sorted(honest.storage.folder.glob("*.warc.gz")):
        pristine = path.read_bytes()
        for start, length in gzip_members(pristine):
            for offset in [*range(start, start + 10), *range(start + length - 8, start + length)]:
                changed = bytearray(pristine)
                changed[offset] ^= 0x01
                put(path, bytes(changed))
                try:
                    report = verify_collection(honest, workers=1)
                finally:
                    put(path, pristine)
                assert not report.ok, f"{path.name}: byte {offset} (member at {start}) ^= 0x01 verified"
                assert {"WARC file SHA-256"} <= {f.check for f in report.failures}, (path.name, offset)
                checked += 1
    assert checked >= 4 * 18
    assert verify_collection(honest, workers=1).ok


# -- what the loop found (fixed in 1c642d3), each exactly, kept as regressions -----------

def _fail_without_raising(collection: Collection, check: str) -> None:
    report = verify_collection(collection, workers=1)
    assert not report.ok
    assert check in {f.check for f in report.failures}, report.failures


def test_a_key_event_lacking_its_fingerprint_is_reported(honest):
    """Was: keys.key_statuses indexed subject['fingerprint'] of every parsed line before any
    signature check, so verify_collection raised KeyError (loop: custody.jsonl line 1)."""
    log = honest.root / "custody.jsonl"
    lines = log.read_bytes().split(b"\n")
    entry = json.loads(lines[0])
    assert entry["event"] == "key generated"
    del entry["subject"]["fingerprint"]
    lines[0] = canonical_json(entry)
    put(log, b"\n".join(lines))
    _fail_without_raising(honest, "custody signature")


def test_a_public_key_of_an_unknown_algorithm_is_reported(honest):
    """Was: byte 38 ^= 0x1e turns the Ed25519 OID 1.3.101.112 into 1.3.101.98, and
    cryptography's UnsupportedAlgorithm (not a ValueError) escaped collection_public_keys."""
    [pem] = (honest.root / "keys").glob("*.pub.pem")
    data = pem.read_bytes()
    changed = bytearray(data)
    changed[38] ^= 0x1e
    put(pem, bytes(changed))
    report = verify_collection(honest, workers=1)
    fingerprint = pem.name.removesuffix(".pub.pem")
    # The collection's only key no longer loads: nothing it signed verifies, and the key file is named.
    assert {f.check for f in report.failures} == {"public key announced", "custody signature", "capture in custody log",
                                                  "claim in custody log", "attestation signature", "manifest signature",
                                                  "checkpoint signature"}
    assert [f.where for f in report.failures if f.check == "public key announced"] == [f"keys/{pem.name}"]
    assert {f.detail for f in report.failures if f.check == "custody signature"} == {f"signed by unknown key {fingerprint}"}


@pytest.mark.parametrize("field", ["offset", "file", "block_digest", "payload_digest", "id"])
def test_a_newest_manifest_lacking_a_record_field_is_reported(honest, field):
    """Was: _check_manifest_content indexed each listed record's fields and raised KeyError."""
    manifest = honest.root / "manifests" / "manifest-2.json"
    document = json.loads(manifest.read_bytes())
    del document["manifest"]["captures"][0]["records"][0][field]
    put(manifest, canonical_json(document))
    _fail_without_raising(honest, "manifest signature")


def test_a_damaged_or_removed_checkpoint_token_is_named(honest):
    """Was: manifests/manifest-N.checkpoint.json.tsr (the token a bundle carries) was never read
    by verify_collection: every flip of it (116 of 1000 mutations) verified."""
    token = honest.root / "manifests" / "manifest-1.checkpoint.json.tsr"
    data = token.read_bytes()
    put(token, data[:-40] + bytes([data[-40] ^ 0xFF]) + data[-39:])
    report = verify_collection(honest, workers=1)
    assert not report.ok and "manifests/manifest-1.checkpoint.json.tsr" in {f.where for f in report.failures}
    token.unlink()
    report = verify_collection(honest, workers=1)
    assert not report.ok and "manifests/manifest-1.checkpoint.json.tsr" in {f.where for f in report.failures}


# -- what the 5,000-mutation run found, each exactly, kept as regressions ------------------

def test_a_public_key_file_changed_where_pem_parsing_forgives_is_reported(honest):
    """Was: #2732, the last byte of a .pub.pem (its newline) ^= 0xdf: the PEM still loaded the
    same key, so nothing failed. Each key file must now be the exact PEM the custody log announced."""
    [pem] = (honest.root / "keys").glob("*.pub.pem")
    data = pem.read_bytes()
    put(pem, data[:-1] + bytes([data[-1] ^ 0xdf]))
    _fail_without_raising(honest, "public key file")


@pytest.mark.parametrize("token_name", ["manifest-2.json.tsr", "manifest-2.checkpoint.json.tsr"])
def test_a_token_changed_outside_what_the_tsa_signed_is_reported(honest, token_name):
    """Was: #3059, byte 34 of a token ^= 0x60 turned its SignedData version 3 into 99, which
    the TSA's signature does not cover: the token still verified. The custody log now holds
    each token's SHA-256."""
    token = honest.root / "manifests" / token_name
    data = bytearray(token.read_bytes())
    assert data[32:35] == b"\x02\x01\x03"  # INTEGER 3: the SignedData version
    data[34] ^= 0x60
    put(token, bytes(data))
    _fail_without_raising(honest, "timestamp token unchanged")


def test_a_manifest_signing_entry_lacking_its_time_is_reported(honest):
    """Was: #3661, a "manifest signed" custody entry without `time` made verify raise KeyError
    when it judged the key's status at signing time. Entries whose signature fails are now
    reported and not relied on."""
    log = honest.root / "custody.jsonl"
    lines = log.read_bytes().split(b"\n")
    number = next(i for i, line in enumerate(lines) if line and json.loads(line)["event"] == "manifest signed")
    entry = json.loads(lines[number])
    del entry["time"]
    lines[number] = canonical_json(entry)
    put(log, b"\n".join(lines))
    _fail_without_raising(honest, "custody signature")
