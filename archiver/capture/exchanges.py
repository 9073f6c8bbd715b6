"""The records of fetched exchanges: each hop that sent a request becomes a request record, and
one that got a response its response (or revisit) record, exactly as the bytes crossed the wire."""

from __future__ import annotations

import io

from archiver.capture.fetch.engine import Hop
from archiver.capture.warc import PendingRecord, Revisit, http_record_pair, sha256_digest


def hop_records(hop: Hop, revisit: Revisit | None = None) -> tuple[list[PendingRecord], str | None]:
    """A hop's records and its response record's id (None when no response came). With
    `revisit`, the response record holds only the HTTP head and points at the identical payload."""
    exchange, spool = hop.exchange, hop.exchange.spool
    ip = exchange.connection.ip if exchange.connection else None
    spool.file.seek(0)
    block, length, block_digest = spool.file, spool.size, spool.block_digest
    if revisit:
        head = spool.file.read(spool.header_length)
        block, length, block_digest = io.BytesIO(head), len(head), sha256_digest(head)
    request, response = http_record_pair(
        hop.sent_url or hop.url, exchange.started_at, ip, bytes(exchange.request_bytes), block, length, block_digest,
        spool.payload_digest, hop.truncated, revisit)
    if not hop.has_response:
        return [request], None
    return [request, response], response.header("WARC-Record-ID")


def interim_responses(hop: Hop) -> dict[str, list[str]]:
    """For a metadata entry: the interim (1xx) heads that came before the hop's response, byte
    for byte (each byte one character, as latin-1 reads it); nothing when none came."""
    heads = hop.exchange.spool.interim
    return {"interim_responses": [head.decode("latin-1") for head in heads]} if heads else {}
