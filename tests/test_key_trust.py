"""A custody entry judged by its key's revocation or rotation, as the chain orders them: `verify`
and `verify-bundle` hold each entry to one rule (evidence/key_status.py), and every command
looks at its key again as it signs, so honest histories never break it (real keys, real
collections on SQLite and PostgreSQL, real bundles)."""

from __future__ import annotations

import json
import os
import threading

import pytest

from archiver.capture.run import CaptureRun
from archiver.errors import UsageProblem
from archiver.evidence import custody, seal
from archiver.evidence.key_watch import KeyWatch, key_watch
from archiver.evidence.keys import custody_lines, custody_log, open_signing_key
from archiver.evidence.signing import generate_key
from tests.conftest import http_response, send_bytes
from tests.test_bundle import verify_bundle

CATALOG_BACKENDS = ("sqlite", "postgresql")  # every test with a collection runs on both (conftest)


def _entries(collection) -> list[dict]:
    return [json.loads(line) for line in custody_lines(collection)]


def _active(run_cli, collection) -> str:
    keys = json.loads(run_cli("keys", "show", "-C", collection.root, "--json").stdout)["keys"]
    [active] = [key["fingerprint"] for key in keys if key["status"] == "active"]
    return active


def _verified(run_cli, collection) -> dict:
    checked = run_cli("verify", "-C", collection.root, "--json")
    report = json.loads(checked.stdout)
    assert checked.exit_code == (0 if report["ok"] else 1), checked.output
    return report


def _bundled(run_cli, collection, path, *options: str) -> dict:
    made = run_cli("bundle", "-C", collection.root, "--all", "-o", path, "--json", *options)
    return {"exit_code": made.exit_code, **json.loads(made.stdout)}


def _carried_line(bundle, seq: int) -> int:
    """The line of evidence/custody.jsonl in `bundle` that holds the entry of `seq`."""
    import zipfile

    with zipfile.ZipFile(bundle) as wacz:
        lines = wacz.read("evidence/custody.jsonl").splitlines()
    return next(number for number, line in enumerate(lines, 1) if json.loads(line)["seq"] == seq)


def _key_status_failures(report: dict) -> list[tuple[str, str]]:
    return [(f["where"], f["detail"]) for f in report["failures"] if f["check"] == "custody key status"]


@pytest.mark.parametrize("dated", ["as signed", "dated back"])
def test_a_custody_entry_a_revoked_key_signs_after_its_revocation_fails_verify_and_verify_bundle(
        run_cli, raw_server, collection, tmp_path, monkeypatch, dated):
    """The owner revokes the collection's key A (stolen) and rotates to B. The thief, holding A and
    the log, appends a rotation to a key of their own, signed by A after A's revocation; dated
    back before the revocation's moment, the entry's time cannot tell, but the chain puts it after
    the revocation (and its time goes back along the chain: failed too, tests/test_capture_clock.py).
    Both verifiers fail that entry, in one line naming it and A's fingerprint. `bundle` leaves it
    out, and the bundle and verify-bundle name it; asked to carry it (--include-revoked), `bundle`
    says the bundle it writes carries it."""
    server = raw_server({"/": send_bytes(http_response(b"<title>Page</title><p>words</p>"))})
    assert run_cli("capture", "-C", collection.root, server.url("/")).exit_code == 0
    stolen = open_signing_key(collection, None, None)
    assert run_cli("keys", "revoke", "-C", collection.root, stolen.fingerprint, "--reason", "laptop stolen").exit_code == 0
    assert run_cli("keys", "rotate", "-C", collection.root).exit_code == 0
    new = _active(run_cli, collection)

    thief = generate_key(tmp_path / "thief.pem", None)
    with monkeypatch.context() as thief_tool:  # it signs as it likes, not looking at its key's status
        thief_tool.setattr(KeyWatch, "check", lambda watch: None)
        if dated == "dated back":
            thief_tool.setattr(custody, "now", lambda: "2020-01-01T00:00:00.000000Z")
        forged = custody_log(collection, stolen).append("key rotated", {
            "from": stolen.fingerprint, "to": thief.fingerprint, "public_key": thief.public.pem().decode()}).data
    line = len(_entries(collection))
    said = f"seq {forged['seq']} (key rotated) is signed by key {stolen.fingerprint}, which was revoked"
    failed = (["custody times in order"] if dated == "dated back" else []) + ["custody key status"]

    report = _verified(run_cli, collection)
    assert not report["ok"]
    [(where, detail)] = _key_status_failures(report)
    assert where == f"custody.jsonl line {line}" and detail.startswith(said) and "\n" not in detail, detail
    assert [f["check"] for f in report["failures"]] == failed, report["failures"]

    left_out = tmp_path / "left-out.wacz"
    made = _bundled(run_cli, collection, left_out)
    assert made["exit_code"] == 0 and [why.startswith(said) for why in made["custody_entries_left_out"]] == [True], made
    assert made["custody_entries_by_keys_out_of_service"] == []
    checked = verify_bundle(run_cli, left_out, new)
    assert checked["ok"] and [line for line in checked["not_checked"] if "left out" in line] == \
        [f"custody entry {made['custody_entries_left_out'][0]}: left out: signed by a revoked key"], checked

    bundle = tmp_path / "all.wacz"
    made = _bundled(run_cli, collection, bundle, "--include-revoked")
    assert made["exit_code"] == 1 and [why.startswith(said) for why in made["custody_entries_by_keys_out_of_service"]] \
        == [True], made
    checked = verify_bundle(run_cli, bundle, new)
    assert not checked["ok"] and [f["check"] for f in checked["failures"]] == failed, checked["failures"]
    [(where, detail)] = _key_status_failures(checked)
    assert where == f"evidence/custody.jsonl line {_carried_line(bundle, forged['seq'])}" and detail == \
        report["failures"][-1]["detail"]
    assert "established" not in checked or not checked["established"], checked  # said only of a bundle that verified
    plain = run_cli("verify-bundle", bundle, "--fingerprint", new)
    assert plain.exit_code == 1 and said in plain.output and "verified" not in plain.output.lower(), plain.output


def test_a_custody_entry_a_rotated_out_key_signs_after_its_rotation_fails_verify_and_verify_bundle(
        run_cli, raw_server, collection, tmp_path, monkeypatch):
    """A copy of the collection's key file kept from before `keys rotate`, used by a tool that does
    not ask whether the key is in service: what it logs after the entry rotating the key out fails
    both verifiers by the chain's order (its clock, a second ahead or a year behind, is no judge);
    what it signed before, and the rotation it signed, hold."""
    server = raw_server({"/before": send_bytes(http_response(b"<title>Before</title><p>signed before</p>")),
                         "/after": send_bytes(http_response(b"<title>After</title><p>signed after</p>"))})
    assert run_cli("capture", "-C", collection.root, server.url("/before")).exit_code == 0
    assert run_cli("manifest", "-C", collection.root).exit_code == 0
    old = open_signing_key(collection, None, None)
    assert run_cli("keys", "rotate", "-C", collection.root).exit_code == 0
    new = _active(run_cli, collection)
    assert _verified(run_cli, collection)["ok"]
    [rotation] = [entry for entry in _entries(collection) if entry["event"] == "key rotated"]

    with monkeypatch.context() as older_tool:
        older_tool.setattr(KeyWatch, "check", lambda watch: None)
        older_tool.setattr(KeyWatch, "signs", lambda watch: True)
        with CaptureRun(collection, collection.config.capture, old) as run:
            [after] = run.capture([server.url("/after")])
    late = {number: entry for number, entry in enumerate(_entries(collection), 1)
            if entry["seq"] > rotation["seq"] and entry["key"] == old.fingerprint}
    assert {entry["event"] for entry in late.values()} >= {"capture"}

    report = _verified(run_cli, collection)
    assert not report["ok"]
    assert _key_status_failures(report) == [
        (f"custody.jsonl line {number}", f"seq {entry['seq']} ({entry['event']}) is signed by key {old.fingerprint}, "
         f"which was rotated out by custody entry seq {rotation['seq']}, before this was signed")
        for number, entry in late.items()], report["failures"]

    bundle = tmp_path / "all.wacz"
    made = _bundled(run_cli, collection, bundle)
    assert made["exit_code"] == 1 and len(made["custody_entries_by_keys_out_of_service"]) == 1, made
    checked = verify_bundle(run_cli, bundle, new)
    [logged] = [entry for entry in late.values() if entry["event"] == "capture"]
    assert logged["subject"]["capture"] == after.id
    assert _key_status_failures(checked) == [
        (f"evidence/custody.jsonl line {_carried_line(bundle, logged['seq'])}",
         f"seq {logged['seq']} (capture) is signed by key {old.fingerprint}, which was rotated out by custody entry "
         f"seq {rotation['seq']}, before this was signed")], checked["failures"]
    assert not checked["ok"]


def test_a_history_of_rotations_and_a_later_revocation_passes_verify_and_verify_bundle(run_cli, raw_server, collection,
                                                                                       tmp_path):
    """A signs the rotation to B and is revoked afterwards (from then on: its laptop is gone, what
    it signed before holds), B signs the rotation to C; each key captured while it was the
    collection's. Nothing fails: not the rotation the revoked key signed, nor any entry the old
    keys signed before their rotation."""
    server = raw_server({f"/{n}": send_bytes(http_response(f"<title>{n}</title><p>page {n}</p>".encode()))
                         for n in ("a", "b", "c")})
    assert run_cli("capture", "-C", collection.root, server.url("/a")).exit_code == 0
    assert run_cli("manifest", "-C", collection.root).exit_code == 0
    first = _active(run_cli, collection)
    assert run_cli("keys", "rotate", "-C", collection.root).exit_code == 0
    second = _active(run_cli, collection)
    assert run_cli("capture", "-C", collection.root, server.url("/b")).exit_code == 0
    assert run_cli("keys", "revoke", "-C", collection.root, first, "--reason", "laptop gone").exit_code == 0
    assert run_cli("keys", "rotate", "-C", collection.root).exit_code == 0
    third = _active(run_cli, collection)
    assert run_cli("capture", "-C", collection.root, server.url("/c")).exit_code == 0
    key_events = [(e["event"], e["key"]) for e in _entries(collection) if e["event"] in ("key rotated", "key revoked")]
    assert key_events == [("key rotated", first), ("key revoked", second), ("key rotated", second)]

    report = _verified(run_cli, collection)
    assert report["ok"], report["failures"]
    bundle = tmp_path / "all.wacz"
    made = _bundled(run_cli, collection, bundle)
    assert made["exit_code"] == 0 and made["custody_entries_by_keys_out_of_service"] == [], made
    checked = verify_bundle(run_cli, bundle, third)
    assert checked["ok"], checked["failures"]


def test_a_rotation_landing_while_a_manifest_is_sealed_stops_it_before_the_old_key_signs_after_it(
        run_cli, raw_server, collection, monkeypatch):
    """`manifest` checked its key as it started; `keys rotate` lands before it logs the signing.
    Its old key signs nothing the log puts after the rotation, which verify would fail for good:
    it stops in one line (exit 2), and the next `manifest` seals the same content with the new key."""
    server = raw_server({"/": send_bytes(http_response(b"<title>Sealed</title><p>a page</p>"))})
    assert run_cli("capture", "-C", collection.root, server.url("/")).exit_code == 0
    old = open_signing_key(collection, None, None).fingerprint
    exporting, rotated = seal.export_manifest, []

    def rotated_first(*args, **kwargs):
        if not rotated:  # after the command's look at its key, before anything is signed
            rotated.append(run_cli("keys", "rotate", "-C", collection.root).exit_code)
        return exporting(*args, **kwargs)

    monkeypatch.setattr(seal, "export_manifest", rotated_first)
    stopped = run_cli("manifest", "-C", collection.root)
    monkeypatch.setattr(seal, "export_manifest", exporting)
    assert rotated == [0]
    assert stopped.exit_code == 2 and "was rotated out at" in stopped.stderr and stopped.stderr.count("\n") == 1, \
        stopped.output
    events = _entries(collection)
    rotation = next(n for n, entry in enumerate(events) if entry["event"] == "key rotated")
    assert [entry["event"] for entry in events[rotation + 1:] if entry["key"] == old] == []

    sealed = json.loads(run_cli("manifest", "-C", collection.root, "--json").stdout)
    assert sealed["key"] == _active(run_cli, collection) != old
    report = _verified(run_cli, collection)
    assert report["ok"], report["failures"]


def test_a_key_revoked_as_the_log_says_signs_nothing_on_a_machine_whose_clock_is_behind(run_cli, raw_server, collection,
                                                                                         monkeypatch):
    """`keys revoke` (from its own now) on one machine; another, its clock an hour behind, sees the
    revocation in the log: the key is out of service there too, though that clock has not reached
    the revocation's moment, since what it would sign comes after the revocation in the chain."""
    from archiver.evidence import key_status

    server = raw_server({"/": send_bytes(http_response(b"<p>a page</p>"))})
    fingerprint = _active(run_cli, collection)
    assert run_cli("keys", "revoke", "-C", collection.root, fingerprint, "--reason", "laptop stolen").exit_code == 0
    lines = len(_entries(collection))
    monkeypatch.setattr(key_status, "now", lambda: "2000-01-01T00:00:00.000000Z")
    refused = run_cli("capture", "-C", collection.root, server.url("/"))
    assert refused.exit_code == 2 and "is revoked" in refused.stderr and refused.stderr.count("\n") == 1, refused.output
    assert server.requests == [] and len(_entries(collection)) == lines


def test_a_look_at_a_key_that_read_entries_then_taken_back_sees_the_rotation_written_where_they_were(
        run_cli, collection):
    """A look at the key may read custody entries while they are written, which are then taken
    back (`_looked_at_then_taken_back`); `keys rotate` writes its entries where they were. The next
    append looks again, sees the rotation, and its old key signs nothing after it."""
    key = open_signing_key(collection, None, None)
    with collection:
        log = custody_log(collection, key)
        log.append("note recorded", {"claim": "before", "urls": []})
        _looked_at_then_taken_back(collection, key)
        assert run_cli("keys", "rotate", "-C", collection.root).exit_code == 0
        with pytest.raises(UsageProblem, match="was rotated out at"):
            log.append("note recorded", {"claim": "after", "urls": []})
    events = _entries(collection)
    rotation = next(n for n, entry in enumerate(events) if entry["event"] == "key rotated")
    assert [entry["event"] for entry in events[rotation + 1:] if entry["key"] == key.fingerprint] == []


class _Refused(Exception):
    pass


def _looked_at_then_taken_back(collection, key) -> None:
    """The key's watch looks while the log holds 3 entries that it then loses: a shared log's
    rows, inserted by a transaction on another thread, which the look reads on the catalog's one
    connection before that transaction is rolled back; custody.jsonl's lines, cut off again as an
    append refused half-way cuts them (a look reads the file without its lock)."""
    watch, log = key_watch(collection, key), custody_log(collection, key, watched=False)
    taken_back = [("note recorded", {"claim": f"taken back {n}", "urls": []}) for n in range(3)]
    if collection.config.catalog_url is None:
        path = collection.root / custody.LOG_NAME
        size = path.stat().st_size
        log.append_many(taken_back)
        watch.check()
        os.truncate(path, size)
        return
    catalog, inserted, looked, refused = collection.catalog, threading.Event(), threading.Event(), []
    rows = log.extension(taken_back)(list(catalog.custody_lines())[-1])

    def looked_at_first():  # load() takes a statement's rows once those before them are inserted
        inserted.set()
        looked.wait()
        raise _Refused
        yield

    def writing() -> None:
        try:
            catalog.load([("INSERT INTO custody_entries (seq, line) VALUES (?, ?)", rows),
                          ("INSERT INTO custody_entries (seq, line) VALUES (?, ?)", looked_at_first())], lambda tail: [])
        except _Refused as exc:
            refused.append(exc)
        finally:
            inserted.set()

    writer = threading.Thread(target=writing)
    writer.start()
    inserted.wait()
    assert catalog.custody_lines_from(rows[0][0]) == rows  # not committed, and read on the same connection
    watch.check()
    looked.set()
    writer.join()
    assert refused and catalog.custody_lines_from(rows[0][0]) == []
