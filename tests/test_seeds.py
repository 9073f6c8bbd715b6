"""Finding the URLs a document cites."""

from __future__ import annotations

from pathlib import Path

from archiver.capture import read_targets
from archiver.seeds import find_urls, read_document

SAMPLE = Path(__file__).parent.parent / "seeds" / "000_f70de470215bb835.txt"


def test_sample_article_cites_its_source():
    document = read_document(SAMPLE)
    assert document.urls == ("https://www.mirror.co.uk/news/world-news/breaking-belarus-to-join-ukraine-26341111",)
    assert len(document.sha256) == 64


def test_trailing_punctuation_and_wrappers_are_not_part_of_the_url():
    text = ('See https://a.example/x. Or (https://b.example/y), "https://c.example/z" and '
            '<https://d.example/w>; https://en.wikipedia.org/wiki/Foo_(bar) ok')
    assert find_urls(text) == ["https://a.example/x", "https://b.example/y", "https://c.example/z",
                               "https://d.example/w", "https://en.wikipedia.org/wiki/Foo_(bar)"]


def test_targets_mix_urls_and_documents_once_each(tmp_path):
    doc = tmp_path / "a.md"
    doc.write_text("https://a.example/x and HTTPS://A.EXAMPLE:443/x#top")
    found = read_targets(["https://a.example/x", str(doc), str(tmp_path)])
    assert found.urls == ["https://a.example/x"]
    assert [d.path for d in found.documents] == [doc, doc]
