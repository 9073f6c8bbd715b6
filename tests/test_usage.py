"""Every command, given bad usage, answers with one clear line and a documented exit code."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from archiver.capture.run import CaptureRun
from archiver.evidence.custody import parse_entry
from archiver.evidence.keys import custody_log, open_signing_key
from archiver.store.locks import EXPORT_LOCK_NAME, IMPORT_LOCK_NAME
from tests.conftest import http_response, make_collection, send_bytes

COMMANDS = [
    ["capture", "http://127.0.0.1:9/"], ["cite", "a claim", "http://127.0.0.1:9/"], ["claims"], ["documents"],
    ["captures"], ["history", "http://127.0.0.1:9/"], ["show", "c0"], ["manifest"], ["keys", "show"], ["log"],
    ["verify"], ["bundle", "--all", "-o", "x.wacz"], ["doctor"], ["import", "README.md"],
]


def one_line(result) -> str:
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


# capture and cite make a collection only in the current folder, found by default (test_cli):
# a folder named by -C must be one already, for them as for every other command.
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_folder_that_is_not_a_collection(run_cli, tmp_path, command):
    (tmp_path / "README.md").write_text("x")
    result = run_cli(*command, "-C", tmp_path)
    assert result.exit_code == 2
    assert "is not an archiver collection" in one_line(result)
    assert not (tmp_path / "archiver.toml").exists()  # none made where a mistyped name pointed


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_wrong_path(run_cli, tmp_path, command):
    result = run_cli(*command, "-C", tmp_path / "no" / "such" / "folder")
    assert result.exit_code == 2
    assert "no/such/folder" in one_line(result)
    assert not (tmp_path / "no").exists()  # nothing made at a mistyped path


@pytest.mark.parametrize("command", [["capture", "http://127.0.0.1:9/"], ["cite", "a claim", "http://127.0.0.1:9/"]],
                         ids=lambda c: c[0])
def test_capture_into_a_named_folder_that_is_no_collection_says_how_to_make_one(run_cli, tmp_path, command):
    typo = tmp_path / "evidnce"
    result = run_cli(*command, env={"ARCHIVER_COLLECTION": str(typo)})
    line = one_line(result)
    assert result.exit_code == 2 and f"`archiver init {typo}`" in line and "leave out $ARCHIVER_COLLECTION" in line
    assert not typo.exists() and not list((tmp_path / "config").rglob("*.pem"))  # no folder, no key made


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_malformed_archiver_toml(run_cli, collection, command):
    (collection.root / "archiver.toml").write_text("[capture]\nconcurrency = 'many'\n")
    result = run_cli(*command, "-C", collection.root)
    assert result.exit_code == 2
    assert "archiver.toml" in one_line(result)


@pytest.mark.parametrize("table, line, unknown", [
    ("timestamp", 'authorities = ["https://tsa.example/tsr"]', "unknown section [timestamp] (known: [collection], "),
    ("catalogue", 'url = "postgresql://team@db.example/evidence"', "unknown section [catalogue]"),
    ("storag", 'url = "s3://team-bucket/evidence/"', "unknown section [storag]"),
    ("timestamps", 'authority = ["https://tsa.example/tsr"]', "unknown setting 'authority' in [timestamps] (known: "),
    ("collection", 'operater = "someone"', "unknown setting 'operater' in [collection]"),
    ("catalog", 'uri = "postgresql://team@db.example/evidence"', "unknown setting 'uri' in [catalog]")])
def test_a_misspelled_table_or_setting_of_archiver_toml_is_refused(run_cli, collection, table, line, unknown):
    # Read as absent, a misspelled [timestamp] left manifests unstamped, a [catalogue] or [storag]
    # a team's captures in the folder's own SQLite catalog and warcs/, each without a word.
    config = collection.root / "archiver.toml"
    text = config.read_text()
    config.write_text(text.replace(f"[{table}]\n", f"[{table}]\n{line}\n") if f"[{table}]\n" in text
                      else f"{text}\n[{table}]\n{line}\n")
    result = run_cli("manifest", "-C", collection.root)
    assert result.exit_code == 2
    assert unknown in one_line(result) and one_line(result).endswith("fix that line in archiver.toml")
    assert not list((collection.root / "manifests").glob("manifest-*"))


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_an_unknown_option(run_cli, collection, command):
    result = run_cli(*command, "-C", collection.root, "--no-such-option")
    assert result.exit_code == 2
    line = one_line(result)
    command_path = " ".join(command[:2]) if command[0] == "keys" else command[0]
    assert "No such option" in line and "--no-such-option" in line and f"{command_path} --help" in line, line


@pytest.mark.parametrize("command", [["manifest", "-o"], ["bundle", "--all", "-o"], ["keys", "export", "-o"]],
                         ids=lambda c: c[0])
def test_an_output_in_no_folder_is_refused_before_anything_is_signed(run_cli, collection, tmp_path, command):
    """Found out after the manifest was signed and logged, the user was told it failed."""
    logged = (collection.root / "custody.jsonl").read_bytes()
    result = run_cli(*command, tmp_path / "nowhere" / "out.file", "-C", collection.root)
    assert result.exit_code == 2
    assert f"there is no folder {tmp_path / 'nowhere'}: create it first" in one_line(result)
    assert (collection.root / "custody.jsonl").read_bytes() == logged
    assert not list((collection.root / "manifests").glob("manifest-*"))


@pytest.mark.parametrize("seconds", ["nan", "inf", "0"])
def test_a_timeout_that_is_no_number_of_seconds_is_refused(run_cli, collection, seconds):
    result = run_cli("capture", "http://127.0.0.1:9/", "--timeout", seconds, "-C", collection.root)
    assert result.exit_code == 2
    assert "--timeout" in one_line(result)


@pytest.mark.parametrize("command", [["manifest"], ["bundle", "--all", "-o", "x.wacz"], ["keys", "rotate"]],
                         ids=lambda c: c[0])
def test_an_unreadable_key(run_cli, collection, monkeypatch, command):
    monkeypatch.setenv("ARCHIVER_KEY", str(collection.root))  # a folder where the key should be
    result = run_cli(*command, "-C", collection.root)
    assert result.exit_code == 2 and "cannot read the signing key" in one_line(result)


READING = {"claims", "documents", "captures", "history", "show", "log", "keys", "doctor"}

# In a mount namespace of its own, a tmpfs holding a copy of FOLDER is mounted over it and filled
# to its last block; the command runs; then the space is freed and what the command left is
# copied back to FOLDER underneath, where the test goes on to look at it.
_ON_A_FULL_DISK = """set -e
folder=$1 underneath=$2; shift 2
mount --bind "$folder" "$underneath"
mount -t tmpfs -o "size=$(( $(du -sk "$folder" | cut -f1) + 1024 ))k" tmpfs "$folder"
cp -a "$underneath/." "$folder/"
cat /dev/zero > "$folder/.filler" 2>/dev/null || true
set +e; "$@"; status=$?; set -e
rm "$folder/.filler"
find "$underneath" -mindepth 1 -delete
cp -a "$folder/." "$underneath/"
exit $status"""


def mount_namespace() -> list[str]:
    """A mount namespace of one's own: as root, or as root of a user namespace of one's own."""
    return ["unshare", "--mount"] if os.geteuid() == 0 else ["unshare", "--map-root-user", "--mount"]


@pytest.fixture
def full_disk(tmp_path, tmp_path_factory):
    """Runs `archiver ARGS` with the test's folder (collections, keys, outputs) on a disk with
    not one block free. A real full disk, not a patched function: os.write, buffered files,
    zipfile, SQLite's C code and openssl all meet ENOSPC, as they would (a patch of os.write
    reaches only the first of them)."""
    underneath = tmp_path_factory.mktemp("underneath")
    if subprocess.run([*mount_namespace(), "mount", "-t", "tmpfs", "tmpfs", str(underneath)]).returncode:
        pytest.skip("no mount namespace with a tmpfs here: no way to fill a disk without filling the machine's")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}

    def run(*args) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "archiver", *map(str, args)]
        return subprocess.run([*mount_namespace(), "sh", "-c", _ON_A_FULL_DISK, "sh", tmp_path, underneath, *command],
                              env=env, capture_output=True, text=True)
    return run


def files_in(folder: Path) -> dict[Path, bytes]:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def whole_entries(log: Path) -> list[dict]:
    data = log.read_bytes()
    assert data.endswith(b"\n"), data[-200:]
    entries = [parse_entry(line) for line in data.splitlines()]
    assert None not in entries, data[-1000:]
    return entries


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_full_disk_is_one_line_and_loses_nothing(run_cli, raw_server, tmp_path, full_disk, command):
    """No space is left on the disk while the command runs: a command that only reads is
    unaffected, `verify` still gives its verdict, any other says so in one line (exit 3). None
    leaves a partial file, in `tmp/` or anywhere, or a new catalog row; afterwards `doctor
    --fix` and `verify` find a whole collection, nothing lost."""
    from tests.conftest import http_response, send_bytes

    collection = make_collection(tmp_path / "collection")
    server = raw_server({"/a": send_bytes(http_response(b"kept"))})
    assert run_cli("cite", "-C", collection.root, "a claim", server.url("/a")).exit_code == 0
    assert run_cli("manifest", "-C", collection.root).exit_code == 0
    other = make_collection(tmp_path / "other")
    assert run_cli("capture", "-C", other.root, server.url("/a")).exit_code == 0
    captured = json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)
    arguments = {"show": ["show", captured[0]["id"]], "import": ["import", next(other.storage.folder.glob("*.warc.gz"))],
                 "bundle": ["bundle", "--all", "-o", tmp_path / "out.wacz"]}.get(command[0], command)
    log = collection.root / "custody.jsonl"
    before = files_in(tmp_path)

    result = full_disk(*arguments, "-C", collection.root)
    assert "Traceback" not in result.stderr
    if command[0] in READING:
        assert result.returncode == 0, result.stderr
    elif command[0] == "verify":
        assert result.returncode == 0 and "Every check above passed." in result.stdout, result.stdout
    else:
        lines = result.stderr.splitlines()
        assert result.returncode == 3 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert "No space left on device" in lines[0] and "doctor --fix" in lines[0], lines[0]
    after = files_in(tmp_path)
    locks = {collection.root / EXPORT_LOCK_NAME, collection.root / IMPORT_LOCK_NAME}  # empty files, held in turn
    assert not [path for path in collection.tmp.iterdir() if path not in locks]
    # Nothing new but the files SQLite makes on opening the catalog, and no commit in its log.
    wal, shm = Path("collection/catalog.sqlite-wal"), Path("collection/catalog.sqlite-shm")
    assert set(after) - set(before) <= {wal, shm} and after.get(wal, b"") == b""
    logged = [e["event"] for e in whole_entries(log)[len(before[log.relative_to(tmp_path)].splitlines()):]]
    if command[0] == "verify":  # its run is logged if the log's last block had room for the whole entry
        assert logged == ["verification run"] or (
            logged == [] and "Not recorded in the custody log: the log cannot be written" in result.stdout), logged
    else:
        assert logged == []
    assert {p for p in before if after.get(p) != before[p]} <= ({log.relative_to(tmp_path)} if logged else set())
    assert run_cli("doctor", "-C", collection.root, "--fix").exit_code == 0
    report = json.loads(run_cli("verify", "-C", collection.root, "--json").stdout)
    assert report["ok"], report["failures"]
    assert captured == json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)


def test_an_entry_the_full_disk_has_room_for_only_part_of_is_not_written(run_cli, tmp_path, full_disk):
    """The custody log's last block has room for less than one more entry: `verify` gives its
    verdict and says its run went unrecorded, and the log is as it was, not ending in half an
    entry that every later verification would fail on."""
    collection = make_collection(tmp_path / "collection")
    assert run_cli("captures", "-C", collection.root).exit_code == 0  # the catalog is made on first use
    log = custody_log(collection, open_signing_key(collection, None, None))
    room, block = 100, os.sysconf("SC_PAGESIZE")  # tmpfs gives a file its space a page at a time
    size = log.path.stat().st_size
    entry = len(log.append("test padding", {"padding": ""}).line) + 1
    padding = (-(size + 2 * entry + room)) % block
    log.append("test padding", {"padding": "x" * padding})
    assert block - log.path.stat().st_size % block == room
    before = log.path.read_bytes()

    result = full_disk("verify", "-C", collection.root)
    assert result.returncode == 0 and "Every check above passed." in result.stdout, result.stdout
    assert "Not recorded in the custody log: the log cannot be written (No space left on device)" in result.stdout
    assert log.path.read_bytes() == before
    assert json.loads(run_cli("verify", "-C", collection.root, "--json").stdout)["ok"]


# -- a read-only collection: a write-protected disk, a read-only mount ----------------------

def run_on_read_only(folder, *args: str, env: dict) -> subprocess.CompletedProcess:
    """`archiver ARGS` with `folder` read-only: really so, through a read-only bind mount in a
    mount namespace of its own (root ignores file modes), or by file modes for another user."""
    command = [sys.executable, "-m", "archiver", *map(str, args)]
    if os.geteuid() != 0:
        return subprocess.run(command, env=env, capture_output=True, text=True)
    script = 'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" "$1" && shift && exec "$@"'
    return subprocess.run(["unshare", "--mount", "sh", "-c", script, "sh", str(folder), *command],
                          env=env, capture_output=True, text=True)


@pytest.fixture
def read_only_collection(run_cli, raw_server, collection, tmp_path):
    """A collection with a capture, a claim and a manifest, then made read-only; yields a
    runner and the collection. Afterwards, every file must be as it was."""
    from tests.conftest import http_response, send_bytes

    if os.geteuid() == 0 and (shutil.which("unshare") is None or subprocess.run(
            ["unshare", "--mount", "sh", "-c", 'mount --bind "$1" "$1"', "sh", str(tmp_path)]).returncode):
        pytest.skip("running as root without mount namespaces: no way to make a folder read-only here")
    server = raw_server({"/page": send_bytes(http_response(b"evidence"))})
    assert run_cli("cite", "-C", collection.root, "the page says evidence", server.url("/page")).exit_code == 0
    assert run_cli("manifest", "-C", collection.root).exit_code == 0
    before = {p: p.read_bytes() for p in sorted(collection.root.rglob("*")) if p.is_file()}
    key = (tmp_path / "config").rglob("*.pem")
    key_before = {p: p.read_bytes() for p in key}
    if os.geteuid() != 0:
        for path in [collection.root, *collection.root.rglob("*")]:
            path.chmod(path.stat().st_mode & ~0o222)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    yield (lambda *args: run_on_read_only(collection.root, *args, "-C", collection.root, env=env)), server
    if os.geteuid() != 0:
        for path in [collection.root, *collection.root.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)
    assert {p: p.read_bytes() for p in sorted(collection.root.rglob("*")) if p.is_file()} == before
    assert {p: p.read_bytes() for p in key_before} == key_before  # the signing key still in place, unchanged
    assert not [p for p in (tmp_path / "config").rglob("*") if "retired" in p.name or "rotating" in p.name]


def test_a_read_only_collection_is_read_and_verified(read_only_collection):
    run, _ = read_only_collection
    result = run("verify", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and report["failures"] == [] and sum(report["passed"].values()) > 10
    assert not report["recorded_in_custody_log"] and "cannot be written" in report["not_recorded_because"]
    captures = json.loads(run("captures", "--json").stdout)
    assert [c["outcome"] for c in captures] == ["ok"]
    claims = json.loads(run("claims", "--json").stdout)
    assert claims[0]["text"] == "the page says evidence"
    for command in (["documents"], ["log"], ["keys", "show"], ["show", captures[0]["id"]], ["doctor"]):
        result = run(*command)
        assert result.returncode == 0 and "Traceback" not in result.stderr, (command, result.stderr)


@pytest.mark.parametrize("command", [["capture", "http://127.0.0.1:9/"], ["cite", "another", "http://127.0.0.1:9/b"],
                                     ["keys", "rotate"], ["import", "README.md"]], ids=lambda c: c[0])
def test_a_change_to_a_read_only_collection_is_one_line_and_changes_nothing(read_only_collection, run_cli, tmp_path,
                                                                            command):
    run, server = read_only_collection
    if command[0] == "import":
        other = make_collection(tmp_path / "other")
        assert run_cli("capture", "-C", other.root, server.url("/page")).exit_code == 0
        command = ["import", str(next(other.storage.folder.glob("*.warc.gz")))]
    result = run(*command)
    assert result.returncode == 3, (result.returncode, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in result.stderr, result.stderr
    assert "read-only" in lines[0] or "Permission denied" in lines[0], lines[0]


def test_a_bundle_cut_short_by_the_disk_leaves_the_earlier_file_whole(run_cli, raw_server, collection, monkeypatch,
                                                                      tmp_path):
    import zipfile

    from tests.conftest import http_response, send_bytes

    server = raw_server({"/a": send_bytes(http_response(b"kept"))})
    assert run_cli("cite", "-C", collection.root, "a claim", server.url("/a")).exit_code == 0
    output = tmp_path / "out.wacz"
    assert run_cli("bundle", "-C", collection.root, "--all", "-o", output).exit_code == 0
    earlier = output.read_bytes()
    real_writestr, written = zipfile.ZipFile.writestr, []

    def filling_up(self, *args, **kwargs):
        written.append(1)
        if len(written) == 3:  # the disk fills up partway through the archive
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_writestr(self, *args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(zipfile.ZipFile, "writestr", filling_up)
        result = run_cli("bundle", "-C", collection.root, "--all", "-o", output)
    assert result.exit_code == 3 and "No space left on device" in one_line(result)
    assert output.read_bytes() == earlier  # never half a bundle at the path the user named
    assert sorted(p.name for p in tmp_path.iterdir()) == ["collection", "config", "out.wacz"]


@pytest.mark.parametrize("loss", ["emptied", "deleted"])
@pytest.mark.parametrize("command", [["claims"], ["manifest"], ["doctor", "--fix"], ["verify"],
                                     ["capture", "http://127.0.0.1:9/"]], ids=lambda c: c[0])
def test_a_lost_catalog_is_refused_not_started_afresh(run_cli, raw_server, tmp_path, loss, command):
    """catalog.sqlite emptied (a failed copy, a truncating crash) or deleted while the collection
    holds evidence: a fresh catalog would list none of it, so a listing would say "No claims",
    `manifest` would write a new manifest-1.json over the signed one and `doctor --fix` would set
    the real manifests aside as leftovers. Each command refuses in one line instead, and changes
    nothing."""
    from tests.conftest import http_response, send_bytes

    collection = make_collection(tmp_path / "collection")
    server = raw_server({"/a": send_bytes(http_response(b"kept"))})
    assert run_cli("cite", "-C", collection.root, "a claim", server.url("/a")).exit_code == 0
    assert run_cli("manifest", "-C", collection.root).exit_code == 0
    collection.catalog_path.unlink()
    for leftover in collection.root.glob("catalog.sqlite-*"):
        leftover.unlink()
    if loss == "emptied":
        collection.catalog_path.write_bytes(b"")
    before = files_in(collection.root)
    result = run_cli(*command, "-C", collection.root)
    assert result.exit_code == 2, result.output
    line = one_line(result)
    assert "catalog.sqlite" in line and "backup" in line, line
    assert files_in(collection.root) == before


def test_a_run_the_disk_stops_lists_what_it_stored_before_the_error(run_cli, collection, raw_server, monkeypatch):
    """A full disk ends a run with one line (exit 3); the captures stored before it are listed
    too, so that no one takes them for lost, with what to run next."""
    first_stored = threading.Event()

    def once_the_first_is_stored(conn, request):  # so that /a is stored on its own, before /b arrives
        first_stored.wait(60)
        conn.sendall(http_response(b"second"))
    server = raw_server({"/a": send_bytes(http_response(b"first")), "/b": once_the_first_is_stored})
    real_store = CaptureRun._store

    def store_until_full(run, results):
        if any(result.url.endswith("/b") for result in results):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        try:
            return real_store(run, results)
        finally:
            first_stored.set()
    monkeypatch.setattr(CaptureRun, "_store", store_until_full)
    result = run_cli("capture", "-C", collection.root, "--concurrency", "1", server.url("/a"), server.url("/b"))
    assert result.exit_code == 3
    [line] = result.stderr.splitlines()
    assert line.startswith("error: No space left on device")
    assert "Stored before the error below: 1 capture(s)" in result.stdout
    assert f"complete  {server.url('/a')}" in result.stdout and server.url("/b") not in result.stdout
    assert "--resume for the 1 not captured" in result.stdout
    first_stored.clear()
    as_json = run_cli("capture", "-C", collection.root, "--json", "--concurrency", "1", server.url("/a"),
                      server.url("/b"))
    assert as_json.exit_code == 3 and json.loads(as_json.stderr)["exit_code"] == 3
    stored = json.loads(as_json.stdout)
    assert [row["url"] for row in stored["stored_before_error"]] == [server.url("/a")]
    assert stored["not_captured"] == 1


def test_a_run_whose_catalog_fails_before_it_stored_anything_says_to_resume(run_cli, collection, raw_server,
                                                                             monkeypatch):
    """The catalog server lost at the first store: nothing stored, and every URL left is for --resume."""
    from archiver.errors import StorageProblem

    def catalog_gone(run, results):
        raise StorageProblem("the catalog server failed: server closed the connection unexpectedly",
                             "check that PostgreSQL is running and reachable, then run `archiver doctor`")
    monkeypatch.setattr(CaptureRun, "_store", catalog_gone)
    server = raw_server({"/a": send_bytes(http_response(b"first")), "/b": send_bytes(http_response(b"second"))})
    result = run_cli("capture", "-C", collection.root, server.url("/a"), server.url("/b"))
    assert result.exit_code == 3
    [line] = result.stderr.splitlines()
    assert line.startswith("error: the catalog server failed")
    assert "Stored before" not in result.stdout
    assert "the same `archiver capture` with --resume for the 2 not captured" in result.stdout, result.stdout


@pytest.mark.parametrize("command", [["capture", ""], ["init", ""], ["claims", "--url", ""], ["claims", "--url="],
                                     ["manifest", "-o", ""]], ids=" ".join)
def test_an_empty_argument_is_refused_before_any_work(run_cli, collection, tmp_path, monkeypatch, command):
    # Each read "" as something: capture walked the current folder, init made a collection in it,
    # --url "" listed every claim unfiltered, and -o "" failed on a folder after the manifest was signed.
    monkeypatch.chdir(tmp_path)
    log = (collection.root / "custody.jsonl").read_bytes()
    result = run_cli(*command, "-C", collection.root)
    assert result.exit_code == 2 and "empty" in one_line(result)
    assert (collection.root / "custody.jsonl").read_bytes() == log and not (tmp_path / "archiver.toml").exists()


@pytest.mark.parametrize("command, said", [
    (["cite", "-C", "{root}", "", "http://127.0.0.1:9/"], "cite: the argument CLAIM_TEXT is empty"),
    (["cite", "-C", "{root}", "A claim", ""], "cite: the argument URLS is empty"),
    (["capture", "-C", "{root}", "http://127.0.0.1:9/", ""], "capture: the argument TARGETS is empty"),
    (["keys", "export", "-C", "{root}", "-o", ""], "keys export: -o is given an empty value"),
    (["-C", "", "claims"], ": -C is given an empty value")], ids=lambda c: " ".join(c) if isinstance(c, list) else "")
def test_an_empty_argument_is_named_with_its_commands_help(run_cli, collection, command, said):
    # Was "the argument after '/…/fresh' is empty …; see 'archiver --help'".
    result = run_cli(*[part.format(root=collection.root) for part in command])
    line = one_line(result)
    help_of = said.partition(":")[0]
    assert result.exit_code == 2 and said in line and line.endswith(f"{help_of} --help'"), line


@pytest.mark.parametrize("option", ["--nonsense=", "--url="])
def test_an_empty_value_of_an_option_the_command_has_not_is_no_such_option(run_cli, collection, option):
    # Was "--nonsense is given an empty value" (capture has no --url either).
    result = run_cli("capture", "-C", collection.root, "http://127.0.0.1:9/", option)
    line = one_line(result)
    assert result.exit_code == 2 and f"No such option '{option[:-1]}'" in line and "empty" not in line, line


@pytest.fixture
def captured_report(run_cli, collection, raw_server):
    """A collection holding a capture of the /report page and a claim citing it; its host:port."""
    server = raw_server({"/report": send_bytes(http_response(b"the report"))})
    result = run_cli("cite", "-C", collection.root, "The report says so", server.url("/report"))
    assert result.exit_code == 0, result.output
    return server.url("/report").removeprefix("http://").removesuffix("/report")


@pytest.mark.parametrize("command", [["history", "{host}/report"], ["history", "ftp://{host}/report"],
                                     ["captures", "--url", "{host}/report"], ["claims", "--url", "{host}/report"],
                                     ["claims", "--url", "not a url"], ["bundle", "--url", "{host}/report", "-o", "b.wacz"],
                                     ["bundle", "--url", "http://[{host}]/report", "-o", "b.wacz"]], ids=" ".join)
def test_a_url_looked_up_is_refused_as_capture_refuses_it(run_cli, collection, captured_report, tmp_path, monkeypatch,
                                                           command):
    # Each found nothing ("No captures of … yet.", "No claims.", bundle's "capture its URLs first")
    # of a URL whose http:// form was captured and cited.
    monkeypatch.chdir(tmp_path)
    log = (collection.root / "custody.jsonl").read_bytes()
    result = run_cli(*[part.format(host=captured_report) for part in command], "-C", collection.root)
    line = one_line(result)
    assert result.exit_code == 2 and "is not an http(s) URL: " in line, line
    assert line.endswith("give a URL with its scheme (https://…)")
    assert "does not appear" not in line and "Invalid IPv6" not in line  # urllib's words, not the user's
    assert (collection.root / "custody.jsonl").read_bytes() == log and not (tmp_path / "b.wacz").exists()


@pytest.mark.parametrize("url, problem", [
    ("http://alice:s3cret@example.org/", "would keep them in signed evidence; give the URL without them"),
    ("http://example.org/a\nb", "a line break or a control character: give the URL as one unbroken line"),
    ("http://[]/", "its host is not valid: square brackets in a host must enclose a whole IPv6 address (http://[2001:db8::1]/)"),
    ("http://[::1/", "its host is not valid: square brackets in a host must enclose a whole IPv6 address (http://[2001:db8::1]/)"),
    ("http://example.org:99999/", "its port is not a number from 0 to 65535"),
    ("http:///path", "it names no host (as example.org in https://example.org/page)")])
def test_a_url_capture_refuses_is_told_what_is_wrong_with_it_alone(run_cli, collection, url, problem):
    # Each was followed by "; give an http:// or https:// URL", which it was; and urllib's
    # "'' does not appear to be an IPv4 or IPv6 address" named no part of the URL.
    for command in (["capture", url], ["cite", "A claim", url]):
        result = run_cli(*command, "-C", collection.root)
        line = one_line(result)
        assert result.exit_code == 2 and line.endswith(problem), line
        assert "s3cret" not in line


@pytest.mark.parametrize("option, value", [("--operator", "bad\nline"), ("--name", "two\rlines"),
                                           ("--operator", "desk\x1b[2Jngo")], ids=lambda v: repr(v))
def test_init_refuses_a_name_or_operator_holding_a_line_break_or_control(run_cli, tmp_path, option, value):
    # Each was written into every WARC's warcinfo: `operator: bad`, then a bare `line`.
    result = run_cli("init", tmp_path / "c", option, value)
    line = one_line(result)
    assert result.exit_code == 2 and f"({option}) holds a line break or another control character" in line
    assert not (tmp_path / "c").exists() and not list((tmp_path / "config").rglob("*.pem"))


@pytest.mark.parametrize("field", ["operator", "name"])
def test_a_name_or_operator_broken_over_lines_in_archiver_toml_is_refused(run_cli, collection, raw_server, field):
    config = collection.root / "archiver.toml"
    config.write_text(re.sub(rf'(?m)^{field} = "[^"]*"', f'{field} = "bad\\\\nline"', config.read_text()))
    result = run_cli("capture", "-C", collection.root, raw_server().url("/"))
    line = one_line(result)
    assert result.exit_code == 2 and f"the collection's {field} 'bad\\nline'" in line and "[collection]" in line
    assert not list(collection.storage.folder.glob("*.warc.gz"))


@pytest.mark.parametrize("inside", ["seeds/sub", "sub"])
def test_init_inside_a_collection_is_refused_naming_it(run_cli, collection, inside):
    result = run_cli("init", collection.root / inside)
    line = one_line(result)
    assert result.exit_code == 2 and f"is inside the collection {collection.root}; use that one" in line
    assert not (collection.root / inside).exists()


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_collection_named_by_the_environment_that_is_none_is_refused_naming_the_variable(run_cli, tmp_path, command):
    # Was "pass -C with an existing collection folder" to a user who passed no -C.
    for named in (tmp_path / "nosuch", tmp_path):
        result = run_cli(*command, env={"ARCHIVER_COLLECTION": str(named)})
        line = one_line(result)
        assert result.exit_code == 2 and f"{named} is not " in line and "($ARCHIVER_COLLECTION)" in line, line
        assert "leave out $ARCHIVER_COLLECTION" in line and "pass -C" not in line


def test_a_fifo_given_to_capture_is_said_to_be_no_regular_file(run_cli, collection, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.mkfifo(tmp_path / "fifo.txt")
    result = run_cli("capture", "-C", collection.root, "fifo.txt")
    line = one_line(result)  # was "no such file, folder or URL: fifo.txt", of a file that is there
    assert result.exit_code == 2 and "fifo.txt is not a regular file (a FIFO, a socket or a device)" in line, line


def test_an_archiver_toml_that_is_a_folder_is_said_to_be_one(run_cli, collection):
    config = collection.root / "archiver.toml"
    config.rename(collection.root / "archiver.toml.bak")
    config.mkdir()
    result = run_cli("captures", "-C", collection.root)
    line = one_line(result)  # was "not an archiver collection (no archiver.toml)"
    assert result.exit_code == 2 and f"{config} is a folder, not the collection's settings file" in line, line
