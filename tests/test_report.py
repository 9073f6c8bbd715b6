"""evidence/report.html: hostile strings stay text, nothing is loaded, every fact is shown,
and every command it prints, run as printed on a bundle `archiver bundle` made, verifies it."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

from archiver.exchange.bundle_page import visible_text
from archiver.exchange.report import render_report
from archiver.evidence.signing import grouped
from tests.conftest import http_response, send_bytes, use_tsa
from tests.test_report_bundle import text_of
from tests.tsa import local_tsa  # noqa: F401

KEY = "a1b2" * 16
OLD_KEY = "0f0e" * 16
P384_KEY = "c3d4" * 16
KEY_HASH = "aa" * 32
WACZ_HASH = "11" * 32
WARC_HASH = "22" * 32
DOC_HASH = "33" * 32
MANIFEST_HASH = "44" * 32
MERKLE_ROOT = "55" * 32
CERT_HASH = "66" * 32
HOSTILE_TITLE = "</title><script>alert(1)</script>"
HOSTILE_CLAIM = "The minister said <img src=x onerror=alert(1)> on Monday"
HOSTILE_URL = "javascript:alert(1)"


GONE = {"url": "https://gone.example/x", "started_at": "2026-04-30T12:02:00Z", "outcome": "failed",
        "error": "connection refused"}
NEVER = {"url": "https://never.example/y", "started_at": None, "outcome": None, "error": None}


def cited(url: str, captures: list[tuple[str, str]], not_bundled: dict | None = None) -> dict:
    """A URL a claim of the view cites, from its first read on."""
    return {"url": url, "since": "2026-04-30T11:00:00Z", "since_recorded": True, "until": None, "dropped": False,
            "captures": captures, "not_bundled": not_bundled}


def make_view() -> dict:
    return {
        "bundle": {"id": "b-2026-001", "created": "2026-05-01T10:00:00Z", "file": "evidence-2026.wacz",
                   "software": "archiver 0.1.0", "signed_by": KEY,
                   "selection": {"claims": ["claim-1"], "urls": [HOSTILE_URL], "documents": ["seeds/a.txt"], "all": False},
                   "collection": {"id": "col-1", "name": "Belarus claims", "operator": "desk@example.org"}},
        "keys": [
            {"fingerprint": KEY, "algorithm": "Ed25519", "role": "collection signing key", "status": "current",
             "announced_at": "2026-01-01T00:00:00Z", "revoked_from": None},
            {"fingerprint": OLD_KEY, "algorithm": "Ed25519", "role": "collection signing key", "status": "revoked",
             "announced_at": "2025-01-01T00:00:00Z", "revoked_from": "2025-12-31T00:00:00Z"},
            {"fingerprint": P384_KEY, "algorithm": "ECDSA P-384", "role": "signs the WACZ datapackage digest",
             "status": "valid", "announced_at": None, "revoked_from": None},
        ],
        "manifest": {"sequence": 7, "sha256": MANIFEST_HASH, "captures_merkle_root": MERKLE_ROOT,
                     "captures_in_manifest": 40, "signed_by": KEY,
                     "timestamp": {"gen_time": "2026-05-01T09:59:00Z", "tsa": "FreeTSA", "data": "evidence/checkpoint.json",
                                   "file": "evidence/checkpoint.json.tsr"}},
        "documents": [{"key": "seeds/a.txt", "sha256": DOC_HASH, "date": "2026-04-30", "title": "Report <b>A</b>"}],
        "claims": [
            {"id": "claim-1", "text": HOSTILE_CLAIM, "kind": "main", "document": "seeds/a.txt", "start": 0, "end": 57,
             "first_seen_at": "2026-04-30T11:00:00Z", "superseded_at": None, "version": DOC_HASH,
             "urls": [cited("http://example.org/report", [("cap-ok", "while")]), cited(HOSTILE_URL, [("cap-failed", "while")]),
                      cited("https://gone.example/x", [], GONE), cited("https://never.example/y", [], NEVER)],
             "captures": ["cap-ok", "cap-failed"], "not_bundled": [GONE, NEVER]},
            {"id": "claim-2", "text": "Entered by hand", "kind": "cited", "document": None, "start": None, "end": None,
             "first_seen_at": "2026-04-30T11:00:00Z", "superseded_at": None, "version": None, "urls": [],
             "captures": [], "not_bundled": []},
        ],
        "captures": [
            {"id": "cap-ok", "url": "http://example.org/report", "final_url": "https://example.org/report",
             "started_at": "2026-04-30T12:00:00Z", "finished_at": "2026-04-30T12:00:02Z", "ip": "93.184.216.34",
             "http_status": 200, "outcome": "ok", "truncated": None, "error": None, "title": HOSTILE_TITLE,
             "verdict": "content", "verdict_reason": None,
             "redirects": [{"url": "http://example.org/report", "status": 301, "location": "https://example.org/report"}],
             "certificate": {"sha256": CERT_HASH, "subject": "CN=example.org", "issuer": "CN=Test CA",
                             "not_before": "2026-01-01T00:00:00Z", "not_after": "2027-01-01T00:00:00Z", "verified": True},
             "payload_digest": "sha256:" + "77" * 32,
             "records": [{"id": "<urn:uuid:rec-response>", "type": "response", "file": "archive/data.warc.gz",
                          "block_digest": "sha256:" + "88" * 32, "payload_digest": "sha256:" + "77" * 32}],
             "attestation_key": KEY},
            {"id": "cap-failed", "url": HOSTILE_URL, "final_url": None,
             "started_at": "2026-04-30T12:01:00Z", "finished_at": "2026-04-30T12:01:00Z", "ip": None,
             "http_status": None, "outcome": "failed", "truncated": None, "error": "name does not resolve",
             "verdict": None, "verdict_reason": None,
             "title": None, "redirects": [], "certificate": None, "payload_digest": None, "records": [],
             "attestation_key": None},
        ],
        "files": [
            {"path": "archive/data.warc.gz", "sha256": WARC_HASH, "bytes": 123456},
            {"path": "evidence/claims.json", "sha256": WACZ_HASH, "bytes": 2048},
            {"path": f"evidence/key-{KEY}.pub.pem", "sha256": KEY_HASH, "bytes": 113},
            {"path": f"evidence/key-{P384_KEY}.p384.pub.pem", "sha256": KEY_HASH, "bytes": 215},
        ],
        "left_out": {"captures": [], "custody": []},
    }


class Page(HTMLParser):
    """The parts of a page a browser would act on: tags, attributes, text, <pre> blocks."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.pres: list[str] = []
        self.headings: list[str] = []
        self._open: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in ("pre", "h2"):
            self._open.append(tag)
            (self.pres if tag == "pre" else self.headings).append("")

    def handle_endtag(self, tag: str) -> None:
        if self._open and self._open[-1] == tag:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._open:
            target = self.pres if self._open[-1] == "pre" else self.headings
            target[-1] += data

    @property
    def all_text(self) -> str:
        return "".join(self.text)

    def attributes(self, name: str) -> list[str | None]:
        return [attrs[name] for _, attrs in self.tags if name in attrs]


def test_the_pages_text_holds_its_declarative_shadow_roots_but_no_template():
    """A browser capture's DOM holds the page's open shadow roots as declarative ones: the report shows their text."""
    dom = ('<html><head><title>T</title></head><body><p>Before</p><news-article><template shadowrootmode="open">'
           "<h1>Headline</h1><template><p>Inert</p></template><p>Story</p></template></news-article>"
           "<template><p>Unused</p></template><p>After</p></body></html>")
    assert visible_text(dom) == "Before\nHeadline\nStory\nAfter"


def test_hostile_strings_are_shown_as_text_and_never_run():
    view = make_view()
    view["captures"][0]["id"] = 'cap-ok" onmouseover="alert(1)'
    view["claims"][0]["captures"][0] = view["captures"][0]["id"]
    view["claims"][0]["urls"][0]["captures"] = [(view["captures"][0]["id"], "while")]
    view["captures"][0]["final_url"] = "https://example.org/</code><script>alert(2)</script>"
    html = render_report(view)
    page = Page(html)
    assert "<script" not in html.lower()
    assert [tag for tag, _ in page.tags if tag in ("script", "img", "iframe", "object", "embed", "base", "form")] == []
    allowed = {"lang", "charset", "http-equiv", "name", "content", "id", "href", "class", "scope"}
    assert {name for _, attrs in page.tags for name in attrs} <= allowed  # no onerror=, no onmouseover=
    assert not any(href.lower().startswith("javascript:") for href in page.attributes("href"))
    for hostile in (HOSTILE_TITLE, HOSTILE_CLAIM, HOSTILE_URL, view["captures"][0]["id"], view["captures"][0]["final_url"]):
        assert hostile in page.all_text
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_a_titles_direction_overrides_are_shown_not_obeyed():
    """A page can title itself so that, in the report, "evil" reads "live": its override shows as
    a code point; Arabic, whose letters carry their own direction, is shown as written."""
    view = make_view()
    view["captures"][0]["title"] = "Statement \u202eevil\u202c \u0645\u0631\u062d\u0628\u0627 \x1b[31m"
    html = render_report(view)
    assert "Statement <span class=\"ctl\">U+202E</span>evil<span class=\"ctl\">U+202C</span> \u0645\u0631\u062d\u0628\u0627 " \
           "<span class=\"ctl\">U+001B</span>[31m" in html
    assert "\u202e" not in html and "\x1b" not in html
    view["claims"][0]["text"] = "Line one\r\nline two"  # a claim from a file saved on Windows
    assert "Line one\r\nline two" in render_report(view)


def test_invisible_characters_in_a_url_are_shown_not_obeyed():
    view = make_view()
    view["captures"][0]["url"] = "https://example.org/\u202egpj.exe"
    html = render_report(view)
    assert "\u202e" not in html and "https://example.org/U+202Egpj.exe" in Page(html).all_text


def test_nothing_outside_the_page_can_be_loaded_or_linked():
    html = render_report(make_view())
    page = Page(html)
    assert page.attributes("src") == []
    ids = set(page.attributes("id"))
    hrefs = page.attributes("href")
    assert hrefs and all(href.startswith("#") and href[1:] in ids for href in hrefs)
    assert not [tag for tag, _ in page.tags if tag in ("link", "img", "script", "iframe")]
    assert "url(" not in html and "@import" not in html
    metas = {attrs.get("http-equiv") or attrs.get("name"): attrs["content"] for tag, attrs in page.tags if tag == "meta"
             and "content" in attrs}
    assert metas["Content-Security-Policy"] == "default-src 'none'; style-src 'unsafe-inline'"
    assert metas["referrer"] == "no-referrer"
    assert "overflow-wrap: anywhere" in html


def test_every_claim_capture_key_file_and_digest_is_shown():
    view = make_view()
    page = Page(render_report(view))
    text = page.all_text
    for claim in view["claims"]:
        assert claim["id"] in text and claim["text"] in text
    for capture in view["captures"]:
        assert capture["id"] in text and capture["url"] in text
    for key in view["keys"]:
        assert grouped(key["fingerprint"]) in text
    keys = text.split("Signing keys")[1].split("The bundle and its manifest")[0]
    assert f"evidence/key-{P384_KEY}.p384.pub.pem" in keys and "not in this bundle" in keys  # OLD_KEY has no file
    for entry in view["files"]:
        assert entry["sha256"] in text and entry["path"] in text
    for fact in (DOC_HASH, MANIFEST_HASH, MERKLE_ROOT, CERT_HASH, "Report <b>A</b>", "93.184.216.34",
                 "https://example.org/report", "301", "2027-01-01T00:00:00Z", "<urn:uuid:rec-response>",
                 "sha256:" + "88" * 32, "characters 0 to 57", "desk@example.org", "2025-12-31T00:00:00Z", "123,456"):
        assert fact in text, fact
    ids = set(page.attributes("id"))
    assert {"claim-claim-1", "capture-cap-ok", "capture-cap-failed", f"key-{KEY}"} <= ids
    assert "#capture-cap-ok" in page.attributes("href") and "#claim-claim-1" in page.attributes("href")


def test_sections_come_in_order_with_verification_first():
    page = Page(render_report(make_view()))
    assert page.headings == ["How to verify this bundle independently", "Claims", "Captures", "Documents",
                             "Signing keys", "The bundle and its manifest", "Files"]
    summary = page.all_text.split("How to verify")[0]
    for fact in ("b-2026-001", "2026-05-01T10:00:00Z", "desk@example.org", "Belarus claims", "1 claim from 1 document and 1 note", "2 captures"):
        assert fact in summary, fact


def test_the_verification_commands_are_there_to_copy():
    page = Page(render_report(make_view()))
    commands = "\n".join(page.pres)
    # They come from the page they check: the reader is told so, and what to read them for.
    intro = " ".join(page.all_text.split()).split("How to verify this bundle independently")[1]
    assert "these commands included: read each before you run it" in intro
    assert "archiver verify-bundle from your own copy of archiver, which takes nothing from this page" in intro
    for command in (
        "unzip -d bundle evidence-2026.wacz",
        f"openssl pkey -pubin -in evidence/key-{KEY}.pub.pem -outform DER | sha256sum",
        f"openssl pkeyutl -verify -pubin -inkey evidence/key-{KEY}.pub.pem -rawin -in evidence/bundle.json "
        "-sigfile evidence/bundle.json.sig",
        f"{WARC_HASH}  archive/data.warc.gz\n{WACZ_HASH}  evidence/claims.json\n"
        f"{KEY_HASH}  evidence/key-{KEY}.pub.pem\n{KEY_HASH}  evidence/key-{P384_KEY}.p384.pub.pem\nEND",
        "sha256sum datapackage.json\ncat datapackage-digest.json",
        "openssl ts -verify -data evidence/checkpoint.json -in evidence/checkpoint.json.tsr -CAfile ../TSA-ROOTS.pem",
        "warcio check archive/*.warc.gz",
        f"archiver verify-bundle evidence-2026.wacz --fingerprint '{grouped(KEY)}' --tsa-roots TSA-ROOTS.pem",
    ):
        assert command in commands, command
    assert "sha256sum -c <<'END'\n" in commands


def test_what_replaywebpage_shows_is_explained_with_what_to_check_instead():
    page = Page(render_report(make_view()))
    verification = " ".join(page.all_text.split()).split("How to verify this bundle independently")[1].split("Claims")[0]
    replaywebpage = verification[verification.index("If you open this bundle in ReplayWeb.page"):]
    for said in ("accepts the bundle's ECDSA P-384 signature", "“1 hashes verified, 2 invalid”",
                 "checks a file's hash only when an option is turned on", "counts each file it did not check as invalid",
                 "not a sign of tampering", "sha256sum -c", "archiver verify-bundle"):
        assert said in replaywebpage, said
    assert len(page.pres) == len(PRINTED_STEPS)  # an explanation, not another command


def test_strings_that_would_break_a_pasted_command_stay_out_of_it():
    view = make_view()
    view["bundle"]["file"] = "my bundle; rm -rf ~.wacz"
    view["files"].append({"path": "x\nEND\nrm -rf ~", "sha256": "99" * 32, "bytes": 1})
    view["files"].append({"path": "archive/ok.warc.gz", "sha256": "not-a-hash\nrm -rf ~", "bytes": 1})
    view["bundle"]["signed_by"] = "$(rm -rf ~)"
    page = Page(render_report(view))
    commands = "\n".join(page.pres)
    assert "unzip -d bundle 'my bundle; rm -rf ~.wacz'" in commands
    assert "rm -rf ~\n" not in commands and "$(" not in commands
    heredoc = commands.split("<<'END'\n", 1)[1].split("\nEND\n", 1)[0].splitlines()
    assert heredoc and all(re.fullmatch(r"[0-9a-f]{64}  \S.*", line) for line in heredoc)
    assert "-in PUBLIC-KEY.pem" in commands and "--fingerprint FINGERPRINT" in commands
    assert "lists no public key file for that key" in page.all_text
    assert "compare by hand" in page.all_text and "archive/ok.warc.gz" in page.all_text


def test_missing_parts_are_said_in_words():
    view = make_view()
    view["manifest"]["timestamp"] = None
    view["bundle"]["selection"]["all"] = True
    view["bundle"]["collection"]["id"] = None
    view["captures"].append({
        "id": "cap-cut", "url": "https://example.org/big", "final_url": "https://example.org/big",
        "started_at": "2026-04-30T12:02:00Z", "finished_at": "2026-04-30T12:03:00Z", "ip": "93.184.216.34",
        "http_status": 200, "outcome": "truncated", "truncated": "length", "error": None, "title": None,
        "redirects": [], "certificate": None, "payload_digest": None, "records": [], "attestation_key": "ab" * 32,
        "verdict": None, "verdict_reason": None})
    page = Page(render_report(view))
    text = " ".join(page.all_text.split())
    verification = text.split("How to verify this bundle independently")[1].split("Claims")[0]
    assert "no RFC 3161 timestamp in this bundle" in verification
    assert "openssl ts" not in "\n".join(page.pres) and "--tsa-roots" not in "\n".join(page.pres)
    assert "failed: name does not resolve" in text
    assert "no TLS certificate recorded for this capture" in text
    assert "no HTTP response" in text and "not attested" in text
    assert "truncated: stopped at the size limit (length)" in text
    assert "(not among the keys in this bundle)" in text
    assert "none (the claim was entered directly)" in text
    assert "It was made for everything in the collection." in text


def test_a_note_is_not_placed_in_a_document_it_does_not_have():
    """A claim typed with `archiver cite` is in no document: its place is not "characters 0 to
    57 of the document", which would tell a court there is one."""
    view = make_view()
    view["claims"][0].update(document=None, kind="note")
    text = text_of(render_report(view))
    assert "Document none (the claim was entered directly)" in text
    assert "of the document" not in text and "Place none: the claim is in no document" in text


def test_a_capture_that_is_not_the_page_is_never_called_complete_alone():
    view = make_view()
    view["captures"][0].update(verdict="not-found", verdict_reason="status 200 but the page says 'Page not found'")
    text = text_of(render_report(view))
    claim = text.split("Claim claim-1")[1].split("Claim claim-2")[0]
    assert "2026-04-30T12:00:00Z, complete, not the page: not-found" in claim
    assert "Page verdict not-found: status 200 but the page says 'Page not found'" in text
    assert "Of these, 1 capture recorded what the server sent in place of the page cited" in text
    view["captures"][0].update(verdict="http-error", http_status=404, verdict_reason=None)
    assert "not the page: http-error 404" in text_of(render_report(view))
    view["captures"][0].update(verdict="content", http_status=200)
    text = text_of(render_report(view))
    assert "Page verdict content: the page itself" in text and "not the page" not in text


def test_every_cited_url_the_bundle_holds_no_capture_of_is_named_with_its_claim():
    text = text_of(render_report(make_view()))
    claim = text.split("Claim claim-1")[1].split("Claim claim-2")[0]
    assert ("no capture in this bundle: https://gone.example/x, newest capture failed on 2026-04-30T12:02:00Z: "
            "connection refused; it holds no page to bundle") in claim
    assert "no capture in this bundle: https://never.example/y, never captured" in claim
    assert "2 cited URLs of the claims have no capture in this bundle" in text


def test_captures_left_out_for_a_revoked_key_are_listed_with_why_and_their_urls_said_so():
    view = make_view()
    assert "Left out of this bundle" not in text_of(render_report(view))
    view["left_out"] = {"captures": [{"capture": "cap-stolen", "url": HOSTILE_URL, "started_at": "2026-04-30T11:00:00Z",
                                      "why": "attested by a revoked key (key 0123456789abcdef was revoked from "
                                             "2026-04-30T10:00:00Z, before this capture was made)"}],
                        "custody": [{"seq": 4, "event": "key rotated", "why": "seq 4 (key rotated) is signed by key "
                                     "0123, which was revoked from 2026-04-30T10:00:00Z"}]}
    view["claims"][0]["urls"][0]["not_bundled"] = {**GONE, "left_out": True}
    html = render_report(view)
    text = text_of(html)
    assert ("Left out: 1 capture of the selection, each attested by a key revoked from before it was made, or a "
            "revisit of one") in text
    left_out = text.split("Left out of this bundle")[-1].split("Documents")[0]
    assert (f"capture cap-stolen of {HOSTILE_URL}, started 2026-04-30T11:00:00Z: attested by a revoked key (key "
            "0123456789abcdef was revoked from 2026-04-30T10:00:00Z, before this capture was made)") in left_out
    assert "custody entry seq 4 (key rotated) is signed by key 0123, which was revoked" in left_out
    assert "its captures were left out, attested by a key revoked from before they were made" in text
    assert not any(href.lower().startswith("javascript:") for href in Page(html).attributes("href"))


def test_a_failed_capture_names_its_last_answer_never_as_the_final_url():
    view = make_view()
    failed = view["captures"][1]
    assert "Final URL none: no server answered" in text_of(render_report(view))
    failed.update(final_url="https://example.org/moved", http_status=302, ip="93.184.216.34",
                  error="redirect to a refused address")
    text = text_of(render_report(view))
    section = text.split("Capture cap-failed")[1]
    assert "Final URL" not in section
    assert "Last answer https://example.org/moved (not the end of the chain: the capture failed after it" in section


def test_the_certificate_says_whether_it_was_verified_when_captured():
    view = make_view()
    assert "Checked verified when captured" in text_of(render_report(view))
    view["captures"][0]["certificate"]["verified"] = False
    text = text_of(render_report(view))
    assert "Checked not verified: the capture ran with certificate checks off (--insecure)" in text
    assert "Validity period from 2026-01-01T00:00:00Z" in text


def test_rendering_is_pure():
    view = make_view()
    before = copy.deepcopy(view)
    assert render_report(view) == render_report(view)
    assert view == before


def test_rendering_prints_nothing(capsys):
    render_report(make_view())
    assert capsys.readouterr() == ("", "")


needs_tools = pytest.mark.skipif(not all(shutil.which(tool) for tool in ("openssl", "unzip", "sha256sum", "bash")),
                                 reason="needs openssl, unzip, sha256sum and bash")

# What each printed command begins with, in the order the report prints them; the timestamp step is there
# because the bundle's manifest is timestamped.
PRINTED_STEPS = ("unzip -d bundle ", "openssl pkey -pubin ", "openssl pkeyutl -verify ", "sha256sum -c ",
                 "openssl ts -verify ", "warcio check ", "cd ..\narchiver verify-bundle ")
UNPACKING, KEY_CHECK, SIGNATURE_CHECK, FILE_HASH_CHECK, TIMESTAMP_CHECK, WARC_CHECK, ALL_IN_ONE = range(len(PRINTED_STEPS))


@pytest.fixture
def court_copy(run_cli, raw_server, collection, local_tsa, tmp_path) -> dict:
    """A bundle made by `archiver bundle` from a page captured on 127.0.0.1, its manifest timestamped by a
    local RFC 3161 authority, alone in an empty folder as a court receives it. Beside it the clerk puts the
    authority's root certificate, got from the authority, and is given the key fingerprint by another channel."""
    server = raw_server({"/statement": send_bytes(http_response(b"<html><title>Statement</title><p>troops moved</p>"))})
    use_tsa(collection.root, local_tsa)
    (collection.root / "seeds" / "article.md").write_text(f"# Troops moved on Monday\n\nSee {server.url('/statement')}\n")
    assert run_cli("capture", "-C", collection.root, collection.root / "seeds").exit_code == 0
    made = run_cli("bundle", "-C", collection.root, "--all", "-o", tmp_path / "evidence-2026.wacz", "--json")
    assert made.exit_code == 0, made.output
    court = tmp_path / "court"
    court.mkdir()
    bundle = Path(shutil.copy(tmp_path / "evidence-2026.wacz", court))
    shutil.copyfile(local_tsa.ca_pem_path, court / "TSA-ROOTS.pem")
    with zipfile.ZipFile(bundle) as wacz:
        assert "evidence/checkpoint.json.tsr" in wacz.namelist()  # else there is no timestamp to check
        report = wacz.read("evidence/report.html").decode("utf-8")
    return {"folder": court, "bundle": bundle, "fingerprint": json.loads(made.stdout)["fingerprint"],
            "commands": Page(report).pres}


class Clerk:
    """Pastes printed commands one at a time into one terminal: each runs where the `cd` of the ones
    before it left the terminal, and fails on the first failing command of a pipe."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._where = folder.parent / "clerk-pwd"
        # The venv's bin first, for `archiver` and `warcio`, as the report assumes they are installed.
        self._env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}

    def run(self, command: str) -> subprocess.CompletedProcess:
        result = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", f"{command}\npwd >{shlex.quote(str(self._where))}"],
                                cwd=self.folder, env=self._env, capture_output=True, text=True)
        if result.returncode == 0:
            self.folder = Path(self._where.read_text().strip())
        return result


def checked(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def heredoc_paths(command: str) -> list[str]:
    """The paths a `sha256sum -c <<'END'` command checks, in its order."""
    body = command.split("<<'END'\n", 1)[1].split("\nEND\n", 1)[0]
    return [line.split("  ", 1)[1] for line in body.splitlines()]


@needs_tools
def test_every_printed_command_verifies_a_bundle_archiver_made(court_copy):
    commands = court_copy["commands"]
    assert len(commands) == len(PRINTED_STEPS), commands
    assert [command[:len(start)] for command, start in zip(commands, PRINTED_STEPS)] == list(PRINTED_STEPS)
    clerk = Clerk(court_copy["folder"])
    outputs = [checked(clerk.run(command)) for command in commands]

    assert "bundle/evidence/checkpoint.json.tsr" in outputs[UNPACKING]
    assert outputs[KEY_CHECK] == f"{court_copy['fingerprint']}  -\n"
    assert outputs[SIGNATURE_CHECK] == "Signature Verified Successfully\n"
    listed = heredoc_paths(commands[FILE_HASH_CHECK])
    not_in_the_report = {"evidence/report.html", "evidence/bundle.json", "evidence/bundle.json.sig",
                         "datapackage.json", "datapackage-digest.json"}
    with zipfile.ZipFile(court_copy["bundle"]) as wacz:
        assert set(listed) == set(wacz.namelist()) - not_in_the_report
        datapackage = wacz.read("datapackage.json")
    *verdicts, datapackage_line, digest_file = outputs[FILE_HASH_CHECK].splitlines()
    # The report itself last, against the digest the signed statement holds.
    assert verdicts == [f"{path}: OK" for path in [*listed, "evidence/report.html"]]
    assert datapackage_line == f"{hashlib.sha256(datapackage).hexdigest()}  datapackage.json"
    assert json.loads(digest_file)["hash"] == f"sha256:{hashlib.sha256(datapackage).hexdigest()}"
    assert outputs[TIMESTAMP_CHECK] == "Verification: OK\n"
    assert outputs[WARC_CHECK] == ""  # warcio check names each bad record, and prints nothing when all are intact
    assert f"against key {grouped(court_copy['fingerprint'])}" in outputs[ALL_IN_ONE]
    assert re.search(r"passed +1  checkpoint timestamp\n", outputs[ALL_IN_ONE])  # against TSA-ROOTS.pem
    assert " 0 failed" in outputs[ALL_IN_ONE] and "\nEvery check above passed.\nWhat the captures show: " in outputs[ALL_IN_ONE]


@needs_tools
@pytest.mark.parametrize("forged, original, forgery, step, verdict", [
    ("evidence/claims.json", b"Troops moved on Monday", b"Troops moved on Sunday", FILE_HASH_CHECK,
     "evidence/claims.json: FAILED"),
    # The page a lawyer prints: its digest is in evidence/bundle.json alone, as it cannot hold its own.
    ("evidence/report.html", b"Troops moved on Monday", b"Troops moved on Sunday", FILE_HASH_CHECK,
     "evidence/report.html: FAILED"),
    ("evidence/bundle.json", b'"operator":"tester@example"', b'"operator":"forger@example"', SIGNATURE_CHECK,
     "Signature Verification Failure"),
    ("evidence/checkpoint.json", b'{"captures":1,', b'{"captures":2,', TIMESTAMP_CHECK, "Verification: FAILED"),
])
def test_the_printed_commands_catch_a_forged_file(court_copy, forged, original, forgery, step, verdict):
    clerk = Clerk(court_copy["folder"])
    checked(clerk.run(court_copy["commands"][UNPACKING]))
    target = clerk.folder / forged
    assert original in target.read_bytes()
    target.write_bytes(target.read_bytes().replace(original, forgery))
    result = clerk.run(court_copy["commands"][step])
    assert result.returncode != 0 and verdict in result.stdout + result.stderr, result.stdout + result.stderr


def test_verify_bundle_says_which_bundle_it_verified_and_what_it_cannot_know(run_cli, court_copy):
    """The clerk learns from the verified signature which bundle this is, whose, when, and what
    its timestamp proves; and that whether the key was revoked since is beyond the bundle."""
    bundle, fingerprint = court_copy["bundle"], court_copy["fingerprint"]
    roots = court_copy["folder"] / "TSA-ROOTS.pem"
    report = json.loads(run_cli("verify-bundle", bundle, "--fingerprint", fingerprint, "--tsa-roots", roots, "--json").stdout)
    assert report["ok"], report["failures"]
    with zipfile.ZipFile(bundle) as wacz:
        statement = json.loads(wacz.read("evidence/bundle.json"))
    established = report["established"]
    assert (established["bundle"], established["made"], established["collection"], established["manifest"]) == (
        statement["bundle"], statement["created"], "test", statement["manifest"]["sequence"])
    assert established["captures_proven"] == 1 and established["timestamp"]["time"] and established["timestamp"]["tsa"]
    assert any(item.startswith(f"whether the key {grouped(fingerprint)} has since been revoked, possibly from a date before this bundle")
               for item in report["not_checked"])
    shown = run_cli("verify-bundle", bundle, "--fingerprint", fingerprint, "--tsa-roots", roots).stdout
    assert f"Bundle {statement['bundle']}, made {statement['created']}" in shown
    assert "every capture it lists, existed by then" in shown
    unsigned = json.loads(run_cli("verify-bundle", bundle, "--fingerprint", "ab" * 32, "--json").stdout)
    assert "established" not in unsigned  # nothing is vouched for by a key that did not sign it
    # Signed by the key, but a capture's bytes altered: nothing is said to be proven.
    tampered = court_copy["folder"] / "tampered.wacz"
    with zipfile.ZipFile(bundle) as source, zipfile.ZipFile(tampered, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            target.writestr(info, data.replace(b"Troops moved", b"Troops mooved") if info.filename == "evidence/claims.json"
                            else data)
    altered = run_cli("verify-bundle", tampered, "--fingerprint", fingerprint, "--tsa-roots", roots)
    assert altered.exit_code == 1 and "Bundle " not in altered.stdout.split("checks passed")[0], altered.stdout


@needs_tools
def test_a_forged_datapackage_passes_the_printed_steps_which_say_only_verify_bundle_checks_it(court_copy):
    """datapackage.json lists the signed statement, so the statement cannot list it: the printed
    steps show only that datapackage-digest.json names it, and say that its authenticity is
    verify-bundle's to check (the ECDSA signature), which then fails it."""
    bundle = court_copy["bundle"]
    with zipfile.ZipFile(bundle) as wacz:
        text = text_of(wacz.read("evidence/report.html").decode())
        files = {info.filename: wacz.read(info) for info in wacz.infolist()}
    assert ("The authenticity of datapackage.json itself is checked only by archiver verify-bundle (the last step). "
            "None of the other checks here relies on it.") in text
    forged = files["datapackage.json"].replace(b"evidence bundle", b"forged bundle")
    assert forged != files["datapackage.json"]
    digest = json.loads(files["datapackage-digest.json"])
    digest["hash"] = digest["signedData"]["hash"] = f"sha256:{hashlib.sha256(forged).hexdigest()}"
    files.update({"datapackage.json": forged, "datapackage-digest.json": json.dumps(digest).encode()})
    with zipfile.ZipFile(bundle, "w") as wacz:
        for name, data in files.items():
            wacz.writestr(name, data)
    clerk = Clerk(court_copy["folder"])
    outputs = [checked(clerk.run(command)) for command in court_copy["commands"][:ALL_IN_ONE]]
    *_, listed_digest, digest_file = outputs[FILE_HASH_CHECK].splitlines()
    assert f"sha256:{listed_digest.split()[0]}" == json.loads(digest_file)["hash"]  # the steps see them agree
    everything = clerk.run(court_copy["commands"][ALL_IN_ONE])
    assert everything.returncode == 1 and "datapackage" in everything.stdout, everything.stdout
