"""Property-based fuzzing of what reads untrusted bytes: documents, URLs, custody lines and
evidence bundles. Each property is one the code documents; every example count is modest (200) so
the whole file runs in seconds; `ARCHIVER_FUZZ_EXAMPLES` raises them for a long run."""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from archiver.exchange.bundle_verify import verify_bundle
from archiver.evidence.custody import parse_entry
from archiver.errors import ArchiverError
from archiver.read.seeds import DOCUMENT_SUFFIXES
from archiver.read.urls import fetchable_problem, normalise_url
from tests.conftest import http_response, send_bytes, use_tsa
from tests.fuzz_properties import check_custody_line, check_document

EXAMPLES = int(os.environ.get("ARCHIVER_FUZZ_EXAMPLES", "200"))  # raise it for a long run
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- documents --------------------------------------------------------------------------

# Pieces the readers look for, so generated documents reach past "no claims found".
FRAGMENTS = [
    "http://example.com/a", "https://EXAMPLE.org:443/x?y=1#z", "http://[::1]:8080/", "https://a.b/c).", "ftp://x.y/",
    "http://", "https://user:pw@host/p", "<http://a.b/>", "[link](http://a.b/c)", "[x](relative.html)",
    "<a href='http://x.org/p'>t</a>", '<a href="javascript:alert(1)">', "<a href=/rel>", "<h1>", "</h1>", "<title>",
    "</title>", "<p>", "</p>", "<br>", "<script>", "<!--", "-->", "&amp;", "&#x0;", "&#99999999;",
    "# ", "## ", "\n", "\n\n", "\r\n", "\r", "\t", " ", "claim,url\n", "Claim;URL\n", "claim\turl\n",
    '"', '""', ",", ";", '{"claim": "c", "url": "http://a.b/"}\n', '{"claim": 1, "url": ["http://a.b/", 2]}\n',
    '{"url": null}\n', "[1,2]\n", "{", "}", "\ufeff", "\x00", "é", "\u2028", "\u0301", "😀", "2024-01-02", "31/12/2023",
    "March 3, 2021", "|", "---\n", "> ", "* ", "1. ", "```\n",
]
text_documents = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=12)), max_size=40).map("".join)
documents = st.one_of(
    st.binary(max_size=600),
    st.tuples(text_documents, st.sampled_from(["utf-8", "utf-16", "utf-16-be", "utf-8-sig", "cp1252", "latin-1"]))
    .map(lambda pair: pair[0].encode(pair[1], "replace")),
)


@FUZZ
@given(data=documents, suffix=st.sampled_from([".txt", ".md", ".html", ".csv", ".jsonl"]))
def test_parse_document_never_raises_and_spans_fit(data, suffix):
    assert suffix in DOCUMENT_SUFFIXES
    check_document(data, suffix)


# -- URLs -------------------------------------------------------------------------------

url_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
urls = st.one_of(
    st.builds(lambda scheme, rest: f"{scheme}://{rest}", st.sampled_from(["http", "https", "HTTP", "hTtPs"]), url_text),
    st.builds(lambda scheme, user, host, port, path, query, fragment: f"{scheme}://{user}{host}{port}{path}{query}{fragment}",
              st.sampled_from(["http", "https", "HTTPS"]),
              st.sampled_from(["", "u@", "u:p@", "@", "u:@", ":p@"]) | url_text.map(lambda t: t + "@"),
              st.sampled_from(["example.com", "EXAMPLE.com.", "[::1]", "[FE80::1]", "127.0.0.1", "xn--bcher-kva.de",
                               "bücher.de", "a..b", "."]) | url_text,
              st.sampled_from(["", ":", ":80", ":443", ":8080", ":0", ":65535", ":00080"]),
              st.sampled_from(["", "/", "//", "/a/../b", "/%2F", "/ä"]) | url_text.map(lambda t: "/" + t),
              st.sampled_from(["", "?", "?a=1&b", "?#"]) | url_text.map(lambda t: "?" + t),
              st.sampled_from(["", "#", "#frag"]) | url_text.map(lambda t: "#" + t)),
)


@FUZZ
@given(url=urls)
@example(url="http://example.com")
@example(url=" HTTP://Example.COM.:80/a?b#c ")
def test_normalise_url_never_raises_and_is_idempotent(url):
    if fetchable_problem(url) is not None:
        return  # only URLs the fetcher accepts are normalised
    once = normalise_url(url)
    assert normalise_url(once) == once, (url, once, normalise_url(once))


def test_normalise_url_is_idempotent_with_whitespace_before_the_fragment():
    """Found by the property above (fixed in 1c642d3): whitespace before a '#' survived one pass,
    'http://example.com? #' -> 'http://example.com/? ' -> 'http://example.com/'."""
    url = "http://example.com? #"
    assert "one unbroken line" in fetchable_problem(url)  # refused since, but still a key to look up
    once = normalise_url(url)
    assert normalise_url(once) == once


def test_normalise_url_is_idempotent_with_whitespace_before_an_empty_query():
    """Found by the property above: 'http://example.com/ ?' -> 'http://example.com/ ' -> 'http://example.com/'."""
    url = "http://example.com/ ?"
    assert "one unbroken line" in fetchable_problem(url)
    once = normalise_url(url)
    assert normalise_url(once) == once


# -- custody lines ----------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12)
entries = st.fixed_dictionaries({"seq": st.one_of(st.integers(), st.booleans(), st.text(max_size=3), st.none())},
                                optional={"sig": json_values, "subject": json_values, "key": json_values})


@FUZZ
@example(line=b"[" * 100_000)
@example(line=b'{"seq": true}')
@example(line=b'{"seq": 1.0}')
@example(line=b'{"seq": 7, "sig": NaN}')
@given(line=st.one_of(st.binary(max_size=300), json_values.map(lambda v: json.dumps(v).encode()),
                      entries.map(lambda v: json.dumps(v).encode())))
def test_parse_entry_returns_exactly_the_entries_json_loads_finds(line):
    check_custody_line(line)


def test_parse_entry_survives_deep_nesting():
    """Fixed in 1c642d3: json.loads raises RecursionError on deep nesting, which parse_entry let out."""
    assert parse_entry(b"[" * 100_000) is None


# -- evidence bundles -------------------------------------------------------------------

from tests.test_mutations import change_field  # noqa: E402  (one field of a JSON document changed)
from tests.tsa import local_tsa  # noqa: E402,F401  (a fixture)


@pytest.fixture
def honest_bundle(run_cli, raw_server, collection, tmp_path, local_tsa):
    """A bundle of one claim citing two pages, its checkpoint timestamped: (path, fingerprint,
    trusted TSA roots). It verifies; the tests below change it."""
    use_tsa(collection.root, local_tsa, trust=False)
    server = raw_server({"/report": send_bytes(http_response(b"<html><title>Ministry report</title><p>troops</p></html>")),
                         "/echo": send_bytes(http_response(b"<html><p>echoed</p></html>"))})
    (collection.root / "seeds" / "public.md").write_text(
        f"# Troops moved on Monday\n\nThe ministry says so: {server.url('/report')} and {server.url('/echo')}\n")
    assert run_cli("capture", "-C", collection.root, collection.root / "seeds").exit_code == 0
    claims = json.loads(run_cli("claims", "-C", collection.root, "--json").stdout)
    claim = next(c for c in claims if "ministry says so" in c["text"])
    fingerprint = json.loads(run_cli("keys", "show", "-C", collection.root, "--json").stdout)["keys"][0]["fingerprint"]
    bundle = tmp_path / "bundle.wacz"
    result = run_cli("bundle", "-C", collection.root, "-o", bundle, "--claim", claim["id"])
    assert result.exit_code == 0, result.output
    roots = local_tsa.ca_pem_path.read_bytes()
    report = verify_bundle(bundle, fingerprint, roots)
    assert report.ok, report.failures
    assert report.passed["checkpoint timestamp"] == 1 and report.passed["capture record digest"] >= 4, report.passed
    assert "evidence/checkpoint.json.tsr" in zipfile.ZipFile(bundle).namelist()
    return bundle, fingerprint, roots


def verdict(path: Path, fingerprint: str, roots: bytes) -> str:
    """'refused' (an ArchiverError: the CLI's one line), 'failed' or 'VERIFIED'; any other
    exception propagates and fails the test."""
    try:
        report = verify_bundle(path, fingerprint, roots)
    except ArchiverError:
        return "refused"
    return "VERIFIED" if report.ok else "failed"


def zip_metadata(data: bytes) -> set[int]:
    """Offsets of ZIP container fields that describe no evidence and that Python's zipfile does
    not read back: a local header's version, flags, time, date, CRC-32 and sizes (zipfile takes
    these from the central directory), a central directory header's versions, flags, time, date,
    extra/comment lengths, disk, internal and external attributes, and the end record's disk
    numbers and per-disk count. Every entry's bytes are hashed by the signed statement and the
    datapackage, so a flip here changes nothing a verifier should care about."""
    found: set[int] = set()
    position = data.find(b"PK\x03\x04")
    while position != -1:
        found.update(range(position + 4, position + 26))
        position = data.find(b"PK\x03\x04", position + 4)
    position = data.find(b"PK\x01\x02")
    while position != -1:
        found.update(range(position + 4, position + 16))
        found.update(range(position + 28, position + 42))
        position = data.find(b"PK\x01\x02", position + 4)
    end = data.rfind(b"PK\x05\x06")
    found.update(range(end + 4, end + 12))
    return found


@dataclass(frozen=True)
class StoredEntry:
    name: str
    start: int  # its bytes are data[start:end]
    end: int
    crc_fields: tuple[int, int]  # where its CRC-32 stands: in its local header, in the central directory


def stored_entries(data: bytes) -> list[StoredEntry]:
    """Where each entry's bytes and CRC-32 fields lie in a ZIP whose entries are all stored."""
    found = []
    central = struct.unpack_from("<L", data, data.rfind(b"PK\x05\x06") + 16)[0]
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():  # in central directory order
            assert info.compress_type == zipfile.ZIP_STORED and data[central:central + 4] == b"PK\x01\x02", info
            name_length, extra_length = struct.unpack_from("<2H", data, info.header_offset + 26)
            start = info.header_offset + 30 + name_length + extra_length
            found.append(StoredEntry(info.filename, start, start + info.compress_size,
                                     (info.header_offset + 14, central + 16)))
            central += 46 + sum(struct.unpack_from("<3H", data, central + 28))
    return found


def flip(data: bytes, entry: StoredEntry, offset: int, mask: int) -> bytes:
    """`data` with byte `offset` of `entry` ^= `mask`, and the entry's CRC-32 made to match its
    new bytes, so that the ZIP reader finds nothing wrong."""
    changed = bytearray(data)
    changed[entry.start + offset] ^= mask
    crc = struct.pack("<L", zlib.crc32(changed[entry.start:entry.end]))
    for field in entry.crc_fields:
        changed[field:field + 4] = crc
    return bytes(changed)


def test_a_flipped_byte_with_its_crc_made_right_fails_the_evidence_checks(honest_bundle, tmp_path):
    """A byte flipped inside any entry, its CRC-32 put right so that the ZIP reader cannot be
    what notices: verify_bundle reads the bundle and its hash and signature checks fail it.
    Entries are picked alike, so a 64-byte signature is flipped as often as the WARC."""
    bundle, fingerprint, roots = honest_bundle
    pristine = bundle.read_bytes()
    entries = [entry for entry in stored_entries(pristine) if entry.end > entry.start]
    tampered = tmp_path / "flipped.wacz"
    seen: Counter[str] = Counter()

    @FUZZ
    @given(entry=st.sampled_from(entries), position=st.integers(0, 2**20), mask=st.integers(1, 255))
    def flipped(entry, position, mask):
        offset = position % (entry.end - entry.start)
        changed = flip(pristine, entry, offset, mask)
        tampered.write_bytes(changed)
        what = f"byte {offset} of {entry.name} ^= 0x{mask:02x}"
        try:
            report = verify_bundle(tampered, fingerprint, roots)
        except ArchiverError as exc:
            raise AssertionError(f"{what}: refused before the evidence checks, its CRC-32 right: {exc}") from exc
        if entry.name == DIGEST and only_unsigned_metadata(pristine[entry.start:entry.end], changed[entry.start:entry.end]):
            seen["unsigned signedData.software/version only"] += 1
            return
        assert not report.ok, f"{what} verified"
        assert any(entry.name in failure.where for failure in report.failures), (what, report.failures)
        seen["failed"] += 1

    flipped()
    print(f"\nverify_bundle on flipped entry bytes: {dict(seen)}")
    # The exemption above must stay rare, or this test would say little about the checks.
    assert seen["failed"] >= 0.9 * seen.total(), f"too few flips failed an evidence check: {dict(seen)}"
    assert verdict(bundle, fingerprint, roots) == "VERIFIED"


def test_verify_bundle_never_verifies_a_flipped_zip_header_byte(honest_bundle, tmp_path):
    """A byte flipped in the ZIP's own headers, outside every entry, is refused or failed, never
    verified; zip_metadata lists the header bytes no reader looks at."""
    bundle, fingerprint, roots = honest_bundle
    pristine = bundle.read_bytes()
    metadata = zip_metadata(pristine)
    assert len(metadata) < len(pristine) // 20  # the exclusion stays small
    inside = {offset for entry in stored_entries(pristine) for offset in range(entry.start, entry.end)}
    headers = sorted(set(range(len(pristine))) - inside - metadata)
    tampered = tmp_path / "flipped.wacz"
    seen: Counter[str] = Counter()

    @FUZZ
    @given(offset=st.sampled_from(headers), mask=st.integers(1, 255))
    def flipped(offset, mask):
        changed = bytearray(pristine)
        changed[offset] ^= mask
        tampered.write_bytes(bytes(changed))
        outcome = verdict(tampered, fingerprint, roots)
        seen[outcome] += 1
        assert outcome != "VERIFIED", f"header byte {offset} ^= 0x{mask:02x} of the bundle verified"

    flipped()
    print(f"\nverify_bundle on flipped header bytes: {dict(seen)}")
    assert verdict(bundle, fingerprint, roots) == "VERIFIED"


def _rewrite(source: Path, target: Path, change) -> None:
    """A copy of the bundle with `change(entries)` applied to its (name, bytes) list."""
    with zipfile.ZipFile(source) as archive:
        entries = [(info.filename, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as archive:
        for name, data in change(entries):
            archive.writestr(name, data)


DIGEST = "datapackage-digest.json"


# What signedData holds that bears on the signature; anything else there (`software`,
# `version`, a key a flipped byte renamed) describes the writing tool and carries no evidence.
SIGNATURE_FIELDS = {"hash", "created", "signature", "publicKey", "domain", "domainCert",
                    "timeSignature", "timestampCert", "crossSignedCert"}


def only_unsigned_metadata(before: bytes | None, after: bytes | None) -> bool:
    """True when datapackage-digest.json changed only in signedData fields the WACZ signing spec
    does not sign (it signs `hash` and `created`): `software` and `version` describe the tool
    that wrote the file (dropping one is reported as a warning, not a failure)."""
    try:
        old, new = json.loads(before), json.loads(after)
        for document in (old, new):
            document["signedData"] = {k: v for k, v in document["signedData"].items() if k in SIGNATURE_FIELDS}
    except (TypeError, ValueError, KeyError, AttributeError):
        return False
    return old == new


OPERATIONS = ["flip", "drop", "truncate", "append", "empty", "rename", "add", "field", "swap"]


def test_verify_bundle_never_verifies_a_changed_entry(honest_bundle, tmp_path):
    bundle, fingerprint, roots = honest_bundle
    with zipfile.ZipFile(bundle) as archive:
        names = archive.namelist()
    tampered = tmp_path / "changed.wacz"
    _rewrite(bundle, tampered, lambda entries: entries)
    assert verdict(tampered, fingerprint, roots) == "VERIFIED"  # rewriting alone changes nothing
    seen: dict[str, int] = {}

    @FUZZ
    @given(name=st.sampled_from(names), operation=st.sampled_from(OPERATIONS), rng=st.randoms(use_true_random=False),
           junk=st.binary(min_size=1, max_size=20))
    def changed(name, operation, rng, junk):
        what = f"{operation} {name}"

        def change(entries):
            out = []
            for index, (entry, data) in enumerate(entries):
                if entry != name:
                    out.append((entry, data))
                elif operation == "flip" and data:
                    offset = rng.randrange(len(data))
                    out.append((entry, data[:offset] + bytes([data[offset] ^ rng.randrange(1, 256)]) + data[offset + 1:]))
                elif operation == "truncate" and data:
                    out.append((entry, data[:rng.randrange(len(data))]))
                elif operation == "append":
                    out.append((entry, data + junk))
                elif operation == "empty" and data:
                    out.append((entry, b""))
                elif operation == "rename":
                    out.append((entry + "x", data))
                elif operation == "add":
                    out += [(entry, data), ("evidence/extra-" + entry.rsplit("/", 1)[-1], data)]
                elif operation == "swap":
                    other = rng.choice([n for n in names if n != entry])
                    out.append((entry, dict(entries)[other]))
                elif operation == "field" and entry.endswith((".json", ".jsonl")):
                    lines = data.split(b"\n")
                    candidates = [i for i, line in enumerate(lines) if line.strip()]
                    number = rng.choice(candidates)
                    try:
                        document = json.loads(lines[number])
                    except ValueError:
                        return None
                    document, _ = change_field(rng, document)
                    lines[number] = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
                    out.append((entry, b"\n".join(lines)))
                elif operation != "drop":
                    return None  # this operation does not apply to this entry
            return out

        with zipfile.ZipFile(bundle) as archive:
            entries = [(info.filename, archive.read(info)) for info in archive.infolist()]
        result = change(entries)
        if result is None or result == entries:
            seen["not applicable"] = seen.get("not applicable", 0) + 1
            return
        if only_unsigned_metadata(dict(entries).get(DIGEST), dict(result).get(DIGEST)) and \
                [e for e in entries if e[0] != DIGEST] == [e for e in result if e[0] != DIGEST]:
            seen["unsigned signedData.software/version only"] = seen.get("unsigned signedData.software/version only", 0) + 1
            return
        with zipfile.ZipFile(tampered, "w", zipfile.ZIP_STORED) as archive:
            for entry, data in result:
                archive.writestr(entry, data)
        outcome = verdict(tampered, fingerprint, roots)
        seen[outcome] = seen.get(outcome, 0) + 1
        assert outcome != "VERIFIED", what

    changed()
    print(f"\nverify_bundle on changed entries: {seen}")


# -- evidence entries damaged one at a time ----------------------------------------------

def _replaced(bundle: Path, tmp_path: Path, name: str, data: bytes | None) -> Path:
    """A copy of the bundle with entry `name` replaced by `data` (None: dropped)."""
    target = tmp_path / "replaced.wacz"
    _rewrite(bundle, target, lambda entries: [(n, data if n == name else d) for n, d in entries
                                              if n != name or data is not None])
    return target


@pytest.mark.parametrize("name, data", [
    # Each was found by the mutation loop as a crash of verify_bundle, not a report.
    pytest.param("evidence/attestations.jsonl", None, id="attestations.jsonl dropped"),
    pytest.param("evidence/key-{fp}.pub.pem", b"not a key", id="signer key not PEM"),
    pytest.param("evidence/checkpoint.json", b"{", id="checkpoint.json not JSON"),
    pytest.param("evidence/checkpoint.json", b'{"captures":1,"captures_merkle_root":"zz"}', id="Merkle root not hex"),
    pytest.param("evidence/captures.json", b'{"captures":1}', id="captures not a list"),
])
def test_a_damaged_evidence_entry_gives_a_report(honest_bundle, tmp_path, name, data):
    bundle, fingerprint, roots = honest_bundle
    tampered = _replaced(bundle, tmp_path, name.format(fp=fingerprint), data)
    report = verify_bundle(tampered, fingerprint, roots)
    assert not report.ok


def test_an_honest_bundle_of_everything_verifies(run_cli, honest_bundle, collection, tmp_path):
    _, fingerprint, roots = honest_bundle
    bundle = tmp_path / "all.wacz"
    assert run_cli("bundle", "-C", collection.root, "-o", bundle, "--all").exit_code == 0
    report = verify_bundle(bundle, fingerprint, roots)
    assert report.ok, report.failures


# -- coverage-guided (atheris): bench/fuzz.py, briefly -----------------------------------

@pytest.mark.parametrize("target", ["warc", "wacz", "manifest", "readers", "custody"])
def test_coverage_guided_fuzzing_finds_no_crash_and_no_broken_promise(target, tmp_path):
    """Each target of bench/fuzz.py runs a few hundred inputs grown from real seeds (the long
    runs take flags such as -atheris_runs=200000). libFuzzer exits non-zero on any crash or
    failed assertion, and prints the input that caused it."""
    pytest.importorskip("atheris")
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "bench" / "fuzz.py"
    result = subprocess.run([sys.executable, str(script), target, "-atheris_runs=400", "-timeout=20"],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path,
                            env={**os.environ, "TMPDIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Done 400 runs" in result.stderr or "Done 400 in" in result.stderr, result.stderr[-1000:]
