"""CLI habits a user brings from git, make and tar: `archiver -C DIR COMMAND`, the collection
found upwards, tables that never break an id or URL and pipe as tab-separated lines, user text
printed literally, --json on every command and errors in JSON under it, honest small messages."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import click
import pytest

from archiver.cli import COMMANDS, cli
from archiver.cli.common import working
from archiver.store.collection import Collection
from tests.conftest import allow_networks, http_response, make_collection, send_bytes

ANSI = re.compile(r"\x1b\[[0-9;]*m")
TERMINAL_80 = {"TTY_COMPATIBLE": "1", "COLUMNS": "80", "NO_COLOR": "1"}
DOC = "[bold]doc.md"  # a file name cannot hold the closing tag's slash
TRICKY = ["[the Daily Loop]", "[red]nothing[/red]", "[bold]x[/]"]  # the first is a Markdown link's text


@pytest.fixture
def tricky(tmp_path, run_cli, raw_server, collection):
    """A collection whose document, claims, URLs and server texts all look like rich markup."""
    server = raw_server({"/a[red]b[/red]": send_bytes(http_response(b"<title>[red]T[/red]</title>")),
                         "/long-" + "x" * 70: send_bytes(http_response(b"long"))})
    allow_networks(collection.root, "127.0.0.1/32")
    document = tmp_path / DOC
    document.write_text(f"{TRICKY[0]}({server.url('/a[red]b[/red]')}) is cited\n\n"
                        f"{TRICKY[1]} and {TRICKY[2]} {server.url('/long-' + 'x' * 70)}\n")
    result = run_cli("capture", "-C", collection.root, document, "--json")
    assert result.exit_code == 0, result.output
    return collection, server


# -- 1. archiver -C DIR COMMAND, and the collection found upwards -----------------------

def test_dash_c_before_the_command_runs_as_if_started_there(run_cli, collection, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_cli("-C", collection.root, "captures", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []
    assert Path.cwd() == tmp_path  # the folder is the process's again once the command is done


def test_a_collection_is_found_from_its_subfolders(run_cli, tricky, monkeypatch):
    collection, _ = tricky
    monkeypatch.chdir(collection.root / "warcs")
    result = run_cli("claims", "--json")
    assert result.exit_code == 0, result.stderr
    assert len(json.loads(result.stdout)) == 2
    assert not (collection.root / "warcs" / "archiver.toml").exists()
    result = run_cli("-C", collection.root / "manifests", "documents", "--json")
    assert result.exit_code == 0 and len(json.loads(result.stdout)) == 1


def test_capture_outside_any_collection_still_creates_one_here(run_cli, tmp_path, monkeypatch, raw_server):
    here = tmp_path / "fresh"
    here.mkdir()
    monkeypatch.chdir(here)
    result = run_cli("capture", raw_server().url("/"), "--json")
    assert json.loads(result.stdout)["created_collection"] is True
    assert Collection.exists(here)


def test_an_explicit_collection_is_taken_as_given(run_cli, collection, monkeypatch):
    inner = collection.root / "seeds"
    monkeypatch.chdir(collection.root)
    result = run_cli("captures", "-C", inner)
    assert result.exit_code == 2 and "is not an archiver collection" in result.stderr


# -- 2. tables: whole ids and URLs on a terminal, tab-separated lines in a pipe ----------

LISTINGS = [["claims"], ["documents"], ["captures"], ["log"], ["keys", "show"]]


@pytest.mark.parametrize("listing", LISTINGS, ids=" ".join)
def test_a_piped_listing_is_tab_separated_one_row_per_line(run_cli, tricky, listing):
    collection, _ = tricky
    result = run_cli(*listing, "-C", collection.root)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header = lines[0].split("\t")
    # Every line a row of the table: a count or a note beside it goes to stderr.
    assert len(header) > 2 and len(lines) > 1 and all(len(line.split("\t")) == len(header) for line in lines[1:])
    assert not any(set(line) <= set("─━ ") and line for line in lines)  # no rules drawn
    assert max(len(line) for line in lines) < 1000


@pytest.mark.parametrize("listing", [["claims", "--url", "http://nothing.example/"],
                                     ["captures", "--url", "http://nothing.example/"],
                                     ["history", "http://nothing.example/"]], ids=" ".join)
def test_an_empty_listing_piped_is_its_header_alone(run_cli, tricky, listing):
    collection, _ = tricky
    result = run_cli(*listing, "-C", collection.root)
    assert result.exit_code == 0, result.output
    [header] = result.stdout.splitlines()
    assert len(header.split("\t")) > 2
    assert result.stderr.startswith("No c"), result.stderr


def test_ids_and_urls_are_never_broken_in_an_80_column_terminal(run_cli, tricky):
    collection, server = tricky
    captures = json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)
    claims = json.loads(run_cli("claims", "-C", collection.root, "--json").stdout)
    long_url = server.url("/long-" + "x" * 70)
    assert len(long_url) > 80
    for listing, wholes in [(["claims"], [c["id"] for c in claims] + [long_url]),
                            (["captures"], [c["id"] for c in captures] + [c["url"] for c in captures]),
                            (["history", long_url], [c["id"] for c in captures if c["url"] == long_url])]:
        result = run_cli(*listing, "-C", collection.root, env=TERMINAL_80)
        assert result.exit_code == 0, result.output
        lines = ANSI.sub("", result.stdout).splitlines()
        for whole in wholes:
            assert any(whole in line for line in lines), (whole, result.stdout)


# -- 3. user and server text printed literally ------------------------------------------

@pytest.mark.parametrize("terminal", [False, True], ids=["piped", "terminal"])
def test_user_text_is_printed_literally_in_every_listing(run_cli, tricky, terminal):
    collection, server = tricky
    env = TERMINAL_80 if terminal else None
    url = server.url("/a[red]b[/red]")
    claims = ANSI.sub("", run_cli("claims", "-C", collection.root, env=env).stdout)
    for text in ["[the", "Loop](", TRICKY[1], TRICKY[2], DOC]:  # a terminal may wrap between words
        assert text in claims, (text, claims)
    assert DOC in run_cli("documents", "-C", collection.root, env=env).stdout
    assert url in ANSI.sub("", run_cli("captures", "-C", collection.root, env=env).stdout)
    assert "[bold]" in ANSI.sub("", run_cli("log", "-C", collection.root, env=env).stdout)  # wrapped after it
    claim_id = json.loads(run_cli("claims", "-C", collection.root, "--json").stdout)[0]["id"]
    shown = ANSI.sub("", run_cli("show", claim_id, "-C", collection.root, env=env).stdout)
    assert DOC in shown and TRICKY[0] in shown
    summary = run_cli("capture", "-C", collection.root, collection.root.parent / DOC, env=env)
    assert url in ANSI.sub("", summary.stdout) and f"{DOC}:" in ANSI.sub("", summary.stdout), summary.stdout



# A terminal obeys these: retitle the window, clear the screen, bring the cursor back to the start
# of the line (so what follows overwrites what was printed), ring the bell.
CONTROLS = "\x1b]0;owned\x07 \x1b[2J \rpassed"


@pytest.mark.parametrize("terminal", [False, True], ids=["piped", "terminal"])
def test_control_characters_from_documents_reach_no_terminal(run_cli, collection, raw_server, tmp_path, terminal):
    """A claim, a file name or an id the user typed may hold control characters; each is shown
    escaped (\\x1b), never sent to the terminal to obey, in listings, in `show`, in the run's
    summary and in errors."""
    server = raw_server({"/a": send_bytes(http_response(b"<p>the page</p>"))})
    document = tmp_path / "doc\x1b[2J.md"
    document.write_text(f"The minister said on Monday, in a long speech to parliament, that {CONTROLS} "
                        f"{server.url('/a')}\n")  # long enough not to be taken for binary data
    env = TERMINAL_80 if terminal else None
    runs = [run_cli("capture", "-C", collection.root, document, env=env)]
    claim_id = json.loads(run_cli("claims", "-C", collection.root, "--json").stdout)[0]["id"]
    runs += [run_cli(*command, "-C", collection.root, env=env)
             for command in (["claims"], ["documents"], ["log"], ["show", claim_id], ["show", "\x1b]0;owned\x07"],
                             ["capture", tmp_path / "no\x1b[2J.md"])]
    for result in runs:  # with rich's own styles taken out, and stderr but for the run's progress bar
        shown = ANSI.sub("", result.stdout + (result.stderr if result.exit_code else ""))
        assert not set(shown) & {"\x1b", "\x07", "\r"}, repr(shown)
    assert "\\x1b]0;owned\\x07" in ANSI.sub("", runs[1].stdout + runs[4].stdout)  # the text is still all there
    assert "\\x1b[2J" in ANSI.sub("", runs[2].stdout + runs[-1].stderr)


def test_why_a_replay_went_unrecorded_is_printed_literally(capsys):
    """The reason holds a path, which may look like markup."""
    from archiver.check.replay import ReplayCheck
    from archiver.cli.verify import print_replays

    why = "cannot write /evidence/[b]case[/b]/custody.jsonl"
    print_replays([ReplayCheck("20261124172850-177ce85c", "http://127.0.0.1:9/", True, not_recorded_because=why)])
    assert why in capsys.readouterr().out

# -- 4. --json everywhere, and errors as JSON under it ----------------------------------

def _leaves(name: str, command: click.Command):
    if isinstance(command, click.Group):
        for sub_name, sub in command.commands.items():
            yield from _leaves(f"{name} {sub_name}", sub)
    else:
        yield name, command


def test_every_command_says_its_exit_codes_in_its_help():
    context = click.Context(cli)
    lacking = [name for top in COMMANDS for name, command in _leaves(top, cli.get_command(context, top))
               if not re.search(r"\bExit (0|codes)", command.help or "")]
    assert lacking == []


def test_every_command_takes_json():
    context = click.Context(cli)
    lacking = [name for top in COMMANDS for name, command in _leaves(top, cli.get_command(context, top))
               if "--json" not in {opt for p in command.params for opt in p.opts}]
    assert lacking == []


def test_keys_export_json(run_cli, collection):
    result = run_cli("keys", "export", "-C", collection.root, "--json")
    assert result.exit_code == 0, result.output
    exported = json.loads(result.stdout)
    assert exported["pem"].startswith("-----BEGIN PUBLIC KEY-----") and len(exported["fingerprint"]) == 64


@pytest.mark.parametrize("args, code", [
    (["captures", "--no-such-option", "--json"], 2),
    (["show", "nothing-like-this", "--json"], 2),
    (["--json", "claims", "--bogus"], 2),
])
def test_errors_under_json_are_json_on_stderr(run_cli, collection, args, code):
    result = run_cli(*args, "-C", collection.root) if args[0] != "--json" else run_cli(*args)
    assert result.exit_code == code
    error = json.loads(result.stderr)
    assert error["exit_code"] == code and error["error"] and not error["error"].startswith("error:")
    assert result.stdout == ""


def test_a_refusal_under_json_is_json_with_exit_3(run_cli, collection):
    result = run_cli("keys", "export", "-C", collection.root, "-o", "/proc/key.pem", "--json")  # no file can be made there
    error = json.loads(result.stderr)
    assert (error["exit_code"], result.exit_code) == (3, 3) and "/proc/key.pem" in error["error"]


# -- 5. small honest messages ------------------------------------------------------------

def test_log_prints_no_none(run_cli, tricky):
    collection, _ = tricky
    for env in (None, TERMINAL_80):
        assert "None" not in run_cli("log", "-C", collection.root, env=env).stdout


def test_show_prints_a_failure_reason_once(run_cli, collection):
    run_cli("cite", "A claim citing an unreachable page", "http://10.0.0.1/", "-C", collection.root, "--json")
    [row] = json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)
    [claim] = json.loads(run_cli("claims", "-C", collection.root, "--json").stdout)
    for shown in (run_cli("show", row["id"], "-C", collection.root).stdout,
                  run_cli("show", claim["id"], "-C", collection.root).stdout):
        assert shown.count("is a private address") == 1, shown  # a part: a line may wrap the whole


def test_cite_capture_says_what_it_did(run_cli, tricky):
    collection, _ = tricky
    [row, *_] = json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)
    result = run_cli("cite", "As the page showed", "--capture", row["id"], "-C", collection.root)
    assert result.exit_code == 0, result.output
    assert "Nothing to capture" not in result.stdout
    assert row["id"] in result.stdout and "Recorded claim" in result.stdout


def test_citing_a_failed_capture_is_recorded_with_a_warning_naming_why_it_failed(run_cli, collection):
    """Evidence that a URL was dead then may be cited, but never silently as if it were the page."""
    assert run_cli("capture", "-C", collection.root, "http://10.0.0.1/").exit_code == 1
    [row] = json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)
    result = run_cli("cite", "The page was gone by then", "--capture", row["id"], "-C", collection.root)
    assert result.exit_code == 0, result.output
    [warning] = [line for line in result.stdout.splitlines() if "warning:" in line]
    assert f"capture {row['id']} failed (" in warning and "is a private address" in warning, warning
    cited = json.loads(run_cli("cite", "Still gone", "--capture", row["id"], "-C", collection.root, "--json").stdout)
    assert cited["cited_captures"] == [row["id"]] and len(cited["cited_capture_warnings"]) == 1
    assert json.loads(run_cli("claims", "-C", collection.root, "--json").stdout)  # recorded as asked


def test_a_server_not_speaking_tls_is_named_so(run_cli, collection):
    # A plain HTTP server answers the TLS hello with an HTTP error, as nginx does on port 80.
    listener = socket.create_server(("127.0.0.1", 0))

    def answer_in_plain_http():
        conn, _ = listener.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    threading.Thread(target=answer_in_plain_http, daemon=True).start()
    allow_networks(collection.root, "127.0.0.1/32")
    url = f"https://127.0.0.1:{listener.getsockname()[1]}/"
    result = run_cli("capture", "-C", collection.root, url, "--json", "--timeout", "10")
    listener.close()
    [row] = json.loads(result.stdout)["captures"]
    assert "the server did not speak TLS on this port" in row["error"] and "[SSL:" not in row["error"], row["error"]


def test_the_help_lists_each_command_by_the_whole_first_sentence_of_its_own_help():
    # Summaries were cut mid-thought ("verify  Check, offline, every WARC record's digests"),
    # some with a period and some without.
    context = click.Context(cli)
    for name, (_, summary) in COMMANDS.items():
        assert cli.get_command(context, name).get_short_help_str(limit=1000) == summary, name
        assert summary.endswith(".") and len(summary) <= 100, name


def test_the_help_names_the_commands_that_take_no_collection():
    context = click.Context(cli)
    without = sorted({top for top in COMMANDS for _, command in _leaves(top, cli.get_command(context, top))
                      if "-C" not in {opt for p in command.params for opt in p.opts}})
    assert without == ["verify-bundle"]
    assert "Every command but verify-bundle takes -C/--collection DIR" in " ".join(cli.help.split())


def test_the_help_loads_no_command_module():
    probe = ("import sys; from archiver.cli import cli\n"
             "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in sys.modules if m.startswith(('archiver.cli.', 'rich', 'requests', 'cdxj'))))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip().splitlines()[-1] == "['archiver.cli.common']", loaded


def test_a_listing_writes_nothing_to_the_catalog(run_cli, tricky):
    # Opening a catalog at the current schema once wrote its version back, a commit with an
    # fsync that every command paid for at start-up.
    collection, _ = tricky
    before = collection.catalog_path.read_bytes()
    assert run_cli("claims", "-C", collection.root).exit_code == 0
    assert collection.catalog_path.read_bytes() == before


@pytest.mark.parametrize("command", [("verify",), ("claims",), ("log",)])
def test_output_closed_early_ends_with_141_whether_rich_or_plain_printed_it(tricky, command):
    """`archiver verify | head -1`: 141, as README says, never 1, which means a check failed."""
    collection, _ = tricky
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line
    try:
        ended = subprocess.run([sys.executable, "-m", "archiver", *command, "-C", str(collection.root)],
                               stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert (ended.returncode, ended.stderr) == (141, "")


def test_verify_shows_its_progress_on_a_terminal_and_none_when_piped_or_json(run_cli, tricky):
    collection, _ = tricky
    on_terminal = run_cli("verify", "-C", collection.root, env=TERMINAL_80)
    assert on_terminal.exit_code == 0 and "verifying WARC files" in on_terminal.stderr
    for quiet in (run_cli("verify", "-C", collection.root), run_cli("verify", "-C", collection.root, "--json",
                                                                    env=TERMINAL_80)):
        assert quiet.exit_code == 0 and "verifying" not in quiet.stderr


def test_bidirectional_and_c1_controls_reach_no_terminal_in_text_or_json(run_cli, collection, tmp_path):
    """U+202E turns what follows it around on screen ("Trojan Source"); U+009B is an ESC [ to
    some terminals. Text shows them escaped; JSON as \\u escapes, the same strings once parsed."""
    claim = "The minister said \u202eno\u202c it was \x9b2J clo\u200bsed, in a long speech to parliament on Monday"
    document = tmp_path / "doc.md"
    document.write_text(claim + " http://127.0.0.1:9/\n")
    run_cli("capture", "-C", collection.root, document, "--json")
    as_json = run_cli("claims", "-C", collection.root, "--json").stdout
    as_text = run_cli("claims", "-C", collection.root).stdout
    for shown in (as_json, as_text):
        assert not set(shown) & {"\u202e", "\u202c", "\x9b", "\u200b"}, repr(shown)
    assert [c["text"] for c in json.loads(as_json)] == [claim + " http://127.0.0.1:9/"]
    assert "\\u202eno\\u202c" in as_text and "\\x9b2J" in as_text and "clo\\u200bsed" in as_text


def test_a_bundle_and_an_import_show_their_steps_on_a_terminal_and_nothing_under_json(run_cli, tricky, tmp_path):
    collection, _ = tricky
    bundled = run_cli("bundle", "-C", collection.root, "--all", "-o", tmp_path / "a.wacz", env=TERMINAL_80)
    # The bar is drawn ten times a second: a step as short as these shows only as the last one.
    assert bundled.exit_code == 0 and "bundling" in bundled.stderr and "writing the bundle" in bundled.stderr
    assert "bundling" not in run_cli("bundle", "-C", collection.root, "--all", "-o", tmp_path / "b.wacz", "--json",
                                     env=TERMINAL_80).stderr
    other = make_collection(tmp_path / "other")
    imported = run_cli("import", "-C", other.root, tmp_path / "a.wacz", env=TERMINAL_80)
    assert imported.exit_code == 0, imported.output
    assert "importing" in imported.stderr and "cataloging the captures in archive/data.warc.gz" in imported.stderr


@pytest.mark.parametrize("terminal", [False, True], ids=["piped", "terminal"])
def test_emoji_codes_in_outside_text_are_printed_as_written(run_cli, collection, terminal):
    """Rich turns ":fire:" into an emoji unless told not to: a claim, a URL or a name that holds
    such a code is shown as written, in `show` and in listings."""
    run_cli("cite", "-C", collection.root, "--no-browser", "--json",
            "The minister :thumbs_up: said :cross_mark: it, in a long speech", "http://127.0.0.1:9/:fire:/x")
    claim_id = json.loads(run_cli("claims", "-C", collection.root, "--json").stdout)[0]["id"]
    env = TERMINAL_80 if terminal else None
    for command in (["show", claim_id], ["claims"]):
        shown = ANSI.sub("", run_cli(*command, "-C", collection.root, env=env).stdout)
        assert ":fire:" in shown and "🔥" not in shown and "👍" not in shown, shown
    assert ":thumbs_up:" in ANSI.sub("", run_cli("show", claim_id, "-C", collection.root, env=env).stdout)


@pytest.mark.parametrize("args", [["capture", "no\nverified: ok"], ["claims", "--document", "x\nverified: ok"]])
def test_an_error_naming_what_was_given_stays_on_one_line(run_cli, collection, args):
    result = run_cli(*args, "-C", collection.root)
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ") and args[-1].replace("\n", "\\n") in line, line


def test_a_progress_step_from_outside_is_shown_literally(capsys, monkeypatch):
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("NO_COLOR", "1")
    with working("importing", shown=True) as step:
        step("cataloging a\x1b]0;owned\x07 b\x1b[42mGREEN")
    shown = capsys.readouterr().err
    assert "\\x1b[42mGREEN" in shown and "\x1b[42m" not in shown and "\x07" not in shown


def test_qa_without_a_browser_is_bad_usage(run_cli, collection):
    """Replaying needs pages a browser rendered: --qa with --no-browser, or with capture_mode
    "http" in archiver.toml, would replay nothing and say so as if all were well."""
    result = run_cli("capture", "-C", collection.root, "--no-browser", "--qa", "http://127.0.0.1:9/")
    assert result.exit_code == 2 and "--qa replays pages captured in a browser" in result.stderr, result.output
    settings = collection.root / "archiver.toml"
    settings.write_text(settings.read_text().replace('capture_mode = "auto"', 'capture_mode = "http"'))
    result = run_cli("capture", "-C", collection.root, "--qa", "http://127.0.0.1:9/")
    assert result.exit_code == 2 and "this run captures over HTTP" in result.stderr, result.output
    assert json.loads(run_cli("captures", "-C", collection.root, "--json").stdout) == []  # nothing was captured
