"""Keys as a user meets them, checked against openssl as an independent tool."""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from archiver.evidence.key_status import KEY_EVENTS, key_event_entries, key_statuses_in
from archiver.evidence.keys import custody_lines
from archiver.store.collection import Collection
from archiver.evidence.signing import grouped
from tests.conftest import http_response, send_bytes
from tests.test_doctor import gates, held_capture, logged_captures  # noqa: F401 (gates is a fixture)

CATALOG_BACKENDS = ("sqlite", "postgresql")  # every test with a collection runs on both (conftest)


def test_fingerprint_is_the_sha256_of_the_spki_and_openssl_checks_the_manifest_signature(run_cli, raw_server, collection, tmp_path):
    keys = json.loads(run_cli("keys", "show", "-C", collection.root, "--json").stdout)
    [key] = keys["keys"]
    assert stat.S_IMODE(__import__("os").stat(keys["private_key_path"]).st_mode) == 0o600
    assert not keys["private_key_path"].startswith(str(collection.root))  # kept outside the collection
    exported = tmp_path / "ours.pem"
    assert run_cli("keys", "export", "-C", collection.root, "-o", exported).exit_code == 0
    der = subprocess.run(["openssl", "pkey", "-pubin", "-in", str(exported), "-outform", "DER"],
                         capture_output=True, check=True).stdout
    assert hashlib.sha256(der).hexdigest() == key["fingerprint"]
    assert run_cli("keys", "export", "-C", collection.root).stdout == exported.read_text()

    server = raw_server({"/": send_bytes(http_response(b"signed"))})
    run_cli("capture", "-C", collection.root, server.url("/"))
    assert run_cli("manifest", "-C", collection.root).exit_code == 0
    manifest = collection.root / "manifests" / "manifest-1.json"
    check = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(exported), "-rawin",
                            "-in", str(manifest), "-sigfile", str(manifest) + ".sig"], capture_output=True, text=True)
    assert "Signature Verified Successfully" in check.stdout, check.stdout + check.stderr


def test_generate_encrypt_asks_for_a_passphrase_never_an_argument(run_cli, tmp_path, monkeypatch):
    assert run_cli("init", tmp_path / "c").exit_code == 0
    monkeypatch.setenv("ARCHIVER_PASSPHRASE", "s3cret")
    other = tmp_path / "second.pem"
    result = run_cli("keys", "generate", "-C", tmp_path / "c", "--key", other, "--encrypt", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["encrypted"] is True
    assert b"ENCRYPTED PRIVATE KEY" in other.read_bytes()
    assert "--passphrase" not in run_cli("keys", "generate", "--help").stdout


def test_an_unreadable_or_missing_key_is_one_line(run_cli, tmp_path, monkeypatch):
    assert run_cli("init", tmp_path / "c").exit_code == 0
    folder_not_key = tmp_path / "a-folder"
    folder_not_key.mkdir()
    for key, message in ((folder_not_key, "cannot read the signing key"), (tmp_path / "absent.pem", "signing key is not on this machine")):
        monkeypatch.setenv("ARCHIVER_KEY", str(key))
        result = run_cli("manifest", "-C", tmp_path / "c")
        assert result.exit_code == 2 and message in result.stderr and result.stderr.count("\n") == 1
    monkeypatch.delenv("ARCHIVER_KEY")
    foreign = tmp_path / "foreign.pem"
    run_cli("init", tmp_path / "d", "--key", foreign)
    result = run_cli("manifest", "-C", tmp_path / "c", "--key", foreign)
    assert result.exit_code == 2 and "is not one of this collection's keys" in result.stderr


def _runs(root) -> int:
    """Runs in the collection's catalog, wherever it is kept."""
    with Collection.open(root) as collection:
        [(count,)] = collection.catalog.query("SELECT count(*) FROM runs").fetchall()
    return count


def test_revoking_a_key_again_later_changes_nothing_and_earlier_moves_its_revocation(run_cli, collection):
    [key] = json.loads(run_cli("keys", "show", "-C", collection.root, "--json").stdout)["keys"]
    revoke = ("keys", "revoke", "-C", collection.root, key["fingerprint"], "--json", "--from")
    first = json.loads(run_cli(*revoke, "2026-11-01T00:00:00Z", "--reason", "laptop stolen").stdout)
    lines = len(list(custody_lines(collection)))
    again = json.loads(run_cli(*revoke, "2026-11-20T00:00:00Z", "--reason", "a second thought").stdout)
    assert (again["revoked_from"], again["already_revoked"]) == (first["revoked_from"], True)
    assert len(list(custody_lines(collection))) == lines  # nothing appended
    said = run_cli("keys", "revoke", "-C", collection.root, key["fingerprint"]).stdout
    assert said.startswith(f"Already revoked from {first['revoked_from']}: nothing changed"), said
    assert again["reason"] == "laptop stolen"  # the reason recorded, not the one given again
    earlier = json.loads(run_cli(*revoke, "2026-10-01T00:00:00Z").stdout)
    assert (earlier["revoked_from"], earlier["already_revoked"]) == ("2026-10-01T00:00:00.000000Z", False)
    [shown] = json.loads(run_cli("keys", "show", "-C", collection.root, "--json").stdout)["keys"]
    assert shown["revoked_from"] == "2026-10-01T00:00:00.000000Z"


def test_generating_the_collections_own_key_again_announces_it_once(run_cli, collection):
    lines = len(list(custody_lines(collection)))
    for _ in range(2):
        result = run_cli("keys", "generate", "-C", collection.root, "--json")
        assert result.exit_code == 0, result.output
        assert (json.loads(result.stdout)["created"], json.loads(result.stdout)["adopted"]) == (False, False)
    assert len(list(custody_lines(collection))) == lines
    assert run_cli("keys", "generate", "-C", collection.root).stdout.startswith("Already the collection's key: ")
    assert run_cli("verify", "-C", collection.root).exit_code == 0


def test_a_revoked_key_signs_nothing_until_rotated(run_cli, raw_server, collection):
    server = raw_server({"/": send_bytes(http_response(b"signed"))})
    assert run_cli("capture", "-C", collection.root, server.url("/")).exit_code == 0
    [key] = json.loads(run_cli("keys", "show", "-C", collection.root, "--json").stdout)["keys"]
    assert run_cli("keys", "revoke", "-C", collection.root, key["fingerprint"], "--reason", "laptop stolen").exit_code == 0
    asked, log = len(server.requests), list(custody_lines(collection))
    runs = _runs(collection.root)

    refused = run_cli("capture", "-C", collection.root, server.url("/"))
    assert refused.exit_code == 2, refused.output
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.startswith(f"error: the collection's key {grouped(key['fingerprint'])} is revoked"), refused.stderr
    assert "rotate first: archiver keys rotate" in refused.stderr
    assert len(server.requests) == asked  # nothing fetched
    assert list(custody_lines(collection)) == log  # nothing logged
    assert _runs(collection.root) == runs  # no run recorded
    assert run_cli("manifest", "-C", collection.root).exit_code == 2
    # A reading command signs nothing with it either, so what it reads still verifies the next time.
    for _ in range(2):
        checked = run_cli("verify", "-C", collection.root)
        assert checked.exit_code == 0 and "Not recorded in the custody log: the collection's key" in checked.output, \
            checked.output
    assert list(custody_lines(collection)) == log

    # The way out the message names works: a new key, and everything it signs verifies.
    assert run_cli("keys", "rotate", "-C", collection.root).exit_code == 0
    assert run_cli("capture", "-C", collection.root, server.url("/")).exit_code == 0
    assert len(server.requests) == asked + 1
    assert run_cli("manifest", "-C", collection.root).exit_code == 0
    verified = run_cli("verify", "-C", collection.root)
    assert verified.exit_code == 0, verified.output


def test_a_manifest_sealed_by_a_key_revoked_since_is_sealed_anew_by_the_new_key(run_cli, raw_server, collection,
                                                                                tmp_path):
    server = raw_server({"/": send_bytes(http_response(b"signed"))})
    assert run_cli("capture", "-C", collection.root, server.url("/")).exit_code == 0
    first = json.loads(run_cli("manifest", "-C", collection.root, "--json").stdout)
    old = first["key"]
    assert run_cli("keys", "revoke", "-C", collection.root, old, "--from", "2020-01-01T00:00:00Z",
                   "--reason", "laptop stolen").exit_code == 0
    assert run_cli("keys", "rotate", "-C", collection.root).exit_code == 0
    [new] = [k["fingerprint"] for k in json.loads(run_cli("keys", "show", "-C", collection.root, "--json").stdout)["keys"]
             if k["fingerprint"] != old and k["status"] == "active"]

    # Nothing new was captured, yet the newest manifest now bears the new key's signature.
    second = json.loads(run_cli("manifest", "-C", collection.root, "--json").stdout)
    assert (second["sequence"], second["unchanged"], second["key"]) == (first["sequence"] + 1, False, new)
    public = tmp_path / "new.pub.pem"
    public.write_bytes((collection.root / "keys" / f"{new}.pub.pem").read_bytes())
    checked = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", public, "-rawin",
                              "-in", second["path"], "-sigfile", second["signature"]], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    third = json.loads(run_cli("manifest", "-C", collection.root, "--json").stdout)
    assert (third["sequence"], third["unchanged"], third["key"]) == (second["sequence"], True, new)
    shown = run_cli("manifest", "-C", collection.root).stdout
    assert f"(key {grouped(new)})" in shown, shown
    # What the revoked key signed since 2020 is not trusted; the new manifest's seal is.
    failures = json.loads(run_cli("verify", "-C", collection.root, "--json").stdout)["failures"]
    assert failures and not [f for f in failures if f"manifest-{second['sequence']}" in f["where"]], failures
    assert [f for f in failures if f"manifest-{first['sequence']}" in f["where"]], failures


def test_a_manifest_whose_seal_was_interrupted_is_sealed_not_replaced(run_cli, raw_server, collection):
    server = raw_server({"/": send_bytes(http_response(b"signed"))})
    assert run_cli("capture", "-C", collection.root, server.url("/")).exit_code == 0
    first = json.loads(run_cli("manifest", "-C", collection.root, "--json").stdout)
    manifest = Path(first["path"])
    for signature in (manifest.with_name(manifest.name + ".sig"),
                      manifest.with_name(manifest.name.replace(".json", ".checkpoint.json.sig"))):
        signature.unlink()  # as a kill before the seal was written leaves it
    again = json.loads(run_cli("manifest", "-C", collection.root, "--json").stdout)
    assert (again["sequence"], again["unchanged"], again["key"]) == (first["sequence"], True, first["key"])
    assert run_cli("verify", "-C", collection.root).exit_code == 0


def test_a_rotated_out_key_file_signs_nothing(run_cli, raw_server, collection, tmp_path):
    old = tmp_path / "old.pem"
    shutil.copy(json.loads(run_cli("keys", "show", "-C", collection.root, "--json").stdout)["private_key_path"], old)
    assert run_cli("keys", "rotate", "-C", collection.root).exit_code == 0
    server = raw_server({"/": send_bytes(http_response(b"signed"))})
    refused = run_cli("capture", "-C", collection.root, "--key", old, server.url("/"))
    assert refused.exit_code == 2 and "was rotated out" in refused.stderr and refused.stderr.count("\n") == 1, refused.output
    assert server.requests == []


def test_a_key_event_is_read_however_its_line_spells_it_and_other_lines_are_passed_over():
    """Key statuses come from the log's key events, found before the log is parsed whole: an
    event name written with JSON escapes or spaces around its colon is still one, and a
    revocation spelled so still revokes."""
    def line(text: str) -> bytes:
        return text.encode("utf-8")
    revoked = '"subject":{"fingerprint":"ab","revoked_from":"2026-01-01T00:00:00Z","reason":"stolen"}'
    lines = [line('{"seq":1,"time":"2026-01-01T00:00:00Z","event":"key generated","subject":{"fingerprint":"ab"}}'),
             line('{"seq":2,"time":"2026-01-02T00:00:00Z","event":"capture","subject":{"capture":"c1"}}'),
             line('{"seq":3,"time":"2026-01-03T00:00:00Z","event":"\\u006bey revoked",' + revoked + '}'),
             line('{"seq":4,"time":"2026-01-04T00:00:00Z","event" : "key rotated","subject":{"from":"ab","to":"cd"}}'),
             line('{"seq":5,"time":"2026-01-05T00:00:00Z","event":"capture","note":"the key revoked earlier"}')]
    assert json.loads(lines[2])["event"] == "key revoked"
    assert [entry["seq"] for entry in key_event_entries(lines)] == [1, 3, 4]
    statuses = key_statuses_in(key_event_entries(lines))
    assert statuses["ab"].revoked_from == "2026-01-01T00:00:00Z" and statuses["cd"].announced_at == "2026-01-04T00:00:00Z"
    every_event = [json.dumps({"seq": seq, "event": event}).encode("utf-8") for seq, event in enumerate(KEY_EVENTS, 1)]
    assert [entry["event"] for entry in key_event_entries(every_event)] == list(KEY_EVENTS)


def test_a_key_is_rotated_only_once_a_collection_held_alone_is_let_go(run_cli, collection):
    """`doctor --fix` and `migrate` hold a collection alone: a key announced meanwhile would land
    in a custody log they are repairing or copying, or be missed by the copy. `keys rotate`
    waits for them, as a capture does: its process is seen waiting on the lock (/proc/locks)
    with nothing changed, and rotates once the lock is let go."""
    from tests.test_doctor import wait_until
    before = {path: path.read_bytes() for path in (collection.root / "keys").iterdir()}
    log = list(custody_lines(collection))
    held = collection.in_use(alone=True)
    rotating = subprocess.Popen([sys.executable, "-m", "archiver", "keys", "rotate", "-C", str(collection.root)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def waiting_on_the_lock() -> bool:
            with open("/proc/locks") as locks:
                return any("->" in line and f" {rotating.pid} " in line for line in locks)
        wait_until(waiting_on_the_lock, "keys rotate waiting on the collection's lock", rotating)
        assert {path: path.read_bytes() for path in (collection.root / "keys").iterdir()} == before
        assert list(custody_lines(collection)) == log
    finally:
        held.release()
    assert rotating.wait(timeout=60) == 0, rotating.stderr.read()
    assert [json.loads(line)["event"] for line in custody_lines(collection)][len(log):] == ["key rotated",
                                                                                            "wacz key generated"]


def test_two_rotations_at_once_rotate_once_and_keep_the_old_private_key(run_cli, collection):
    """Two `keys rotate` at once each announced a successor, and the later retired the other's
    new key over the old private key. The later now waits for the earlier (the key's folder is
    held from the check that the key is in service to the new key in place), then is refused."""
    from tests.test_doctor import wait_until
    from archiver.evidence.keys import key_folder_held, key_path
    key = key_path(collection)
    old = key.read_bytes()
    with key_folder_held(key):  # as a rotation under way holds it
        rotations = [subprocess.Popen([sys.executable, "-m", "archiver", "keys", "rotate", "-C", str(collection.root),
                                       "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
        for rotation in rotations:
            wait_until(lambda: _waiters(key.parent) == 2, "both rotations waiting for the key's folder", rotation)
    codes = sorted(rotation.wait(60) for rotation in rotations)
    assert codes == [0, 2], [rotation.stderr.read() for rotation in rotations]
    refused = next(rotation for rotation in rotations if rotation.returncode == 2)
    assert b"was rotated out meanwhile, by another process" in refused.stderr.read()
    [retired] = key.parent.glob(f"{key.stem}.retired-*.pem")
    assert retired.read_bytes() == old  # the old private key, kept
    events = [json.loads(line)["event"] for line in custody_lines(collection)]
    assert events.count("key rotated") == 1
    shown = json.loads(run_cli("keys", "show", "-C", collection.root, "--json").stdout)["keys"]
    assert sorted(k["status"] for k in shown) == ["active", "rotated out"]
    assert run_cli("verify", "-C", collection.root).exit_code == 0


def _waiters(path) -> int:
    """How many processes wait in /proc/locks for a lock on the file at `path`."""
    inode = str(path.stat().st_ino)
    with open("/proc/locks") as locks:
        return sum(1 for line in locks if line.split()[1] == "->" and line.split()[6].rsplit(":", 1)[-1] == inode)


@pytest.mark.parametrize("change", ["revoke", "rotate"])
def test_a_key_revoked_or_rotated_out_while_a_capture_runs_signs_nothing_more(run_cli, raw_server, gates, collection,
                                                                                change):
    """The capture checked its key as it started; `keys revoke` or `keys rotate` runs while it
    is held mid-run, one capture stored. Once let go, it stops before signing the next one,
    says why in one line and exits 2: nothing after the key event is signed by the old key."""
    [public] = (collection.root / "keys").glob("*.pub.pem")
    fingerprint = public.name.split(".")[0]
    gate, process, _ = held_capture(collection, raw_server, gates, pages=4)
    changing = ("keys", "revoke", fingerprint, "--reason", "laptop stolen") if change == "revoke" else ("keys", "rotate")
    assert run_cli(*changing, "-C", collection.root).exit_code == 0
    gate.release()
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 2, stderr
    said = "revoked (from " if change == "revoke" else "rotated out at "
    assert f"the key {grouped(fingerprint)} was {said}" in stderr.decode() and len(stderr.decode().strip().splitlines()) == 1
    events = [json.loads(line) for line in custody_lines(collection)]
    changed_at = next(i for i, entry in enumerate(events) if entry["event"] in ("key revoked", "key rotated"))
    assert [entry["event"] for entry in events[changed_at + 1:] if entry["key"] == fingerprint] == []
    assert logged_captures(collection) == 1  # the capture stored before the change, and no other


def test_a_rotation_landing_between_a_runs_key_check_and_its_log_entry_leaves_evidence_that_verifies(
        run_cli, raw_server, collection, monkeypatch):
    """The run looks at its key before signing a capture, and again under the custody log's lock:
    a `keys rotate` landing in between stops it before its old key signs an entry after the
    rotation, which verify would fail for good. The capture it had cataloged is logged by the
    next command's repair, with the new key."""
    from archiver.errors import UsageProblem
    from archiver.store.catalog import Catalog
    from tests.conftest import capture

    server = raw_server({"/": send_bytes(http_response(b"<title>Raced</title><p>a page</p>"))})
    cataloging = Catalog.add_captures
    rotated = []

    def rotated_first(catalog, *args, **kwargs):
        if not rotated:  # after the run's first look at its key, before its capture is logged
            rotated.append(run_cli("keys", "rotate", "-C", collection.root).exit_code)
        return cataloging(catalog, *args, **kwargs)

    monkeypatch.setattr(Catalog, "add_captures", rotated_first)
    with pytest.raises(UsageProblem, match="rotated out at"):
        capture(collection, server.url("/"))
    monkeypatch.setattr(Catalog, "add_captures", cataloging)
    assert rotated == [0]
    assert run_cli("doctor", "-C", collection.root, "--fix").exit_code == 0
    checked = run_cli("verify", "-C", collection.root, "--json")
    assert checked.exit_code == 0, checked.stdout
    assert logged_captures(collection) == 1


def test_a_key_revoked_from_a_later_moment_stays_in_service_until_then(run_cli, raw_server, collection):
    """`keys revoke --from` a future time: until then the key signs as before, and a rotation
    is announced by it, as any rotation of a key in service, not by the new key itself."""
    server = raw_server({"/": send_bytes(http_response(b"<title>Later</title><p>signed before the revocation</p>"))})
    [key] = json.loads(run_cli("keys", "show", "-C", collection.root, "--json").stdout)["keys"]
    revoked = run_cli("keys", "revoke", "-C", collection.root, key["fingerprint"], "--from", "2999-01-01T00:00:00Z")
    assert revoked.exit_code == 0, revoked.output
    captured = run_cli("capture", "-C", collection.root, server.url("/"))
    assert captured.exit_code == 0, captured.output
    assert run_cli("manifest", "-C", collection.root).exit_code == 0
    assert json.loads(run_cli("manifest", "-C", collection.root, "--json").stdout)["unchanged"]  # not sealed anew

    rotated = json.loads(run_cli("keys", "rotate", "-C", collection.root, "--json").stdout)
    [announced] = [json.loads(line) for line in custody_lines(collection) if json.loads(line)["event"].startswith("key")][-1:]
    assert (announced["event"], announced["key"], announced["subject"]["to"]) == \
        ("key rotated", key["fingerprint"], rotated["to"])
    report = json.loads(run_cli("verify", "-C", collection.root, "--json").stdout)
    assert report["ok"], report["failures"]
    assert not [line for line in report["not_checked"] if "announced by itself" in line], report["not_checked"]


def test_a_run_still_capturing_when_a_revocation_dated_later_takes_effect_signs_nothing_more(
        run_cli, raw_server, collection, monkeypatch):
    """The key was in service when the run started; the revocation's moment passes while it
    runs (the watch's clock is set past it): no key event comes, yet it signs nothing more."""
    from datetime import datetime, timedelta, timezone

    from archiver.errors import UsageProblem
    from archiver.evidence import key_status
    from tests.conftest import capture

    server = raw_server({"/": send_bytes(http_response(b"<p>a page</p>"))})
    [fingerprint] = [k["fingerprint"] for k in json.loads(run_cli("keys", "show", "-C", collection.root, "--json").stdout)["keys"]]
    later = datetime.now(timezone.utc) + timedelta(days=1)
    assert run_cli("keys", "revoke", "-C", collection.root, fingerprint, "--from",
                   later.strftime("%Y-%m-%dT%H:%M:%SZ")).exit_code == 0
    monkeypatch.setattr(key_status, "now", lambda: (later + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    with pytest.raises(UsageProblem, match="was revoked"):
        capture(collection, server.url("/"))
    assert logged_captures(collection) == 0


def test_a_collection_whose_shared_key_file_another_rotated_is_told_where_its_key_went(run_cli, raw_server, tmp_path):
    """Two collections signing with one key file: `keys rotate` in one puts its new key in the
    file and keeps the old key beside it as retired, the other's key in service. That other,
    refused, is told that retired file (adopting the new key instead would announce a key
    no earlier one vouches for), and with it signs as before."""
    shared = tmp_path / "keys" / "shared.pem"
    for name in ("c", "d"):
        assert run_cli("init", tmp_path / name, "--key", shared).exit_code == 0
    assert run_cli("keys", "rotate", "-C", tmp_path / "d", "--key", shared).exit_code == 0
    server = raw_server({"/": send_bytes(http_response(b"<title>C</title><p>still c's key</p>"))})
    refused = run_cli("capture", "-C", tmp_path / "c", "--key", shared, "--allow-private", server.url("/"))
    [retired] = shared.parent.glob("shared.retired-*.pem")
    assert refused.exit_code == 2 and refused.stderr.count("\n") == 1, refused.output
    assert f"this collection's is kept at {retired}: use --key {retired}" in refused.stderr, refused.stderr
    assert run_cli("capture", "-C", tmp_path / "c", "--key", retired, "--allow-private", server.url("/")).exit_code == 0
    assert run_cli("verify", "-C", tmp_path / "c").exit_code == 0
