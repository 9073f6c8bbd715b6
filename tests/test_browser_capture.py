"""Browser captures end to end: `archiver capture --browser` renders a page in real Chromium
behind archiver's recording proxy, and every request the page made is in the WARC exactly as
the origin sent it, next to a screenshot, a PDF and the rendered DOM, all attested and verified."""

from __future__ import annotations

import base64
import json
import struct
import zipfile
import zlib
from datetime import datetime
from pathlib import Path

import pytest

from archiver.capture.browser.chromium import find_chromium
from archiver.store.catalog import Catalog
from tests import other_user
from tests.conftest import capture, http_response, send_bytes, warc_records

CHROMIUM = find_chromium()  # as archiver finds it: the headless shell where Debian has it
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs it)")

# A 1x1 red PNG.
PHOTO = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==")
ARTICLE = (b'<html><head><title>Troops moved</title><link rel="stylesheet" href="/style.css"></head>'
           b'<body><h1>Troops moved on Monday</h1><img src="/photo.png" width="200" height="100">'
           b'<p id="late">Loading</p><script src="/app.js"></script></body></html>')
SCRIPT = (b"fetch('/data.json').then(r => r.json()).then(d => {"
          b"document.getElementById('late').textContent = d.text; });")


@pytest.fixture
def chromium(monkeypatch) -> None:
    """Chromium found as a user's machine has it: on the PATH."""
    monkeypatch.delenv("ARCHIVER_CHROMIUM")


def _origin(raw_server, extra: dict[str, bytes] | None = None):
    sent = {
        "/article": http_response(ARTICLE),
        "/style.css": http_response(b"h1 { color: #a00; font-size: 40px }", headers=[("Content-Type", "text/css")]),
        "/photo.png": http_response(PHOTO, headers=[("Content-Type", "image/png")]),
        "/app.js": http_response(SCRIPT, headers=[("Content-Type", "application/javascript")]),
        "/data.json": http_response(b'{"text": "Loaded by a script"}', headers=[("Content-Type", "application/json")]),
        "/favicon.ico": http_response(b"no icon", "404 Not Found", headers=[("Content-Type", "text/plain")]),
        **(extra or {}),
    }
    return raw_server({path: send_bytes(data) for path, data in sent.items()}), sent


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def _png_colours(data: bytes) -> int:
    """How many distinct 8-bit RGBA pixels the first rows hold: one means a blank picture."""
    width, height = _png_size(data)
    raw, position = b"", 8
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        if kind == b"IDAT":
            raw += data[position + 8:position + 8 + length]
        position += 12 + length
    pixels = zlib.decompress(raw)
    bit_depth, colour_type = data[24], data[25]
    channels = {2: 3, 6: 4}[colour_type]
    assert bit_depth == 8
    stride = width * channels + 1
    # Filters are ignored: distinct filtered bytes of a blank image are few, of a page many.
    rows = [pixels[r * stride + 1:(r + 1) * stride] for r in range(min(height, 200))]
    return len({row[i:i + channels] for row in rows for i in range(0, len(row), channels)})


def _capture(run_cli, collection, url):
    result = run_cli("capture", "-C", collection.root, "--browser", "--json", url)
    return result, json.loads(result.stdout) if result.stdout.startswith("{") else None


def test_a_page_is_captured_with_every_request_byte_for_byte_and_what_a_reader_saw(
        run_cli, raw_server, collection, chromium, network_sandbox, tmp_path):
    server, sent = _origin(raw_server)
    result, summary = _capture(run_cli, collection, server.url("/article"))
    assert result.exit_code == 0, result.output
    [capture] = summary["captures"]
    assert (capture["outcome"], capture["http_status"], capture["final_url"]) == ("ok", 200, server.url("/article"))

    records = warc_records(collection.storage.folder)
    responses = {r.headers["WARC-Target-URI"]: r for r in records if r.type == "response"}
    requested = {request.split(b" ", 2)[1].decode() for request in server.requests}
    # Nothing the origin served went unrecorded, nothing recorded was not served, byte for byte.
    assert {uri.removeprefix(server.url("")) for uri in responses} == requested
    assert {"/article", "/style.css", "/photo.png", "/app.js", "/data.json"} <= requested
    for path in requested:
        assert responses[server.url(path)].block == sent[path], path
    requests = [r for r in records if r.type == "request"]
    assert len(requests) == len(responses) == len(server.requests)
    for record in requests:  # as the browser sent it: its own user agent, through no one else
        assert b"Chrome/" in record.block and b"zstd" not in record.block

    artifacts = {r.headers["WARC-Target-URI"]: r for r in records if r.type == "resource"}
    page = server.url("/article")
    assert set(artifacts) == {f"urn:screenshot:{page}", f"urn:pdf:{page}", f"urn:dom:{page}"}
    screenshot, pdf, dom = (artifacts[f"urn:{kind}:{page}"] for kind in ("screenshot", "pdf", "dom"))
    assert screenshot.headers["Content-Type"] == "image/png" and _png_size(screenshot.block)[0] > 0
    assert _png_colours(screenshot.block) > 1
    assert pdf.block.startswith(b"%PDF")
    assert b"Loaded by a script" in dom.block and b"Loading</p>" not in dom.block
    page_response = responses[page].headers["WARC-Record-ID"]
    for artifact in (screenshot, pdf, dom):
        assert artifact.headers["WARC-Refers-To"] == page_response
    # Each is dated when it was made, in the order they were (not all when the records were).
    dated = {name: datetime.fromisoformat(record.headers["WARC-Date"])
             for name, record in (("page", responses[page]), ("screenshot", screenshot), ("pdf", pdf), ("dom", dom))}
    assert dated["page"] < dated["screenshot"] < dated["pdf"] < dated["dom"]

    [metadata] = [r for r in records if r.type == "metadata" and r.headers.get("Content-Type") == "application/json"]
    details = json.loads(metadata.block)
    assert details["browser"]["name"] and details["browser"]["version"]
    assert details["page"]["title"] == "Troops moved"
    listed = {resource["url"]: resource for resource in details["resources"]}
    for path in requested - {"/article"}:
        assert listed[server.url(path)]["response_record_id"] == responses[server.url(path)].headers["WARC-Record-ID"]

    # The attestation names every record of the capture, so verify and bundles cover them all.
    attested = [r for r in records if r.headers.get("Content-Type") == "application/vnd.dsse.envelope.v1+json"]
    assert len(attested) == 1
    envelope = json.loads(attested[0].block)
    statement = json.loads(base64.b64decode(envelope["payload"]))
    named = {record["id"] for record in statement["predicate"]["records"]}
    assert named == {r.id for r in records if r.type != "warcinfo" and r is not attested[0]}

    # What made the page is named where a reader looks first: the warcinfo names the browser
    # and the agent it sent (not the one files fetched directly send), the attestation the browser.
    [warcinfo] = [r for r in records if r.type == "warcinfo"]
    info = dict(line.split(": ", 1) for line in warcinfo.block.decode().splitlines())
    browser = details["browser"]
    rendered_by = f"chromium/{browser['version']} playwright/{browser['playwright']}"
    assert info["software"].endswith(rendered_by) and statement["predicate"]["software"].endswith(rendered_by)
    assert details["software"] == statement["predicate"]["software"]
    sent_agents = {line.split(b": ", 1)[1] for r in requests for line in r.block.split(b"\r\n")
                   if line.lower().startswith(b"user-agent: ")}
    assert sent_agents == {info["http-header-user-agent"].encode()} and b"Chrome/" in sent_agents.pop()
    assert info["archiver-files-user-agent"].startswith("archiver/")

    verified = run_cli("verify", "-C", collection.root, "--json")
    assert verified.exit_code == 0, verified.output
    bundle = tmp_path / "page.wacz"
    bundled = run_cli("bundle", "-C", collection.root, "--url", page, "-o", bundle)
    assert bundled.exit_code == 0, bundled.output
    fingerprint = json.loads(run_cli("keys", "show", "-C", collection.root, "--json").stdout)["keys"][0]["fingerprint"]
    checked = run_cli("verify-bundle", bundle, "--fingerprint", fingerprint, "--json")
    assert checked.exit_code == 0, checked.output
    assert network_sandbox == []


def _listening_on_loopback() -> set[int]:
    """The ports listening on 127.0.0.1, as any local user sees them."""
    ports = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, port = local.split(":")
        if state == "0A" and address == "0100007F":
            ports.add(int(port, 16))
    return ports


@pytest.mark.skipif(other_user.why_not() is not None, reason=str(other_user.why_not()))
def test_another_local_users_process_cannot_have_a_request_fetched_or_recorded_through_the_captures_proxies(
        run_cli, raw_server, collection, chromium, network_sandbox):
    """While the page is being captured, a process of another user (any may connect to
    127.0.0.1) sends every port listening there, the recording and the browser's own proxy among
    them, a forged GET and a CONNECT: each is refused, nothing reaches the origin, the WARC holds
    none of it; the capture's own Chromium is served as ever."""
    server, sent = _origin(raw_server)
    answers: list[tuple[int, str, bytes]] = []

    def article_after_forging(conn, request: bytes) -> None:
        host = f"127.0.0.1:{server.port}"
        forged = (f"GET {server.url('/INJECTED')} HTTP/1.1\r\nHost: {host}\r\nX-Forged: yes\r\n\r\n",
                  f"CONNECT {host} HTTP/1.1\r\nHost: {host}\r\nX-Forged: yes\r\n\r\n")
        answers.extend(other_user.forge([(port, asked) for port in _listening_on_loopback() - {server.port}
                                         for asked in forged]))
        conn.sendall(sent["/article"])

    server.routes["/article"] = article_after_forging
    result, summary = _capture(run_cli, collection, server.url("/article"))
    assert result.exit_code == 0, result.output
    assert summary["captures"][0]["outcome"] == "ok"

    assert not any(b"INJECTED" in request or b"X-Forged" in request for request in server.requests)
    assert {request.split(b" ", 2)[1] for request in server.requests} >= {b"/article", b"/app.js", b"/data.json"}
    records = warc_records(collection.storage.folder)
    assert len([r for r in records if r.type == "request"]) == len(server.requests)
    for record in records:
        assert b"INJECTED" not in record.block and b"X-Forged" not in record.block, record.headers
    assert len({port for port, _, _ in answers}) >= 2, answers  # the recording and the browser's own proxy
    for port, method, got in answers:  # 403 before a byte was read, or the connection reset unread
        assert got == b"" or (got.startswith(b"HTTP/1.1 403 ") and b"another user" in got), (port, method, got)
    assert network_sandbox == []


def test_a_subresource_on_a_private_address_is_refused_and_listed_never_fetched(
        run_cli, raw_server, collection, chromium, network_sandbox):
    page = (b'<html><body><p>Metadata service</p><img src="http://169.254.169.254/latest/meta-data">'
            b'<img src="http://10.0.0.1/inside.png"><script src="http://[fe80::1]/x.js"></script></body></html>')
    server, _ = _origin(raw_server, {"/leak": http_response(page)})
    result, summary = _capture(run_cli, collection, server.url("/leak"))
    assert result.exit_code == 0, result.output
    [metadata] = [r for r in warc_records(collection.storage.folder)
                  if r.type == "metadata" and r.headers.get("Content-Type") == "application/json"]
    listed = {resource["url"]: resource for resource in json.loads(metadata.block)["resources"]}
    for url in ("http://169.254.169.254/latest/meta-data", "http://10.0.0.1/inside.png", "http://[fe80::1]/x.js"):
        assert listed[url]["response_record_id"] is None
        assert "refused" in listed[url]["error"] or "not allowed" in listed[url]["error"], listed[url]
    assert network_sandbox == []  # the guard refused before any connection was tried


def test_a_capture_missing_requests_of_its_page_says_so_in_the_summary_show_and_the_report(
        run_cli, raw_server, collection, chromium, network_sandbox, tmp_path):
    page = b'<html><title>Leaky</title><body><p>An article</p><img src="http://10.0.0.1/inside.png"></body></html>'
    server, _ = _origin(raw_server, {"/leak": http_response(page)})
    said = "incomplete: 1 request of the page not recorded (refused, unanswered or unrecordable)"
    result = run_cli("capture", "-C", collection.root, "--browser", server.url("/leak"))
    assert result.exit_code == 0, result.output
    assert f"warning: {server.url('/leak')}: {said}" in result.output, result.output
    assert "1 captured: 1 content; 1 incomplete" in result.output, result.output
    [capture] = json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)
    assert capture["incomplete"] == said
    shown = run_cli("show", "-C", collection.root, capture["id"])
    assert f"record:              {said}" in shown.output, shown.output
    bundle = tmp_path / "leak.wacz"
    assert run_cli("bundle", "-C", collection.root, "--url", server.url("/leak"), "-o", bundle).exit_code == 0
    report = zipfile.ZipFile(bundle).read("evidence/report.html").decode()
    assert f'<dt>Record of the page</dt><dd><span class="warn">{said}</span>' in report, report


def test_what_a_salvaged_capture_lacks_is_the_signed_line(run_cli, raw_server, collection, chromium, network_sandbox,
                                                          monkeypatch):
    """Cataloged again from its attestation by doctor --fix, a capture keeps the line its
    attestation signs, and verify holds the catalog to it."""
    page = b'<html><title>Leaky</title><body><p>An article</p><img src="http://10.0.0.1/inside.png"></body></html>'
    server, _ = _origin(raw_server, {"/leak": http_response(page)})

    def crash(self, captures, logged=None, closing=None):
        raise RuntimeError("the machine stopped between the fsync and the commit")

    with monkeypatch.context() as patched, pytest.raises(RuntimeError):
        patched.setattr(Catalog, "add_captures", crash)
        capture(collection, server.url("/leak"), capture_mode="browser")
    assert run_cli("doctor", "-C", collection.root, "--fix", "--json").exit_code == 0
    [salvaged] = json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)
    assert salvaged["incomplete"] == "incomplete: 1 request of the page not recorded (refused, unanswered or unrecordable)"
    report = json.loads(run_cli("verify", "-C", collection.root, "--json").stdout)
    assert report["ok"], report["failures"]


def test_a_file_is_fetched_directly_without_the_browser(run_cli, raw_server, collection, chromium):
    server, sent = _origin(raw_server, {"/report.pdf": http_response(b"%PDF-1.4 tiny", headers=[("Content-Type", "application/pdf")])})
    result, summary = _capture(run_cli, collection, server.url("/report.pdf"))
    assert result.exit_code == 0, result.output
    records = warc_records(collection.storage.folder)
    assert [r.type for r in records if r.type in ("request", "response", "resource")] == ["request", "response"]
    assert [request.split(b" ", 2)[1] for request in server.requests] == [b"/report.pdf"]


def test_browser_mode_without_chromium_is_one_line(run_cli, raw_server, collection, monkeypatch):
    monkeypatch.setenv("ARCHIVER_CHROMIUM", "")
    result = run_cli("capture", "-C", collection.root, "--browser", "http://127.0.0.1:9/")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "no Chromium was found" in result.stderr


def test_the_headless_shell_is_preferred_and_the_binary_behind_debian_s_script_is_recorded(tmp_path, monkeypatch):
    """With Debian's chromium-headless-shell and chromium both on PATH, the shell is chosen, and
    the binary its one-line script runs is what is launched (and recorded), not the script."""
    from archiver.capture.browser.chromium import find_chromium
    binary = tmp_path / "lib" / "chromium-headless-shell"
    binary.parent.mkdir()
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "chromium-headless-shell").write_text(f'#!/bin/sh -e\n\n{binary} "$@"\n')
    (bin_dir / "chromium").write_text("#!/bin/sh\nexec /nowhere/chromium \"$@\"\n")
    for script in bin_dir.iterdir():
        script.chmod(0o755)
    monkeypatch.delenv("ARCHIVER_CHROMIUM")
    monkeypatch.setenv("PATH", str(bin_dir))
    assert find_chromium() == str(binary)
    (bin_dir / "chromium-headless-shell").unlink()
    assert find_chromium() == str(bin_dir / "chromium")
