"""Coverage-guided fuzzing (atheris, libFuzzer's engine) of the code that reads bytes others
made: the WARC scanner, the bundle reader with `verify-bundle`, the streamed manifest reader,
the document readers and the custody-log line parser. Each target states what must hold for
every input; a crash, a hang or a broken promise stops the run with the input that caused it.

    python bench/fuzz.py warc -atheris_runs=200000       the long runs (any libFuzzer flag)
    python bench/fuzz.py wacz -max_total_time=600
    python bench/fuzz.py manifest -atheris_runs=100000
    python bench/fuzz.py readers -atheris_runs=100000
    python bench/fuzz.py custody -atheris_runs=100000

The test suite runs each target briefly. Seeds are made on the spot (a real WARC, a real
bundle signed by a fresh key), so a run needs nothing but this checkout.
"""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout: tests.fuzz_properties
with atheris.instrument_imports():
    from archiver.exchange.bundle_verify import verify_bundle
    from archiver.errors import ArchiverError
    from archiver.evidence.manifest import read_manifest
    from archiver.check.scan import scan_stream
    from archiver.capture.warc import WarcFileWriter, http_exchange_records, metadata_record, sha256_digest
    from archiver.store.storage import LocalFolder, StoredFile
    from tests.fuzz_properties import check_custody_line, check_document  # shared with tests/test_fuzz.py

SUFFIXES = [".txt", ".md", ".html", ".csv", ".jsonl"]


def seed_warc(folder: Path) -> Path:
    """A closed WARC written by archiver's own writer: warcinfo, request, response, metadata."""
    closed: list[StoredFile] = []
    writer = WarcFileWriter(LocalFolder(folder), "seed", 1 << 30, {}, on_open=lambda *_: None, on_close=closed.append)
    body = b"<html><title>seed</title><p>a page</p></html>"
    response = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    request, answer = http_exchange_records(
        "http://example.org/", datetime.now(timezone.utc), "93.184.215.14",
        b"GET / HTTP/1.1\r\nHost: example.org\r\n\r\n", io.BytesIO(response), len(response),
        sha256_digest(response), sha256_digest(body), None, answered=True)
    meta = metadata_record("http://example.org/", datetime.now(timezone.utc), answer.header("WARC-Record-ID"), b"{}")
    writer.write([[request, answer, meta]])
    writer.close()
    return folder / closed[0].name


def seed_bundle(folder: Path) -> tuple[Path, str]:
    """A bundle made by the CLI from an imported WARC, and its collection key's fingerprint."""
    from click.testing import CliRunner

    from archiver.cli import cli

    os.environ["ARCHIVER_KEY"] = str(folder / "key.pem")
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(cli, [str(a) for a in args])
        if result.exit_code != 0:
            raise SystemExit(f"seed bundle: archiver {' '.join(map(str, args))} failed: {result.output}")
        return result.stdout

    run("init", folder / "collection", "--name", "fuzz", "--operator", "fuzz")
    run("import", "-C", folder / "collection", seed_warc(folder))
    captured = json.loads(run("captures", "-C", folder / "collection", "--json"))
    run("cite", "-C", folder / "collection", "The seed page says so", "--capture", captured[0]["id"])
    run("bundle", "-C", folder / "collection", "--all", "-o", folder / "seed.wacz")
    keys = json.loads(run("keys", "show", "-C", folder / "collection", "--json"))
    return folder / "seed.wacz", keys["keys"][0]["fingerprint"]


def entries(path: Path) -> dict[str, bytes] | None:
    try:
        with zipfile.ZipFile(path) as archive:
            return {info.filename: archive.read(info) for info in archive.infolist()}
    except Exception:
        return None


def target_warc(data: bytes) -> None:
    """scan_stream never raises for bad content, and accounts for every byte it was given."""
    scan = scan_stream(io.BytesIO(data), "fuzz.warc.gz")
    assert scan.size == len(data), (scan.size, len(data))
    for record in scan.records:
        assert 0 <= record.offset < len(data)


def make_target_wacz(work: Path, fingerprint: str, pristine: dict[str, bytes]):
    candidate = work / "candidate.wacz"

    def target_wacz(data: bytes) -> None:
        """verify-bundle refuses or reports; a bundle it verifies holds exactly the signed entries."""
        candidate.write_bytes(data)
        try:
            report = verify_bundle(candidate, fingerprint)
        except ArchiverError:
            return
        if report.ok:
            assert entries(candidate) == pristine, "a changed bundle verified"
    return target_wacz


def target_manifest(data: bytes) -> None:
    """The streamed manifest reader accepts or refuses with ValueError; what it accepts says
    what the whole document, parsed at once, says."""
    captures: list[bytes] = []
    try:
        fields = read_manifest(data, on_capture=lambda entry, raw: captures.append(raw))
    except ValueError:
        return
    whole = json.loads(data)
    assert (fields["sequence"], fields["previous_manifest_sha256"]) == (whole["sequence"],
                                                                        whole["previous_manifest_sha256"])
    content = whole["manifest"]
    assert fields["counts"] == {k: len(v) for k, v in content.items() if isinstance(v, list)}
    assert fields["content"] == {k: v for k, v in content.items() if not isinstance(v, list)}
    listed = content.get("captures")
    assert [json.loads(raw) for raw in captures] == (listed if isinstance(listed, list) else [])


def target_readers(data: bytes) -> None:
    """The first byte picks the reader; check_document says what must hold of the rest."""
    if data:
        check_document(data[1:], SUFFIXES[data[0] % len(SUFFIXES)])


def target_custody(data: bytes) -> None:
    """check_custody_line: the entry json.loads finds in the line, or None, never an exception."""
    check_custody_line(data)


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in ("warc", "wacz", "manifest", "readers", "custody"):
        raise SystemExit(__doc__)
    name, flags = sys.argv[1], sys.argv[2:]
    work = Path(tempfile.mkdtemp(prefix=f"fuzz-{name}-"))
    corpus = work / "corpus"
    corpus.mkdir()
    if name == "warc":
        target = target_warc
        (corpus / "seed").write_bytes(seed_warc(work).read_bytes())
    elif name == "wacz":
        bundle, fingerprint = seed_bundle(work)
        pristine = entries(bundle)
        assert verify_bundle(bundle, fingerprint).ok, "the seed bundle does not verify"
        target = make_target_wacz(work, fingerprint, pristine)
        (corpus / "seed").write_bytes(bundle.read_bytes())
    elif name == "manifest":
        target = target_manifest
        bundle, _ = seed_bundle(work)
        (corpus / "seed").write_bytes((work / "collection" / "manifests" / "manifest.json").read_bytes())
    elif name == "readers":
        target = target_readers
        for index, sample in enumerate([b"# Title\n\nA claim cites https://example.org/a.\n",
                                        b"claim,url\nTroops moved,https://example.org/b\n",
                                        b'{"claim": "x", "url": "https://example.org/c"}\n',
                                        b"<html><p>Said <a href='https://example.org/d'>here</a></p></html>"]):
            (corpus / f"seed{index}").write_bytes(bytes([SUFFIXES.index([".md", ".csv", ".jsonl", ".html"][index])]) + sample)
    else:
        target = target_custody
        # A line of the log, and one whose seq is a JSON true: an int to Python, no seq to the log.
        for index, sample in enumerate([b'{"seq":1,"event":"capture","subject":{},"prev":null}', b'{"seq":true}']):
            (corpus / f"seed{index}").write_bytes(sample)
    atheris.Setup([sys.argv[0], *flags, str(corpus)], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
