"""Which query values the replay may match loosely: only cache-busting ones, never another path,
host, key or a number that could be an id."""

from __future__ import annotations

from archiver.capture.browser.cache_busting import loose_form

CAPTURED_AT = 1796318875.0  # 2026-12-03


def test_cache_busting_values_match_and_nothing_else_does():
    same = [("https://news.test/api/a.json?_=1796318875979", "https://news.test/api/a.json?_=1796318875786"),
            ("https://news.test/api/a.json?id=7&r=0.32881395925006485", "https://news.test/api/a.json?id=7&r=0.0036568837"),
            ("https://news.test/a?cb=12&t=1796318875", "https://news.test/a?cb=99&t=1796300000"),
            ("https://news.test/a?nocache=5", "https://news.test/a?nocache=6")]
    for recorded, asked in same:
        assert loose_form(asked, CAPTURED_AT) is not None and loose_form(asked, CAPTURED_AT) == loose_form(recorded, CAPTURED_AT)
    others = [("https://news.test/api/a.json?_=1796318875979", "https://news.test/api/b.json?_=1796318875786"),
              ("https://news.test/api/a.json?_=1796318875979", "https://other.test/api/a.json?_=1796318875786"),
              ("https://news.test/api/a.json?_=1796318875979", "http://news.test/api/a.json?_=1796318875786"),
              ("https://news.test/a?id=7&_=1796318875979", "https://news.test/a?id=8&_=1796318875786"),
              ("https://news.test/a?_=1796318875979", "https://news.test/a?v=1796318875786"),
              ("https://news.test/a?_=1796318875979&x=1", "https://news.test/a?_=1796318875786")]
    for recorded, asked in others:
        assert loose_form(asked, CAPTURED_AT) != loose_form(recorded, CAPTURED_AT)
    # An id that looks like a time far from the capture's, a word, a bare key: never cache-busting.
    for url in ("https://news.test/story?id=1234567890", "https://news.test/a?_=latest", "https://news.test/a?0.3288139592",
                "https://news.test/a", "https://news.test/a?page=2"):
        assert loose_form(url, CAPTURED_AT) is None
