"""Asking a timestamp authority (TSA) for an RFC 3161 token: the request built, posted over
HTTP within bounds of time and size, and the reply checked on arrival (granted, our imprint,
our nonce, the TSA certificate included, the token verified as `verify` will check it, and its
genTime within the time the exchange took), so that a bad reply is refused before it is saved.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import requests
from rfc3161_client import HashAlgorithm, PKIStatus, TimestampRequestBuilder

from archiver.evidence.timestamps.token import SHA256, Malformed, TimestampError, decode, first_line, read_token
from archiver.evidence.timestamps.verification import load_roots, verify_timestamp

QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
MAX_REPLY_BYTES = 1024 * 1024  # a reply is a few KB; anything near this is not a TSA talking


@dataclass(frozen=True)
class TimestampOutcome:
    """What `timestamp_with_any` got: the token and the TSA that gave it (both None when no
    TSA did), and one line for every TSA that failed before, in the order tried. A caller
    signs the manifest either way and reports `failures` (no TSA configured at all: `urls`
    was empty, `failures` too)."""

    url: str | None
    token: bytes | None
    failures: list[str]


def request_timestamp(data: bytes, url: str, timeout: float = 10.0, roots: bytes | None = None) -> bytes:
    """Ask the TSA at `url` for a SHA-256 timestamp over `data` (non-empty) and return its DER
    TimeStampResponse exactly as received. The reply is checked on arrival: granted, the
    imprint is sha256(data), the nonce is ours, the TSA certificate is included, the token
    passes verify_timestamp against `roots` (a PEM bundle; None: every check that needs no
    roots), and its genTime lies between sending and receiving. `timeout` bounds the
    connection and each read, and the whole exchange to about twice that.
    Raises TimestampError naming the URL and what went wrong."""
    request = (TimestampRequestBuilder().data(data).hash_algorithm(HashAlgorithm.SHA256)
               .nonce(nonce=True).cert_request(cert_request=True).build())
    sent = datetime.now(timezone.utc)
    reply = _post(url, request.as_bytes(), timeout)
    received = datetime.now(timezone.utc)
    try:
        response = decode(reply)
        if response.status != PKIStatus.GRANTED:
            said = "; ".join(response.status_string) or "no reason given"
            raise TimestampError(f"timestamp authority {url}: request not granted (status {response.status}: {said})")
        info = read_token(response)
    except Malformed as exc:
        raise TimestampError(f"timestamp authority {url}: malformed reply ({exc})") from None
    if info.imprint_oid != SHA256 or info.imprint != hashlib.sha256(data).digest():
        raise TimestampError(f"timestamp authority {url}: the reply's message imprint does not match the data sent")
    if info.nonce != request.nonce:
        raise TimestampError(f"timestamp authority {url}: the reply's nonce does not match the request's (a replayed"
                             " or misrouted reply)")
    if info.signer is None:
        raise TimestampError(f"timestamp authority {url}: the reply lacks the TSA certificate that was requested")
    # A token kept is the manifest's timestamp from then on: one `verify` would fail is refused
    # now, as a TSA failing, so the next authority (or the next run) is asked instead.
    check = verify_timestamp(reply, data, roots)
    if not check.ok:
        against = " against [timestamps] trusted_roots" if roots is not None else ""
        raise TimestampError(f"timestamp authority {url}: its token fails verification ({'; '.join(check.problems)}),"
                             f" so it was not kept; use an authority whose tokens verify{against}")
    # Our nonce in the token proves it was made after `sent`, and it was in hand at `received`.
    if check.dated_before(sent) or check.dated_after(received):
        raise TimestampError(f"timestamp authority {url}: its clock and this machine's disagree (genTime"
                             f" {check.gen_time:%Y-%m-%dT%H:%M:%SZ}, asked at {sent:%Y-%m-%dT%H:%M:%SZ} by this machine's"
                             " clock), so its token was not kept; set this machine's clock right (NTP), or use an"
                             " authority whose clock is")
    return reply


def timestamp_with_any(data: bytes, urls: list[str], timeout: float = 10.0,
                       roots: bytes | None = None) -> TimestampOutcome:
    """Try the TSAs in `urls` in order until one gives a token that verifies against `roots`
    (see request_timestamp); every failure is kept, so a missing timestamp is reported, never
    silent. Roots that hold no certificate are the one failure: no token could pass."""
    if roots is not None:
        try:
            load_roots(roots)
        except TimestampError as exc:
            return TimestampOutcome(None, None, [str(exc)])
    failures: list[str] = []
    for url in urls:
        try:
            return TimestampOutcome(url, request_timestamp(data, url, timeout, roots), failures)
        except TimestampError as exc:
            failures.append(str(exc))
    return TimestampOutcome(None, None, failures)


def _post(url: str, query: bytes, timeout: float) -> bytes:
    deadline = time.monotonic() + 2 * timeout
    try:
        # No redirects: requests would turn a redirected POST into a GET.
        with requests.post(url, data=query, timeout=timeout, stream=True, allow_redirects=False,
                           headers={"Content-Type": QUERY_TYPE, "Accept": REPLY_TYPE}) as response:
            if response.status_code != 200:
                raise TimestampError(f"timestamp authority {url}: answered HTTP {response.status_code}"
                                     f" {response.reason or ''}".rstrip())
            media_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if media_type != REPLY_TYPE:
                raise TimestampError(f"timestamp authority {url}: answered with Content-Type"
                                     f" {media_type or '(none)'}, not {REPLY_TYPE}")
            body = bytearray()
            for chunk in response.iter_content(65536):
                body += chunk
                if len(body) > MAX_REPLY_BYTES:
                    raise TimestampError(f"timestamp authority {url}: reply larger than {MAX_REPLY_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise TimestampError(f"timestamp authority {url}: reply not complete within {2 * timeout:g}s")
            return bytes(body)
    except requests.Timeout:
        raise TimestampError(f"timestamp authority {url}: no answer within {timeout:g}s") from None
    except requests.ConnectionError as exc:
        raise TimestampError(f"timestamp authority {url}: unreachable ({_reason(exc)})") from None
    except requests.RequestException as exc:
        raise TimestampError(f"timestamp authority {url}: request failed ({_reason(exc)})") from None


def _reason(exc: BaseException) -> str:
    """The root cause of a requests error in a few words (requests nests urllib3's errors,
    whose text repeats the URL and the pool)."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
        cause = cause.__cause__ or cause.__context__
    return first_line(exc)
