"""What the catalog holds, one frozen row type per table: captures, the records of each, the
claims and documents that cite them, and where a payload is stored in full."""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class StoredRecord:
    """One WARC record as cataloged: where its gzip member is, and its digests."""

    record_id: str
    warc_type: str
    role: str
    target_uri: str | None
    warc_date: str
    warc_file: str
    offset: int
    length: int  # bytes of the gzip member in the file
    content_length: int
    block_digest: str
    payload_digest: str | None
    truncated: str | None


# The `incomplete` of an imported revisit whose original response the collection does not hold
# (exchange/import_revisits.py): a record of a page's head, not of its content.
NO_PAYLOAD = "revisit; the payload it refers to is not in the collection"


@dataclass(frozen=True)
class CaptureRow:
    id: str
    run_id: str
    url: str
    url_key: str
    final_url: str | None
    outcome: str
    http_status: int | None
    error: str | None
    truncated: str | None
    started_at: str
    finished_at: str
    ip: str | None
    cert_sha256: str | None
    redirects: int
    payload_digest: str | None
    response_length: int | None
    warc_file: str | None
    response_record_id: str | None
    metadata_record_id: str | None
    revisit_of: str | None = None  # the capture whose response record holds this identical payload
    imported_from: str | None = None  # for captures made by another tool: the file they came in
    verdict: str | None = None  # what the page is (capture/verdict.py); None for a failed or older capture
    verdict_reason: str | None = None  # the signal that decided the verdict
    job_id: str | None = None  # the queued job a worker captured it for (`archiver worker`)
    incomplete: str | None = None  # what its record holds less of than the page had (capture/shortfalls.py); unsigned

    @property
    def payload_missing(self) -> bool:
        """An imported revisit whose original response the collection does not hold: no content."""
        return self.incomplete == NO_PAYLOAD

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class PayloadOrigin:
    """Where a payload is stored in full, for a revisit record to refer to."""

    capture_id: str
    record_id: str
    target_uri: str
    warc_date: str
    payload_digest: str


@dataclass(frozen=True)
class ClaimRow:
    id: str
    document_key: str | None
    text: str
    start: int | None
    end: int | None
    kind: str
    extra: str | None
    first_seen_at: str
    superseded_at: str | None
    verbatim: int  # 1 when text is exactly the document's characters start:end (see Claim.verbatim)
    citations: tuple[tuple[str, str], ...] = ()  # (URL as written, normalised URL)
    former_citations: tuple[tuple[str, str, str], ...] = ()  # (URL, normalised URL, when a re-read dropped it)
    # (normalised URL, when the claim began citing it) of each of both: None when not recorded (before 0013)
    cited_since: tuple[tuple[str, str | None], ...] = ()

    def as_dict(self) -> dict:
        data = dict(self.__dict__)
        data["verbatim"] = bool(self.verbatim)
        data["extra"] = json.loads(self.extra) if self.extra else None
        since = dict(data.pop("cited_since"))
        data["citations"] = [{"url": url, "url_key": key, "cited_since": since.get(key)} for url, key in self.citations]
        data["former_citations"] = [{"url": url, "url_key": key, "cited_since": since.get(key), "dropped_at": dropped_at}
                                    for url, key, dropped_at in self.former_citations]
        return data

    def since(self, url_key: str) -> str | None:
        """When the claim began citing the URL, if recorded."""
        return dict(self.cited_since).get(url_key)

    def url_keys_ever(self) -> list[str]:
        """The normalised URLs it cites, then those it cited before a re-read dropped them."""
        return [key for _, key in self.citations] + [key for _, key, _ in self.former_citations]


@dataclass(frozen=True)
class DocumentRow:
    key: str
    path: str
    sha256: str
    kind: str
    encoding: str
    date: str | None
    title: str | None
    warnings: str
    first_read_at: str
    last_read_at: str

    def as_dict(self) -> dict:
        return {**self.__dict__, "warnings": json.loads(self.warnings)}


Capture = tuple[CaptureRow, list[StoredRecord], dict | None]  # its row, its records, its attestation


def outcome_label(outcome: str) -> str:
    """A capture's outcome as people read it: "complete" (stored whole, whatever page it was; the
    catalog's "ok" beside a 404 would read as a page that is fine), "truncated" or "failed"."""
    return "complete" if outcome == "ok" else outcome
