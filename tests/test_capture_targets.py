"""What `archiver capture` reads when given folders and arguments: the writer's documents,
never the collection's own files, and no argument that names nothing."""

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
