"""The P-384 key that signs a bundle's datapackage (what ReplayWeb.page checks) lives and dies
with the collection key that announced it: a rotation gives the new key a P-384 key of its own,
announced by it, so a key stolen and revoked takes its P-384 key with it; bundles made before
still verify."""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from pathlib import Path

from archiver.evidence.keys import custody_lines, key_path
from archiver.evidence.custody import parse_entry
from archiver.evidence.signing import grouped
from tests.conftest import http_response, send_bytes
from tests.test_report_bundle import made_key


def wacz_key(bundle) -> str:
    """The fingerprint of the P-384 key that signed the bundle's datapackage, read from its signedData."""
    with zipfile.ZipFile(bundle) as wacz:
        statement = json.loads(wacz.read("evidence/bundle.json"))
        signed = json.loads(wacz.read("datapackage-digest.json"))["signedData"]
    assert hashlib.sha256(base64.b64decode(signed["publicKey"])).hexdigest() == statement["wacz_key"]
    return statement["wacz_key"]


def wacz_announcements(collection) -> dict[str, str]:
    """Each P-384 key the custody log announces, with the collection key that announced it."""
    entries = [parse_entry(line) for line in custody_lines(collection)]
    return {entry["subject"]["fingerprint"]: entry["key"] for entry in entries if entry["event"] == "wacz key generated"}


def verifies(run_cli, bundle, fingerprint) -> bool:
    return run_cli("verify-bundle", bundle, "--fingerprint", fingerprint).exit_code == 0


def test_a_rotation_gives_the_new_key_its_own_p384_key_and_a_revocation_retires_the_old_one(
        run_cli, raw_server, collection, tmp_path):
    server = raw_server({"/page": send_bytes(http_response(b"<html><title>Page</title><p>words</p></html>"))})
    assert run_cli("capture", "-C", collection.root, server.url("/page")).exit_code == 0
    first_key = made_key(run_cli, collection)
    before = tmp_path / "before.wacz"
    assert run_cli("bundle", "-C", collection.root, "--all", "-o", before).exit_code == 0
    first_p384 = wacz_key(before)
    assert wacz_announcements(collection) == {first_p384: first_key}

    assert run_cli("keys", "rotate", "-C", collection.root).exit_code == 0
    second_key = made_key(run_cli, collection)
    [second_p384] = set(wacz_announcements(collection)) - {first_p384}
    assert wacz_announcements(collection)[second_p384] == second_key  # announced by the new key, at the rotation
    assert (collection.root / "keys" / f"{second_p384}.p384.pub.pem").exists()
    after = tmp_path / "after.wacz"
    assert run_cli("bundle", "-C", collection.root, "--all", "-o", after).exit_code == 0
    assert wacz_key(after) == second_p384

    # The first key found stolen: what it signed before it was is still its, and so is its P-384 key's word.
    assert run_cli("keys", "revoke", first_key, "-C", collection.root, "--from", "2099-01-01T00:00:00Z",
                   "--reason", "laptop stolen").exit_code == 0
    revoked = tmp_path / "revoked.wacz"
    assert run_cli("bundle", "-C", collection.root, "--all", "-o", revoked).exit_code == 0
    assert wacz_key(revoked) == second_p384
    assert verifies(run_cli, before, first_key) and verifies(run_cli, after, second_key)
    assert verifies(run_cli, revoked, second_key)

    # The key in service revoked, then replaced: the key replacing it announces itself and a P-384 key of its own.
    assert run_cli("keys", "revoke", second_key, "-C", collection.root, "--reason", "laptop stolen").exit_code == 0
    assert run_cli("keys", "rotate", "-C", collection.root).exit_code == 0
    third_key = made_key(run_cli, collection)
    replaced = tmp_path / "replaced.wacz"
    assert run_cli("bundle", "-C", collection.root, "--all", "-o", replaced).exit_code == 0
    assert wacz_key(replaced) not in (first_p384, second_p384)
    assert wacz_announcements(collection)[wacz_key(replaced)] == third_key
    assert verifies(run_cli, replaced, third_key) and verifies(run_cli, before, first_key)

    # `keys show` lists each bundle key beside the key it lives and dies with.
    shown = json.loads(run_cli("keys", "show", "-C", collection.root, "--json").stdout)["bundle_keys"]
    assert {key["fingerprint"]: (key["of_key"], key["status"]) for key in shown} == {
        first_p384: (first_key, "revoked"), second_p384: (second_key, "revoked"),
        wacz_key(replaced): (third_key, "active")}
    assert all(Path(key["public_key"]).is_file() for key in shown)
    table = run_cli("keys", "show", "-C", collection.root).stdout
    assert grouped(wacz_key(replaced)) in table and "bundle key fingerprint (ECDSA P-384)" in table


def test_a_p384_key_kept_under_its_former_name_serves_the_key_that_announced_it_and_no_other(
        run_cli, raw_server, collection, tmp_path):
    """Before P-384 key files were named by their collection key, one file beside the key file
    served every key that took its place: it stays the P-384 key of the key that announced it,
    and a key rotated in since gets its own."""
    server = raw_server({"/page": send_bytes(http_response(b"<html><title>Page</title><p>words</p></html>"))})
    assert run_cli("capture", "-C", collection.root, server.url("/page")).exit_code == 0
    assert run_cli("bundle", "-C", collection.root, "--all", "-o", tmp_path / "first.wacz").exit_code == 0
    [named] = key_path(collection).parent.glob("*.p384-*.pem")
    named.rename(named.with_name(named.name.split(".")[0] + ".p384.pem"))  # as an older archiver kept it
    assert run_cli("bundle", "-C", collection.root, "--all", "-o", tmp_path / "again.wacz").exit_code == 0
    assert wacz_key(tmp_path / "again.wacz") == wacz_key(tmp_path / "first.wacz")
    assert run_cli("keys", "rotate", "-C", collection.root).exit_code == 0
    assert run_cli("bundle", "-C", collection.root, "--all", "-o", tmp_path / "rotated.wacz").exit_code == 0
    assert wacz_key(tmp_path / "rotated.wacz") != wacz_key(tmp_path / "first.wacz")
    assert verifies(run_cli, tmp_path / "rotated.wacz", made_key(run_cli, collection))


def test_a_bundle_key_announced_by_a_key_the_log_never_announced_is_not_shown_active(run_cli, collection):
    """A line no collection key's announcement vouches for (a hand-edited log: verify fails it)
    says so in `keys show`, rather than lending the bundle key a status it has not."""
    stranger, bundle_key = "ab" * 32, "cd" * 32
    entry = {"event": "wacz key generated", "key": stranger, "seq": 10**6, "time": "2026-01-01T00:00:00Z",
             "subject": {"fingerprint": bundle_key, "algorithm": "ECDSA P-384"}}
    with open(collection.root / "custody.jsonl", "a") as log:
        log.write(json.dumps(entry) + "\n")
    shown = json.loads(run_cli("keys", "show", "-C", collection.root, "--json").stdout)["bundle_keys"]
    assert [(key["fingerprint"], key["of_key"], key["status"]) for key in shown] == [
        (bundle_key, stranger, "its collection key not announced in the custody log")]
