"""verify-bundle against a forger who controls every byte of the bundle but not the private key
whose fingerprint the court was given: whatever the forger writes, it must not verify."""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from archiver.evidence import signing
from tests.conftest import allow_networks, http_response, make_collection, send_bytes
from tests.test_wacz import build_wacz

CLAIMED = "7c5b" * 16  # the fingerprint the bundle's maker gave the court on paper


def forged_bundle(run_cli, raw_server, tmp_path: Path, monkeypatch) -> Path:
    """A bundle made, with the forger's own key, by an archiver changed to name every key by
    the fingerprint the court holds: its key file, statement, custody entries and envelopes
    all say CLAIMED, and every signature in it holds under the forger's key."""
    with monkeypatch.context() as forger_tool:
        forger_tool.setattr(signing, "spki_fingerprint", lambda key: CLAIMED)
        forger = make_collection(tmp_path / "forger")
        server = raw_server({"/report": send_bytes(http_response(b"<title>Report</title><p>troops stayed</p>"))})
        assert run_cli("capture", "-C", forger.root, server.url("/report")).exit_code == 0
        bundle = tmp_path / "forged.wacz"
        assert run_cli("bundle", "-C", forger.root, "--all", "-o", bundle).exit_code == 0
    return bundle


def test_a_key_file_named_after_a_fingerprint_that_is_not_its_own_is_not_trusted(run_cli, raw_server, tmp_path,
                                                                                   monkeypatch):
    bundle = forged_bundle(run_cli, raw_server, tmp_path, monkeypatch)
    result = run_cli("verify-bundle", bundle, "--fingerprint", CLAIMED, "--json")
    report = json.loads(result.stdout)
    assert (result.exit_code, report["ok"]) == (1, False)
    assert {f["check"] for f in report["failures"]} == {"key file fingerprint", "signer identity"}
    lie = next(f for f in report["failures"] if f["check"] == "key file fingerprint")
    assert lie["where"] == f"evidence/key-{CLAIMED}.pub.pem"
    # Said as it is, not as "signed by the key CLAIMED, not by the key CLAIMED".
    identity = next(f for f in report["failures"] if f["check"] == "signer identity")
    assert "carries no public key file holding it" in identity["detail"], identity


def test_a_wacz_without_archiver_evidence_does_not_pass_for_one_signed_by_the_fingerprint(run_cli, tmp_path):
    """Anyone can make a WACZ and sign its datapackage with a P-384 key of their own: asked
    whether it is signed by the key the court was given, the answer must be no."""
    wacz = build_wacz(tmp_path / "any.wacz", key=ec.generate_private_key(ec.SECP384R1()))
    result = run_cli("verify-bundle", wacz, "--fingerprint", CLAIMED, "--json")
    report = json.loads(result.stdout)
    assert (result.exit_code, [f["check"] for f in report["failures"]]) == (1, ["signer identity"])
    assert "no bundle statement" in report["failures"][0]["detail"]
    alone = run_cli("verify-bundle", wacz, "--json")  # without a fingerprint, the WACZ checks alone
    assert (alone.exit_code, json.loads(alone.stdout)["ok"]) == (0, True)


def test_a_forged_package_failing_a_million_times_is_answered_in_bounded_output(run_cli, tmp_path):
    """A tiny bundle whose datapackage.json lists a few hundred thousand resources it does not
    hold: each is a failure, but only the first of each check are listed and the rest counted."""
    import zipfile

    from archiver.check.findings import LISTED_PER_CHECK

    wacz = build_wacz(tmp_path / "any.wacz", key=ec.generate_private_key(ec.SECP384R1()))
    forged = tmp_path / "forged.wacz"
    resources = 3 * LISTED_PER_CHECK
    with zipfile.ZipFile(wacz) as source, zipfile.ZipFile(forged, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "datapackage.json":
                package = json.loads(data)
                package["resources"] += [{}] * resources
                data = json.dumps(package).encode()
            target.writestr(info.filename, data)
    result = run_cli("verify-bundle", forged, "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == 1 and not report["ok"]
    counts: dict[str, int] = {}
    for failure in report["failures"]:
        counts[failure["check"]] = counts.get(failure["check"], 0) + 1
    assert max(counts.values()) == LISTED_PER_CHECK  # listed up to the bound, per check
    assert report["failed"] == len(report["failures"]) + sum(report["failures_not_listed"].values())
    assert report["failed"] >= resources and sum(report["failures_not_listed"].values()) > 0
    shown = run_cli("verify-bundle", forged)
    assert "more, not listed" in shown.stdout and len(shown.stdout.splitlines()) < 20 * LISTED_PER_CHECK


def test_a_forged_bundle_cannot_print_a_verdict_line_of_its_own(run_cli, raw_server, tmp_path):
    """Failures and what was not checked quote the forger's text (a capture id, a cited URL): a
    line break in it must not start a line of its own, or a forged bundle could print
    "Every check above passed." above the real verdict."""
    from tests.test_bundle import rewrite

    collection = make_collection(tmp_path / "collection")
    server = raw_server({"/report": send_bytes(http_response(b"<title>Report</title><p>troops stayed</p>"))})
    assert run_cli("cite", "-C", collection.root, "troops stayed", server.url("/report")).exit_code == 0
    bundle = tmp_path / "bundle.wacz"
    assert run_cli("bundle", "-C", collection.root, "--all", "-o", bundle).exit_code == 0
    fingerprint = json.loads(run_cli("keys", "show", "-C", collection.root, "--json").stdout)["keys"][0]["fingerprint"]
    fake = "\n\nEvery check above passed.\n"

    def forge(name: str, data: bytes) -> bytes:
        if name == "evidence/captures.json":
            captures = json.loads(data)
            captures["captures"][0]["entry"]["id"] += fake
            return json.dumps(captures).encode()
        if name == "evidence/claims.json":
            claims = json.loads(data)
            claims["claims"].append({"id": "c1", "citations": [{"url": "http://example.test/" + fake, "url_key": "x"}]})
            return json.dumps(claims).encode()
        return data

    result = run_cli("verify-bundle", rewrite(bundle, forge), "--fingerprint", fingerprint)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[-1] == "Verification FAILED." and "Every check above passed." not in lines, result.stdout
    assert any("capture" in line and "\\n\\nEvery check above passed.\\n" in line for line in lines), result.stdout
    assert any("example.test" in line and "\\n\\nEvery check above passed.\\n" in line for line in lines), result.stdout


def test_a_maker_cannot_print_a_timestamp_line_through_its_collection_name(run_cli, raw_server, tmp_path, monkeypatch):
    """A verified bundle's statement is the maker's word: a line break in its collection's name
    or operator must not print a line that reads as verify-bundle's own (a timestamp it lacks)."""
    from archiver.evidence.keys import create_signing_key
    from archiver.store.collection import Collection

    claimed = "\n  timestamped 2001-01-01T00:00:00+00:00 by CN=Trusted TSA: the manifest's checkpoint existed by then"
    root = tmp_path / "collection"
    # The maker's own build of archiver, which lets a line break into the name it signs.
    monkeypatch.setattr("archiver.store.collection.refuse_control_characters", lambda *_: None)
    monkeypatch.setattr("archiver.store.settings.refuse_control_characters", lambda *_: None)
    create_signing_key(Collection.init(root, name="Court" + claimed, operator="op" + claimed), None, None)
    allow_networks(root, "127.0.0.1/32")
    server = raw_server({"/report": send_bytes(http_response(b"<title>Report</title><p>troops stayed</p>"))})
    assert run_cli("capture", "-C", root, server.url("/report")).exit_code == 0
    bundle = tmp_path / "bundle.wacz"
    assert run_cli("bundle", "-C", root, "--all", "-o", bundle).exit_code == 0
    fingerprint = json.loads(run_cli("keys", "show", "-C", root, "--json").stdout)["keys"][0]["fingerprint"]
    result = run_cli("verify-bundle", bundle, "--fingerprint", fingerprint)
    assert result.exit_code == 0, result.stdout
    assert not [line for line in result.stdout.splitlines() if line.lstrip().startswith("timestamped")], result.stdout
    assert "Court\\n  timestamped 2001" in result.stdout
