"""The command line as a user meets it: set-up, output, --json, exit codes, one-line errors."""

from __future__ import annotations

import json
import re

from archiver.store.collection import Collection
from tests.conftest import http_response, send_bytes

CATALOG_BACKENDS = ("sqlite", "postgresql")  # every test with a collection runs on both (conftest)


def test_init_creates_the_layout(tmp_path, run_cli):
    result = run_cli("init", tmp_path / "c", "--name", "Belarus claims", "--operator", "desk@ngo")
    assert result.exit_code == 0, result.output
    for sub in ("seeds", "warcs", "manifests", "keys"):
        assert (tmp_path / "c" / sub).is_dir()
    collection = Collection.open(tmp_path / "c")
    assert (collection.config.name, collection.config.operator) == ("Belarus claims", "desk@ngo")
    again = run_cli("init", tmp_path / "c")
    assert again.exit_code == 2 and "already a collection" in again.stderr


def test_a_folder_that_is_not_a_collection_gets_one_line_naming_the_fix(tmp_path, run_cli):
    for command in (["captures"], ["show", "x"]):
        result = run_cli(*command, "-C", tmp_path)
        assert result.exit_code == 2
        assert result.stderr.strip().count("\n") == 0
        assert "is not an archiver collection" in result.stderr and "archiver init" in result.stderr
        assert "Traceback" not in result.output


def test_collection_from_environment(tmp_path, run_cli, collection):
    result = run_cli("captures", "--json", env={"ARCHIVER_COLLECTION": str(collection.root)})
    assert result.exit_code == 0 and json.loads(result.stdout) == []


def test_first_capture_creates_the_collection_and_says_so(tmp_path, run_cli, raw_server, monkeypatch):
    server = raw_server({"/": send_bytes(http_response(b"hi"))})
    root = tmp_path / "new"
    root.mkdir()
    monkeypatch.chdir(root)  # as the README's set-up runs `archiver capture seeds/`: no -C
    result = run_cli("capture", server.url("/"))
    assert "Created a new collection" in result.stdout
    assert Collection.exists(root)
    # loopback is refused by default, so this first capture fails with the reason and exit 1
    assert result.exit_code == 1 and "127.0.0.1 is a loopback address" in result.stdout


def test_capture_documents_folder_dedupes_urls_and_reports_json(tmp_path, run_cli, raw_server, collection):
    server = raw_server({"/a": send_bytes(http_response(b"a")), "/b": send_bytes(http_response(b"b"))})
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "one.txt").write_text(f"date 2022-02-27 A claim\n\nSee {server.url('/a')}, and ({server.url('/b')}).\n")
    (docs / "two.md").write_text(f"[link]({server.url('/a')}#frag) and {server.url('/a').upper().replace('/A', '/a')}\n")
    result = run_cli("capture", "-C", collection.root, docs, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["counts"] == {"ok": 2, "truncated": 0, "failed": 0}
    assert sorted(c["url"] for c in report["captures"]) == [server.url("/a"), server.url("/b")]
    assert len(report["documents"]) == 2
    assert len(server.requests) == 2  # /a cited three times, fetched once


def test_exit_1_when_some_fail_and_the_rest_are_saved(run_cli, raw_server, collection):
    server = raw_server({"/ok": send_bytes(http_response(b"fine"))})
    result = run_cli("capture", "-C", collection.root, server.url("/ok"), "http://10.0.0.1/")
    assert result.exit_code == 1
    assert "1 captured: 1 content; 1 failed" in result.stdout
    listing = json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)
    assert {(c["url"], c["outcome"]) for c in listing} == {(server.url("/ok"), "ok"), ("http://10.0.0.1/", "failed")}


def test_options_override_the_collection_settings(run_cli, raw_server, collection):
    def endless(conn, request):
        conn.sendall(b"HTTP/1.1 200 OK\r\n\r\n")
        while True:
            conn.sendall(b"y" * 65536)
    server = raw_server({"/big": endless})
    result = run_cli("capture", "-C", collection.root, server.url("/big"), "--max-size", "50kB", "--json")
    assert result.exit_code == 0
    [row] = json.loads(result.stdout)["captures"]
    assert (row["outcome"], row["truncated"], row["response_length"]) == ("truncated", "length", 50_000)


def test_bad_usage_exits_2_with_one_line(tmp_path, run_cli, collection):
    """What is wrong and how to fix it, in one line: the usage errors click finds as well as ours."""
    cases = [
        (["capture", "-C", collection.root, "ftp://example.org/file"], ["unsupported scheme 'ftp'"]),
        (["capture", "-C", collection.root, str(tmp_path / "missing.txt")], ["no such file, folder or URL"]),
        (["capture", "-C", collection.root, "data:text/html,<h1>hi</h1>"],
         ["cannot capture data:text/html,<h1>hi</h1>: a data: URL; only http and https URLs are captured"]),
        (["capture", "-C", collection.root, "mailto:someone@example.org"], ["a mailto: URL; only http and https"]),
        # A host and port with no scheme is no scheme of its own: not "a example.org: URL".
        (["capture", "-C", collection.root, "example.org:8080/page"], ["no such file, folder or URL: example.org:8080"]),
        (["capture", "-C", collection.root, "localhost:8080"], ["no such file, folder or URL: localhost:8080"]),
        # A URL typed without its scheme, with a user name and password: they are never echoed.
        (["capture", "-C", collection.root, "user:s3cret@example.org/x"], ["cannot capture ***@example.org/x"]),
        (["capture", "-C", collection.root, "http://x/", "--max-size", "lots"],
         ["capture: Invalid value for '--max-size': not a size: 'lots'", "capture --help"]),
        (["capture", "-C", collection.root, "http://x/", "--bogus"], ["capture: No such option", "--bogus", "capture --help"]),
        (["capture", "-C", collection.root], ["capture: Missing argument", "capture --help"]),
        (["no-such-command"], ["No such command 'no-such-command'", "--help"]),
        (["show", "-C", collection.root, "nope"], ["no claim or capture with id 'nope'"]),
    ]
    for args, fragments in cases:
        result = run_cli(*args)
        assert result.exit_code == 2, (args, result.output)
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, result.stderr)
        assert all(fragment in lines[0] for fragment in fragments), (args, lines[0])
        assert "Traceback" not in result.output


def test_malformed_config_is_named(run_cli, collection):
    config = collection.root / "archiver.toml"
    original = config.read_text()
    config.write_text(original.replace("[capture]\n", "[capture]\nconcurrency = -3\n"))
    result = run_cli("captures", "-C", collection.root)
    assert result.exit_code == 2 and "concurrency must be a whole number" in result.stderr
    config.write_text(re.sub(r"(?m)^warc_age = .*$", 'warc_age = "soon"', original))
    result = run_cli("captures", "-C", collection.root)
    assert result.exit_code == 2 and "warc_age must be a number of seconds above 0" in result.stderr
    config.write_text("[capture\n")
    result = run_cli("captures", "-C", collection.root)
    assert result.exit_code == 2 and "not valid TOML" in result.stderr


def test_captures_and_show(run_cli, raw_server, collection):
    server = raw_server({"/p": send_bytes(http_response(b"page"))})
    run_cli("capture", "-C", collection.root, server.url("/p"))
    [row] = json.loads(run_cli("captures", "-C", collection.root, "--url", server.url("/p") + "#x", "--json").stdout)
    assert row["http_status"] == 200 and row["outcome"] == "ok"
    text = run_cli("captures", "-C", collection.root)
    assert row["id"] in text.stdout
    shown = run_cli("show", "-C", collection.root, row["id"][:18], "--json")
    assert shown.exit_code == 0
    detail = json.loads(shown.stdout)
    assert [r["role"] for r in detail["records"]] == ["request", "response", "metadata", "attestation"]
    assert detail["warc"]["closed_at"] and detail["records"][1]["record_id"] == row["response_record_id"]
    human = run_cli("show", "-C", collection.root, row["id"]).stdout
    assert "server IP:" in human and "127.0.0.1" in human and row["response_record_id"] in human


def test_help_is_useful(run_cli):
    for command in ("capture", "captures", "show", "init"):
        result = run_cli(command, "--help")
        assert result.exit_code == 0 and "-C, --collection" in result.stdout and "--json" in result.stdout
    assert "--allow-private" in run_cli("capture", "--help").stdout
