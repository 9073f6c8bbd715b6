"""evidence/report.html of a bundle `archiver bundle` made, read as the lawyer who receives it reads
it: a heading that says what it is evidence of, captures that changed since the one before named
with the lines that changed, a redirect shown by its final page, every key's announcement, no
path on the operator's machine; and the page rendered in Chromium with no word broken mid-word."""

from __future__ import annotations

import html
import json
import re
import zipfile
from pathlib import Path

import pytest

from archiver.evidence.signing import grouped
from tests.conftest import http_response, redirect, send_bytes

FIRST = b"<html><title>Statement</title><p>The ministry said troops moved on Monday.</p><p>Signed, the press office.</p>"
SECOND = b"<html><title>Statement</title><p>The ministry said troops moved on Tuesday.</p><p>Signed, the press office.</p>"


@pytest.fixture
def lawyers_copy(run_cli, raw_server, collection, tmp_path) -> dict:
    """A document kept outside the collection (in the operator's own folder) citing a statement that
    was edited between two captures and a URL that redirects; the bundle of everything, and its report."""
    served = iter([FIRST, SECOND])
    server = raw_server({"/statement": lambda conn, request: conn.sendall(http_response(next(served))),
                         "/new": send_bytes(http_response(b"<html><title>Moved here</title><p>The new home.</p>"))})
    server.routes["/old"] = redirect(server.url("/new"), "301 Moved Permanently")
    document = tmp_path / "operator-desk" / "army-report.md"
    document.parent.mkdir()
    document.write_text(f"# Troops moved on Monday\n\nThe ministry said so {server.url('/statement')}, "
                        f"as did {server.url('/old')}\n")
    for _ in range(2):
        assert run_cli("capture", "-C", collection.root, document).exit_code == 0
    bundle = tmp_path / "army.wacz"
    made = run_cli("bundle", "-C", collection.root, "--all", "-o", bundle)
    assert made.exit_code == 0, made.output
    with zipfile.ZipFile(bundle) as wacz:
        report = wacz.read("evidence/report.html").decode()
        custody = [json.loads(line) for line in wacz.read("evidence/custody.jsonl").splitlines()]
        statement = json.loads(wacz.read("evidence/bundle.json"))
    captures = json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)
    return {"report": report, "text": text_of(report), "custody": custody,
            "statement": statement, "captures": captures, "server": server, "document": document, "tmp": tmp_path}


def text_of(report: str) -> str:
    """The report's text as a reader sees it: blocks apart, inline elements run on, spaces collapsed."""
    blocks = re.sub(r"</?(?:dt|dd|li|p|h\d|div|tr|td|th|section|table|ol|ul|dl|pre|figure|figcaption)\b[^>]*>", " ",
                    report.split("<body>", 1)[1])
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", blocks)).split())


def capture_section(copy: dict, capture_id: str) -> str:
    """The text of one capture's entry in the report."""
    start = copy["text"].index(f"Capture {capture_id}")
    end = copy["text"].find(" Capture ", start + 1)
    return copy["text"][start:end if end != -1 else copy["text"].index(" Documents ", start)]


def test_the_heading_says_what_the_bundle_is_evidence_of(lawyers_copy):
    [heading] = re.findall(r"<h1>(.*?)</h1>", lawyers_copy["report"], re.S)
    heading = " ".join(html.unescape(re.sub(r"<[^>]+>", "", heading.replace('<span class="made">', " "))).split())
    created = lawyers_copy["statement"]["created"]
    assert lawyers_copy["statement"]["bundle"] not in heading  # the id stays in the details
    assert "Web pages cited by 2 claims in “Troops moved on Monday”" in heading
    assert "collection “test”" in heading
    assert f"made on {created[:10]} at {created[11:19]} UTC" in heading
    assert lawyers_copy["statement"]["bundle"] in lawyers_copy["text"]


def test_a_note_made_with_cite_is_counted_as_a_note_not_as_a_claim_of_the_document(run_cli, raw_server, collection,
                                                                                    tmp_path):
    """A claim recorded with `archiver cite` comes from no document: the heading and summary
    must not put it in the document's."""
    server = raw_server({"/statement": send_bytes(http_response(FIRST))})
    document = tmp_path / "army-report.md"
    document.write_text(f"# Troops moved on Monday\n\nThe ministry said so {server.url('/statement')}\n")
    assert run_cli("capture", "-C", collection.root, document).exit_code == 0
    noted = run_cli("cite", "-C", collection.root, "The press office signed it", server.url("/statement"))
    assert noted.exit_code == 0, noted.output
    bundle = tmp_path / "all.wacz"
    assert run_cli("bundle", "-C", collection.root, "--all", "-o", bundle).exit_code == 0
    with zipfile.ZipFile(bundle) as wacz:
        report = wacz.read("evidence/report.html").decode()
    [heading] = re.findall(r"<h1>(.*?)</h1>", report, re.S)
    heading = " ".join(html.unescape(re.sub(r"<[^>]+>", "", heading.replace('<span class="made">', " "))).split())
    assert "Web pages cited by 2 claims in “Troops moved on Monday” and 1 note" in heading, heading
    assert ("it holds 2 claims from 1 document and 1 note (a claim made with archiver cite, in no document)"
            in text_of(report)), text_of(report)[:1500]


def test_a_capture_that_changed_since_the_previous_one_says_what_changed(lawyers_copy):
    statement = lawyers_copy["server"].url("/statement")
    first, second = (c["id"] for c in sorted((c for c in lawyers_copy["captures"] if c["url"] == statement),
                                             key=lambda c: c["started_at"]))
    changed = capture_section(lawyers_copy, second)
    assert f"changed since the previous capture, {first}" in changed
    assert "− The ministry said troops moved on Monday. + The ministry said troops moved on Tuesday." in changed
    assert "Signed, the press office." not in changed.split("changed since the previous capture")[1]
    assert "changed since the previous capture" not in capture_section(lawyers_copy, first)
    # The redirected page came back the same: a revisit, and the report says so.
    old = [c["id"] for c in sorted((c for c in lawyers_copy["captures"] if c["url"].endswith("/old")),
                                   key=lambda c: c["started_at"])]
    assert f"unchanged since the previous capture, {old[0]}" in capture_section(lawyers_copy, old[1])


def test_a_redirected_url_is_shown_by_its_final_response(lawyers_copy):
    server = lawyers_copy["server"]
    for capture in (c for c in lawyers_copy["captures"] if c["url"] == server.url("/old")):
        entry = capture_section(lawyers_copy, capture["id"])
        assert f"Final URL {server.url('/new')}" in entry
        assert f"Redirects 301 from {server.url('/old')} to {server.url('/new')} Page title Moved here" in entry
        assert "HTTP status 200" in entry and "200 →" not in entry
    for capture in (c for c in lawyers_copy["captures"] if c["url"] == server.url("/statement")):
        assert "Redirects none Page title Statement" in capture_section(lawyers_copy, capture["id"])


def test_each_capture_says_what_made_it_and_how_it_was_set(lawyers_copy):
    """A court asks what software made a capture and with which settings: each capture's entry
    names them, from its metadata record (which its attestation signs)."""
    for capture in lawyers_copy["captures"]:
        entry = capture_section(lawyers_copy, capture["id"]).split("Captured with ", 1)[1]
        assert re.match(r"software archiver/\S+ warcio/\S+ .*fetched over HTTP alone, not rendered in a browser "
                        r"set to check server certificates against trusted roots \(on HTTPS\) settings: ", entry), entry
        assert "max_redirects = 10" in entry and "allow_networks = 127.0.0.1/32" in entry and "ca_bundle = not set" in entry
        assert "Attested by key" in entry, entry


def test_the_p384_key_shows_the_announcement_its_custody_log_records(lawyers_copy):
    [announced] = [entry for entry in lawyers_copy["custody"] if entry["event"] == "wacz key generated"]
    keys = lawyers_copy["text"].split("Signing keys")[1].split("The bundle and its manifest")[0]
    p384 = keys[keys.index("Algorithm ECDSA P-384"):]
    assert f"Announced {announced['time']}" in p384
    assert "not recorded" not in keys


def test_no_path_on_the_operators_machine_is_shown(lawyers_copy):
    assert str(lawyers_copy["tmp"]) not in lawyers_copy["report"]
    assert "operator-desk" not in lawyers_copy["report"]
    assert "army-report.md" in lawyers_copy["text"]


def test_a_page_not_found_and_a_failed_citation_are_said_as_such(run_cli, raw_server, collection, closed_port, tmp_path):
    # A "soft 404" (status 200, a page saying it is not there) and a URL whose capture failed,
    # both cited by one claim: neither may read as the page the claim cites, and verify-bundle
    # says so after its verdict.
    server = raw_server({"/gone": send_bytes(http_response(b"<html><title>Page not found</title><p>Sorry.</p></html>"))})
    refused = f"http://127.0.0.1:{closed_port}/statement"
    sheet = collection.root / "seeds" / "sheet.csv"
    sheet.write_text(f"claim,url\nThe minister said so,\"{server.url('/gone')} {refused}\"\n")
    assert run_cli("capture", "-C", collection.root, sheet).exit_code == 1  # one URL failed
    [claim] = json.loads(run_cli("claims", "-C", collection.root, "--json").stdout)
    bundle = tmp_path / "claim.wacz"
    assert run_cli("bundle", "-C", collection.root, "--claim", claim["id"], "-o", bundle).exit_code == 0
    with zipfile.ZipFile(bundle) as wacz:
        text = text_of(wacz.read("evidence/report.html").decode())
    entry = text.split(f"Claim {claim['id']}")[1].split("URLs cited")[1].split(" Captures ")[0]
    assert "complete, not the page: not-found" in entry
    assert re.search(rf"{re.escape(refused)}, \S+, failed; made while the claim cited this URL", entry)
    assert "Page verdict not-found: " in text
    assert "it holds 1 claim from 1 document (none of them carried whole in this bundle)" in text  # chosen alone
    fingerprint = json.loads(run_cli("keys", "show", "-C", collection.root, "--json").stdout)["keys"][0]["fingerprint"]
    checked = json.loads(run_cli("verify-bundle", bundle, "--fingerprint", fingerprint, "--json").stdout)
    assert checked["ok"] and not any("holds no capture" in item for item in checked["not_checked"])
    assert checked["established"]["shows"]["summary"] == "1 not-found, 1 failed (network error: Connection refused)"


def test_the_report_reads_whole_words_in_chromium(lawyers_copy, monkeypatch):
    from playwright.sync_api import sync_playwright

    from archiver.capture.browser.chromium import find_chromium

    monkeypatch.delenv("ARCHIVER_CHROMIUM")
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("Chromium is not installed (.ci/run installs it)")
    shots = Path("/tmp/report-screenshots")  # kept after the test, to be looked at
    shots.mkdir(exist_ok=True)
    page_file = shots / "report.html"
    page_file.write_text(lawyers_copy["report"])
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium)
        broken = {}
        for width in (1280, 420):  # a desktop and a phone held upright
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.goto(page_file.as_uri())
            page.screenshot(path=str(shots / f"report-{width}.png"), full_page=True)
            broken[width] = page.evaluate(WORDS_BROKEN_ACROSS_LINES)
            heading = page.inner_text("h1")
            overflowing = page.evaluate("document.documentElement.scrollWidth > document.documentElement.clientWidth")
            assert not overflowing, f"the page is wider than a {width} px window"
        body = page.inner_text("body")
        browser.close()
    assert broken == {1280: [], 420: []}
    assert "Web pages cited by 2 claims" in heading and lawyers_copy["statement"]["bundle"] not in heading
    assert "changed since the previous capture" in body
    assert str(lawyers_copy["tmp"]) not in body


# Every word of text outside machine strings (<code>, <pre>) laid out on one line: a word the browser
# broke mid-word has two client rectangles on different lines.
WORDS_BROKEN_ACROSS_LINES = """() => {
  const broken = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (node.parentElement.closest('code, pre')) continue;
    for (const match of node.data.matchAll(/\\S+/g)) {
      const range = document.createRange();
      range.setStart(node, match.index);
      range.setEnd(node, match.index + match[0].length);
      const tops = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
      if (tops.size > 1) broken.push(match[0]);
    }
  }
  return broken;
}"""


def test_a_bundle_of_captures_attested_by_a_key_revoked_before_them_says_so(run_cli, raw_server, collection, tmp_path):
    """Key A attested a capture; A is rotated out for B, then revoked from a date before that
    capture (it was stolen earlier than anyone knew). Asked to carry it, the bundle B signs is
    written with every fact, but it does not pass for one that verifies: exit 1, a warning, and
    the report says why. Not asked, there is nothing else to bundle: exit 2, and advice that works."""
    server = raw_server({"/page": send_bytes(http_response(b"<html><title>Page</title><p>words</p></html>"))})
    assert run_cli("capture", "-C", collection.root, server.url("/page")).exit_code == 0
    [old] = json.loads(run_cli("keys", "show", "-C", collection.root, "--json").stdout)["keys"]
    assert run_cli("keys", "rotate", "-C", collection.root).exit_code == 0
    assert run_cli("keys", "revoke", old["fingerprint"], "-C", collection.root, "--from", "2020-01-01T00:00:00Z",
                   "--reason", "stolen long ago").exit_code == 0
    bundle = tmp_path / "all.wacz"
    made = run_cli("bundle", "-C", collection.root, "--all", "--include-revoked", "-o", bundle, "--json")
    assert made.exit_code == 1, made.output
    [capture] = json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)
    assert json.loads(made.stdout)["attested_by_revoked_keys"] == [capture["id"]]
    with zipfile.ZipFile(bundle) as wacz:
        text = text_of(wacz.read("evidence/report.html").decode())
    assert re.search(r"not to be trusted: key [0-9a-f]{16} was revoked from 2020-01-01T00:00:00[.0-9]*Z, "
                     r"before this capture was made; verifying this bundle fails it", text), text
    old_key = text.split("Signing keys")[1].split(f"Fingerprint {' '.join([old['fingerprint'][i:i + 4] for i in range(0, 64, 4)])}")
    assert len(old_key) == 2 and "Status revoked when this bundle was made" in old_key[1].split("Fingerprint")[0]
    checked = json.loads(run_cli("verify-bundle", bundle, "--fingerprint", made_key(run_cli, collection), "--json").stdout)
    assert "attestation key status" in {f["check"] for f in checked["failures"]}
    plain = run_cli("bundle", "-C", collection.root, "--all", "-o", tmp_path / "again.wacz")
    assert plain.exit_code == 2 and "attested by a key revoked from before it was made" in plain.stderr, plain.output
    assert "capture its URLs again, then bundle again; or add --include-revoked" in plain.stderr
    assert not (tmp_path / "again.wacz").exists()


def test_captures_a_stolen_key_attested_are_left_out_and_a_capture_made_since_is_bundled_in_their_place(
        run_cli, raw_server, collection, tmp_path):
    """Key A attested a capture; A is rotated out for B, which captures the unchanged page again
    (a revisit of A's capture), then A is revoked from the moment its capture began (the laptop
    was stolen then). The URL's bundle leaves out A's capture, the revisit whose payload only A's
    capture holds, and the custody entries A signed from then on (its rotation to B among them),
    and says to capture again: a capture made then stores the page in full, and its bundle
    verifies, the report and verify-bundle naming what was left out and why."""
    server = raw_server({"/page": send_bytes(http_response(b"<html><title>Page</title><p>words</p></html>"))})
    url = server.url("/page")
    assert run_cli("capture", "-C", collection.root, url).exit_code == 0
    [stolen] = json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)
    [old] = json.loads(run_cli("keys", "show", "-C", collection.root, "--json").stdout)["keys"]
    assert run_cli("keys", "rotate", "-C", collection.root).exit_code == 0
    assert run_cli("capture", "-C", collection.root, url).exit_code == 0
    [_, revisit] = json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)
    assert revisit["revisit_of"] == stolen["id"]
    assert run_cli("keys", "revoke", old["fingerprint"], "-C", collection.root, "--from", stolen["started_at"],
                   "--reason", "laptop stolen").exit_code == 0
    nothing = run_cli("bundle", "-C", collection.root, "--url", url, "-o", tmp_path / "nothing.wacz")
    assert nothing.exit_code == 2 and "capture its URLs again, then bundle again" in nothing.stderr, nothing.output
    assert run_cli("capture", "-C", collection.root, url).exit_code == 0
    [*_, fresh] = json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)
    assert fresh["revisit_of"] is None  # not a revisit of a capture bundles leave out
    bundle = tmp_path / "page.wacz"
    made = run_cli("bundle", "-C", collection.root, "--url", url, "-o", bundle, "--json")
    assert made.exit_code == 0, made.output
    result = json.loads(made.stdout)
    assert result["captures"] == 1 and result["left_out_attested_by_revoked_keys"] == [stolen["id"], revisit["id"]]
    assert result["attested_by_revoked_keys"] == [] and result["custody_entries_by_keys_out_of_service"] == []
    assert any("(key rotated) is signed by key " + old["fingerprint"] in why for why in result["custody_entries_left_out"])
    with zipfile.ZipFile(bundle) as wacz:
        carried = [c["entry"]["id"] for c in json.loads(wacz.read("evidence/captures.json"))["captures"]]
        signers = {json.loads(line)["key"] for line in wacz.read("evidence/custody.jsonl").splitlines()
                   if json.loads(line)["time"] >= stolen["started_at"]}
        text = text_of(wacz.read("evidence/report.html").decode())
    assert carried == [fresh["id"]] and old["fingerprint"] not in signers
    left_out = text.split("Left out of this bundle")[-1]
    assert f"capture {stolen['id']} of {url}" in left_out and f"revoked from {stolen['started_at']}" in left_out, text
    assert f"capture {revisit['id']} of {url}" in left_out and f"stored only in capture {stolen['id']}" in left_out
    checked = json.loads(run_cli("verify-bundle", bundle, "--fingerprint", made_key(run_cli, collection), "--json").stdout)
    assert checked["ok"], checked["failures"]
    assert not any("revisit" in line for line in checked["not_checked"]), checked["not_checked"]
    assert any(line.startswith(f"capture {stolen['id']} of {url}") and "left out: attested by a revoked key" in line
               for line in checked["not_checked"]), checked["not_checked"]
    assert any("(key rotated)" in line and "left out: signed by a revoked key" in line for line in checked["not_checked"])

    carrying = tmp_path / "carrying.wacz"
    asked = run_cli("bundle", "-C", collection.root, "--url", url, "--include-revoked", "-o", carrying)
    assert asked.exit_code == 1 and "then bundle again without --include-revoked" in asked.stderr, asked.output
    failed = json.loads(run_cli("verify-bundle", carrying, "--fingerprint", made_key(run_cli, collection), "--json").stdout)
    assert {"attestation key status", "custody key status"} <= {f["check"] for f in failed["failures"]}


def test_a_bundle_signed_after_a_rotation_names_its_signer_and_the_rotation_the_old_key_signed(
        run_cli, raw_server, collection, tmp_path):
    """A court holding the fingerprint sworn before a rotation is told which key signed the
    bundle and that the sworn key signed its rotation to it, and is left to decide: the
    check still fails, since the key it was given did not sign."""
    server = raw_server({"/page": send_bytes(http_response(b"<html><title>Page</title><p>words</p></html>"))})
    assert run_cli("capture", "-C", collection.root, server.url("/page")).exit_code == 0
    [old] = json.loads(run_cli("keys", "show", "-C", collection.root, "--json").stdout)["keys"]
    assert run_cli("keys", "rotate", "-C", collection.root).exit_code == 0
    bundle = tmp_path / "after.wacz"
    assert run_cli("bundle", "-C", collection.root, "--all", "-o", bundle).exit_code == 0
    new = made_key(run_cli, collection)
    checked = json.loads(run_cli("verify-bundle", bundle, "--fingerprint", old["fingerprint"], "--json").stdout)
    [refused] = [f for f in checked["failures"] if f["check"] == "signer identity"]
    assert not checked["ok"] and f"run again with --fingerprint {new}" in refused["detail"], refused
    assert f"signed by the key {grouped(new)}, not by the key {grouped(old['fingerprint'])}" in refused["detail"]
    assert f"the key {grouped(old['fingerprint'])} signed its rotation to that key at" in refused["detail"]
    stranger = json.loads(run_cli("verify-bundle", bundle, "--fingerprint", "ab" * 32, "--json").stdout)
    [unknown] = [f for f in stranger["failures"] if f["check"] == "signer identity"]
    assert "rotation" not in unknown["detail"] and f"signed by the key {grouped(new)}" in unknown["detail"]


def made_key(run_cli, collection) -> str:
    """The collection's signing key now: the one its bundles are signed with."""
    keys = json.loads(run_cli("keys", "show", "-C", collection.root, "--json").stdout)["keys"]
    [active] = [key["fingerprint"] for key in keys if key["status"] == "active"]
    return active


def test_a_claim_whose_every_citation_failed_travels_with_its_failure_in_a_bundle_that_verifies(
        run_cli, raw_server, collection, closed_port, tmp_path):
    """Its capture failed, so no record of it is bundled: its signed failure is, and does not fail the bundle."""
    server = raw_server({"/page": send_bytes(http_response(b"<html><title>Page</title><p>words</p></html>"))})
    refused = f"http://127.0.0.1:{closed_port}/gone"
    sheet = collection.root / "seeds" / "sheet.csv"
    sheet.write_text(f"claim,url\nShown,{server.url('/page')}\nNot shown,{refused}\n")
    assert run_cli("capture", "-C", collection.root, sheet).exit_code == 1
    bundle = tmp_path / "all.wacz"
    made = run_cli("bundle", "-C", collection.root, "--all", "-o", bundle)
    assert made.exit_code == 0 and "have no capture in this bundle" not in made.output, made.output
    assert "2 capture(s)" in made.output
    checked = json.loads(run_cli("verify-bundle", bundle, "--fingerprint", made_key(run_cli, collection), "--json").stdout)
    assert checked["ok"], checked["failures"]
    assert checked["passed"]["failed capture logged"] == 1
    assert not any(item.endswith(f"cites {refused}: the bundle holds no capture of it") for item in checked["not_checked"])


def test_a_claim_citing_a_capture_by_its_id_is_shown_citing_that_one(run_cli, raw_server, collection, tmp_path):
    """`cite --capture ID` cites that capture of its URL: the report says so of it, and of the URL's
    other capture that the claim does not cite it (was: both listed as 'made before the claim cited
    this URL', the one cited never named) (found by QA)."""
    served = iter([FIRST, SECOND])
    server = raw_server({"/statement": lambda conn, request: conn.sendall(http_response(next(served)))})
    first, second = (json.loads(run_cli("capture", "-C", collection.root, server.url("/statement"), "--json").stdout)
                     ["captures"][0]["id"] for _ in range(2))
    cited = run_cli("cite", "-C", collection.root, "Troops moved on Monday", "--capture", first, "--json")
    assert cited.exit_code == 0, cited.output
    claim = json.loads(cited.stdout)["note"]
    bundle = tmp_path / "cited.wacz"
    assert run_cli("bundle", "-C", collection.root, "--claim", claim, "-o", bundle).exit_code == 0
    copy = {"text": text_of(zipfile.ZipFile(bundle).read("evidence/report.html").decode())}
    claims = copy["text"][copy["text"].index(f"Claim {claim}"):copy["text"].index(f"Capture {first}")]
    assert re.search(rf"capture {first}: [^;]*; cited by its id, with archiver cite --capture", claims), claims
    assert re.search(rf"capture {second}: [^;]*; not cited: the claim cites another capture of this URL by its id",
                     claims), claims
    assert "made before the claim cited this URL" not in copy["text"]
    assert f"Cited by claim {claim} (cited by its id, with archiver cite --capture)" in capture_section(copy, first)
    assert (f"Cited by no claim in this bundle; not claim {claim}, which cites another capture of this URL by its id"
            in capture_section(copy, second)), capture_section(copy, second)
