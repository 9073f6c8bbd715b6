"""Evidence bundles: valid WACZ, replayable in pywb, verifiable offline, and every tampering named."""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
import tracemalloc
import urllib.request
import zipfile
from pathlib import Path
from typing import Iterator

import pytest

from archiver.evidence.keys import key_path
from archiver.evidence.signing import grouped
from archiver.store.crash_points import AFTER_SEAL, PAUSE_AT
from tests import pywb
from tests.conftest import http_response, make_collection, send_bytes
from tests.test_doctor import capturing, gates, logged_captures, page, wait_until  # noqa: F401 (gates is a fixture)

CATALOG_BACKENDS = ("sqlite", "postgresql")  # every test with a collection runs on both (conftest)

ARCHIVE = "archive/data.warc.gz"


@pytest.fixture
def evidence(run_cli, raw_server, collection, tmp_path):
    """A collection with two documents citing three pages, one with a hostile <title>."""
    server = raw_server({
        "/report": send_bytes(http_response(b"<html><title>Ministry report</title><p>troops moved</p></html>")),
        # a title whose text is "<script>alert(1)</script>" (written with entities, as a page would)
        "/hostile": send_bytes(http_response(b"<html><title>&lt;script&gt;alert(1)&lt;/script&gt;</title><p>x</p></html>")),
        "/secret": send_bytes(http_response(b"<html><title>Unrelated source</title><p>private lead</p></html>")),
    })
    seeds = collection.root / "seeds"
    (seeds / "public.md").write_text(f"# Troops moved on Monday\n\nThe ministry says so: {server.url('/report')}\n\n"
                                     f"A blog repeated it {server.url('/hostile')}\n")
    (seeds / "confidential-lead.md").write_text(f"# Whistleblower account\n\nSee {server.url('/secret')}\n")
    assert run_cli("capture", "-C", collection.root, seeds).exit_code == 0
    claims = json.loads(run_cli("claims", "-C", collection.root, "--json").stdout)
    fingerprint = json.loads(run_cli("keys", "show", "-C", collection.root, "--json").stdout)["keys"][0]["fingerprint"]
    return {"collection": collection, "server": server, "claims": claims, "fingerprint": fingerprint, "tmp": tmp_path}


def make_bundle(run_cli, evidence, *selection: str, name: str = "bundle.wacz") -> Path:
    output = evidence["tmp"] / name
    result = run_cli("bundle", "-C", evidence["collection"].root, "-o", output, *selection)
    assert result.exit_code == 0, result.output
    return output


def claim_about(evidence, words: str) -> dict:
    return next(c for c in evidence["claims"] if words in c["text"])


def verify_bundle(run_cli, bundle: Path, fingerprint: str) -> dict:
    result = run_cli("verify-bundle", bundle, "--fingerprint", fingerprint, "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == (0 if report["ok"] else 1), result.output
    return report


def failed(report: dict) -> set[str]:
    return {f["check"] for f in report["failures"]}


def rewrite(bundle: Path, change) -> Path:
    """A copy of the bundle with `change(name, data)` applied to every entry (None drops it)."""
    tampered = bundle.with_name("tampered-" + bundle.name)
    with zipfile.ZipFile(bundle) as source, zipfile.ZipFile(tampered, "w", zipfile.ZIP_STORED) as target:
        for info in source.infolist():
            data = change(info.filename, source.read(info))
            if data is not None:
                target.writestr(info.filename, data)
    return tampered


def members(data: bytes) -> list[bytes]:
    """The gzip members of a .warc.gz, each a record."""
    import zlib
    found, rest = [], data
    while rest:
        inflater = zlib.decompressobj(31)
        inflater.decompress(rest)
        used = len(rest) - len(inflater.unused_data)
        found.append(rest[:used])
        rest = inflater.unused_data
    return found


def test_a_claim_bundle_verifies_and_reveals_nothing_else(run_cli, evidence):
    claim = claim_about(evidence, "ministry says so")
    bundle = make_bundle(run_cli, evidence, "--claim", claim["id"])
    report = verify_bundle(run_cli, bundle, evidence["fingerprint"])
    assert report["ok"], report["failures"]
    for check in ("bundle signature", "Merkle inclusion", "attestation signature", "attested records",
                  "capture record digest", "statement file hash", "checkpoint signature"):
        assert report["passed"].get(check, 0) > 0, check
    assert any("RFC 3161 timestamp" in item for item in report["not_checked"])
    everything = b"".join(zipfile.ZipFile(bundle).read(name) for name in zipfile.ZipFile(bundle).namelist())
    for secret in (b"/secret", b"Whistleblower", b"confidential-lead", b"Unrelated source", b"private lead",
                   b"/hostile", b"A blog repeated"):
        assert secret not in everything, secret
    assert evidence["server"].url("/report").encode() in everything


def test_pubkey_checks_against_the_exported_public_key_and_refuses_the_private_one_saying_so(run_cli, evidence):
    bundle = make_bundle(run_cli, evidence, "--claim", claim_about(evidence, "ministry says so")["id"])
    public = evidence["tmp"] / "their-key.pem"
    assert run_cli("keys", "export", "-C", evidence["collection"].root, "-o", public).exit_code == 0
    assert json.loads(run_cli("verify-bundle", bundle, "--pubkey", public, "--json").stdout)["ok"] is True
    private = key_path(evidence["collection"])  # the signing key a user could pick up by mistake
    refused = run_cli("verify-bundle", bundle, "--pubkey", private)
    assert refused.exit_code == 2 and f"{private} is a private key" in refused.output, refused.output
    assert "keys/FINGERPRINT.pub.pem" in refused.output and "archiver keys export -o FILE" in refused.output


@pytest.mark.parametrize("choice", [["--claim", "CLAIM"], ["--url", "URL"], ["--document", "DOCUMENT"]],
                         ids=lambda c: c[0])
def test_all_with_a_narrower_choice_is_refused_not_taken_for_everything(run_cli, evidence, tmp_path, choice):
    """`--claim ID --all` once wrote every claim and capture of the collection: a bundle meant
    to reveal one claim carried the secret ones too."""
    value = {"CLAIM": claim_about(evidence, "ministry says so")["id"], "URL": evidence["server"].url("/report"),
             "DOCUMENT": evidence["collection"].root / "seeds" / "public.md"}
    output = tmp_path / "one-claim.wacz"
    result = run_cli("bundle", "-C", evidence["collection"].root, choice[0], value[choice[1]], "--all",
                     "-o", output)
    assert result.exit_code == 2, result.output
    assert len(result.stderr.splitlines()) == 1 and "--all" in result.stderr and choice[0] in result.stderr
    assert not output.exists()

def test_a_bundle_the_custody_log_could_not_record_leaves_the_earlier_bundle_there(run_cli, evidence, monkeypatch):
    """The export is recorded in the custody log before the bundle takes its name: when the log
    cannot take the entry (a full disk), the bundle already at that path is left as it was.
    (It was replaced, then the new one deleted: the earlier bundle was gone.)"""
    import errno

    from archiver.evidence.custody import CustodyLog
    earlier = make_bundle(run_cli, evidence, "--all")
    kept = earlier.read_bytes()
    append = CustodyLog.append

    def disk_full_at_export(self, event, subject, key=None):
        if event == "export":
            raise OSError(errno.ENOSPC, "No space left on device")
        return append(self, event, subject, key)

    monkeypatch.setattr(CustodyLog, "append", disk_full_at_export)
    result = run_cli("bundle", "-C", evidence["collection"].root, "-o", earlier, "--all")
    assert result.exit_code == 3, result.output
    assert earlier.read_bytes() == kept
    assert sorted(path.name for path in earlier.parent.iterdir() if path.name.startswith(".")) == []


def test_all_means_every_capture_cited_or_not(run_cli, evidence):
    server = evidence["server"]
    uncited = server.url("/secret") + "?asked=directly"
    assert run_cli("capture", "-C", evidence["collection"].root, uncited).exit_code == 0  # a URL no claim cites
    captured = json.loads(run_cli("captures", "-C", evidence["collection"].root, "--json").stdout)
    bundle = make_bundle(run_cli, evidence, "--all")
    carried = json.loads(zipfile.ZipFile(bundle).read("evidence/captures.json"))["captures"]
    assert sorted(entry["entry"]["id"] for entry in carried) == sorted(c["id"] for c in captured)
    assert verify_bundle(run_cli, bundle, evidence["fingerprint"])["ok"]


def test_all_in_a_collection_of_captures_without_claims(run_cli, raw_server, tmp_path):
    collection = make_collection(tmp_path / "urls-only")
    server = raw_server({"/a": send_bytes(http_response(b"<title>A</title>")),
                         "/b": send_bytes(http_response(b"<title>B</title>"))})
    assert run_cli("capture", "-C", collection.root, server.url("/a"), server.url("/b")).exit_code == 0
    made = run_cli("bundle", "-C", collection.root, "--all", "-o", tmp_path / "urls.wacz", "--json")
    assert made.exit_code == 0, made.output
    assert (json.loads(made.stdout)["claims"], json.loads(made.stdout)["captures"]) == (0, 2)
    report = zipfile.ZipFile(tmp_path / "urls.wacz").read("evidence/report.html").decode()
    assert "<h1>2 captures of 2 web pages<span class=\"made\">" in report
    assert "2 captures of web pages, 2 of them cited by no claim in this bundle" in report


def test_a_bundle_never_holds_a_capture_whole_in_memory(run_cli, raw_server, tmp_path):
    """Its WARC is copied, hashed and zipped in ranges: a bundle of every capture of a large
    collection needs no more memory than one of a few pages."""
    collection = make_collection(tmp_path / "large-body")
    body = os.urandom(40 * 2**20)  # incompressible: its gzip member is as large
    server = raw_server({"/data.bin": send_bytes(http_response(body, headers=[("Content-Type", "application/octet-stream")]))})
    assert run_cli("capture", "-C", collection.root, server.url("/data.bin")).exit_code == 0
    tracemalloc.start()
    try:
        made = run_cli("bundle", "-C", collection.root, "--all", "-o", tmp_path / "large.wacz")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert made.exit_code == 0, made.output
    assert peak < len(body) // 2, f"bundling held {peak / 2**20:.0f} MiB at once"
    with zipfile.ZipFile(tmp_path / "large.wacz") as wacz, wacz.open(ARCHIVE) as archive:
        assert body in gzip.decompress(archive.read())  # the capture is there whole
    fingerprint = json.loads(run_cli("keys", "show", "-C", collection.root, "--json").stdout)["keys"][0]["fingerprint"]
    assert run_cli("verify-bundle", tmp_path / "large.wacz", "--fingerprint", fingerprint).exit_code == 0


def test_the_bundle_is_a_valid_wacz_that_pywb_replays(run_cli, evidence, tmp_path):
    wacz = shutil.which("wacz") or str(Path(sys.executable).with_name("wacz"))
    bundle = make_bundle(run_cli, evidence, "--all")
    result = subprocess.run([wacz, "validate", "-f", str(bundle)], capture_output=True, text=True)
    verdict = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    # The exact verdict: "invalid" and "outdated but valid" both contain "valid".
    assert (result.returncode, verdict) == (0, "Validation succeeded, the passed WACZ is valid"), \
        result.stdout + result.stderr

    wayback, port = pywb.serve(bundle, tmp_path / "pywb")
    try:
        capture = json.loads(run_cli("captures", "-C", evidence["collection"].root, "--url",
                                     evidence["server"].url("/report"), "--json").stdout)[0]
        stamp = capture["started_at"][:19].replace("-", "").replace("T", "").replace(":", "")
        url = f"http://127.0.0.1:{port}/evidence/{stamp}id_/{evidence['server'].url('/report')}"
        body = None
        for _ in range(100):
            try:
                body = urllib.request.urlopen(url, timeout=5).read()
                break
            except OSError:
                time.sleep(0.1)
        assert body == b"<html><title>Ministry report</title><p>troops moved</p></html>"
    finally:
        wayback.terminate()
        wayback.wait(10)


def test_the_report_escapes_a_hostile_title(run_cli, evidence):
    bundle = make_bundle(run_cli, evidence, "--all")
    report = zipfile.ZipFile(bundle).read("evidence/report.html").decode()
    assert "<script" not in report and "&lt;script&gt;alert(1)&lt;/script&gt;" in report
    pages = zipfile.ZipFile(bundle).read("pages/pages.jsonl").decode()
    assert '"title":"<script>alert(1)</script>"' in pages  # the title was read, so the report had it to escape
    assert "Ministry report" in report and evidence["fingerprint"][:4] in report


def test_every_tampering_is_named(run_cli, evidence, tmp_path):
    bundle = make_bundle(run_cli, evidence, "--all")
    fingerprint = evidence["fingerprint"]

    def in_record(name, data):
        if name != ARCHIVE:
            return data
        parts = members(data)
        for i, member in enumerate(parts):
            block = gzip.decompress(member)
            if b"troops moved" in block:
                parts[i] = gzip.compress(block.replace(b"troops moved", b"troops stayed"))
        return b"".join(parts)

    cases = {
        "a flipped byte in a WARC record": (in_record, {"capture record digest", "attested records"}),
        "a flipped byte in datapackage.json": (
            lambda n, d: d.replace(b'"wacz_version"', b'"wacz_versiom"') if n == "datapackage.json" else d,
            {"datapackage digest"}),
        "a flipped byte in an evidence file": (
            lambda n, d: d.replace(b"Troops moved", b"Troops mooved") if n == "evidence/claims.json" else d,
            {"statement file hash"}),
        "a record removed": (
            lambda n, d: b"".join(m for m in members(d) if b"troops moved" not in gzip.decompress(m)) if n == ARCHIVE else d,
            {"capture record present"}),
        "a custody entry edited to hold a list as its key": (
            lambda n, d: d.replace(b'"key":"', b'"key":["', 1).replace(b'","operator"', b'"],"operator"', 1)
            if n == "evidence/custody.jsonl" else d, {"custody entry signature"}),
        "an attestation line that is no JSON": (
            lambda n, d: b"<" + d[1:] if n == "evidence/attestations.jsonl" else d, {"evidence readable"}),
        "a Merkle proof altered": (
            lambda n, d: d.replace(b'"proof":["', b'"proof":["00', 1) if n == "evidence/captures.json" else d,
            {"Merkle inclusion"}),
    }
    for label, (change, expected) in cases.items():
        report = verify_bundle(run_cli, rewrite(bundle, change), fingerprint)
        assert not report["ok"], label
        assert expected & failed(report), (label, failed(report))

    other = verify_bundle(run_cli, bundle, "ab" * 32)
    assert failed(other) == {"signer identity"}
    assert json.loads(run_cli("verify-bundle", bundle, "--json").stdout)["ok"] is False  # no fingerprint, no trust


def test_unsigned_text_put_in_a_bundle_fails_it(run_cli, evidence, tmp_path):
    """Bytes that nothing signs but that unzip shows or makes (an entry's comment, a folder entry)
    or that read as the bundle's own word (datapackage-digest.json past its signed hash)."""
    bundle = make_bundle(run_cli, evidence, "--all")
    notice = "Verified and accepted by the Court registry"

    def digest_file(edit):
        def change(name, data):
            if name != "datapackage-digest.json":
                return data
            digest = json.loads(data)
            edit(digest)
            return json.dumps(digest, sort_keys=True, separators=(",", ":")).encode()
        return change

    def with_entries(edit) -> Path:
        tampered = tmp_path / f"tampered-{edit.__name__}.wacz"
        with zipfile.ZipFile(bundle) as source, zipfile.ZipFile(tampered, "w", zipfile.ZIP_STORED) as target:
            for info in source.infolist():
                edit(target, info, source.read(info))
        return tampered

    def commented(target, info, data):
        if info.filename == "evidence/report.html":
            info.comment = b"Report superseded: see the corrected version sent by email"
        target.writestr(info, data)

    def with_folder(target, info, data):
        target.writestr(info, data)
        if info.filename == ARCHIVE:
            target.writestr(zipfile.ZipInfo("THIS EVIDENCE WAS ACCEPTED BY THE COURT/"), b"")

    cases = {
        "an entry comment": (with_entries(commented), {"no ZIP comment"}),
        "a folder entry": (with_entries(with_folder), {"statement covers file"}),
        "another software named": (rewrite(bundle, digest_file(lambda d: d["signedData"].update(software="Ministry 9.9"))),
                                   {"digest file as written"}),
        "a note added": (rewrite(bundle, digest_file(lambda d: d.update(note=notice))), {"digest file as written"}),
        "the digest file re-indented": (rewrite(bundle, lambda n, d: json.dumps(json.loads(d), indent=2).encode()
                                                if n == "datapackage-digest.json" else d), {"digest file as written"}),
    }
    for label, (tampered, expected) in cases.items():
        report = verify_bundle(run_cli, tampered, evidence["fingerprint"])
        assert not report["ok"] and expected <= failed(report), (label, report["failures"])
    assert verify_bundle(run_cli, rewrite(bundle, lambda n, d: d), evidence["fingerprint"])["ok"]  # re-packed as is: still whole


def test_a_capture_added_from_another_bundle_is_named(run_cli, evidence):
    one = make_bundle(run_cli, evidence, "--claim", claim_about(evidence, "ministry says so")["id"], name="one.wacz")
    two = make_bundle(run_cli, evidence, "--claim", claim_about(evidence, "/secret")["id"], name="two.wacz")
    foreign = zipfile.ZipFile(two).read(ARCHIVE)
    extra = [m for m in members(foreign) if b"private lead" in gzip.decompress(m)]
    report = verify_bundle(run_cli, rewrite(one, lambda n, d: d + b"".join(extra) if n == ARCHIVE else d),
                           evidence["fingerprint"])
    assert "archive record listed" in failed(report)


def hostile_zip(path: Path, entry: zipfile.ZipInfo, data: bytes) -> Path:
    """A ZIP holding a datapackage.json and `entry`, written with its mode and compression as given."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(zipfile.ZipInfo("datapackage.json"), b"{}")
        archive.writestr(entry, data)
    return path


def hostile_entry(attack: str, here: Path) -> tuple[zipfile.ZipInfo, bytes]:
    """An entry that, extracted in `here`, would write outside it, link out of it, or fill the disk."""
    if attack == "path traversal":
        return zipfile.ZipInfo("../evil.txt"), b"pwned"
    if attack == "absolute path":
        return zipfile.ZipInfo(f"{here}/evil.txt"), b"pwned"
    if attack == "symlink":
        link = zipfile.ZipInfo("archive/evil-link")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        return link, str(here.parent / "evil.txt").encode()
    bomb = zipfile.ZipInfo("archive/a.warc")
    bomb.compress_type = zipfile.ZIP_DEFLATED
    return bomb, b"\0" * 50_000_000


REFUSALS = {
    "path traversal": "entry '../evil.txt' has a '..' component, which climbs out of its folder",
    "absolute path": "entry '{here}/evil.txt' has an absolute path",
    "symlink": "entry 'archive/evil-link' is a symbolic link, not a regular file",
    "zip bomb": "entry 'archive/a.warc' inflates {compressed:,} bytes to 50,000,000, beyond 1:200 (a zip bomb?)",
}


def tree(root: Path) -> dict[str, bytes | str]:
    """Everything under `root`, recursively: each file's bytes, each link's target, each folder."""
    listing: dict[str, bytes | str] = {}
    for folder, subfolders, files in os.walk(root):
        for name in subfolders + files:
            path = Path(folder, name)
            where = str(path.relative_to(root))
            if path.is_symlink():
                listing[where] = f"link to {os.readlink(path)}"
            elif path.is_dir():
                listing[where] = "folder"
            else:
                listing[where] = path.read_bytes()
    return listing


@pytest.mark.parametrize("attack", list(REFUSALS))
def test_hostile_zips_are_refused_in_one_line(run_cli, tmp_path, monkeypatch, attack):
    """Run from an empty folder, with the bundle in another, verify-bundle and import refuse the
    ZIP in one line naming the entry and why, and nothing anywhere changes: not the working
    folder (where an extracting reader would write), not the bundle's, not the collection."""
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    (tmp_path / "received").mkdir()
    bundle = hostile_zip(tmp_path / "received" / "hostile.wacz", *hostile_entry(attack, here))
    compressed = zipfile.ZipFile(bundle).infolist()[-1].compress_size
    refusal = REFUSALS[attack].format(here=here, compressed=compressed)
    collection = make_collection(tmp_path / "collection")
    with collection.in_use():  # its lock file is part of every collection used once (README), not a change
        pass
    before = tree(tmp_path)
    for command in (["verify-bundle", bundle, "--fingerprint", "ab" * 32], ["import", "-C", collection.root, bundle]):
        result = run_cli(*command)
        if command[0] == "import":
            assert (result.exit_code, result.stdout, result.stderr) == (1, "", f"error: {refusal}\n"), command
        else:  # the verdict on a received file: a failed check, in the report
            assert (result.exit_code, result.stderr) == (1, ""), result.output
            assert f"FAIL bundle readable: hostile.wacz: {refusal}\n" in result.stdout, result.stdout
            assert result.stdout.endswith("Verification FAILED.\n")
        assert tree(here) == {}, command
        assert tree(tmp_path) == before, command


def flip_signature_byte(bundle: Path) -> Path:
    """A copy of the bundle whose datapackage-digest.json signedData signature has one byte flipped."""
    def change(name: str, data: bytes) -> bytes:
        if name != "datapackage-digest.json":
            return data
        digest_file = json.loads(data)
        signature = bytearray(base64.b64decode(digest_file["signedData"]["signature"]))
        signature[10] ^= 0x01
        digest_file["signedData"]["signature"] = base64.b64encode(bytes(signature)).decode()
        return json.dumps(digest_file, separators=(",", ":")).encode()
    return rewrite(bundle, change)


def test_a_flipped_signature_byte_is_named_as_such(run_cli, evidence):
    bundle = make_bundle(run_cli, evidence, "--all")
    tampered = flip_signature_byte(bundle)
    report = verify_bundle(run_cli, tampered, evidence["fingerprint"])
    assert failed(report) == {"signature", "datapackage key vouched for"}
    result = run_cli("verify-bundle", tampered, "--fingerprint", evidence["fingerprint"])
    assert result.exit_code == 1
    assert "None" not in result.output, result.output
    statement = json.loads(zipfile.ZipFile(bundle).read("evidence/bundle.json"))
    assert ("the bundle's signedData signature does not verify with the key its statement names "
            f"(fingerprint {grouped(statement['wacz_key'])})") in " ".join(result.output.split()), result.output


@contextlib.contextmanager
def paused_at(point: str, arguments: list[str], what: str) -> Iterator[subprocess.Popen]:
    """`archiver ARGUMENTS` started and stopped at the crash point `point` (ARCHIVER_PAUSE_AT)
    while the block runs, then let go on; a failure if it ends before it gets there."""
    process = subprocess.Popen([sys.executable, "-m", "archiver", *arguments], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env={**os.environ, PAUSE_AT: point})
    try:
        deadline = time.monotonic() + 120  # a guard against a hang, not a guess of how long it takes
        while process.poll() is None and _state(process) != "T":
            assert time.monotonic() < deadline, f"never {what}"
            time.sleep(0.05)
        assert process.poll() is None, f"ended before it {what}: {process.stderr.read().decode()}"
        yield process
    finally:
        process.send_signal(signal.SIGCONT)


def _state(process: subprocess.Popen) -> str:
    with open(f"/proc/{process.pid}/stat") as status:
        return status.read().rpartition(")")[2].split()[0]


def test_a_capture_stored_while_a_bundle_is_made_waits_for_the_next_bundle(run_cli, raw_server, tmp_path):
    """A bundle holds what the manifest it sealed lists: a capture another run stores meanwhile
    is left for the next bundle, and said to be (it used to refuse the whole bundle)."""
    collection = make_collection(tmp_path / "busy")
    server = raw_server({path: send_bytes(http_response(f"<title>{path}</title>".encode())) for path in ("/a", "/b")})
    assert run_cli("capture", "-C", collection.root, server.url("/a")).exit_code == 0
    with paused_at(AFTER_SEAL, ["bundle", "-C", str(collection.root), "--all", "-o", str(tmp_path / "busy.wacz"),
                                "--json"], "sealed its manifest") as bundling:
        assert run_cli("capture", "-C", collection.root, server.url("/b")).exit_code == 0
    out, err = bundling.communicate(timeout=120)
    assert bundling.returncode == 0, err.decode()
    made = json.loads(out)
    assert (made["captures"], made["captures_stored_since"], made["manifest"]) == (1, 1, 1)
    fingerprint = json.loads(run_cli("keys", "show", "-C", collection.root, "--json").stdout)["keys"][0]["fingerprint"]
    assert verify_bundle(run_cli, tmp_path / "busy.wacz", fingerprint)["ok"]
    again = run_cli("bundle", "-C", collection.root, "--all", "-o", tmp_path / "next.wacz", "--json")
    assert (json.loads(again.stdout)["captures"], json.loads(again.stdout)["captures_stored_since"]) == (2, 0)


def test_a_bundle_and_a_live_check_while_a_capture_runs_read_its_open_file(run_cli, raw_server, gates, tmp_path):
    """A capture run lists each capture once its records are fsynced, before their file is
    closed: a bundle, and `verify --live`, made meanwhile read them from the open file (both
    used to end in an internal error: no such file)."""
    collection = make_collection(tmp_path / "busy")
    gate = gates(answered=0, slots=1)
    server = raw_server({"/0": page, "/1": gate.respond, "/2": gate.respond})  # /0 stored, then /1 held
    process = capturing(collection, server, 3, concurrency=1)
    try:
        wait_until(lambda: logged_captures(collection) == 1, "first capture stored", process)
        assert gate.slots_held.wait(60), "the capture never asked for the held page"
        assert not list(collection.storage.folder.glob("*.warc.gz")), "the file is closed already"
        made = run_cli("bundle", "-C", collection.root, "--all", "-o", tmp_path / "during.wacz", "--json")
        assert made.exit_code == 0, made.output
        assert json.loads(made.stdout)["captures"] == 1
        live = run_cli("verify", "-C", collection.root, "--live", "--allow-private", "--json")
        assert "internal error" not in live.output and json.loads(live.stdout)["live"], live.output
    finally:
        gate.release()
    assert process.wait(timeout=60) == 0, process.stderr.read()
    fingerprint = json.loads(run_cli("keys", "show", "-C", collection.root, "--json").stdout)["keys"][0]["fingerprint"]
    assert verify_bundle(run_cli, tmp_path / "during.wacz", fingerprint)["ok"]


@pytest.mark.parametrize("first", [True, False], ids=["first bundle (announces its WACZ key)", "a later bundle"])
def test_a_key_revoked_while_a_bundle_is_made_signs_nothing_more(run_cli, raw_server, tmp_path, first):
    """The bundle checks its key is still in service before each entry it signs (its WACZ key's,
    its export's): a key revoked meanwhile used to sign them, and verify failed for good."""
    collection = make_collection(tmp_path / "revoked")
    server = raw_server({"/a": send_bytes(http_response(b"<title>a</title>"))})
    assert run_cli("capture", "-C", collection.root, server.url("/a")).exit_code == 0
    if not first:
        assert run_cli("bundle", "-C", collection.root, "--all", "-o", tmp_path / "earlier.wacz").exit_code == 0
    fingerprint = json.loads(run_cli("keys", "show", "-C", collection.root, "--json").stdout)["keys"][0]["fingerprint"]
    with paused_at(AFTER_SEAL, ["bundle", "-C", str(collection.root), "--all", "-o", str(tmp_path / "late.wacz")],
                   "sealed its manifest") as bundling:
        assert run_cli("keys", "revoke", fingerprint, "-C", collection.root, "--reason", "laptop stolen").exit_code == 0
    assert bundling.wait(120) == 2
    assert "is revoked" in bundling.stderr.read().decode()
    assert not (tmp_path / "late.wacz").exists()
    events = [json.loads(line)["event"] for line in (collection.root / "custody.jsonl").read_bytes().splitlines()]
    assert events[-1] == "key revoked", events  # nothing signed since, by the revoked key
    verified = run_cli("verify", "-C", collection.root, "--json")
    assert verified.exit_code == 0, verified.output


def test_a_custody_line_naming_no_event_is_no_crash_of_bundle(run_cli, raw_server, tmp_path):
    """A line holding an entry's seq and no event (an altered log) is left out of the bundle's
    entries like any line concerning nothing chosen, never a traceback; verify-bundle judges the rest."""
    collection = make_collection(tmp_path / "altered")
    server = raw_server({"/a": send_bytes(http_response(b"<title>A</title>"))})
    assert run_cli("capture", "-C", collection.root, server.url("/a")).exit_code == 0
    with open(collection.root / "custody.jsonl", "ab") as log:
        log.write(b'{"seq": 99, "subject": {}}\n')
    made = run_cli("bundle", "-C", collection.root, "--all", "-o", tmp_path / "altered.wacz", "--json")
    assert "Traceback" not in made.output and "internal error" not in made.output.lower(), made.output
    assert made.exit_code == 0, made.output
    carried = zipfile.ZipFile(tmp_path / "altered.wacz").read("evidence/custody.jsonl")
    assert b'"seq": 99' not in carried and b'"seq":99' not in carried
