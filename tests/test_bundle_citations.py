"""A claim's bundle and its report as they stand over time: a claim carries the captures of every
URL it cited, now or before a re-read of its document dropped it; the report says when it was
first read, when it left its document, which version of the document its place refers to, over
what period it cited each URL, and whether each capture was made within that period; and the
captures are listed in the order they were made."""

from __future__ import annotations

import hashlib
import itertools
import json
import types
import zipfile
from pathlib import Path

import archiver.capture.run
from archiver.store.database import write_transaction
from tests.conftest import http_response, send_bytes
from tests.test_bundle import verify_bundle
from tests.test_report_bundle import text_of

CATALOG_BACKENDS = ("sqlite", "postgresql")  # the citations' dates are written by both (conftest)

WHILE = "made while the claim cited this URL"
BEFORE = "made before the claim cited this URL"
AFTER = "made after the claim stopped citing this URL"


def pages(raw_server, *paths: str):
    return raw_server({path: send_bytes(http_response(f"<html><title>{path}</title><p>Page {path}</p>".encode()))
                       for path in paths})


def listed(run_cli, root: Path, *arguments: str) -> list[dict]:
    result = run_cli(*arguments, "-C", root, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def bundled(run_cli, root: Path, claim_id: str, output: Path) -> tuple[str, dict, set[str]]:
    """The text of the claim's bundle's report, its claims.json and the ids of the captures it proves."""
    made = run_cli("bundle", "-C", root, "--claim", claim_id, "-o", output)
    assert made.exit_code == 0, made.output
    with zipfile.ZipFile(output) as wacz:
        report = text_of(wacz.read("evidence/report.html").decode())
        claims = json.loads(wacz.read("evidence/claims.json"))
        proven = {item["entry"]["id"] for item in json.loads(wacz.read("evidence/captures.json"))["captures"]}
    return report, claims, proven


def claim_part(report: str, claim_id: str) -> str:
    return report.split(f"Claim {claim_id}")[1].split(" Captures ")[0]


def url_part(claim: str, url: str, following: str | None = None) -> str:
    """What the claim's entry says of one URL it cited, up to the next URL's."""
    part = claim.split(f" {url}: cited ")[1]
    return part.split(f" {following}: cited ")[0] if following else part


def test_a_claims_bundle_carries_the_captures_of_what_it_cited_before_a_reread_dropped_it(
        run_cli, raw_server, collection, tmp_path):
    server = pages(raw_server, "/a", "/c")
    root = collection.root
    a, c = server.url("/a"), server.url("/c")
    assert run_cli("cite", "-C", root, "An unrelated note from a source", c).exit_code == 0  # /c, before the claim cited it
    sheet = root / "seeds" / "sheet.csv"
    sheet.write_text(f"claim,url\nThe minister said X,{a}\n")
    assert run_cli("capture", "-C", root, sheet).exit_code == 0
    sheet.write_text(f"claim,url\nThe minister said X,{c}\n")  # the URL corrected: same words, same claim
    assert run_cli("capture", "-C", root, sheet).exit_code == 0
    [claim] = [x for x in listed(run_cli, root, "claims") if x["text"] == "The minister said X"]
    [former] = claim["former_citations"]
    [now] = claim["citations"]
    assert former["url"] == a and now["url"] == c and now["cited_since"] == former["dropped_at"]
    assert former["cited_since"] == claim["first_seen_at"]
    captures = {x["url"]: sorted((y for y in listed(run_cli, root, "captures") if y["url"] == x["url"]),
                                 key=lambda y: y["started_at"]) for x in ({"url": a}, {"url": c})}
    [of_a], (early_c, late_c) = captures[a], captures[c]

    report, claims, proven = bundled(run_cli, root, claim["id"], tmp_path / "claim.wacz")
    # What it cited when it was first published travels with it, and is proven like the rest.
    assert proven == {of_a["id"], early_c["id"], late_c["id"]}
    assert {(link["claim"], link["capture"]) for link in claims["links"]} == {(claim["id"], i) for i in proven}
    entry = claim_part(report, claim["id"])
    said_of_c, said_of_a = url_part(entry, c, a), url_part(entry, a)
    assert said_of_a.startswith(f"from {claim['first_seen_at']} (its first read) until {former['dropped_at']}, when a "
                                "re-read of its document no longer found this URL in the claim")
    assert f"capture {of_a['id']}: {a}, {of_a['started_at']}, complete; {WHILE}" in said_of_a
    assert said_of_c.startswith(f"from {now['cited_since']} and still cites it")
    assert f"capture {early_c['id']}: {c}, {early_c['started_at']}, complete; {BEFORE}" in said_of_c
    assert f"capture {late_c['id']}: {c}, {late_c['started_at']}, complete; {WHILE}" in said_of_c
    checked = verify_bundle(run_cli, tmp_path / "claim.wacz", listed(run_cli, root, "keys", "show")["keys"][0]["fingerprint"])
    assert checked["ok"], checked["failures"]
    assert checked["passed"]["Merkle inclusion"] == 3  # the former URL's capture is checked like the others
    assert any(item.startswith("when each claim began citing each URL, and the URLs a re-read of its document dropped")
               for item in checked["not_checked"])
    # Still a one-claim bundle: the note that cited /c first is not in it.
    with zipfile.ZipFile(tmp_path / "claim.wacz") as wacz:
        assert not any(b"An unrelated note" in wacz.read(name) for name in wacz.namelist())


def test_a_superseded_claims_report_says_when_it_left_its_document_and_which_version_it_was_in(
        run_cli, raw_server, collection, tmp_path):
    server = pages(raw_server, "/a")
    article = collection.root / "seeds" / "article.md"
    first = f"# Budget\n\nThe budget is 12 million, says {server.url('/a')} today.\n".encode()
    article.write_bytes(first)
    assert run_cli("capture", "-C", collection.root, article).exit_code == 0
    article.write_bytes(first.replace(b"12 million", b"13 million"))
    assert run_cli("capture", "-C", collection.root, article).exit_code == 0  # /a captured again, after
    [old] = [x for x in listed(run_cli, collection.root, "claims", "--superseded") if "12 million" in x["text"]]
    before, after = sorted((x for x in listed(run_cli, collection.root, "captures")), key=lambda x: x["started_at"])

    report, _, proven = bundled(run_cli, collection.root, old["id"], tmp_path / "old.wacz")
    assert proven == {before["id"], after["id"]}
    entry = claim_part(report, old["id"])
    assert f"First read {old['first_seen_at']}, when a read of its document first found it" in entry
    assert (f"Superseded yes: a re-read of its document at {old['superseded_at']} no longer found it; the claim is not "
            "in the document from then on") in entry
    assert (f"Place characters {old['start']} to {old['end']} of the document as it was last read with this claim in "
            f"it, the version with SHA-256 {hashlib.sha256(first).hexdigest()}") in entry
    assert hashlib.sha256(article.read_bytes()).hexdigest() not in entry
    assert f"until {old['superseded_at']}, when the claim left its document" in entry
    assert f"capture {before['id']}: {server.url('/a')}, {before['started_at']}, complete; {WHILE}" in entry
    assert f"capture {after['id']}: {server.url('/a')}, {after['started_at']}, complete; {AFTER}" in entry
    assert f"Cited by claim {old['id']} ({AFTER})" in report.split(f"Capture {after['id']}")[1]


def test_a_notes_report_says_when_it_began_citing_each_url(run_cli, raw_server, collection, tmp_path):
    server = pages(raw_server, "/a", "/b")
    root = collection.root
    assert run_cli("cite", "-C", root, "Another note", server.url("/b")).exit_code == 0
    assert run_cli("cite", "-C", root, "The note", server.url("/a")).exit_code == 0
    assert run_cli("cite", "-C", root, "The note", server.url("/b")).exit_code == 0  # cited again, with /b added
    [note] = [x for x in listed(run_cli, root, "claims") if x["text"] == "The note"]
    since = {c["url"]: c["cited_since"] for c in note["citations"]}
    assert since[server.url("/a")] == note["first_seen_at"] < since[server.url("/b")]
    early, late = sorted((x for x in listed(run_cli, root, "captures") if x["url"] == server.url("/b")),
                         key=lambda x: x["started_at"])

    report, _, _ = bundled(run_cli, root, note["id"], tmp_path / "note.wacz")
    entry = claim_part(report, note["id"])
    assert f"First read {note['first_seen_at']}, when it was first recorded" in entry and "Superseded" not in entry
    said_of_a, said_of_b = url_part(entry, server.url("/a"), server.url("/b")), url_part(entry, server.url("/b"))
    assert said_of_a.startswith(f"from {note['first_seen_at']} (it was first recorded) and still cites it")
    assert said_of_b.startswith(f"from {since[server.url('/b')]} and still cites it")
    assert f"capture {early['id']}: {server.url('/b')}, {early['started_at']}, complete; {BEFORE}" in said_of_b
    assert f"capture {late['id']}: {server.url('/b')}, {late['started_at']}, complete; {WHILE}" in said_of_b


def test_captures_made_in_one_second_are_listed_in_the_order_they_were_made(run_cli, raw_server, collection, tmp_path,
                                                                             monkeypatch):
    """A capture's id is its second and a random suffix: two in one second sort by id in either
    order. The report lists them as `captures` does, by the time each started."""
    server = pages(raw_server, "/a")
    # Each suffix drawn lower than the one before: any two captures in one second sort by id the
    # other way round from their times.
    suffixes = itertools.count(2**32 - 1, -1)
    monkeypatch.setattr(archiver.capture.run, "secrets",
                        types.SimpleNamespace(token_hex=lambda size: f"{next(suffixes) % 256**size:0{2 * size}x}"))
    for _ in range(60):  # until two were made in one second
        assert run_cli("cite", "-C", collection.root, "A claim about A", server.url("/a")).exit_code == 0
        made = sorted(listed(run_cli, collection.root, "captures"), key=lambda x: x["started_at"])
        if any(x["id"][:14] == y["id"][:14] and x["id"] > y["id"] for x, y in zip(made, made[1:])):
            break
    else:
        raise AssertionError("no two captures in one second with their ids out of time order")
    bundle = tmp_path / "all.wacz"
    assert run_cli("bundle", "-C", collection.root, "--all", "-o", bundle).exit_code == 0
    with zipfile.ZipFile(bundle) as wacz:
        report = text_of(wacz.read("evidence/report.html").decode())
    in_time_order = [x["id"] for x in made]
    sections = report.split(" Captures ", 1)[1]
    assert sorted(in_time_order, key=lambda i: sections.index(f"Capture {i} ")) == in_time_order
    listed_under_claim = report.split("URLs cited", 1)[1].split(" Captures ", 1)[0]
    assert sorted(in_time_order, key=listed_under_claim.index) == in_time_order
    for previous, capture in zip(in_time_order, in_time_order[1:]):  # each compared with the one made before it
        part = sections.split(f"Capture {capture} ")[1].split(" Capture ")[0]
        assert f"unchanged since the previous capture, {previous}" in part, part


def test_a_citation_recorded_before_archiver_kept_when_it_began_is_never_said_to_be_cited_then(
        run_cli, raw_server, collection, tmp_path):
    """A catalog from before migration 0013 knows when a claim was first read, not when it began
    citing each URL (a later read may have added it): a capture made since is not said to be
    made while the claim cited the URL."""
    server = pages(raw_server, "/a")
    sheet = collection.root / "seeds" / "sheet.csv"
    sheet.write_text(f"claim,url\nThe minister said X,{server.url('/a')}\n")
    assert run_cli("capture", "-C", collection.root, sheet).exit_code == 0
    with collection, write_transaction(collection.catalog._db):
        collection.catalog._db.execute("UPDATE citations SET cited_since = NULL")  # as 0013 leaves one recorded before it
    [claim] = listed(run_cli, collection.root, "claims")
    assert claim["citations"][0]["cited_since"] is None
    [capture] = listed(run_cli, collection.root, "captures")

    report, _, _ = bundled(run_cli, collection.root, claim["id"], tmp_path / "claim.wacz")
    entry = claim_part(report, claim["id"])
    assert (f"{server.url('/a')}: cited from no earlier than its first read, {claim['first_seen_at']} (when it began "
            "citing this URL was not recorded) and still cites it") in entry
    assert (f"capture {capture['id']}: {server.url('/a')}, {capture['started_at']}, complete; made after the claim was "
            "first read, but whether it cited this URL then is not recorded") in entry
    assert WHILE not in report
