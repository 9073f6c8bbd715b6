"""Reading documents into claims and the URLs each claim cites (docs/claims.md)."""

from __future__ import annotations

import base64
import codecs
import gzip
import json
import re
from pathlib import Path

import pytest

from archiver.capture.targets import read_targets
from tests.conftest import http_response, send_bytes
from tests.fuzz_properties import check_skip
from archiver.errors import UsageProblem
from archiver.read.decoding import Sniffer, decode
from archiver.read.links import find_links
from archiver.read.seeds import (DOCUMENT_SUFFIXES, Citation, Document, NotADocument, UnreadableDocument,
                                 documents_in, make_claim_id, note_claim, parse_document, read_document)

SAMPLE = Path(__file__).parent.parent / "seeds" / "000_f70de470215bb835.txt"
# A 1x1 PNG.
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
MIRROR = "https://www.mirror.co.uk/news/world-news/breaking-belarus-to-join-ukraine-26341111"


def cited(claim) -> list[str]:
    return [citation.url for citation in claim.citations]


def claim_texts(document: Document) -> list[str]:
    return [claim.text for claim in document.claims]


def assert_well_formed(document: Document, data: bytes) -> None:
    """What holds for every document: spans inside the decoded text, exact where claimed,
    and only fetchable URLs cited."""
    text = decode(data).text
    for claim in document.claims:
        assert 0 <= claim.start <= claim.end <= len(text)
        if claim.verbatim:  # its line ends read as \n
            assert re.sub(r"\r\n?", "\n", text[claim.start:claim.end]) == claim.text
        assert claim.text.strip()
        assert all(citation.normalised.split("://")[0] in ("http", "https") for citation in claim.citations)


# --- the sample article --------------------------------------------------------------------------

def test_sample_headline_and_every_paragraph_are_claims_with_exact_spans():
    document = read_document(SAMPLE)
    data = SAMPLE.read_bytes()
    text = data.decode("utf-8")
    paragraphs = [block.strip() for block in text.split("\n\n")[1:] if block.strip() and block.strip() != MIRROR]
    assert document.kind == "article" and document.encoding == "utf-8"
    assert document.date == "2022-02-27"
    assert document.title == "Belarus a puppet regime of Russia is posing to attack Ukraine."
    assert document.main_claim is document.claims[0]
    assert document.main_claim.kind == "headline"
    assert claim_texts(document) == [document.title] + paragraphs
    assert len(paragraphs) == 13
    assert all(claim.kind == "paragraph" for claim in document.claims[1:])
    assert_well_formed(document, data)
    assert len(document.sha256) == 64


def test_sample_standalone_url_is_cited_by_the_headline_and_every_paragraph():
    document = read_document(SAMPLE)
    source = Citation(MIRROR, MIRROR, standalone=True)
    assert all(claim.citations == (source,) for claim in document.claims)
    assert document.urls == (MIRROR,)
    assert MIRROR not in claim_texts(document)


def test_sample_truncated_last_paragraph_is_a_claim_with_a_warning():
    document = read_document(SAMPLE)
    assert document.claims[-1].text.endswith("over his invasion of Ukrain")
    assert any("appears truncated" in warning for warning in document.warnings)
    assert not any("no URLs" in warning for warning in document.warnings)


# --- claim ids -----------------------------------------------------------------------------------

def test_ids_are_stable_across_reads_and_derive_from_the_key():
    first, second = read_document(SAMPLE), read_document(SAMPLE)
    assert [claim.id for claim in first.claims] == [claim.id for claim in second.claims]
    assert first.key == SAMPLE.as_posix()
    assert first.claims[0].id == make_claim_id(SAMPLE.as_posix(), first.claims[0].text, 0)
    renamed = read_document(SAMPLE, key="seeds/000.txt")
    assert renamed.key == "seeds/000.txt"
    assert not {claim.id for claim in renamed.claims} & {claim.id for claim in first.claims}
    assert all(claim.id.startswith("c") and len(claim.id) == 17 for claim in first.claims)


def test_editing_one_paragraph_changes_only_its_id():
    data = SAMPLE.read_bytes()
    before = parse_document(data, "a.txt", "k")
    edited = parse_document(data.replace(b"Kremlin forces invaded", b"Kremlin troops invaded"), "a.txt", "k")
    changed = [i for i, (old, new) in enumerate(zip(before.claims, edited.claims)) if old.id != new.id]
    assert len(before.claims) == len(edited.claims)
    assert [before.claims[i].text[:22] for i in changed] == ["Kremlin forces invaded"]


def test_rewrapping_a_paragraph_keeps_its_id():
    one_line = parse_document(b"First claim here. https://a.example/\n", "a.txt", "k")
    rewrapped = parse_document(b"First  claim\r\nhere. https://a.example/\n", "a.txt", "k")
    assert one_line.claims[0].id == rewrapped.claims[0].id
    assert rewrapped.claims[0].text == "First  claim\nhere. https://a.example/"


def test_a_crlf_documents_claims_hold_no_carriage_return():
    """Shown, a CR kept in a claim's text was a stray \\x0d at each of its line ends."""
    lf = b"# Title\n\nLine one\nline two https://a.example/\n\n- item\n  goes on\n"
    for data in (lf.replace(b"\n", b"\r\n"), lf.replace(b"\n", b"\r")):
        document = parse_document(data, "a.md", "k")
        assert [(c.id, c.text) for c in document.claims] == [(c.id, c.text) for c in parse_document(lf, "a.md", "k").claims]
        assert claim_texts(document) == ["Title", "Line one\nline two https://a.example/", "item\n  goes on"]
    sheet = parse_document(b'claim,url\r\n"Over\r\ntwo lines",https://a.example/\r\n', "s.csv")
    assert claim_texts(sheet) == ["Over\ntwo lines"]


def test_duplicate_paragraphs_get_distinct_ids():
    document = parse_document(b"Same words.\n\nOther words.\n\nSame words.\n", "a.txt", "k")
    first, _, again = document.claims
    assert first.text == again.text
    assert (first.id, again.id) == (make_claim_id("k", "Same words.", 0), make_claim_id("k", "Same words.", 1))


def test_claim_id_normalises_unicode_and_whitespace():
    assert make_claim_id("k", "caf\u00e9  au\nlait ", 0) == make_claim_id("k", "cafe\u0301 au lait", 0)
    assert make_claim_id("k", "x", 0) != make_claim_id("k", "x", 1) != make_claim_id("j", "x", 1)


# --- dated articles and plain text ---------------------------------------------------------------

def test_date_line_may_follow_whitespace_and_a_bom():
    document = parse_document(b"\xef\xbb\xbf\n  date 2024-02-29 Leap day claim https://a.example/\n", "a.txt")
    assert (document.encoding, document.date, document.main_claim.text) == ("utf-8-sig", "2024-02-29", "Leap day claim https://a.example/")
    assert cited(document.main_claim) == ["https://a.example/"]


@pytest.mark.parametrize("line, problem", [("date 2022-13-45 Headline stays", "'2022-13-45' is not a calendar date"),
                                           ("date yesterday Headline stays", "'yesterday' is not YYYY-MM-DD")])
def test_malformed_date_gives_no_date_and_a_warning_naming_it(line, problem):
    document = parse_document(f"{line}\n\nBody https://a.example/\n".encode(), "a.txt")
    assert document.kind == "article" and document.date is None
    assert any(problem in warning for warning in document.warnings)
    assert document.main_claim.text == "Headline stays"


def test_missing_date_line_reads_plain_text_with_a_short_first_line_as_headline():
    document = parse_document(b"A short title\n\nBody one https://a.example/.\n\nBody two.\n", "a.txt")
    assert document.kind == "text" and document.date is None
    assert any("no date line" in warning for warning in document.warnings)
    assert document.main_claim.text == document.title == "A short title"
    assert claim_texts(document)[1:] == ["Body one https://a.example/.", "Body two."]


def test_plain_text_with_a_long_or_multi_line_opening_has_no_main_claim():
    long_line = ("word " * 30).strip()
    for opening in (long_line, "two\nlines"):
        document = parse_document(f"{opening}\n\nhttps://a.example/\n".encode(), "a.txt")
        assert document.main_claim is None and document.title is None
        assert cited(document.claims[0]) == ["https://a.example/"]


def test_no_urls_is_a_warning_not_an_error():
    document = parse_document(b"date 2022-02-27 Headline\n\nA claim with no source.\n", "a.txt")
    assert "no URLs cited" in document.warnings
    assert claim_texts(document) == ["Headline", "A claim with no source."]


# --- citations -----------------------------------------------------------------------------------

def test_standalone_urls_go_to_the_main_claim_and_to_claims_without_their_own():
    data = (b"date 2022-02-27 Headline https://own.example/h\n\n"
            b"Sourced https://own.example/p.\n\nUnsourced.\n\n<https://standalone.example/>\n")
    headline, sourced, unsourced = parse_document(data, "a.txt").claims
    standalone = Citation("https://standalone.example/", "https://standalone.example/", True)
    assert headline.citations == (Citation("https://own.example/h", "https://own.example/h", False), standalone)
    assert sourced.citations == (Citation("https://own.example/p", "https://own.example/p", False),)
    assert unsourced.citations == (standalone,)


def test_without_main_claim_standalone_urls_go_to_every_claim_without_its_own():
    data = ("x " * 80 + "\n\nSourced https://own.example/p\n\nUnsourced.\n\n\"https://s.example/\"\n").encode()
    document = parse_document(data, "a.txt")
    assert document.main_claim is None
    assert [cited(claim) for claim in document.claims] == [["https://s.example/"], ["https://own.example/p"],
                                                           ["https://s.example/"]]


def test_a_url_line_inside_a_paragraph_belongs_to_that_paragraph():
    document = parse_document(b"Claim one.\nhttps://a.example/\n\nClaim two.\n", "a.txt")
    assert claim_texts(document) == ["Claim one.\nhttps://a.example/", "Claim two."]
    assert [claim.citations for claim in document.claims] == [
        (Citation("https://a.example/", "https://a.example/", False),), ()]


def test_a_list_of_urls_alone_still_yields_its_urls():
    document = parse_document(b"https://a.example/\nhttps://b.example/\n", "urls.txt")
    assert document.claims == ()
    assert document.urls == ("https://a.example/", "https://b.example/")
    assert "no claims found" in document.warnings and "no URLs cited" not in document.warnings


def test_wrappers_and_trailing_punctuation_are_not_part_of_the_url():
    text = ('See https://a.example/x. Or (https://b.example/y), "https://c.example/z" and '
            '<https://d.example/w>; [https://e.example/v] “https://f.example/u” https://en.wikipedia.org/wiki/Foo_(bar) '
            '(https://en.wikipedia.org/wiki/Baz_(qux)).')
    assert find_links(text) == ["https://a.example/x", "https://b.example/y", "https://c.example/z",
                                "https://d.example/w", "https://e.example/v", "https://f.example/u",
                                "https://en.wikipedia.org/wiki/Foo_(bar)", "https://en.wikipedia.org/wiki/Baz_(qux)"]


def test_one_url_cited_twice_in_a_claim_is_cited_once_as_first_written():
    document = parse_document(b"https://a.example/x and HTTPS://A.EXAMPLE:443/x#top and https://b.example\n", "a.md")
    assert document.claims[0].citations == (Citation("https://a.example/x", "https://a.example/x", False),
                                            Citation("https://b.example", "https://b.example/", False))


def test_other_schemes_are_ignored_and_reported():
    data = b"Mail mailto:desk@example.org or call tel:+441234 or [run](javascript:alert(1)) https://a.example/\n"
    document = parse_document(data, "a.md")
    assert document.ignored_links == ("mailto:desk@example.org", "tel:+441234", "javascript:alert(1)")
    assert cited(document.claims[0]) == ["https://a.example/"]
    for link in document.ignored_links:
        assert any(warning.startswith(f"ignored link {link}:") for warning in document.warnings)


def test_a_claim_whose_only_links_are_ignored_receives_the_standalone_urls():
    document = parse_document(b"Write to mailto:a@b.example.\n\nhttps://s.example/\n", "a.txt")
    assert cited(document.claims[0]) == ["https://s.example/"]


# --- encodings -----------------------------------------------------------------------------------

@pytest.mark.parametrize("data, encoding, headline", [
    (b"date 2022-02-27 Caf\xe9 \x93quoted\x94 \x80 5\n\nhttps://a.example/\n", "cp1252", "Café “quoted” € 5"),
    (b"date 2022-02-27 Caf\xe9 \x81\n\nhttps://a.example/\n", "latin-1", "Café \x81"),
    ("date 2022-02-27 Caf\u00e9 \u201cquoted\u201d\r\n\r\nhttps://a.example/\r\n".encode("utf-16"), "utf-16",
     "Café “quoted”"),
    ("date 2022-02-27 Caf\u00e9\n\nhttps://a.example/\n".encode("utf-16-be").join([b"\xfe\xff", b""]), "utf-16",
     "Café"),
])
def test_non_utf8_bytes_are_decoded_and_the_encoding_recorded(data, encoding, headline):
    document = parse_document(data, "a.txt")
    assert (document.encoding, document.date, document.main_claim.text) == (encoding, "2022-02-27", headline)
    assert document.urls == ("https://a.example/",)
    assert_well_formed(document, data)


@pytest.mark.parametrize("encoding", ["cp1251", "koi8-r"])
def test_russian_in_a_legacy_codepage_is_read_in_its_letters_and_the_guess_said(encoding):
    text = ("date 2022-02-27 Беларусь готовится к нападению на Украину\n\n"
            "Белорусский спецназ грузится в самолёты для штурма Киева, заявили военные источники.\n\n"
            "https://a.example/\n")
    document = parse_document(text.encode(encoding), "a.txt")
    assert document.encoding == encoding and document.main_claim.text == "Беларусь готовится к нападению на Украину"
    assert any(warning.startswith(f"not UTF-8 and no byte order mark: read as {encoding}") for warning in document.warnings)
    # Western text in cp1252, accented letters among plain ones, stays cp1252 with nothing said.
    western = parse_document("Les forces spéciales biélorusses à côté de l'été. Straße über München.\n".encode("cp1252"),
                             "b.txt")
    assert (western.encoding, [w for w in western.warnings if "UTF-8" in w]) == ("cp1252", [])


def test_utf8_with_a_stray_byte_stays_utf8_with_a_warning():
    document = parse_document("Kyiv’s troops \u2014 caf\u00e9 ".encode() + b"\xff https://a.example/", "a.txt")
    assert document.encoding == "utf-8"
    assert document.claims[0].text == "Kyiv’s troops — café \ufffd https://a.example/"
    assert any("not valid utf-8" in warning for warning in document.warnings)


def test_a_bad_byte_after_a_bom_is_named_at_its_place_in_the_file(tmp_path):
    """Python's utf-8-sig codec counts from after the BOM: read whole, this file named byte 13."""
    data = codecs.BOM_UTF8 + b"claim,url\nCaf\xe9,https://a.example/\n"
    at = data.index(b"\xe9")
    (tmp_path / "s.csv").write_bytes(data)
    for document in (parse_document(data, "s.csv"), read_document(tmp_path / "s.csv")):
        assert (document.encoding, document.claims[0].text) == ("utf-8-sig", "Caf\ufffd")
        assert f"bytes that are not valid utf-8-sig were replaced (first at byte {at})" in document.warnings


@pytest.mark.parametrize("data", [
    "Café naïve \ufffd".encode() + b"\xff",           # a real U+FFFD among stray bytes: still UTF-8
    "Kyiv’s troops — café ".encode() + b"\xe2\x80 \xff https://a.example/",
    codecs.BOM_UTF8 + "abcé".encode() + b"\xe9 d",
    "Café".encode("utf-16") + b"\x00",
    "Café “quoted” € 5".encode("cp1252"),
    b"Caf\xe9 \x81",
    "Беларусь готовится к нападению на Украину".encode("cp1251"),
])
def test_a_sniffer_fed_a_byte_at_a_time_chooses_as_when_fed_all_at_once(data):
    """A sheet is read a chunk at a time, any other document whole: the same bytes read either way
    are read in the same encoding, said alike, however a character falls across two chunks."""
    sniffer = Sniffer()
    for byte in data:
        sniffer.feed(bytes([byte]))
    whole = decode(data)
    assert sniffer.result(lambda: data) == (whole.encoding, whole.warnings)


# --- Markdown ------------------------------------------------------------------------------------

def test_markdown_footnotes_and_reference_links_are_cited_by_the_claims_that_refer_to_them():
    document = parse_document(b"# Report\n\nTroops moved on Monday.[^1]\n\n"
                              b"The ministry [said so][min], as did [Source A].\n\nNobody disputes it.\n\n"
                              b"[^1]: Seen at https://fn.example/source by two reporters,\n"
                              b"    and at https://fn.example/second too.\n"
                              b"[min]: https://ministry.example/statement \"Statement\"\n"
                              b"[source a]: <https://a.example/>\n\n[unused]: https://sources.example/list\n", "a.md")
    assert {claim.text: cited(claim) for claim in document.claims} == {
        "Report": ["https://sources.example/list"],  # the main claim: the document's sources
        "Troops moved on Monday.[^1]": ["https://fn.example/source", "https://fn.example/second"],
        "The ministry [said so][min], as did [Source A].": ["https://ministry.example/statement", "https://a.example/"],
        "Nobody disputes it.": ["https://sources.example/list"],
    }
    assert [citation.url for citation in document.standalone] == ["https://sources.example/list"]


def test_markdown_code_and_comments_are_not_claims_and_cite_nothing():
    document = parse_document(b"Real claim https://real.example/\n\n```bash\ncurl https://api.example/v1\n```\n\n"
                              b"<!-- check https://draft.example/ -->\n\n<!--\nhttps://hidden.example/\n-->\n\n"
                              b"~~~~\n~~~\nhttps://tilde.example/\n~~~~\n\nAfter https://after.example/\n", "a.md")
    assert [(claim.text, cited(claim)) for claim in document.claims] == [
        ("Real claim https://real.example/", ["https://real.example/"]),
        ("After https://after.example/", ["https://after.example/"])]
    assert document.urls == ("https://real.example/", "https://after.example/")


@pytest.mark.parametrize("source, expected", [
    # Bracketed words then a colon, with prose after: no definition, but a claim.
    (b"[Update]: The minister later retracted https://a.example/\n", [("[Update]: The minister later retracted "
                                                                       "https://a.example/", ["https://a.example/"])]),
    (b"- [Reuters]: The minister said X https://r.example/\n", [("[Reuters]: The minister said X https://r.example/",
                                                                 ["https://r.example/"])]),
    # A paragraph right after a definition is a paragraph; the definition still serves who refers to it.
    (b"[1]: https://a.example/1\nThe sky is green https://b.example/\n\nRefers [1].\n",
     [("The sky is green https://b.example/", ["https://b.example/"]), ("Refers [1].", ["https://a.example/1"])]),
    # A comment with text after it, and inline code at a line's start, open nothing.
    (b"<!-- draft --> The minister said X https://c.example/\n",
     [("<!-- draft --> The minister said X https://c.example/", ["https://c.example/"])]),
    (b"```rm -rf /``` is dangerous, says https://d.example/\n\nNext https://e.example/\n",
     [("```rm -rf /``` is dangerous, says https://d.example/", ["https://d.example/"]),
      ("Next https://e.example/", ["https://e.example/"])]),
    # An inline link's text refers to no definition of the same name.
    (b"[source](https://a.example/) here\n\n[source]: https://b.example/\n",
     [("[source](https://a.example/) here", ["https://a.example/"])]),
])
def test_markdown_that_only_looks_like_a_definition_or_a_fence_stays_a_claim(source, expected):
    document = parse_document(source, "a.md")
    assert [(claim.text, cited(claim)) for claim in document.claims] == expected
    assert_well_formed(document, source)


def test_each_row_of_a_markdown_table_is_a_claim_and_its_header_is_not():
    document = parse_document(b"| Claim | Source |\n|---|:---:|\n| Row one | https://table.example/1 |\n"
                              b"| Row two | https://table.example/2 |\n", "a.md")
    assert [(claim.text, cited(claim)) for claim in document.claims] == [
        ("| Row one | https://table.example/1 |", ["https://table.example/1"]),
        ("| Row two | https://table.example/2 |", ["https://table.example/2"])]


MARKDOWN = b"""# Belarus to join the war

Intro cites [the Mirror](https://a.example/mirror "title") and <https://b.example/>.

- First item https://c.example/
- Second item
  continues here
1. Numbered item [x](https://d.example/)

---

## A section heading

<https://s.example/>
"""


def test_markdown_title_paragraphs_list_items_and_headings_are_claims():
    document = parse_document(MARKDOWN, "a.md")
    assert document.kind == "markdown" and document.title == "Belarus to join the war"
    assert document.main_claim.text == "Belarus to join the war"
    assert claim_texts(document) == [
        "Belarus to join the war",
        'Intro cites [the Mirror](https://a.example/mirror "title") and <https://b.example/>.',
        "First item https://c.example/", "Second item\n  continues here", "Numbered item [x](https://d.example/)",
        "A section heading"]
    assert [cited(claim) for claim in document.claims] == [
        ["https://s.example/"], ["https://a.example/mirror", "https://b.example/"], ["https://c.example/"],
        ["https://s.example/"], ["https://d.example/"], ["https://s.example/"]]
    assert_well_formed(document, MARKDOWN)


def test_markdown_without_an_opening_heading_has_no_main_claim():
    document = parse_document(b"Para https://a.example/\n\n# Late heading\n", "notes.markdown")
    assert document.main_claim is None and document.title is None
    assert claim_texts(document) == ["Para https://a.example/", "Late heading"]


# --- HTML ----------------------------------------------------------------------------------------

HTML = """<!doctype html>
<html><head><title>Page title | Site</title><base href="https://base.example/dir/">
<script>var u = "https://script.example/";</script></head>
<body><nav><a href="https://nav.example/">Home</a></nav>
<h1>Belarus &amp; the war</h1>
<p>First claim, <a href="report.html">relative</a> and <a href='https://abs.example/1'>absolute</a>.
<p>Second claim cites https://bare.example/q and <a href="mailto:desk@example.org">mail</a>.
<ul><li>Item one<li>Item <b>two</b> <a href="#top">top</a></ul>
<table><tr><td>Cell A <a href="/root">r</a><td>Cell B</table>
<p><a href="https://standalone.example/long-url">https://standalone.example/long…</a></p>
</body></html>""".encode()


def test_html_blocks_are_claims_citing_their_links():
    document = parse_document(HTML, "a.html")
    assert document.kind == "html" and document.title == "Page title | Site"
    assert document.main_claim.text == "Belarus & the war"
    assert claim_texts(document) == ["Belarus & the war", "First claim, relative and absolute.",
                                      "Second claim cites https://bare.example/q and mail.", "Item one", "Item two top",
                                      "Cell A r", "Cell B"]
    standalone = ["https://standalone.example/long-url"]
    assert [cited(claim) for claim in document.claims] == [
        standalone, ["https://base.example/dir/report.html", "https://abs.example/1"], ["https://bare.example/q"],
        standalone, standalone, ["https://base.example/root"], standalone]
    assert document.ignored_links == ("mailto:desk@example.org",)


def test_html_spans_are_the_source_range_of_each_element():
    document = parse_document(HTML, "a.html")
    source = HTML.decode()
    assert not any(claim.verbatim for claim in document.claims)
    assert source[document.claims[0].start:document.claims[0].end] == "<h1>Belarus &amp; the war</h1>"
    item_one = document.claims[3]
    assert source[item_one.start:item_one.end] == "<li>Item one"  # closed by the next <li>
    assert_well_formed(document, HTML)


def test_html_relative_links_without_base_are_ignored_and_reported():
    document = parse_document(b"<p>Claim <a href='report.html'>here</a> <a href='https://a.example/'>a</a></p>",
                              "a.htm")
    assert cited(document.claims[0]) == ["https://a.example/"]
    assert document.ignored_links == ("report.html",)
    assert any("relative link" in warning for warning in document.warnings)
    assert document.main_claim is None


def test_an_html_link_wrapped_over_lines_is_read_as_a_browser_reads_it():
    """A browser takes tabs and line breaks out of an href (written ones, and encoded ones such as
    &#13;&#10;) and sends a space or a control encoded: the claims cite what a reader would open."""
    document = parse_document(
        b"<p>The cuts were announced <a href='https://news.example/2026/cuts-\nannounced'>here</a>.</p>"
        b"<p>A header <a href='https://x.example/p&#13;&#10;WARC-Injected: yes'>there</a>.</p>"
        b"<p>A file <a href='https://x.example/my file.pdf'>named</a> with a space.</p>", "a.html")
    assert [cited(claim) for claim in document.claims] == [
        ["https://news.example/2026/cuts-announced"], ["https://x.example/pWARC-Injected:%20yes"],
        ["https://x.example/my%20file.pdf"]]


@pytest.mark.parametrize("url", ["https://a.example/p\nWARC-Injected: yes", "https://a.example/a\tb",
                                 "https://a.example/a b", "https://a.example/\x00", "https://a.example/\x7f"])
def test_a_url_given_with_a_line_break_space_or_control_is_refused(url, tmp_path):
    with pytest.raises(UsageProblem, match="one unbroken line"):
        read_targets([url], tmp_path)


def test_a_url_whose_host_part_holds_a_backslash_is_refused(tmp_path):
    """Python reads good.example as the host of this URL, a browser and requests evil.example."""
    with pytest.raises(UsageProblem, match="backslash"):
        read_targets(["http://evil.example:8080\\@good.example:8080/x"], tmp_path)


def test_a_link_carrying_a_password_is_not_cited_and_its_password_not_kept():
    document = parse_document(b"The minutes are at http://alice:S3cret@x.example/minutes and "
                              b"https://bob@y.example/ too, said the clerk on Monday.\n", "a.txt")
    assert [cited(claim) for claim in document.claims] == [[]]
    assert not any("S3cret" in warning or "alice" in warning for warning in document.warnings)
    assert any(warning.startswith("ignored link http://***@x.example/minutes: it carries a user name or password")
               for warning in document.warnings), document.warnings
    with pytest.raises(UsageProblem) as raised:
        read_targets(["http://alice:S3cret@x.example/minutes"], Path("."))
    assert "S3cret" not in str(raised.value) and "user name or password" in str(raised.value)
    assert read_targets(["https://@x.example/"], Path(".")).urls  # an empty user name names no one


def test_html_without_h1_takes_title_as_main_claim():
    document = parse_document(b"<title>The claim</title><p>Body https://a.example/</p>", "a.html")
    assert document.main_claim.text == document.title == "The claim"
    assert cited(document.main_claim) == []



def test_deeply_nested_html_is_read_in_one_pass():
    """A hostile page of 100,000 unclosed nested blocks (1 MB) and as many stray end tags: each
    tag used to walk every open element, some 10^10 steps, hours of reading before any capture.
    Read element by element it takes a second or two."""
    depth = 100_000
    data = ("<ul><li>x " * depth + "</b></p>" * depth + "<p>Last https://a.example/</p>").encode()
    document = parse_document(data, "deep.html")
    assert len(document.claims) == depth + 1
    assert cited(document.claims[-1]) == ["https://a.example/"]
    assert document.claims[0].text == "x"

# --- claim sheets --------------------------------------------------------------------------------

CSV = ('ID;Claim;URL;Date;Notes\n'
       '1;Belarus joins;https://a.example/1  <https://b.example/2>;2022-02-27;two sources\n'
       '2;"A claim over\ntwo lines";https://c.example/;;\n'
       '3;;https://d.example/;;empty claim\n'
       '4;No source;;;\n').encode()


def test_csv_semicolons_several_urls_per_cell_and_row_extras():
    document = parse_document(CSV, "sheet.csv")
    assert document.kind == "csv" and document.main_claim is None
    assert claim_texts(document) == ["Belarus joins", "A claim over\ntwo lines", "No source"]
    assert [cited(claim) for claim in document.claims] == [["https://a.example/1", "https://b.example/2"],
                                                           ["https://c.example/"], []]
    first = document.claims[0]
    assert first.kind == "row" and not first.verbatim
    assert first.row == {"id": "1", "date": "2022-02-27", "notes": "two sources"}
    text = CSV.decode()
    assert text[first.start:first.end] == text.splitlines()[1]
    second = document.claims[1]
    assert text[second.start:second.end] == '2;"A claim over\ntwo lines";https://c.example/;;'
    assert "line 5: no claim text; row skipped" in document.warnings
    assert "line 6: no URL for this claim" in document.warnings


def test_csv_an_unclosed_quote_that_swallows_rows_is_named():
    data = (b'claim,url\n'
            b'"Troops moved on Monday,https://a.example/1\n'
            b'Tanks crossed the river,https://a.example/2\n'
            b'Nobody saw it",https://a.example/3\n'
            b'A later row,https://a.example/4\n')
    document = parse_document(data, "sheet.csv")
    # Line 4 closes the quote: its URL is the (swallowing) row's own, and it is no row swallowed.
    assert [w for w in document.warnings if "quote" in w] == [
        "line 2: a quoted cell opened here runs to line 4 and takes in line 3, which looks like a row "
        "of its own; it was not read as a row: close the quote on line 2"]
    assert claim_texts(document)[-1] == "A later row"  # the sheet after the swallowed rows is still read
    # A claim quoted over two lines as the docs allow is no such warning (CSV above: "A claim over\ntwo lines"),
    # nor is one whose URL follows its closing quote on the last of its lines.
    assert not [w for w in parse_document(CSV, "sheet.csv").warnings if "quote" in w]
    multi_line = parse_document(b'claim,url\n"Multi\nline claim",https://m.example/1\n', "sheet.csv")
    assert not [w for w in multi_line.warnings if "quote" in w] and cited(multi_line.claims[0]) == ["https://m.example/1"]



def test_csv_a_cell_past_the_csv_modules_field_limit_is_read():
    """Python's csv module stops at a 128 KiB cell by default: an unclosed quote near the top of
    a big sheet read no claim at all, with a warning that named no quote; a long cell was the
    end of the sheet."""
    rows = "".join(f"Claim number {i} is here,https://a.example/{i}\n" for i in range(5000))
    document = parse_document(('claim,url\n"Unclosed claim,https://a.example/x\n' + rows).encode(), "sheet.csv")
    assert document.warnings[0].startswith(
        "line 2: a quoted cell opened here runs to line 5002 and takes in lines 3-5002, which look like rows")
    long_claim = "word " * 40_000
    document = parse_document(f"claim,url\n{long_claim},https://a.example/1\nNext,https://a.example/2\n".encode(),
                              "sheet.csv")
    assert claim_texts(document) == [long_claim.strip(), "Next"]


def test_urls_run_together_in_a_url_cell_are_each_cited():
    # "a,b" with no space would otherwise be one URL whose path holds the second: neither page.
    document = parse_document(b'claim,url\nTwo sources,"https://a.example/1,https://b.example/2;http://c.example/3"\n',
                              "sheet.csv")
    assert cited(document.claims[0]) == ["https://a.example/1", "https://b.example/2", "http://c.example/3"]
    archived = "https://web.archive.org/web/2022/https://a.example/1"  # a URL inside a path stays whole
    assert cited(parse_document(f"claim,url\nArchived,{archived}\n".encode(), "sheet.csv").claims[0]) == [archived]

def test_csv_delimiter_follows_the_header_row():
    document = parse_document(b"claim\turl\nA, b; c\thttps://a.example/\n", "tabs.csv")
    assert claim_texts(document) == ["A, b; c"]
    assert cited(document.claims[0]) == ["https://a.example/"]



def test_csv_cells_past_the_header_are_warned_about_not_dropped_silently():
    # A second URL after another delimiter, or a comma inside an unquoted claim, makes more cells
    # than the header names: what they hold was not read, and the sheet must say so.
    document = parse_document(b"claim;url\nTwo sources;https://a.example/1;https://a.example/2\n"
                              b"Trailing delimiters;https://a.example/3;;\n", "sheet.csv")
    assert [cited(claim) for claim in document.claims] == [["https://a.example/1"], ["https://a.example/3"]]
    assert [w for w in document.warnings if "cells" in w] == [
        "line 2: 3 cells but the header names 2 columns; 'https://a.example/2' past the last column was not read: "
        "quote a cell that holds a ';', or put several URLs in the url cell separated by spaces"]
    document = parse_document(b"claim,url\nThe minister said X, then Y,https://a.example/\n", "sheet.csv")
    assert any(w.startswith("line 2: 3 cells but the header names 2 columns;") for w in document.warnings)

def test_jsonl_rows_and_a_bad_line():
    data = b'{"Claim": "One", "URL": ["https://a.example/", "https://b.example/"], "source": "AFP"}\n' \
           b'{not json\n' \
           b'{"claim": "Two", "url": "https://c.example/ https://a.example/"}\n'
    document = parse_document(data, "sheet.jsonl")
    assert document.kind == "jsonl"
    assert claim_texts(document) == ["One", "Two"]
    assert [cited(claim) for claim in document.claims] == [["https://a.example/", "https://b.example/"],
                                                           ["https://c.example/", "https://a.example/"]]
    assert document.claims[0].row == {"source": "AFP"}
    assert any(warning.startswith("line 2: not JSON") for warning in document.warnings)
    assert data.decode()[document.claims[1].start:document.claims[1].end] == data.decode().splitlines()[2]


def test_a_url_cell_cut_by_a_space_cites_neither_part():
    """"https://x.example/t wo": citing https://x.example/t would link the claim to a page the
    sheet does not name; a remark beside a URL is no part of it."""
    data = (b'claim,url\nCut,"https://x.example/t wo"\n'
            b'Wide,"https://x.example/j\xe3\x80\x80son"\n'
            b'Remark,"https://x.example/r (archived) https://y.example/"\n'
            b'Dash,"https://x.example/e - archived"\nLine,"https://x.example/f\nsee notes"\n'
            b'Comma,"https://x.example/report, page 4"\n')
    document = parse_document(data, "sheet.csv")
    assert [cited(claim) for claim in document.claims] == [
        [], [], ["https://x.example/r", "https://y.example/"], ["https://x.example/e"], ["https://x.example/f"],
        ["https://x.example/report"]]
    assert "line 2: 'https://x.example/t wo' in the url column: a URL with a space in it? Not cited: " \
           "write it as one unbroken URL (a space as %20)" in document.warnings
    assert any(warning.startswith("line 3: 'https://x.example/j\\u3000son'") for warning in document.warnings)
    assert "line 4: '(archived)' in the url column is not a URL" in document.warnings
    assert "line 5: 'archived' in the url column is not a URL" in document.warnings


@pytest.mark.parametrize("name, data", [("s.csv", b"Claim,Link\nA claim,https://a.example/\n"),
                                        ("s.jsonl", json.dumps({"claim": "A", "link": "https://a.example/"}).encode())])
def test_sheet_without_url_column_is_a_usage_problem_naming_its_columns(name, data):
    with pytest.raises(UsageProblem) as raised:
        parse_document(data, name)
    assert "no 'url' column" in raised.value.message
    assert "'claim', 'link'" in raised.value.message


# --- one-off claims and files --------------------------------------------------------------------

def test_note_claim_cites_its_urls_once():
    claim = note_claim("Belarus joins the war", ["https://a.example/", "HTTPS://a.example:443/", "https://b.example/"])
    assert (claim.kind, claim.id) == ("note", make_claim_id("note", "Belarus joins the war", 0))
    assert cited(claim) == ["https://a.example/", "https://b.example/"]
    with pytest.raises(UsageProblem, match="mailto"):
        note_claim("A claim", ["mailto:a@b.example"])
    with pytest.raises(UsageProblem, match="a URL holds no spaces") as joined:  # two URLs pasted as one argument
        note_claim("A claim", ["https://a.example/page https://b.example/other"])
    assert joined.value.fix == "give each URL as an argument of its own"


def test_unreadable_path_is_a_usage_problem(tmp_path):
    with pytest.raises(UnreadableDocument, match="cannot read") as missing:
        read_document(tmp_path / "missing.txt")
    assert missing.value.exit_code == 2


def test_an_unreadable_document_stops_the_run_when_named_and_is_skipped_in_a_folder(tmp_path, monkeypatch):
    folder = tmp_path / "seeds"
    folder.mkdir()
    (folder / "a.md").write_text("Readable https://a.example/\n")
    secret = folder / "secret.md"
    secret.write_text("Refused https://b.example/\n")
    read_bytes = Path.read_bytes

    def refusing(path):  # as root, no file mode refuses a read: the machine's refusal, stood in for
        if path.name == "secret.md":
            raise PermissionError(13, "Permission denied")
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", refusing)
    found = read_targets([str(folder)], tmp_path)
    assert list(found.urls) == ["https://a.example/"]
    assert found.skipped == [f"cannot read {secret}: Permission denied; skipped"]
    with pytest.raises(UnreadableDocument, match="secret.md: Permission denied") as named:
        read_targets([str(secret)], tmp_path)
    assert named.value.exit_code == 3  # the machine refused, as the README's exit codes say


def test_a_binary_file_is_skipped_with_a_warning_naming_it(run_cli, raw_server, collection, tmp_path):
    server = raw_server({"/": send_bytes(http_response(b"<p>cited</p>"))})
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "article.md").write_text(f"# Troops moved\n\nSee {server.url('/')}\n")
    # A scan saved with a document's suffix (a PNG), and a compressed file named on the command line.
    (seeds / "scan.txt").write_bytes(base64.b64decode(PNG))
    packed = tmp_path / "notes.gz"
    packed.write_bytes(gzip.compress(f"A claim {server.url('/other')}\n".encode() * 50))
    result = run_cli("capture", "-C", collection.root, seeds, packed)
    assert result.exit_code == 0, result.output
    for name in (seeds / "scan.txt", packed):
        assert f"warning: {name} is not a document (it holds binary data); skipped" in result.stdout, result.stdout
    documents = json.loads(run_cli("documents", "-C", collection.root, "--json").stdout)
    assert [Path(d["key"]).name for d in documents] == ["article.md"]
    assert [request.split(b" ")[1] for request in server.requests] == [b"/"]
    read = json.loads(run_cli("capture", "-C", collection.root, seeds, packed, "--json").stdout)
    assert len(read["skipped"]) == 2 and all("is not a document" in warning for warning in read["skipped"])


def test_targets_mix_urls_and_documents_once_each(tmp_path):
    doc = tmp_path / "a.md"
    doc.write_text("https://a.example/x and HTTPS://A.EXAMPLE:443/x#top")
    found = read_targets(["https://a.example/x", str(doc), str(tmp_path)], tmp_path)
    assert list(found.urls) == ["https://a.example/x"]
    assert [d.path for d in found.documents] == [doc]  # named, and in the folder named: read once


# --- never crashing on bytes ---------------------------------------------------------------------

NASTY = [b"", b"\x00\xff\xfe", b"\xff\xfe\x00", b"\xef\xbb\xbf\xff", b"<![foo[ x ]]><p>after https://a.example/",
         b"<a href='\x00https://a.example/'>x</a>", b"<p>https://[::1/ http://a:99999/ https://</p>",
         b"date 2022-02-27\n", b"# \n\n-  \n\n* * *", b"claim,url\n\"unterminated,https://a.example/",
         b'{"claim": ' * 5000, b"claim,url\n" + b"x" * 200_000 + b",https://a.example/\n", "\r\r\n\x0b\x1c\u2028 \ufeff".encode()]


SHEET_REFUSAL = re.compile(r"(?P<name>.+) is not a claim sheet: it has no (?P<missing>'claim' or 'url'|'claim'|'url') "
                           r"column \(columns found: (?P<found>.+)\)", re.DOTALL)
SHEET_FIX = "name one column claim and one url, in any case; id, date, source and notes are optional"


def assert_documented_sheet_refusal(problem: UsageProblem, name: str) -> None:
    """The one refusal docs/claims.md allows: "A sheet with no `claim` or no `url` column is
    refused (exit code 2), naming the columns it has"; no file is ever refused for its bytes."""
    refusal = SHEET_REFUSAL.fullmatch(problem.message)
    assert refusal and refusal["name"] == name and problem.fix == SHEET_FIX, str(problem)
    assert name.endswith((".csv", ".tsv", ".jsonl")) and problem.exit_code == 2, str(problem)
    found = refusal["found"].split(", ")
    assert not any(column in found for column in refusal["missing"].split(" or ")), str(problem)


def assert_read_skipped_or_refused(data: bytes, name: str) -> None:
    """Any bytes: a well-formed document, a documented skip, or a documented refusal, never a crash."""
    try:
        document = parse_document(data, name)
    except UsageProblem as problem:
        assert_documented_sheet_refusal(problem, name)
        return
    except NotADocument as skipped:
        check_skip(skipped, data, name)
        return
    assert_well_formed(document, data)


@pytest.mark.parametrize("data", NASTY)
@pytest.mark.parametrize("suffix", DOCUMENT_SUFFIXES)
def test_nasty_bytes_never_crash(data, suffix):
    assert_read_skipped_or_refused(data, "f" + suffix)


def test_arbitrary_bytes_never_crash_and_spans_match():
    hypothesis = pytest.importorskip("hypothesis")
    strategies = hypothesis.strategies

    @hypothesis.settings(max_examples=300, deadline=None)
    @hypothesis.given(data=strategies.one_of(strategies.binary(), strategies.text().map(str.encode)),
                      suffix=strategies.sampled_from(DOCUMENT_SUFFIXES))
    def check(data, suffix):
        assert_read_skipped_or_refused(data, "f" + suffix)

    check()


def test_markdown_links_give_their_destinations_and_nothing_joined():
    # The URL as the link's own text, and two links run together: each destination, once per link.
    assert find_links("Same [https://example.org/a](https://example.org/a) common.") == [
        "https://example.org/a", "https://example.org/a"]
    assert find_links("Adjacent [a](https://a.example/x)[b](https://b.example/y) links.") == [
        "https://a.example/x", "https://b.example/y"]
    assert find_links("[w](https://en.wikipedia.org/wiki/Foo_(bar)) and [t](https://a.example/p \"title\")") == [
        "https://en.wikipedia.org/wiki/Foo_(bar)", "https://a.example/p"]
    document = parse_document(b"Troops moved [https://a.example/1](https://a.example/1).\n", "a.md")
    assert cited(document.claims[0]) == ["https://a.example/1"]


def test_a_typographers_apostrophe_and_markdown_emphasis_are_not_part_of_a_url():
    assert find_links("See https://example.org’s report.") == ["https://example.org"]
    assert find_links("the path https://a.example/Ender’s_Game, as Wikipedia has it") == [
        "https://a.example/Ender’s_Game"]
    assert find_links("and _https://it.example/y_ end, *https://b.example/z*") == [
        "https://it.example/y", "https://b.example/z"]


def test_a_sheet_line_with_half_a_character_is_read_with_a_warning():
    document = parse_document(b'{"claim": "Sur \\ud800 rogate \\ud83d\\ude00", "url": "https://a.example/"}\n'
                              b'{"claim": "Whole \\ud83d\\ude00", "url": "https://b.example/"}\n', "s.jsonl")
    assert claim_texts(document) == ["Sur \ufffd rogate \U0001F600", "Whole \U0001F600"]
    assert document.warnings == ("line 1: a \\u escape names half a character (a lone UTF-16 surrogate); "
                                 "it was read as U+FFFD",)


def test_a_sheet_column_named_twice_is_warned_of():
    document = parse_document(b"claim,url,url\nA claim,https://a.example/1,https://a.example/2\n", "s.csv")
    assert [cited(claim) for claim in document.claims] == [["https://a.example/1"]]
    assert "line 1: the column 'url' is named more than once: only the first is read" in document.warnings


def test_a_jsonl_key_named_twice_is_warned_of_and_its_first_read():
    """As a CSV column named twice is: json.loads alone took the last, and said nothing."""
    document = parse_document(b'{"claim": "first", "claim": "second", "url": "https://a.example/1", '
                              b'"URL": "https://a.example/2"}\n{"claim": "again", "claim": "x", "url": "https://a.example/3"}\n',
                              "s.jsonl")
    assert claim_texts(document) == ["first", "again"]
    assert [cited(claim) for claim in document.claims] == [["https://a.example/1"], ["https://a.example/3"]]
    assert [w for w in document.warnings if "more than once" in w] == [
        f"line 1: the key {key!r} is named more than once: only the first is read (on any line; told once)"
        for key in ("claim", "url")]


@pytest.mark.parametrize("name, data, line", [
    ("s.csv", b"id,claim,url\nA1,one,https://a.example/\nA2,two,https://b.example/\nA1,three,https://c.example/\n", 4),
    ("s.jsonl", b'{"id": "A1", "claim": "one", "url": "https://a.example/"}\n{"id": "A2", "claim": "two", "url": '
                b'"https://b.example/"}\n{"id": "A1", "claim": "three", "url": "https://c.example/"}\n', 3)])
def test_a_sheet_id_given_to_two_rows_is_warned_of(name, data, line):
    document = parse_document(data, name)
    assert claim_texts(document) == ["one", "two", "three"]
    assert document.warnings == (f"line {line}: the id 'A1' is an earlier row's id too: give each row its own, as rows "
                                 "are told apart by it when the sheet is read again",)


@pytest.mark.parametrize("declaration", [b"sep=;\n", b"SEP=;\r\n", b"\xef\xbb\xbfsep=;\n"])
def test_excels_sep_line_declares_the_delimiter(declaration):
    document = parse_document(declaration + b"claim;url;notes\nx, y and z;https://a.example/;n, m\n", "s.csv")
    assert claim_texts(document) == ["x, y and z"] and document.claims[0].row == {"notes": "n, m"}
    assert [cited(claim) for claim in document.claims] == [["https://a.example/"]] and document.warnings == ()


def test_a_jsonl_line_opening_with_a_byte_order_mark_is_read_with_a_warning():
    """Sheets joined each with its BOM: the line was skipped as "not JSON (Unexpected UTF-8 BOM
    (decode using utf-8-sig) …)", Python's advice, not a user's."""
    data = '{"claim": "a", "url": "https://a.example/"}\n\ufeff{"claim": "b", "url": "https://b.example/"}\n'
    document = parse_document(data.encode(), "s.jsonl")
    assert claim_texts(document) == ["a", "b"]
    assert data[document.claims[1].start:document.claims[1].end] == data.splitlines()[1][1:]
    assert document.warnings == ("line 2: a byte order mark (U+FEFF) opens the line, as when files each saved with "
                                 "one are joined; the line was read without it",)


def test_a_tsv_file_is_a_claim_sheet(tmp_path):
    document = parse_document(b"claim\turl\nFirst row\thttps://a.example/1\nSecond row\thttps://a.example/2\n", "s.tsv")
    assert document.kind == "csv" and claim_texts(document) == ["First row", "Second row"]
    assert [cited(claim) for claim in document.claims] == [["https://a.example/1"], ["https://a.example/2"]]


def test_a_folder_is_read_without_its_hidden_folders_and_each_file_once(tmp_path):
    seeds = tmp_path / "seeds"
    (seeds / ".git").mkdir(parents=True)
    (seeds / ".git" / "notes.md").write_text("A tool's file https://hidden.example/\n")
    (seeds / "a.md").write_text("Cited https://a.example/\n")
    (seeds / "link.md").symlink_to(seeds / "a.md")
    assert documents_in(seeds) == [seeds / "a.md", seeds / "link.md"]
    found = read_targets([str(seeds)], tmp_path)
    assert [document.key for document in found.documents] == ["seeds/a.md"] and list(found.urls) == ["https://a.example/"]


def test_a_file_called_note_in_the_collection_is_not_the_cited_notes(collection):
    # `cite` claims have the document key "note"; a document of that name must take another.
    note = collection.root / "note"
    note.write_text("Unique note claim\n\nhttps://a.example/from-the-file\n")
    found = read_targets([str(note)], collection.root)
    assert [document.key for document in found.documents] == ["./note"]
    assert found.documents[0].claims[0].id != note_claim("Unique note claim", ["https://a.example/"]).id


def test_an_apostrophe_inside_a_url_path_is_part_of_the_url():
    # Wikipedia titles keep their apostrophes: cutting the URL there would capture another page.
    url = "https://en.wikipedia.org/wiki/Ender's_Game"
    assert find_links(f"See {url} and [O'Brien](https://en.wikipedia.org/wiki/Conan_O'Brien).") == [
        url, "https://en.wikipedia.org/wiki/Conan_O'Brien"]
    assert cited(parse_document(f"claim,url\nA claim,{url}\n".encode(), "s.csv").claims[0]) == [url]
    assert cited(parse_document(f'<p>See <a href="{url}">{url}</a></p>'.encode(), "a.html").claims[0]) == [url]
    # Quotes around a URL, or a possessive after its host, are still not part of it.
    assert find_links("'https://a.example/x','https://b.example/y' https://c.example's page") == [
        "https://a.example/x", "https://b.example/y", "https://c.example"]
