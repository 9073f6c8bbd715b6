"""The records of fetched exchanges: each hop that sent a request becomes a request record, and
one that got a response its response (or revisit) record, exactly as the bytes crossed the wire.
A request refused before it was sent has no record: its hop's metadata entry says why."""

from __future__ import annotations

import io

from archiver.capture.fetch.engine import Hop
from archiver.capture.warc import PendingRecord, Revisit, http_exchange_records, sha256_digest


def hop_records(hop: Hop, revisit: Revisit | None = None) -> tuple[list[PendingRecord], str | None]:
    """A hop's records and its response record's id (None when no response came). With
    `revisit`, the response record holds only the HTTP head and points at the identical payload.
    None at all for a request never sent: an empty block is no HTTP request."""
    if not hop.sent_request:
        return [], None
    exchange, spool = hop.exchange, hop.exchange.spool
    ip = exchange.connection.ip if exchange.connection else None
    spool.file.seek(0)
    block, length, block_digest = spool.file, spool.size, spool.block_digest
    if revisit:
        head = spool.file.read(spool.header_length)
        block, length, block_digest = io.BytesIO(head), len(head), sha256_digest(head)
    records = http_exchange_records(
        hop.sent_url or hop.url, exchange.started_at, ip, bytes(exchange.request_bytes), block, length, block_digest,
        spool.payload_digest, hop.truncated, hop.has_response, revisit)
    return records, records[-1].header("WARC-Record-ID") if hop.has_response else None


def interim_responses(hop: Hop) -> dict[str, list[str]]:
    """For a metadata entry: the interim (1xx) heads that came before the hop's response, byte
    for byte (each byte one character, as latin-1 reads it); nothing when none came."""
    heads = hop.exchange.spool.interim
    return {"interim_responses": [head.decode("latin-1") for head in heads]} if heads else {}
