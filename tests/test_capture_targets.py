"""What `archiver capture` is given: folders walked for the writer's documents, never the
collection's own files; a timeout it can keep."""

from __future__ import annotations

from archiver.store.collection import Collection
from tests.conftest import allow_networks, http_response, send_bytes


def test_capturing_the_collections_own_folder_again_reads_only_the_documents(tmp_path, run_cli, raw_server, monkeypatch):
    # `archiver capture .` in a folder of documents makes the collection there; run again, the
    # folder now holds custody.jsonl (a .jsonl, as claim sheets are), which is the log, not a sheet.
    server = raw_server({"/a": send_bytes(http_response(b"a"))})
    (tmp_path / "notes.md").write_text(f"A claim citing {server.url('/a')} here.\n")
    monkeypatch.chdir(tmp_path)
    first = run_cli("capture", ".")
    assert Collection.exists(tmp_path) and first.exit_code == 1  # loopback refused until allowed
    allow_networks(tmp_path, "127.0.0.1/32")
    again = run_cli("capture", ".")
    assert again.exit_code == 0, again.output
    assert "custody.jsonl" not in again.output
    assert "Read notes.md: 1 claim(s) citing 1 URL(s)" in again.stdout


def test_a_timeout_no_wait_can_be_set_to_is_refused_before_anything_is_captured(run_cli, raw_server, collection):
    # 1e308 seconds overflowed the platform's clock in the browser's wait: the URL was then
    # recorded as a failed capture, its reason "timestamp out of range for platform time_t".
    server = raw_server({"/a": send_bytes(http_response(b"a"))})
    result = run_cli("capture", "-C", collection.root, "--timeout", "1e308", server.url("/a"))
    assert result.exit_code == 2 and "--timeout" in result.stderr and result.stderr.count("\n") == 1
    assert not server.requests and run_cli("captures", "-C", collection.root, "--json").stdout.strip() == "[]"


def test_a_timeout_in_archiver_toml_that_means_never_is_a_malformed_setting(run_cli, raw_server, collection):
    server = raw_server({"/a": send_bytes(http_response(b"a"))})
    config = collection.root / "archiver.toml"
    original = config.read_text()
    for value in ("nan", "inf", "1e300"):  # nan and inf are TOML floats; nan made every deadline never come
        config.write_text(original.replace("timeout = 60.0", f"timeout = {value}"))
        result = run_cli("capture", "-C", collection.root, server.url("/a"))
        assert result.exit_code == 2 and "timeout must be a number of seconds" in result.stderr, (value, result.output)
    assert not server.requests
