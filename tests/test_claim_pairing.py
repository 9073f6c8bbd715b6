"""Claims of the same words in one document (sheet rows "Same claim", HTML links each reading
"Source") keep their ids, and what each cites, when a re-read finds them moved: sorted rows, a
link put first. Before, ids counted such claims in document order, so each moved to another
claim, which was told it cited what the other did until "a re-read of its document dropped it"."""

from __future__ import annotations

import json

from archiver.read.seeds import parse_document
from tests.conftest import http_response, send_bytes

CATALOG_BACKENDS = ("sqlite", "postgresql")


def _read(catalog, text: str, name: str, at: str) -> None:
    catalog.record_document(parse_document(text.encode(), name), at)


def _current(catalog, key: str) -> dict[str, tuple]:
    """id → (URLs cited, the row's source, former citations' URLs) of each current claim of `key`."""
    return {claim.id: (tuple(url for url, _ in claim.citations), json.loads(claim.extra or "{}").get("source"),
                       tuple(url for url, _, _ in claim.former_citations))
            for claim in catalog.claims(document_key=key)}


def test_sorting_a_sheets_rows_of_the_same_words_keeps_each_id_with_its_url_and_source(collection):
    with collection:
        catalog = collection.catalog
        _read(catalog, "claim,url,source\nSame claim,https://a.example/,Reuters\nSame claim,https://b.example/,AP\n",
              "s.csv", "2024-01-01T00:00:00Z")
        before = _current(catalog, "s.csv")
        _read(catalog, "claim,url,source\nSame claim,https://b.example/,AP\nSame claim,https://a.example/,Reuters\n",
              "s.csv", "2024-01-02T00:00:00Z")
        assert _current(catalog, "s.csv") == before
        assert {cited for cited, _, former in before.values()} == {("https://a.example/",), ("https://b.example/",)}
        assert catalog.query("SELECT COUNT(*) FROM former_citations").fetchone() == (0,)


def test_a_link_put_before_links_of_the_same_words_leaves_their_ids_and_urls_alone(collection):
    with collection:
        catalog = collection.catalog

        def page(*hosts: str) -> str:
            return "<ul>" + "".join(f'<li><a href="https://{host}.example/">Source</a></li>' for host in hosts) + "</ul>"

        _read(catalog, page("a", "b"), "p.html", "2024-01-01T00:00:00Z")
        before = _current(catalog, "p.html")
        _read(catalog, page("c", "a", "b"), "p.html", "2024-01-02T00:00:00Z")
        after = _current(catalog, "p.html")
        assert {id_: after[id_] for id_ in before} == before  # each still cites its own URL, none a former one
        [(new, (cited, _, former))] = [(id_, claim) for id_, claim in after.items() if id_ not in before]
        assert cited == ("https://c.example/",) and former == ()
        # Read again unchanged, it keeps them.
        _read(catalog, page("c", "a", "b"), "p.html", "2024-01-03T00:00:00Z")
        assert _current(catalog, "p.html") == after


def test_rows_of_the_same_words_are_told_apart_by_the_sheets_id_column(collection):
    """With an id column, a row keeps its claim id when moved, whatever its URL is now: here each
    row cites what the other did, which the URLs alone would take for the rows swapped back."""
    with collection:
        catalog = collection.catalog
        _read(catalog, "id,claim,url\nFC-1,Same claim,https://a.example/\nFC-2,Same claim,https://b.example/\n",
              "s.csv", "2024-01-01T00:00:00Z")
        ids = {json.loads(c.extra)["id"]: c.id for c in catalog.claims(document_key="s.csv")}
        _read(catalog, "id,claim,url\nFC-2,Same claim,https://a.example/\nFC-1,Same claim,https://b.example/\n",
              "s.csv", "2024-01-02T00:00:00Z")
        after = {c.id: c for c in catalog.claims(document_key="s.csv")}
        assert set(after) == set(ids.values())
        for row, now, was in (("FC-1", "b", "a"), ("FC-2", "a", "b")):
            claim = after[ids[row]]
            assert json.loads(claim.extra)["id"] == row
            assert [url for url, _ in claim.citations] == [f"https://{now}.example/"]
            assert [url for url, _, _ in claim.former_citations] == [f"https://{was}.example/"]


def test_a_new_row_of_the_same_words_and_urls_is_not_a_gone_rows_claim_when_their_ids_differ(collection):
    with collection:
        catalog = collection.catalog
        _read(catalog, "id,claim,url\nFC-1,Same claim,https://a.example/\nFC-2,Same claim,https://b.example/\n",
              "s.csv", "2024-01-01T00:00:00Z")
        ids = {json.loads(c.extra)["id"]: c.id for c in catalog.claims(document_key="s.csv")}
        _read(catalog, "id,claim,url\nFC-2,Same claim,https://b.example/\nFC-3,Same claim,https://a.example/\n",
              "s.csv", "2024-01-02T00:00:00Z")
        now = {json.loads(c.extra)["id"]: c.id for c in catalog.claims(document_key="s.csv")}
        assert now["FC-2"] == ids["FC-2"] and now["FC-3"] not in ids.values()
        [(gone,)] = catalog.query("SELECT id FROM claims WHERE superseded_at IS NOT NULL").fetchall()
        assert gone == ids["FC-1"]


def test_a_row_of_repeated_words_taken_out_and_put_back_is_its_claim_again(collection):
    with collection:
        catalog = collection.catalog
        both = "claim,url\nSame claim,https://a.example/\nSame claim,https://b.example/\n"
        _read(catalog, both, "s.csv", "2024-01-01T00:00:00Z")
        before = _current(catalog, "s.csv")
        _read(catalog, "claim,url\nSame claim,https://b.example/\n", "s.csv", "2024-01-02T00:00:00Z")
        [(kept, (cited, _, former))] = _current(catalog, "s.csv").items()
        assert kept in before and cited == ("https://b.example/",) and former == ()  # not the first row's id
        _read(catalog, both, "s.csv", "2024-01-03T00:00:00Z")
        assert _current(catalog, "s.csv") == before
        assert catalog.query("SELECT COUNT(*) FROM claims").fetchone() == (2,)


def test_sorted_rows_of_the_same_words_still_verify(run_cli, raw_server, collection):
    server = raw_server({"/a": send_bytes(http_response(b"<p>a</p>")), "/b": send_bytes(http_response(b"<p>b</p>"))})
    sheet = collection.root / "seeds" / "s.csv"
    for order in (("/a", "/b"), ("/b", "/a")):
        sheet.write_text("claim,url\n" + "".join(f"Same claim,{server.url(path)}\n" for path in order))
        assert run_cli("capture", "-C", collection.root, sheet).exit_code == 0
    claims = json.loads(run_cli("claims", "-C", collection.root, "--json").stdout)
    assert all(claim["former_citations"] == [] for claim in claims) and len(claims) == 2
    verified = run_cli("verify", "-C", collection.root)
    assert verified.exit_code == 0, verified.output
