"""Whether a capture stored as a revisit, not rendered, is told unchanged: when the capture its
payload was matched against started after it (two runs of one URL at once, or a shared
collection's machines with clocks apart), and when the capture before it was never judged (made
before verdicts, or imported)."""

from __future__ import annotations

from archiver.capture.revisits import compare_unrendered, unchanged_since
from archiver.read.urls import normalise_url
from archiver.store.rows import CaptureRow

URL = "https://example.org/page"
RUN = "run-revisits"


def _capture(capture_id: str, started_at: str, revisit_of: str | None = None, verdict: str | None = "content") -> CaptureRow:
    return CaptureRow(id=capture_id, run_id=RUN, url=URL, url_key=normalise_url(URL), final_url=URL, outcome="ok",
                      http_status=200, error=None, truncated=None, started_at=started_at, finished_at=started_at,
                      ip="127.0.0.1", cert_sha256=None, redirects=0, payload_digest="sha256:" + "0" * 64,
                      response_length=10, warc_file=None, response_record_id=None, metadata_record_id=None,
                      revisit_of=revisit_of, verdict=verdict, verdict_reason="" if verdict else None)


def test_a_revisit_of_a_capture_started_after_it_is_not_told_unchanged(collection):
    origin = _capture("k-origin", "2024-01-02T10:00:05Z")
    revisit = _capture("k-revisit", "2024-01-02T10:00:00Z", revisit_of=origin.id)
    with collection:
        catalog = collection.catalog
        catalog.runs.start(RUN, "2024-01-02T00:00:00Z", "archiver test", "tester", {})
        catalog.add_captures([(origin, [], None)])
        catalog.add_captures([(revisit, [], None)])
        compared = compare_unrendered(catalog, [revisit], {})
    assert unchanged_since([revisit], compared) == {}


def test_a_revisit_of_a_capture_never_judged_is_unchanged(collection):
    # The same bytes, fetched alone both times: the same page, though only the new one has a verdict.
    before = _capture("k-before", "2024-01-02T10:00:00Z", verdict=None)
    revisit = _capture("k-revisit", "2024-01-03T10:00:00Z", revisit_of=before.id)
    with collection:
        catalog = collection.catalog
        catalog.runs.start(RUN, "2024-01-02T00:00:00Z", "archiver test", "tester", {})
        catalog.add_captures([(before, [], None), (revisit, [], None)])
        compared = compare_unrendered(catalog, [revisit], {})
    assert compared[revisit.id][0] is None
    assert unchanged_since([revisit], compared) == {revisit.id: "2024-01-02 10:00:00 UTC"}


def test_the_bundle_report_calls_a_recapture_of_a_capture_never_judged_unchanged():
    # As the run and `history` say: the same payload, neither rendered, the one before never judged.
    from archiver.exchange.capture_evidence import CaptureEvidence
    from archiver.exchange.report_changes import changes_since_previous

    before = _capture("k-before", "2024-01-02T10:00:00Z", verdict=None)
    again = _capture("k-again", "2024-01-03T10:00:00Z", revisit_of=before.id)
    evidence = [CaptureEvidence(row, (), None, None, (), None, None, "Hello") for row in (before, again)]
    change = changes_since_previous(evidence)[again.id]
    assert not change["changed"] and change["verdict"] is None, change
