"""A timestamp is kept only if it would pass `verify`: a TSA whose token fails verification,
or whose clock is wrong, is a TSA failing (reported, logged, exit 1, asked again next time),
for the manifest, its checkpoint and a bundle alike; and a token dated before the manifest's
signing fails `verify` and `verify-bundle`. Real TSAs (tests/tsa.py), real commands."""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from archiver.evidence.timestamps.verification import CHAIN_INVALID, EKU_MISSING
from tests.conftest import http_response, send_bytes, use_tsa
from tests.tsa import LocalTSA, local_tsa  # noqa: F401  (a fixture)

NO_EKU = "basicConstraints=critical,CA:false\nkeyUsage=critical,digitalSignature"


def captured(run_cli, raw_server, collection) -> None:
    server = raw_server({"/": send_bytes(http_response(b"<p>page</p>"))})
    assert run_cli("capture", "-C", collection.root, server.url("/")).exit_code == 0


def no_eku(tsa: LocalTSA) -> None:
    """From now on `tsa` signs with a certificate of its CA that lacks the timeStamping EKU."""
    tsa.resigner = tsa.issue_certificate("lax", "archiver lax TSA", NO_EKU)
    tsa.mode = "resign"


def foreign_roots(tsa: LocalTSA, root: Path) -> None:
    """The collection trusts another CA than the one `tsa` chains to."""
    stranger = LocalTSA(tsa.folder / "stranger")
    stranger.stop()
    shutil.copyfile(stranger.ca_pem_path, root / "tsa-roots.pem")


@pytest.mark.parametrize("fault, trust, said", [
    ("no-eku", True, f"its token fails verification ({EKU_MISSING})"),
    ("no-eku", False, f"its token fails verification ({EKU_MISSING})"),
    ("foreign-ca", True, f"its token fails verification ({CHAIN_INVALID})"),
], ids=["no-eku", "no-eku-without-roots", "foreign-ca"])
def test_a_token_that_fails_verification_is_no_timestamp_and_the_next_manifest_asks_again(
        run_cli, raw_server, collection, local_tsa, fault, trust, said):
    use_tsa(collection.root, local_tsa, trust=trust)
    if fault == "foreign-ca":
        foreign_roots(local_tsa, collection.root)
    else:
        no_eku(local_tsa)
    captured(run_cli, raw_server, collection)
    result = run_cli("manifest", "-C", collection.root)
    assert result.exit_code == 1, result.output
    assert "Timestamped:" not in result.stdout
    assert f"Timestamp failed: timestamp authority {local_tsa.url}: {said}" in result.stderr
    manifests = collection.root / "manifests"
    assert not (manifests / "manifest-1.json.tsr").exists() and not (manifests / "manifest-1.checkpoint.json.tsr").exists()
    [missing] = json.loads(run_cli("log", "-C", collection.root, "--json", "--event", "timestamp missing").stdout)
    assert said in missing["subject"]["failures"][0]
    # The authority mended (and trusted): the same manifest is timestamped by the next export.
    local_tsa.mode = "ok"
    if trust:
        shutil.copyfile(local_tsa.ca_pem_path, collection.root / "tsa-roots.pem")
    result = run_cli("manifest", "-C", collection.root, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["sequence"] == 1 and (manifests / "manifest-1.checkpoint.json.tsr").exists()
    if trust:
        assert run_cli("verify", "-C", collection.root).exit_code == 0


def test_a_checkpoint_token_that_fails_verification_is_not_kept(run_cli, raw_server, collection, local_tsa,
                                                                 monkeypatch):
    """The manifest's token is good, the checkpoint's (asked next) fails: only the first is kept,
    and the checkpoint alone is asked for again."""
    use_tsa(collection.root, local_tsa)
    answer = local_tsa._answer

    def first_then_lax(query: bytes) -> tuple[int, bytes]:
        answered = answer(query)
        if local_tsa.mode == "ok":
            no_eku(local_tsa)
        return answered

    monkeypatch.setattr(local_tsa, "_answer", first_then_lax)
    captured(run_cli, raw_server, collection)
    result = run_cli("manifest", "-C", collection.root)
    assert result.exit_code == 1, result.output
    assert f"timestamp authority {local_tsa.url}: its token fails verification ({EKU_MISSING})" in result.stderr
    manifests = collection.root / "manifests"
    assert (manifests / "manifest-1.json.tsr").exists() and not (manifests / "manifest-1.checkpoint.json.tsr").exists()
    result = run_cli("manifest", "-C", collection.root)  # asked again, the checkpoint's still fails
    assert result.exit_code == 1 and EKU_MISSING in result.stderr, result.output
    assert not (manifests / "manifest-1.checkpoint.json.tsr").exists()
    local_tsa.mode = "ok"
    assert run_cli("manifest", "-C", collection.root).exit_code == 0
    assert run_cli("verify", "-C", collection.root).exit_code == 0


def test_a_bundle_does_not_carry_a_token_that_fails_verification(run_cli, raw_server, collection, local_tsa, tmp_path):
    use_tsa(collection.root, local_tsa)
    no_eku(local_tsa)
    captured(run_cli, raw_server, collection)
    bundle = tmp_path / "bundle.wacz"
    result = run_cli("bundle", "-C", collection.root, "-o", bundle, "--all")
    assert result.exit_code == 1, result.output
    assert f"Timestamp failed: timestamp authority {local_tsa.url}: its token fails verification" in result.stderr
    assert "evidence/checkpoint.json.tsr" not in zipfile.ZipFile(bundle).namelist()


def test_a_tsa_whose_clock_is_behind_gives_no_timestamp(run_cli, raw_server, collection, tmp_path):
    late = LocalTSA(tmp_path / "late", clock="-1h")
    try:
        use_tsa(collection.root, late)
        captured(run_cli, raw_server, collection)
        result = run_cli("manifest", "-C", collection.root)
    finally:
        late.stop()
    assert result.exit_code == 1, result.output
    assert f"Timestamp failed: timestamp authority {late.url}: its clock and this machine's disagree (genTime " \
        in result.stderr
    assert not (collection.root / "manifests" / "manifest-1.json.tsr").exists()


def test_a_token_dated_before_the_manifest_was_signed_is_named_and_its_captures_fail(
        run_cli, raw_server, collection, tmp_path):
    """Tokens put in by hand (the collection has no authority, so none was checked on arrival)
    from a TSA whose clock is an hour behind: sound but for their genTime. Either clock may have
    been off, which the evidence cannot tell, so the gap to the manifest's signing is named, not
    failed (a token made by an earlier release on a machine whose clock ran ahead is as genuine).
    But the capture it lists is then dated after the token over it: that capture's stated time
    is not to be relied on, and verify and verify-bundle fail it (tests/test_capture_clock.py)."""
    captured(run_cli, raw_server, collection)
    assert run_cli("manifest", "-C", collection.root).exit_code == 0
    late = LocalTSA(tmp_path / "late", clock="-1h")
    manifests = collection.root / "manifests"
    try:
        for stamped in ("manifest-1.json", "manifest-1.checkpoint.json"):
            subprocess.run(["openssl", "ts", "-query", "-data", manifests / stamped, "-sha256", "-cert",
                            "-out", tmp_path / "query.tsq"], check=True, capture_output=True)
            (manifests / f"{stamped}.tsr").write_bytes(late.reply((tmp_path / "query.tsq").read_bytes()))
    finally:
        late.stop()
    shutil.copyfile(late.ca_pem_path, collection.root / "tsa-roots.pem")
    config = collection.root / "archiver.toml"
    config.write_text(config.read_text().replace('trusted_roots = ""', 'trusted_roots = "tsa-roots.pem"'))

    result = run_cli("verify", "-C", collection.root, "--json")
    report = json.loads(result.stdout)
    assert report["passed"]["manifest timestamp"] == 2, report["failures"]
    assert result.exit_code == 1 and {f["check"] for f in report["failures"]} == {"capture time before timestamp"}
    named = [note for note in report["not_checked"] if "is before the signing the custody log records" in note]
    assert [note.split(":")[0] for note in named] == ["manifests/manifest-1.json.tsr",
                                                       "manifests/manifest-1.checkpoint.json.tsr"], named

    bundle = tmp_path / "bundle.wacz"
    assert run_cli("bundle", "-C", collection.root, "-o", bundle, "--all").exit_code == 0
    fingerprint = json.loads(run_cli("keys", "show", "-C", collection.root, "--json").stdout)["keys"][0]["fingerprint"]
    result = run_cli("verify-bundle", bundle, "--fingerprint", fingerprint, "--tsa-roots", late.ca_pem_path, "--json")
    verdict = json.loads(result.stdout)
    assert result.exit_code == 1 and {f["check"] for f in verdict["failures"]} == {"capture time before timestamp"}
    assert any(note.startswith("evidence/checkpoint.json.tsr: genTime ") for note in verdict["not_checked"])
