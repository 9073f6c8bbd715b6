"""A failed capture is evidence too (the URL was dead, refused or looping then): a bundle carries
it with its signed custody entry and its manifest entry's inclusion proof, its report lists it
with its error, verify-bundle checks it and says, after its verdict, what the captures show."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

from archiver.exchange import bundle as bundle_module
from tests.conftest import http_response, send_bytes
from tests.test_report_bundle import made_key, text_of
from tests.test_verify_attested_fields import edit_catalog


def refused_claim(run_cli, collection, closed_port, *more: str) -> tuple[str, list[dict]]:
    """A claim citing only a URL whose every capture was refused, and the claims of `more` rows."""
    refused = f"http://127.0.0.1:{closed_port}/statement"
    sheet = collection.root / "seeds" / "sheet.csv"
    sheet.write_text("claim,url\n" + f"The ministry said so,{refused}\n" + "".join(f"{row}\n" for row in more))
    assert run_cli("capture", "-C", collection.root, sheet).exit_code == 1  # the refused URL failed
    return refused, json.loads(run_cli("claims", "-C", collection.root, "--json").stdout)


def bundled(run_cli, collection, output: Path, *selection: str) -> tuple[dict, str, list[dict]]:
    """Bundle the selection: its captures.json, its report's text and its custody entries."""
    made = run_cli("bundle", "-C", collection.root, "-o", output, *selection)
    assert made.exit_code == 0, made.output
    with zipfile.ZipFile(output) as wacz:
        return (json.loads(wacz.read("evidence/captures.json")), text_of(wacz.read("evidence/report.html").decode()),
                [json.loads(line) for line in wacz.read("evidence/custody.jsonl").splitlines()])


def verified(run_cli, collection, bundle: Path, *more: str):
    return run_cli("verify-bundle", bundle, "--fingerprint", made_key(run_cli, collection), *more)


def test_a_claim_whose_only_capture_failed_is_bundled_with_its_signed_failure(run_cli, collection, closed_port,
                                                                            tmp_path):
    refused, [claim] = refused_claim(run_cli, collection, closed_port)
    [failure] = json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)
    bundle = tmp_path / "claim.wacz"
    captures, report, custody = bundled(run_cli, collection, bundle, "--claim", claim["id"])
    [carried] = captures["captures"]
    assert carried["entry"]["id"] == failure["id"] and carried["entry"]["outcome"] == "failed"
    assert carried["entry"]["records"] == [] and carried["proof"] is not None
    [logged] = [e for e in custody if e["event"] == "capture"]
    assert logged["subject"]["capture"] == failure["id"] and logged["subject"]["error"] == failure["error"]
    assert "1 capture of the pages they cite (0 complete, 0 truncated, 1 failed)" in report
    assert f"failed: {failure['error']}" in report
    assert f"no capture in this bundle: {refused}" not in report
    assert "its failure is signed by its custody entry" in report
    assert "Page verdict none: the capture failed, so no page was received to judge" in report
    # No WARC record at all, and still a valid WACZ.
    wacz = Path(sys.executable).with_name("wacz")
    validated = subprocess.run([wacz, "validate", "-f", str(bundle)], capture_output=True, text=True)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    checked = verified(run_cli, collection, bundle, "--json")
    report = json.loads(checked.stdout)
    assert checked.exit_code == 0 and report["ok"], report["failures"]
    assert report["passed"]["failed capture logged"] == 1 and report["passed"]["failed capture as logged"] == 1
    shows = report["established"]["shows"]
    assert shows["counts"] == {f"failed ({failure['error']})": 1}
    said = verified(run_cli, collection, bundle).output
    assert said.index("Every check above passed.") < said.index(f"What the captures show: 1 failed ({failure['error']})")


def test_all_carries_the_failed_captures_and_verify_bundle_says_what_each_capture_shows(run_cli, raw_server, collection,
                                                                                       closed_port, tmp_path):
    server = raw_server({"/page": send_bytes(http_response(b"<html><title>Statement</title><p>" + b"word " * 80 + b"</p>")),
                         # a "soft 404": status 200, a page saying it is not there
                         "/soft": send_bytes(http_response(b"<html><title>Page not found</title><p>Sorry.</p></html>")),
                         "/gone": send_bytes(http_response(b"<html><title>Not here</title></html>", "404 Not Found"))})
    refused_claim(run_cli, collection, closed_port, f"Shown,{server.url('/page')}", f"Moved,{server.url('/soft')}",
                  f"Gone,{server.url('/gone')}")
    bundle = tmp_path / "all.wacz"
    captures, report, _ = bundled(run_cli, collection, bundle, "--all")
    assert len(captures["captures"]) == 4
    assert "4 captures of the pages they cite (3 complete, 0 truncated, 1 failed)" in report
    report = json.loads(verified(run_cli, collection, bundle, "--json").stdout)
    assert report["ok"], report["failures"]
    [error] = {c["error"] for c in json.loads(run_cli("captures", "-C", collection.root, "--json").stdout) if c["error"]}
    assert report["established"]["shows"]["counts"] == {"content": 1, "http-error 404": 1, "not-found": 1,
                                                        f"failed ({error})": 1}
    said = verified(run_cli, collection, bundle).output
    assert f"What the captures show: 1 content, 1 http-error 404, 1 not-found, 1 failed ({error})" in said


def test_a_failed_capture_carried_without_its_signed_custody_entry_fails(run_cli, collection, closed_port, tmp_path,
                                                                        monkeypatch):
    """Its manifest entry alone says it failed, not the entry the capture logged when it failed."""
    _, [claim] = refused_claim(run_cli, collection, closed_port)
    kept = bundle_module._custody_entries
    monkeypatch.setattr(bundle_module, "_custody_entries", lambda logged, *rest: [
        line for line in kept(logged, *rest) if json.loads(line)["event"] != "capture"])
    bundle = tmp_path / "claim.wacz"
    bundled(run_cli, collection, bundle, "--claim", claim["id"])
    checked = verified(run_cli, collection, bundle, "--json")
    report = json.loads(checked.stdout)
    assert checked.exit_code == 1 and {f["check"] for f in report["failures"]} == {"failed capture logged"}
    assert "established" not in report


def test_a_failure_the_catalog_tells_otherwise_than_its_custody_entry_fails(run_cli, collection, closed_port, tmp_path):
    """The catalog edited after the capture logged its failure: the manifest sealed from it says another error."""
    _, [claim] = refused_claim(run_cli, collection, closed_port)
    edit_catalog(collection, "UPDATE captures SET error = 'the server asked not to be archived'")
    bundle = tmp_path / "claim.wacz"
    bundled(run_cli, collection, bundle, "--claim", claim["id"])
    report = json.loads(verified(run_cli, collection, bundle, "--json").stdout)
    assert [(f["check"], f["detail"]) for f in report["failures"]] == [
        ("failed capture as logged", "its manifest entry's error differs from the custody entry logging its failure")]


def test_a_failure_logged_by_a_key_revoked_before_it_is_left_out_with_its_custody_entry(run_cli, raw_server, collection,
                                                                                        closed_port, tmp_path):
    """Key A logged a failure (nothing received, so no attestation: its custody entry is its one
    signature); A is rotated out for B, which captures a page, then A is revoked from before the
    failure. The bundle leaves out A's entry, and so the failure with it, and verifies."""
    _, [claim] = refused_claim(run_cli, collection, closed_port)
    [failure] = json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)
    [old] = json.loads(run_cli("keys", "show", "-C", collection.root, "--json").stdout)["keys"]
    assert run_cli("keys", "rotate", "-C", collection.root).exit_code == 0
    server = raw_server({"/page": send_bytes(http_response(b"<html><title>Page</title><p>words</p></html>"))})
    assert run_cli("capture", "-C", collection.root, server.url("/page")).exit_code == 0
    assert run_cli("keys", "revoke", old["fingerprint"], "-C", collection.root, "--from", failure["started_at"],
                   "--reason", "laptop stolen").exit_code == 0
    bundle = tmp_path / "all.wacz"
    captures, _, custody = bundled(run_cli, collection, bundle, "--all")
    assert failure["id"] not in [carried["entry"]["id"] for carried in captures["captures"]]
    assert not [e for e in custody if e["event"] == "capture" and e["subject"]["capture"] == failure["id"]]
    checked = json.loads(verified(run_cli, collection, bundle, "--json").stdout)
    assert checked["ok"], checked["failures"]
    assert any(line.startswith(f"capture {failure['id']} ") and "signed only by a custody entry left out" in line
               for line in checked["not_checked"]), checked["not_checked"]
