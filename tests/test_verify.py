"""`archiver verify` passes on an honest collection and names the fault of every tampering."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from archiver.capture.run import CaptureRun
from archiver.evidence.keys import open_signing_key
from archiver.store.catalog import Catalog
from archiver.store.crash_points import MID_VERIFY
from archiver.evidence.signing import generate_key
from tests.conftest import http_response, make_collection, redirect, send_bytes, use_tsa
from tests.test_bundle import paused_at
from tests.tsa import local_tsa  # noqa: F401  (a fixture)

CATALOG_BACKENDS = ("sqlite", "postgresql")  # every test with a collection runs on both (conftest)


@pytest.fixture
def honest(run_cli, raw_server, tmp_path):
    """A collection with two captured pages, read from a document, and two signed manifests;
    the tests below tamper with it."""
    collection = make_collection(tmp_path / "honest")
    server = raw_server({"/a": send_bytes(http_response(b"<p>page a " + b"x" * 3000 + b"</p>")),
                         "/b": send_bytes(http_response(b"<p>page b</p>"))})
    (collection.root / "seeds" / "doc.md").write_text(f"# Claim\n\nSee {server.url('/a')} and {server.url('/b')}.\n")
    assert run_cli("capture", "-C", collection.root, collection.root / "seeds").exit_code == 0
    assert run_cli("manifest", "-C", collection.root).exit_code == 0
    assert run_cli("capture", "-C", collection.root, server.url("/b")).exit_code == 0
    assert run_cli("manifest", "-C", collection.root).exit_code == 0
    return collection


def verify(run_cli, collection) -> dict:
    result = run_cli("verify", "-C", collection.root, "--json", "--workers", "1")
    report = json.loads(result.stdout)
    assert result.exit_code == (0 if report["ok"] else 1)
    return report


def failed(report: dict) -> set[str]:
    return {f["check"] for f in report["failures"]}


def records_of(collection, role: str) -> list:
    catalog = Catalog(collection.catalog_location)
    try:
        return [r for c in catalog.captures() for r in catalog.records(c.id) if r.role == role]
    finally:
        catalog.close()


def rewrite_member(collection, record, change) -> None:
    """Inflate the record's gzip member, change its bytes, deflate it back in place."""
    path = collection.storage.folder / record.warc_file
    data = path.read_bytes()
    member = gzip.decompress(data[record.offset:record.offset + record.length])
    path.write_bytes(data[:record.offset] + gzip.compress(change(member)) + data[record.offset + record.length:])


def test_an_honest_collection_verifies(run_cli, honest):
    report = verify(run_cli, honest)
    assert report["ok"] and report["failed"] == 0
    for check in ("record block digest", "record payload digest", "attestation signature", "attested records",
                  "custody signature", "custody chain", "manifest signature", "manifest chain", "manifest.json newest"):
        assert report["passed"].get(check, 0) > 0, check
    text = run_cli("verify", "-C", honest.root).stdout
    assert "0 failed" in text and "Every check above passed." in text
    assert "manifest-2.json: no RFC 3161 timestamp" in text  # said, not passed off as checked
    log = json.loads(run_cli("log", "-C", honest.root, "--json", "--event", "verification run").stdout)
    assert log and log[-1]["subject"]["ok"] is True


def test_a_flipped_byte_in_a_body_is_named(run_cli, honest):
    response = records_of(honest, "response")[0]
    rewrite_member(honest, response, lambda block: block.replace(b"page a x", b"page a y", 1))
    report = verify(run_cli, honest)
    assert not report["ok"]
    assert {"record block digest", "record payload digest", "declared block digest", "attested records",
            "WARC file SHA-256"} <= failed(report)
    [digest] = [f for f in report["failures"] if f["check"] == "record block digest"]
    assert response.record_id in digest["where"] and response.warc_file in digest["where"]
    assert f"expected {response.block_digest}" in digest["detail"]
    assert "Verification FAILED." in run_cli("verify", "-C", honest.root).stdout


def test_a_changed_warc_header_is_named(run_cli, honest):
    response = records_of(honest, "response")[0]
    rewrite_member(honest, response, lambda block: block.replace(b"WARC-Date: 20", b"WARC-Date: 19", 1))
    report = verify(run_cli, honest)
    [header] = [f for f in report["failures"] if f["check"] == "record header"]
    assert "WARC-Date" in header["detail"] and response.record_id in header["where"]


def test_a_deleted_record_is_named(run_cli, honest):
    metadata = records_of(honest, "metadata")[0]
    path = honest.storage.folder / metadata.warc_file
    data = path.read_bytes()
    path.write_bytes(data[:metadata.offset] + data[metadata.offset + metadata.length:])
    report = verify(run_cli, honest)
    [missing] = [f for f in report["failures"] if f["check"] == "record present"]
    assert metadata.record_id in missing["where"]
    assert "attested records" in failed(report)


def test_a_removed_or_swapped_warc_file_is_named(run_cli, honest):
    files = sorted(honest.storage.folder.glob("*.warc.gz"))
    assert len(files) == 2
    shutil.copyfile(files[1], files[0])  # another valid file under the first one's name
    report = verify(run_cli, honest)
    assert {"WARC file SHA-256", "record present"} <= failed(report)
    files[1].unlink()
    report = verify(run_cli, honest)
    assert any(f["check"] == "WARC file present" and files[1].name in f["where"] for f in report["failures"])


def test_a_changed_manifest_signature_or_custody_entry_is_named(run_cli, honest):
    manifest = honest.root / "manifests" / "manifest-1.json"
    original = manifest.read_bytes()
    manifest.write_bytes(original.replace(b'"outcome":"ok"', b'"outcome":"OK"', 1))
    assert {"manifest signature", "manifest listed", "manifest chain"} <= failed(verify(run_cli, honest))
    assert original.endswith(b',"sequence":1}')
    manifest.write_bytes(original.replace(b',"sequence":1}', b',"sequence":true}'))  # JSON's true == 1 in Python
    assert "manifest sequence" in failed(verify(run_cli, honest))
    manifest.write_bytes(original)

    checkpoint = honest.root / "manifests" / "manifest-1.checkpoint.json"
    stated = checkpoint.read_bytes()
    checkpoint.write_bytes(stated.replace(b'"captures":2', b'"captures":3'))
    assert failed(verify(run_cli, honest)) == {"checkpoint signature", "manifest checkpoint"}
    checkpoint.write_bytes(stated)

    signature = honest.root / "manifests" / "manifest-2.json.sig"
    good = signature.read_bytes()
    signature.write_bytes(bytes([good[0] ^ 1]) + good[1:])
    assert failed(verify(run_cli, honest)) == {"manifest signature"}
    signature.write_bytes(good)

    log = honest.root / "custody.jsonl"
    lines = log.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b'"operator":"tester@example"', b'"operator":"mallory@example"')
    log.write_bytes(b"\n".join(lines))
    report = verify(run_cli, honest)
    assert {"custody signature", "custody chain"} <= failed(report)
    assert any(f["where"] == "custody.jsonl line 3" and f["check"] == "custody signature" for f in report["failures"])


def test_a_manifest_resigned_with_another_key_fails(run_cli, honest, tmp_path):
    intruder = generate_key(tmp_path / "intruder.pem", None)
    manifest = honest.root / "manifests" / "manifest-2.json"
    (honest.root / "manifests" / "manifest-2.json.sig").write_bytes(intruder.sign(manifest.read_bytes()))
    assert "manifest signature" in failed(verify(run_cli, honest))
    # even with its public key slipped into keys/, the custody log never announced it
    (honest.root / "keys" / f"{intruder.fingerprint}.pub.pem").write_bytes(intruder.public.pem())
    report = verify(run_cli, honest)
    assert "manifest key" in failed(report) or "manifest in custody log" in failed(report)


def test_an_older_manifest_put_back_as_the_newest_fails(run_cli, honest):
    folder = honest.root / "manifests"
    shutil.copyfile(folder / "manifest-1.json", folder / "manifest.json.tmp")
    os.replace(folder / "manifest.json.tmp", folder / "manifest.json")
    assert failed(verify(run_cli, honest)) == {"manifest.json newest"}
    for suffix in ("", ".sig"):
        (folder / f"manifest-2.json{suffix}").unlink()
    report = verify(run_cli, honest)
    assert any(f["check"] == "manifest present" and "manifest-2.json" in f["where"] for f in report["failures"])


def test_a_key_revoked_before_it_signed_fails_what_it_signed(run_cli, honest):
    key = json.loads(run_cli("keys", "show", "-C", honest.root, "--json").stdout)["keys"][0]["fingerprint"]
    result = run_cli("keys", "revoke", key, "-C", honest.root, "--from", "2000-01-01T00:00:00Z", "--reason", "stolen")
    assert result.exit_code == 0, result.output
    report = verify(run_cli, honest)
    assert {"manifest key status", "attestation key status", "custody key status"} <= failed(report)
    assert any("was revoked from 2000-01-01" in f["detail"] for f in report["failures"])


def test_rotation_keeps_old_signatures_valid(run_cli, honest):
    assert run_cli("keys", "rotate", "-C", honest.root).exit_code == 0
    assert run_cli("manifest", "-C", honest.root).exit_code == 0
    report = verify(run_cli, honest)
    assert report["ok"], report["failures"]
    keys = json.loads(run_cli("keys", "show", "-C", honest.root, "--json").stdout)["keys"]
    assert sorted(k["status"] for k in keys) == ["active", "rotated out"]


def test_an_encrypted_key_with_a_wrong_passphrase_is_one_line(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHIVER_PASSPHRASE", "correct horse")
    assert run_cli("init", tmp_path / "c").exit_code == 0
    monkeypatch.setenv("ARCHIVER_PASSPHRASE", "wrong horse")
    result = run_cli("manifest", "-C", tmp_path / "c")
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"error: wrong passphrase for the signing key {result.stderr.split('signing key ')[1].split(';')[0]}"
                                     "; check ARCHIVER_PASSPHRASE")
    monkeypatch.delenv("ARCHIVER_PASSPHRASE")
    result = run_cli("manifest", "-C", tmp_path / "c")
    assert result.exit_code == 2 and "is encrypted" in result.stderr
    monkeypatch.setenv("ARCHIVER_PASSPHRASE", "correct horse")
    assert run_cli("manifest", "-C", tmp_path / "c").exit_code == 0
    monkeypatch.setenv("ARCHIVER_KEY", str(tmp_path / "nowhere.pem"))
    result = run_cli("manifest", "-C", tmp_path / "c")
    assert result.exit_code == 2 and "signing key is not on this machine" in result.stderr


def test_two_processes_capturing_at_once_keep_one_chain(run_cli, raw_server, collection):
    server = raw_server({f"/{i}": send_bytes(http_response(f"page {i}".encode())) for i in range(20)})
    command = [sys.executable, "-m", "archiver", "capture", "-C", str(collection.root), "--json"]
    processes = [subprocess.Popen(command + [server.url(f"/{i}") for i in range(start, 20, 2)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for start in (0, 1)]
    outputs = [p.communicate(timeout=60) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    captured = [c["url"] for out, _ in outputs for c in json.loads(out)["captures"]]
    assert sorted(captured) == sorted(server.url(f"/{i}") for i in range(20))
    report = verify(run_cli, collection)
    assert report["ok"], report["failures"]
    assert report["passed"]["capture in custody log"] == 20


ARTICLE = " ".join(f"word{i}" for i in range(400))


def test_live_drift_tells_rotating_ads_from_a_rewrite(run_cli, raw_server, collection):
    pages = {"/same": b"<html><p>stable page</p></html>",
             "/ads": f"<html><p>{ARTICLE}</p><div>ad: shoes</div></html>".encode(),
             "/rewritten": f"<html><p>{ARTICLE}</p></html>".encode(),
             "/gone": b"<p>here today</p>"}
    server = raw_server({path: (lambda path: lambda conn, request: conn.sendall(
        http_response(pages[path]) if pages[path] else http_response(b"gone", "410 Gone")))(path) for path in pages})
    assert run_cli("capture", "-C", collection.root, *(server.url(p) for p in pages)).exit_code == 0
    pages["/ads"] = f"<html><p>{ARTICLE}</p><div>ad: holidays in the sun</div></html>".encode()
    pages["/rewritten"] = b"<html><p>" + " ".join(f"other{i}" for i in range(380)).encode() + b" word1 word2</p></html>"
    pages["/gone"] = b""
    result = run_cli("verify", "-C", collection.root, "--live", "--json")
    assert result.exit_code == 0, result.output  # drift is reported, not a failure of the evidence
    live = {d["url"]: d for d in json.loads(result.stdout)["live"]}
    assert live[server.url("/same")]["state"] == "unchanged"
    assert live[server.url("/ads")]["state"] == "changed" and live[server.url("/ads")]["similarity"] > 0.95
    assert live[server.url("/rewritten")]["state"] == "changed" and live[server.url("/rewritten")]["similarity"] < 0.1
    assert live[server.url("/gone")]["state"] == "gone" and "HTTP 410" in live[server.url("/gone")]["detail"]

    result = run_cli("verify", "-C", collection.root, "--live", "--recapture", "--json")
    recaptured = {r["url"] for r in json.loads(result.stdout)["recaptured"]}
    # The pages that changed, and the one that went: that it went is history to keep.
    assert recaptured == {server.url("/ads"), server.url("/rewritten"), server.url("/gone")}
    history = json.loads(run_cli("history", "-C", collection.root, server.url("/rewritten"), "--json").stdout)
    assert len(history) == 2 and history[-1]["change"].startswith("changed")
    went = json.loads(run_cli("history", "-C", collection.root, server.url("/gone"), "--json").stdout)
    assert went[-1]["change"] == "status 200 → 410, content → http-error", went
    assert run_cli("verify", "-C", collection.root, "--recapture").exit_code == 2


def test_a_recapture_stored_whole_is_said_complete_not_ok(run_cli, raw_server, collection):
    """Beside a page now gone (410), "ok" would read as a page that is fine: the recapture's line
    says it was stored whole, as the listings do."""
    sent = {"/gone": http_response(b"<p>here today</p>")}
    server = raw_server({"/gone": lambda conn, request: conn.sendall(sent["/gone"])})
    assert run_cli("capture", "-C", collection.root, server.url("/gone")).exit_code == 0
    sent["/gone"] = http_response(b"gone", "410 Gone")
    result = run_cli("verify", "-C", collection.root, "--live", "--recapture")
    said = [line for line in result.stdout.splitlines() if line.startswith("Recaptured")]
    assert len(said) == 1 and said[0].startswith(f"Recaptured {server.url('/gone')} as ") \
        and said[0].endswith(" (complete)"), result.output


def test_live_drift_never_calls_a_changed_figure_100_percent_similar(run_cli, raw_server, collection):
    """A casualty figure changed in a long article is no rounding error: the similarity is floored
    and the change shown; a page whose visible words are the same (a new nonce, gzip now) says so."""
    def article(figure: str) -> bytes:
        return f"<html><p>{ARTICLE} {figure} people were killed.</p></html>".encode()

    def form(nonce: str) -> bytes:
        return f'<html><form><input type=hidden name=csrf value="{nonce}"></form><p>{ARTICLE}</p></html>'.encode()

    sent = {"/number": http_response(article("12")), "/nonce": http_response(form("a1b2")),
            "/gz": http_response(gzip.compress(article("12"), mtime=0), headers=[("Content-Type", "text/html"),
                                                                                ("Content-Encoding", "gzip")])}
    server = raw_server({path: (lambda path: lambda conn, request: conn.sendall(sent[path]))(path) for path in sent})
    assert run_cli("capture", "-C", collection.root, *(server.url(p) for p in sent)).exit_code == 0
    sent.update({"/number": http_response(article("21")), "/nonce": http_response(form("c3d4")),
                 "/gz": http_response(article("12"))})
    result = run_cli("verify", "-C", collection.root, "--live", "--json")
    assert result.exit_code == 0, result.output
    live = {d["url"]: d for d in json.loads(result.stdout)["live"]}
    number = live[server.url("/number")]
    assert number["state"] == "changed" and number["similarity"] < 1, number
    assert "100%" not in number["detail"] and \
        number["detail"] == 'text 99% similar to the capture; 1 word(s) differ, first: "12" → "21"', number
    for same_words in ("/nonce", "/gz"):
        drift = live[server.url(same_words)]
        assert drift["state"] == "changed" and drift["similarity"] == 1.0, drift
        assert drift["detail"] == "visible text identical (markup or encoding differs)", drift
    text = run_cli("verify", "-C", collection.root, "--live").stdout
    assert "100%" not in text and '"12" → "21"' in text, text


def test_live_drift_checks_a_page_cut_at_the_size_limit_and_a_failed_recapture_says_why(run_cli, raw_server, collection,
                                                                                         closed_port):
    """A capture cut at max_size is checked like any other (it was left out of the live check), a
    page cut at the same bytes again is unchanged, and a recapture that fails is named as failed,
    with its reason, and exits 1 (a URL that could not be captured)."""
    config = collection.root / "archiver.toml"
    config.write_text(config.read_text().replace('max_size = "200MB"', 'max_size = "10KB"', 1))
    big = b"<html><p>" + b"word " * 4000 + b"</p></html>"
    pages = {"/big": big, "/moving": b"<html><p>first</p></html>"}
    server = raw_server({path: (lambda path: lambda conn, request: conn.sendall(
        http_response(pages[path]) if pages[path] else
        http_response(b"moved", "302 Found", [("Location", f"http://127.0.0.1:{closed_port}/")])))(path) for path in pages})
    assert run_cli("capture", "-C", collection.root, server.url("/big"), server.url("/moving")).exit_code == 0
    live = {d["url"]: d for d in json.loads(run_cli("verify", "-C", collection.root, "--live", "--json").stdout)["live"]}
    assert live[server.url("/big")]["state"] == "unchanged", live
    pages["/moving"] = b"<html><p>second, then gone</p></html>"
    served = iter([pages["/moving"], b""])  # changed when looked at; refused when captured again

    def moving(conn, request):
        body = next(served, b"")
        conn.sendall(http_response(body) if body else
                     http_response(b"moved", "302 Found", [("Location", f"http://127.0.0.1:{closed_port}/")]))

    server.routes["/moving"] = moving
    result = run_cli("verify", "-C", collection.root, "--live", "--recapture")
    assert result.exit_code == 1, result.output
    assert f"Recapture of {server.url('/moving')} failed (" in result.stdout, result.stdout


def test_live_drift_of_a_page_cut_at_the_size_limit_says_what_was_compared(run_cli, raw_server, collection):
    """Only the bytes kept were compared: a page cut at max_size and unchanged in them says the rest
    was not, and one whose announced length changed (it grew past the cut) is changed."""
    config = collection.root / "archiver.toml"
    config.write_text(config.read_text().replace('max_size = "200MB"', 'max_size = "10KB"', 1))
    page = {"body": b"<html><p>" + b"word " * 4000 + b"</p></html>"}
    server = raw_server({"/big": lambda conn, request: conn.sendall(http_response(page["body"]))})
    assert run_cli("capture", "-C", collection.root, server.url("/big")).exit_code == 0
    [same] = json.loads(run_cli("verify", "-C", collection.root, "--live", "--json").stdout)["live"]
    assert same["state"] == "unchanged" and same["detail"].endswith("the rest not compared"), same
    assert "same payload" not in same["detail"], same

    page["body"] = page["body"].replace(b"</p>", b" 21 people were killed</p>")  # past the cut
    [grown] = json.loads(run_cli("verify", "-C", collection.root, "--live", "--json").stdout)["live"]
    length = len(page["body"])
    assert grown["state"] == "changed", grown
    assert grown["detail"].startswith(f"announced length now {length:,} bytes (was {length - 22:,})"), grown


def test_live_drift_and_history_say_where_a_page_now_ends(run_cli, raw_server, collection):
    """A page now redirected elsewhere serving the same bytes is not just "unchanged": it says where it ends."""
    page = b"<html><p>the statement</p></html>"
    server = raw_server({"/statement": send_bytes(http_response(page)), "/moved": send_bytes(http_response(page))})
    assert run_cli("capture", "-C", collection.root, server.url("/statement")).exit_code == 0
    server.routes["/statement"] = redirect(server.url("/moved"), "301 Moved Permanently")
    result = run_cli("verify", "-C", collection.root, "--live", "--recapture", "--json")
    [drift] = json.loads(result.stdout)["live"]
    assert drift["state"] == "unchanged" and drift["detail"].endswith(f"now ends at {server.url('/moved')}"), drift
    assert run_cli("capture", "-C", collection.root, server.url("/statement")).exit_code == 0
    history = json.loads(run_cli("history", "-C", collection.root, server.url("/statement"), "--json").stdout)
    assert history[-1]["change"].endswith(f"now ends at {server.url('/moved')}"), history


def test_live_drift_of_a_private_address_is_refused_unless_allowed_as_its_message_says(run_cli, raw_server, collection):
    server = raw_server({"/": send_bytes(http_response(b"<p>intranet page</p>"))})
    assert run_cli("capture", "-C", collection.root, server.url("/")).exit_code == 0
    config = collection.root / "archiver.toml"
    config.write_text(config.read_text().replace('allow_networks = ["127.0.0.1/32"]', "allow_networks = []"))
    [refused] = json.loads(run_cli("verify", "-C", collection.root, "--live", "--json").stdout)["live"]
    assert refused["state"] == "unreachable" and "or --allow-private" in refused["detail"]
    result = run_cli("verify", "-C", collection.root, "--live", "--allow-private", "--json")
    assert result.exit_code == 0, result.output
    assert [d["state"] for d in json.loads(result.stdout)["live"]] == ["unchanged"]
    assert run_cli("verify", "-C", collection.root, "--allow-private").exit_code == 2


def test_timestamped_manifests_verify_and_a_damaged_token_is_named(run_cli, raw_server, collection, local_tsa):
    use_tsa(collection.root, local_tsa)
    server = raw_server({"/": send_bytes(http_response(b"stamped"))})
    run_cli("capture", "-C", collection.root, server.url("/"))
    result = run_cli("manifest", "-C", collection.root, "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["tsa"] == local_tsa.url
    token = collection.root / "manifests" / "manifest-1.json.tsr"
    check = subprocess.run(["openssl", "ts", "-verify", "-data", str(collection.root / "manifests" / "manifest-1.json"),
                            "-in", str(token), "-CAfile", str(local_tsa.ca_pem_path),
                            "-untrusted", str(local_tsa.tsa_cert_path)], capture_output=True, text=True)
    assert "Verification: OK" in check.stdout, check.stdout + check.stderr
    report = verify(run_cli, collection)
    assert report["ok"] and report["passed"]["manifest timestamp"] == 2  # the manifest's token and its checkpoint's

    data = token.read_bytes()
    token.write_bytes(data[:-40] + bytes([data[-40] ^ 0xFF]) + data[-39:])
    failures = verify(run_cli, collection)["failures"]
    assert {(f["check"], f["where"]) for f in failures} == {  # its signature breaks, and it is not the token logged
        ("manifest timestamp", "manifests/manifest-1.json.tsr"),
        ("timestamp token unchanged", "manifests/manifest-1.json.tsr")}
    token.unlink()
    [failure] = verify(run_cli, collection)["failures"]
    assert "the custody log records a timestamp, but the token is missing" in failure["detail"]


def test_no_reachable_timestamp_authority_still_signs_and_says_so(run_cli, raw_server, collection, local_tsa):
    use_tsa(collection.root, local_tsa, trust=False)
    local_tsa.mode = "down"
    server = raw_server({"/": send_bytes(http_response(b"unstamped"))})
    run_cli("capture", "-C", collection.root, server.url("/"))
    result = run_cli("manifest", "-C", collection.root)
    assert result.exit_code == 1
    assert "Signed:" in result.stdout and "Timestamp failed:" in result.stderr and local_tsa.url in result.stderr
    assert (collection.root / "manifests" / "manifest-1.json.sig").exists()
    assert not (collection.root / "manifests" / "manifest-1.json.tsr").exists()
    missing = json.loads(run_cli("log", "-C", collection.root, "--json", "--event", "timestamp missing").stdout)
    assert missing and local_tsa.url in missing[0]["subject"]["failures"][0]
    local_tsa.mode = "ok"
    assert run_cli("manifest", "-C", collection.root).exit_code == 0  # the next export tries again
    assert (collection.root / "manifests" / "manifest-1.json.tsr").exists()



def test_a_bundle_its_timestamp_authority_did_not_answer_in_time_says_so_and_exits_1(
        run_cli, raw_server, collection, local_tsa, tmp_path):
    """A TSA slower than [timestamps] timeout (as the local one can be on a loaded machine): the
    bundle is written without the checkpoint's timestamp and says so, exiting 1 as `manifest`
    does, instead of exiting 0 as though it were timestamped; the next bundle tries again."""
    use_tsa(collection.root, local_tsa, timeout=0.5)
    local_tsa.mode = "slow"  # each reply 3 s late
    server = raw_server({"/": send_bytes(http_response(b"<p>page</p>"))})
    assert run_cli("capture", "-C", collection.root, server.url("/")).exit_code == 0
    late = tmp_path / "late.wacz"
    result = run_cli("bundle", "-C", collection.root, "-o", late, "--all")
    assert result.exit_code == 1, result.output
    assert f"Timestamp failed: timestamp authority {local_tsa.url}: no answer within 0.5s" in result.stderr
    assert "evidence/checkpoint.json.tsr" not in zipfile.ZipFile(late).namelist()
    local_tsa.mode = "ok"
    stamped = tmp_path / "stamped.wacz"
    result = run_cli("bundle", "-C", collection.root, "-o", stamped, "--all")
    assert result.exit_code == 0 and result.stderr == "", result.output
    assert "evidence/checkpoint.json.tsr" in zipfile.ZipFile(stamped).namelist()


def test_a_bundle_of_a_manifest_whose_checkpoint_got_no_timestamp_says_so_and_exits_1(
        run_cli, raw_server, collection, local_tsa, tmp_path, monkeypatch):
    """The manifest got its token, the checkpoint (asked next) none: the bundle, which carries the
    checkpoint, says it is not timestamped, though sealing asked the TSA nothing this time."""
    use_tsa(collection.root, local_tsa, timeout=0.5)
    answer = local_tsa._answer

    def first_then_slow(query: bytes) -> tuple[int, bytes]:
        answered = answer(query)
        local_tsa.mode = "slow"  # the checkpoint's query, next, waits past the timeout
        return answered

    monkeypatch.setattr(local_tsa, "_answer", first_then_slow)
    server = raw_server({"/": send_bytes(http_response(b"<p>page</p>"))})
    assert run_cli("capture", "-C", collection.root, server.url("/")).exit_code == 0
    sealed = run_cli("manifest", "-C", collection.root)
    assert sealed.exit_code == 1 and "Timestamp failed:" in sealed.stderr, sealed.output
    assert (collection.root / "manifests" / "manifest-1.json.tsr").exists()
    # Sealing asks again for the checkpoint's token, the manifest's being there: still too slow.
    bundle = tmp_path / "bundle.wacz"
    result = run_cli("bundle", "-C", collection.root, "-o", bundle, "--all")
    assert result.exit_code == 1, result.output
    assert result.stderr == f"Timestamp failed: timestamp authority {local_tsa.url}: no answer within 0.5s\n"
    assert "evidence/checkpoint.json.tsr" not in zipfile.ZipFile(bundle).namelist()
    # The TSA answers again: the unchanged manifest's checkpoint gets its token, logged.
    local_tsa.mode = "ok"
    sealed = run_cli("manifest", "-C", collection.root, "--json")
    assert sealed.exit_code == 0, sealed.output
    assert json.loads(sealed.stdout)["checkpoint_timestamp"].endswith("manifest-1.checkpoint.json.tsr")
    bundle = tmp_path / "stamped.wacz"
    assert run_cli("bundle", "-C", collection.root, "-o", bundle, "--all").exit_code == 0
    assert "evidence/checkpoint.json.tsr" in zipfile.ZipFile(bundle).namelist()
    verified = run_cli("verify", "-C", collection.root, "--json")
    assert verified.exit_code == 0 and json.loads(verified.stdout)["passed"]["timestamp token unchanged"] == 2, verified.output

def test_verify_while_a_capture_writes_says_so_and_never_calls_its_open_file_interrupted(run_cli, raw_server, collection):
    """A capture running in the collection holds its WARC file open: verify meanwhile must not
    tell the user it was left by an interrupted run (nor send them to `doctor --fix`, which
    would refuse), and must say that another process is working on the collection."""
    server = raw_server({"/a": send_bytes(http_response(b"<p>page a</p>"))})
    with CaptureRun(collection, collection.config.capture, open_signing_key(collection, None, None)) as run:
        run.capture([server.url("/a")])
        assert list(collection.storage.folder.glob("*.open"))
        during = run_cli("verify", "-C", collection.root, "--json", "--workers", "1")
    report = json.loads(during.stdout)
    [unfinished] = [f for f in report["failures"] if f["check"] == "WARC file closed"]
    assert "being written by an archiver process working on this collection now" in unfinished["detail"]
    assert "interrupted" not in unfinished["detail"] and "doctor" not in unfinished["detail"]
    assert report["another_process_working"] is True
    assert "another archiver process is working on this collection now" in during.stderr
    after = run_cli("verify", "-C", collection.root, "--json", "--workers", "1")
    assert json.loads(after.stdout)["ok"] and json.loads(after.stdout)["another_process_working"] is False


def test_a_capture_made_while_verify_reads_is_said(run_cli, raw_server, tmp_path):
    """Verify reads the catalog and the log over time: a capture stored meanwhile may show as
    failures, and verify says another process changed the collection while it ran (it used to
    say nothing, as if the collection had been tampered with)."""
    collection = make_collection(tmp_path / "busy")
    server = raw_server({path: send_bytes(http_response(f"<title>{path}</title>".encode())) for path in ("/a", "/b")})
    assert run_cli("capture", "-C", collection.root, server.url("/a")).exit_code == 0
    with paused_at(MID_VERIFY, ["verify", "-C", str(collection.root), "--json"], "checked the custody log") as verifying:
        assert run_cli("capture", "-C", collection.root, server.url("/b")).exit_code == 0
    out, err = verifying.communicate(timeout=120)
    assert json.loads(out)["another_process_working"] is True, out
    assert "another archiver process changed this collection while verify ran" in err.decode()
    again = run_cli("verify", "-C", collection.root, "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["another_process_working"] is False


@pytest.mark.parametrize("change", ["spacing and key order", "carriage return", "trailing spaces"])
def test_a_custody_line_not_as_archiver_writes_it_fails_the_last_one_too(run_cli, honest, change):
    """The last custody line has no entry after it to chain to its bytes: written otherwise with
    the same JSON (and signature), its SHA-256, which verify names to be kept outside the
    collection, changes. It fails as a middle line does, and only it."""
    log = honest.root / "custody.jsonl"
    lines = log.read_bytes().split(b"\n")[:-1]
    entry = json.loads(lines[-1])
    last = {"spacing and key order": json.dumps(dict(reversed(list(entry.items()))), ensure_ascii=False).encode("utf-8"),
            "carriage return": lines[-1] + b"\r", "trailing spaces": lines[-1] + b"  \t"}[change]
    log.write_bytes(b"".join(line + b"\n" for line in [*lines[:-1], last]))
    report = verify(run_cli, honest)
    assert [(f["check"], f["where"]) for f in report["failures"]] == \
        [("custody entry canonical", f"custody.jsonl line {len(lines)}")], report["failures"]
    assert report["passed"]["custody entry canonical"] == len(lines) - 1
