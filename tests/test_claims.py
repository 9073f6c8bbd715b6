"""Claims linked to captures: the sample article, history with revisits, queries, the manifest."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import jsonschema
import pytest

from archiver.read.model import Document
from archiver.read.seeds import parse_document
from archiver.store.catalog import Catalog
from tests.conftest import http_response, send_bytes, warc_records

CATALOG_BACKENDS = ("sqlite", "postgresql")  # every test with a collection runs on both (conftest)

SAMPLE = Path(__file__).parent.parent / "seeds" / "000_f70de470215bb835.txt"
SAMPLE_URL = "https://www.mirror.co.uk/news/world-news/breaking-belarus-to-join-ukraine-26341111"
SCHEMA = json.loads((Path(__file__).parent.parent / "manifests" / "manifest.schema.json").read_text())


def page_server(raw_server, body: bytes = b"<html><title>Belarus</title>report</html>"):
    return raw_server({"/article": send_bytes(http_response(body))})


def sample_citing(collection, url: str) -> Path:
    """The sample seed, rewritten to cite `url` on the test server, inside the collection."""
    document = collection.root / "seeds" / "sample.txt"
    document.write_text(SAMPLE.read_text(encoding="utf-8").replace(SAMPLE_URL, url), encoding="utf-8")
    return document


def cli_json(run_cli, *args):
    result = run_cli(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_sample_article_becomes_claims_all_linked_to_its_capture(run_cli, raw_server, collection):
    server = page_server(raw_server)
    sample_citing(collection, server.url("/article"))
    report = cli_json(run_cli, "capture", "-C", collection.root, collection.root / "seeds")
    [capture] = report["captures"]
    assert capture["outcome"] == "ok" and len(server.requests) == 1

    claims = cli_json(run_cli, "claims", "-C", collection.root)
    paragraphs = [p for p in SAMPLE.read_text(encoding="utf-8").split("\n\n") if p.strip() and "mirror.co.uk" not in p]
    assert len(claims) == len(paragraphs)  # the date line's headline plus every paragraph
    headline = next(c for c in claims if c["kind"] == "headline")
    assert headline["text"] == "Belarus a puppet regime of Russia is posing to attack Ukraine."
    for claim in claims:
        assert claim["document_key"] == "seeds/sample.txt"
        assert [c["url"] for c in claim["citations"]] == [server.url("/article")]
        [(key, captures)] = claim["captures"].items()
        assert [c["id"] for c in captures] == [capture["id"]]
    other = collection.root / "seeds" / "other.md"
    other.write_text(f"# Another\n\nIt cites {server.url('/article')} too.\n", encoding="utf-8")
    run_cli("capture", "-C", collection.root, other)
    only_sample = cli_json(run_cli, "claims", "-C", collection.root, "--document", collection.root / "seeds" / "sample.txt")
    assert {c["id"] for c in only_sample} == {c["id"] for c in claims}
    mistyped = run_cli("claims", "-C", collection.root, "--document", collection.root / "seeds" / "sampel.txt")
    assert mistyped.exit_code == 2 and "no document seeds/sampel.txt has been read" in mistyped.stderr
    documents = cli_json(run_cli, "documents", "-C", collection.root)
    assert [d["key"] for d in documents] == ["seeds/other.md", "seeds/sample.txt"]
    assert documents[1]["date"] == "2022-02-27" and documents[1]["claims"] == len(claims)
    assert cli_json(run_cli, "claims", "-C", collection.root, "--uncaptured") == []


def test_claim_ids_are_stable_and_an_edit_supersedes_only_that_claim(run_cli, raw_server, collection):
    server = page_server(raw_server)
    document = sample_citing(collection, server.url("/article"))
    run_cli("capture", "-C", collection.root, document)
    first = {c["id"]: c["text"] for c in cli_json(run_cli, "claims", "-C", collection.root)}
    run_cli("capture", "-C", collection.root, document)
    assert {c["id"] for c in cli_json(run_cli, "claims", "-C", collection.root)} == set(first)

    edited_text = next(t for t in first.values() if t.startswith("Kremlin forces"))
    document.write_text(document.read_text(encoding="utf-8").replace("Kremlin forces invaded", "Russian forces entered"),
                        encoding="utf-8")
    run_cli("capture", "-C", collection.root, document)
    now = {c["id"]: c["text"] for c in cli_json(run_cli, "claims", "-C", collection.root)}
    assert len(set(first) - set(now)) == 1 and len(set(now) - set(first)) == 1
    [old_id] = set(first) - set(now)
    assert first[old_id] == edited_text
    history = cli_json(run_cli, "claims", "-C", collection.root, "--superseded")
    [old] = [c for c in history if c["id"] == old_id]
    assert old["superseded_at"] is not None  # kept, marked, never deleted


def test_a_claim_whose_url_alone_is_edited_keeps_what_it_cited_before(run_cli, raw_server, collection):
    server = raw_server({"/wrong": send_bytes(http_response(b"<p>wrong page</p>")),
                         "/right": send_bytes(http_response(b"<p>right page</p>"))})
    sheet = collection.root / "seeds" / "sheet.csv"
    sheet.write_text(f"claim,url\nThe sky is green,{server.url('/wrong')}\n")
    run_cli("capture", "-C", collection.root, sheet)
    [before] = cli_json(run_cli, "claims", "-C", collection.root)
    sheet.write_text(f"claim,url\nThe sky is green,{server.url('/right')}\n")
    run_cli("capture", "-C", collection.root, sheet)
    [after] = cli_json(run_cli, "claims", "-C", collection.root)
    # Same words, same id: it now cites the right page, and what it cited before is kept, dated.
    assert after["id"] == before["id"]
    assert [c["url"] for c in after["citations"]] == [server.url("/right")]
    [former] = after["former_citations"]
    assert former["url"] == server.url("/wrong") and former["dropped_at"] > before["first_seen_at"]
    assert [c["outcome"] for c in after["captures"][former["url_key"]]] == ["ok"]  # its evidence still in view
    # Looked up by the URL it no longer cites, the claim is still found, and `show` says until when.
    assert [c["id"] for c in cli_json(run_cli, "claims", "-C", collection.root, "--url", server.url("/wrong"))] == [after["id"]]
    listed = run_cli("claims", "-C", collection.root, "--url", server.url("/wrong"))
    assert "cited until" in listed.stdout, listed.stdout
    shown = run_cli("show", "-C", collection.root, after["id"])
    assert f"a re-read of its document dropped it): {server.url('/wrong')}" in shown.stdout, shown.stdout
    [old_capture] = after["captures"][former["url_key"]]
    capture = cli_json(run_cli, "show", "-C", collection.root, old_capture["id"])
    assert capture["claims"] == [] and capture["formerly_cited_by"] == [after["id"]]
    # Cited again, dropped again: each URL once, a URL cited now never as a former citation.
    for url in ("/wrong", "/right"):
        sheet.write_text(f"claim,url\nThe sky is green,{server.url(url)}\n")
        run_cli("capture", "-C", collection.root, sheet)
    [now] = cli_json(run_cli, "claims", "-C", collection.root)
    assert [c["url"] for c in now["citations"]] == [server.url("/right")]
    assert [f["url"] for f in now["former_citations"]] == [server.url("/wrong")]
    assert now["former_citations"][0]["dropped_at"] > former["dropped_at"]  # when it was last dropped
    listed = run_cli("claims", "-C", collection.root, "--url", server.url("/right")).stdout
    assert "cited until" not in listed, listed


def test_a_url_cited_by_many_claims_is_captured_once(run_cli, raw_server, collection, tmp_path):
    server = page_server(raw_server)
    sheet = tmp_path / "sheet.csv"
    url = server.url("/article")
    sheet.write_text(f"claim,url\nFirst claim,{url}\nSecond claim,{url}#p2\nThird claim,\"{url} {url}\"\n")
    report = cli_json(run_cli, "capture", "-C", collection.root, sheet)
    assert len(report["captures"]) == 1 and len(server.requests) == 1
    linked = cli_json(run_cli, "claims", "-C", collection.root, "--url", url)
    assert sorted(c["text"] for c in linked) == ["First claim", "Second claim", "Third claim"]


def test_an_unchanged_recapture_is_a_revisit_and_a_changed_one_is_stored_whole(run_cli, raw_server, collection):
    body = {"v": b"<p>version one</p>"}
    server = raw_server({"/page": lambda conn, request: conn.sendall(http_response(body["v"]))})
    url = server.url("/page")
    first = cli_json(run_cli, "capture", "-C", collection.root, url)["captures"][0]
    second = cli_json(run_cli, "capture", "-C", collection.root, url)["captures"][0]
    assert second["revisit_of"] == first["id"]
    assert second["unchanged_since"] == first["started_at"][:19].replace("T", " ") + " UTC"
    human = run_cli("capture", "-C", collection.root, url).stdout
    assert "unchanged since" in human
    body["v"] = b"<p>version two, rewritten</p>"
    fourth = cli_json(run_cli, "capture", "-C", collection.root, url)["captures"][0]
    assert fourth["revisit_of"] is None

    records = warc_records(collection.storage.folder)
    catalog = Catalog(collection.catalog_location)
    listed = [r.record_id for c in (first, second, fourth) for r in catalog.records(c["id"])]
    assert set(listed) <= {r.id for r in records}  # every record whole and where it should be
    [original] = [r for r in records if r.id == first["response_record_id"]]
    revisits = [r for r in records if r.type == "revisit"]
    assert len(revisits) == 2
    for revisit in revisits:
        assert revisit.headers["WARC-Profile"] == "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest"
        assert revisit.headers["WARC-Refers-To"] == original.id
        assert revisit.headers["WARC-Refers-To-Target-URI"] == url
        assert revisit.headers["WARC-Refers-To-Date"] == original.headers["WARC-Date"]
        assert revisit.headers["WARC-Payload-Digest"] == original.headers["WARC-Payload-Digest"]
        # the block is the response's status line and headers, exactly as long as declared
        assert revisit.block.startswith(b"HTTP/1.1 200 OK\r\n") and revisit.block.endswith(b"\r\n\r\n")
        assert len(revisit.block) == int(revisit.headers["Content-Length"]) and b"version one" not in revisit.block
    [changed] = [r for r in records if r.id == fourth["response_record_id"]]
    assert changed.type == "response" and changed.block.endswith(b"version two, rewritten</p>")

    history = cli_json(run_cli, "history", "-C", collection.root, url)
    assert [h["change"] for h in history] == ["first capture", "unchanged", "unchanged", "changed (+11 bytes)"]
    assert history[1]["response_length"] == history[0]["response_length"]


def test_cite_records_a_note_and_captures_its_urls(run_cli, raw_server, collection):
    server = page_server(raw_server)
    report = cli_json(run_cli, "cite", "-C", collection.root, "The minister said it on Monday", server.url("/article"))
    assert report["counts"]["ok"] == 1
    shown = cli_json(run_cli, "show", "-C", collection.root, report["note"])
    assert shown["kind"] == "note" and shown["document_key"] is None
    assert shown["text"] == "The minister said it on Monday"
    [captures] = shown["captures"].values()
    assert captures[0]["id"] == report["captures"][0]["id"]
    capture = cli_json(run_cli, "show", "-C", collection.root, report["captures"][0]["id"])
    assert capture["claims"] == [report["note"]]
    result = run_cli("cite", "-C", collection.root, "claim", "not-a-url")
    assert result.exit_code == 2 and "is not a URL" in result.stderr



def test_citing_the_same_words_again_adds_urls_and_keeps_the_earlier_ones(run_cli, raw_server, collection):
    """Same words, same note id: a second `cite` with other evidence used to replace the first
    one's citations, and the first capture was no longer linked to the claim."""
    server = raw_server({"/one": send_bytes(http_response(b"<p>one</p>")), "/two": send_bytes(http_response(b"<p>two</p>"))})
    first = cli_json(run_cli, "cite", "-C", collection.root, "The minister said it on Monday", server.url("/one"))
    second = cli_json(run_cli, "cite", "-C", collection.root, "The minister said it on Monday", server.url("/two"))
    assert first["note"] == second["note"]
    shown = cli_json(run_cli, "show", "-C", collection.root, first["note"])
    assert [c["url"] for c in shown["citations"]] == [server.url("/one"), server.url("/two")]
    assert cli_json(run_cli, "show", "-C", collection.root, first["captures"][0]["id"])["claims"] == [first["note"]]


def test_a_document_whose_file_name_is_not_utf8_is_read_and_listed(run_cli, raw_server, collection, tmp_path):
    """A name from an old Latin-1 archive (b'caf\\xe9.txt') could not be stored: the whole capture
    of its folder ended in an internal error before any URL was fetched."""
    server = page_server(raw_server)
    folder = tmp_path / "documents"
    folder.mkdir()
    (Path(os.fsdecode(bytes(folder) + b"/caf\xe9.txt"))).write_text(f"date 2024-01-01 A claim {server.url('/article')}\n")
    result = run_cli("capture", "-C", collection.root, folder)
    assert result.exit_code == 0, result.output
    [document] = cli_json(run_cli, "documents", "-C", collection.root)
    assert document["key"] == f"{folder.as_posix()}/caf\\xe9.txt" and document["claims"] == 1


def test_a_document_name_with_a_line_break_prints_on_its_own_line(run_cli, raw_server, collection, tmp_path):
    """A file name can hold a line break; printed as it is, it could forge a line of the output."""
    server = page_server(raw_server)
    named = tmp_path / "report\nverified: ok.txt"
    named.write_text(f"date 2024-01-01 A claim {server.url('/article')}\n")
    result = run_cli("capture", "-C", collection.root, named)
    assert result.exit_code == 0, result.output
    assert "report\\nverified: ok.txt: 1 claim(s)" in result.stdout
    assert not any(line.startswith("verified: ok") for line in result.stdout.splitlines())
    [claim] = cli_json(run_cli, "claims", "-C", collection.root)
    assert "report\\nverified: ok.txt" in run_cli("show", "-C", collection.root, claim["id"]).stdout
    assert claim["document_key"].endswith("report\nverified: ok.txt")  # --json keeps the name as it is

def test_uncaptured_lists_the_fact_checkers_to_do(run_cli, raw_server, collection, tmp_path):
    server = page_server(raw_server)
    sheet = tmp_path / "sheet.jsonl"
    sheet.write_text(json.dumps({"claim": "Reachable", "url": server.url("/article")}) + "\n"
                     + json.dumps({"claim": "Refused", "url": "http://10.0.0.1/"}) + "\n")
    result = run_cli("capture", "-C", collection.root, sheet)
    assert result.exit_code == 1
    todo = cli_json(run_cli, "claims", "-C", collection.root, "--uncaptured")
    assert [c["text"] for c in todo] == ["Refused"]
    text = run_cli("claims", "-C", collection.root, "--uncaptured").stdout
    assert "Refused" in text and "10.0.0.1 is a private address" in text


def manifest_bytes(run_cli, collection, output: Path) -> bytes:
    result = run_cli("manifest", "-C", collection.root, "-o", output)
    assert result.exit_code == 0, result.output
    return output.read_bytes()


def test_the_manifest_is_canonical_chained_and_valid(run_cli, raw_server, collection, tmp_path):
    server = page_server(raw_server)
    sample_citing(collection, server.url("/article"))
    run_cli("capture", "-C", collection.root, collection.root / "seeds")
    first = manifest_bytes(run_cli, collection, tmp_path / "a.json")
    again = manifest_bytes(run_cli, collection, tmp_path / "b.json")
    assert first == again  # same catalog, same bytes, same sequence
    manifest = json.loads(first)
    jsonschema.Draft202012Validator(SCHEMA).validate(manifest)
    assert manifest["sequence"] == 1 and manifest["previous_manifest_sha256"] is None
    assert first == json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    content = manifest["manifest"]
    from archiver.evidence import merkle
    leaves = [merkle.leaf_hash(json.dumps(c, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode())
              for c in content["captures"]]
    assert content["captures_merkle_root"] == merkle.root(leaves).hex()
    claims = {c["id"] for c in content["claims"]}
    [capture] = content["captures"]
    assert {(link["claim"], link["capture"]) for link in content["links"]} == {(c, capture["id"]) for c in claims}
    assert [r["role"] for r in capture["records"]] == ["request", "response", "metadata", "attestation"]
    assert content["documents"][0]["key"] == "seeds/sample.txt"

    run_cli("capture", "-C", collection.root, server.url("/article"))
    second = manifest_bytes(run_cli, collection, tmp_path / "c.json")
    chained = json.loads(second)
    jsonschema.Draft202012Validator(SCHEMA).validate(chained)
    import hashlib
    assert chained["sequence"] == 2
    assert chained["previous_manifest_sha256"] == hashlib.sha256(first).hexdigest()
    assert (collection.root / "manifests" / "manifest.json").read_bytes() == second
    assert (collection.root / "manifests" / "manifest-1.json").read_bytes() == first
    assert len(chained["manifest"]["links"]) == 2 * len(claims)  # the re-capture links to every claim too


def test_the_schema_rejects_a_tampered_manifest(run_cli, raw_server, collection, tmp_path):
    server = page_server(raw_server)
    run_cli("capture", "-C", collection.root, server.url("/article"))
    manifest = json.loads(manifest_bytes(run_cli, collection, tmp_path / "m.json"))
    manifest["manifest"]["captures"][0]["records"][0]["block_digest"] = "sha1:ABC"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(SCHEMA).validate(manifest)


@pytest.mark.parametrize("window", [1 << 20, 7], ids=["1MiB", "7B"])
def test_a_manifest_read_back_one_entry_at_a_time_is_the_manifest(run_cli, raw_server, collection, tmp_path,
                                                                  monkeypatch, window):
    """With a 7-byte window every value, number and multi-byte character is cut somewhere."""
    from archiver.evidence.manifest import _Window, read_manifest

    monkeypatch.setattr(_Window, "STEP", window)
    run_cli("cite", "-C", collection.root, "Заявление министра — «войска» 12345678", "http://127.0.0.1:9/ü")

    server = page_server(raw_server)
    sample_citing(collection, server.url("/article"))
    run_cli("capture", "-C", collection.root, collection.root / "seeds")
    run_cli("capture", "-C", collection.root, server.url("/article"))
    data = manifest_bytes(run_cli, collection, tmp_path / "m.json")
    whole = json.loads(data)
    captures, claims = [], []
    fields = read_manifest(data, on_capture=lambda entry, raw: captures.append((entry, raw)),
                           on_claim=lambda entry, raw: claims.append(entry))
    assert [entry for entry, _ in captures] == whole["manifest"]["captures"] and len(captures) == 3
    assert [raw for _, raw in captures] == [json.dumps(c, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                                            .encode() for c in whole["manifest"]["captures"]]  # leaves as they stand
    assert claims == whole["manifest"]["claims"]
    assert (fields["sequence"], fields["previous_manifest_sha256"]) == (whole["sequence"], None)
    assert fields["content"]["captures_merkle_root"] == whole["manifest"]["captures_merkle_root"]
    assert fields["counts"] == {name: len(value) for name, value in whole["manifest"].items() if isinstance(value, list)}
    deep = b'{"manifest":{"captures":[' + b"[" * 100_000 + b"]" * 100_000 + b"]}}"
    for altered in (data[:-1], data.replace(b'":', b'": ', 1), data + b" ", b'{"manifest":{}}', deep,
                    json.dumps({**whole, "extra": 1}, sort_keys=True, separators=(",", ":")).encode()):
        with pytest.raises(ValueError):
            read_manifest(altered)


@pytest.mark.parametrize("command", [("claims", "--url"), ("captures", "--url"), ("history",)])
def test_a_malformed_url_to_look_up_is_bad_usage_in_one_line(run_cli, collection, command):
    result = run_cli(*command, "http://example.org:abc/", "-C", collection.root)
    assert result.exit_code == 2, result.output
    assert "internal error" not in result.stderr and "http://example.org:abc/" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_id_prefix_matching_many_says_so_not_a_count_it_stopped_at(run_cli, raw_server, collection, tmp_path):
    server = page_server(raw_server)
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("claim,url\n" + "".join(f"Claim number {n},{server.url('/article')}\n" for n in range(12)))
    assert run_cli("capture", "-C", collection.root, sheet).exit_code == 0
    shown = run_cli("show", "-C", collection.root, "c")
    assert shown.exit_code == 2 and "'c' matches 10 or more claims and captures" in shown.stderr, shown.output


def test_show_gives_a_sheet_rows_id_date_source_and_notes(run_cli, raw_server, collection, tmp_path):
    server = page_server(raw_server)
    sheet = tmp_path / "sheet.csv"
    sheet.write_text(f"id,claim,url,source,date\nFC-17,Troops moved,{server.url('/article')},Ministry briefing,2022-02-27\n")
    assert run_cli("capture", "-C", collection.root, sheet).exit_code == 0
    [claim] = cli_json(run_cli, "claims", "-C", collection.root)
    shown = run_cli("show", "-C", collection.root, claim["id"]).stdout
    for line in ("id:         FC-17", "source:     Ministry briefing", "date:       2022-02-27"):
        assert line in shown, shown


def test_a_sheet_of_more_claims_than_the_database_binds_at_once_is_read_and_read_again(collection):
    """A statement binding one variable per claim refused a sheet past the database's limit (a
    249,999-row sheet on SQLite as Debian builds it, exit 3, nothing captured). SQLite's limit is
    lowered here, on the catalog's connection, to upstream SQLite's default (32,766 since 3.32, what
    most other builds have); PostgreSQL's 65,535 parameters are fixed, so its sheet is that big. The second read changes so many rows that the
    claims it supersedes are over the limit too, and one row's URL only."""
    with collection:
        catalog = collection.catalog
        if catalog._db.kind == "sqlite":
            catalog._db._db.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 32_766)
            rows, limit = 32_900, 32_766
        else:
            rows, limit = 65_600, 65_535

        def sheet(revised_from: int, first_cites: str) -> Document:
            return parse_document("\n".join(["claim,url"] + [
                f"{'Revised claim' if i >= revised_from else 'Claim number'} {i},https://example.com/{i or first_cites}"
                for i in range(rows)]).encode(), "sheet.csv")

        before, after = sheet(rows, "0"), sheet(50, "moved")  # rows 50… reworded, and the first row's URL changed
        catalog.record_document(before, "2024-01-01T00:00:00Z")
        catalog.record_document(after, "2024-01-02T00:00:00Z")

        def ids(superseded: bool) -> set[str]:
            return {id_ for (id_,) in catalog.query("SELECT id FROM claims WHERE document_key = ? AND superseded_at IS"
                                                    f"{' NOT' if superseded else ''} NULL", (after.key,))}
        old, new = {c.id for c in before.claims}, {c.id for c in after.claims}
        assert len(old - new) > limit and ids(superseded=False) == new and ids(superseded=True) == old - new
        [first] = catalog.claims(url_key=after.claims[0].citations[0].normalised)
        assert first.id == after.claims[0].id and first.citations == (("https://example.com/moved", first.citations[0][1]),)
        assert catalog.query("SELECT url FROM former_citations WHERE claim_id = ?", (first.id,)).fetchall() == [
            ("https://example.com/0",)]
