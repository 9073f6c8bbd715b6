"""A transport under requests that keeps every byte exactly as it crossed the socket.

requests ─▶ RecordingAdapter ─▶ one pool per (host, pinned address) ─▶ Recording*Connection

The connection copies what it sends into the current Exchange, and wraps http.client's
response file so that every byte http.client consumes (status line, header lines, the body
with its chunk framing and content-encoding) is spooled and hashed before anything parses
it. Nothing is decoded for storage. The same wrapper enforces the capture's wall-clock
deadline and size cap on every read, so a slow or endless server cannot hold a capture.
"""

from __future__ import annotations

import hashlib
import http.client
import socket
import ssl
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Iterator

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.poolmanager import SSL_KEYWORDS
from urllib3.util.connection import create_connection

from archiver.capture.fetch.policy import Resolution, SafeResolver
from archiver.capture.fetch.spool import ResponseSpool

READ_SIZE = 256 * 1024
INTERIM_LIMIT = 256 * 1024  # bytes of interim (1xx) heads kept before a response, at most
# Requests a client may send again unasked, when a connection ends before any answer (RFC 9110, 9.2.2).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})

_performing = threading.local()  # the Exchange this thread is performing


class CaptureLimitReached(Exception):
    """A capture limit stopped reading; deliberately not an OSError so urllib3 lets it through."""

    truncation = "unspecified"


class SizeLimitReached(CaptureLimitReached):
    truncation = "length"


class DeadlineReached(CaptureLimitReached):
    truncation = "time"


@dataclass
class TLSInfo:
    version: str
    cipher: str
    verified: bool
    chain_der: list[bytes]  # leaf first, as the server presented it on this connection

    @property
    def leaf_sha256(self) -> str | None:
        return hashlib.sha256(self.chain_der[0]).hexdigest() if self.chain_der else None

    def as_record(self) -> dict:
        return {"version": self.version, "cipher": self.cipher, "verified": self.verified,
                "certificate_sha256": self.leaf_sha256,
                "chain_pem": [ssl.DER_cert_to_PEM_cert(der) for der in self.chain_der]}


@dataclass
class ConnectionInfo:
    ip: str
    port: int
    connect_seconds: float
    tls: TLSInfo | None = None


@dataclass
class Exchange:
    """One request and its response, as they went over the wire."""

    url: str
    deadline: float  # time.monotonic() by which the whole capture must end
    read_timeout: float
    max_bytes: int
    spool: ResponseSpool
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    request_bytes: bytearray = field(default_factory=bytearray)
    connection: ConnectionInfo | None = None
    connection_reused: bool = False
    head_cut: bool = False  # the server hung up before the blank line that ends the response head
    status: int | None = None  # the response's status, once its head was read (whether or not the client took it)
    resolution: Resolution | None = None
    headers_seconds: float | None = None
    finished_seconds: float | None = None
    _t0: float = field(default_factory=time.monotonic)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self._t0


def current_exchange() -> Exchange:
    exchange = getattr(_performing, "exchange", None)
    if exchange is None:
        raise RuntimeError("RecordingAdapter used outside RecordingAdapter.performing()")
    return exchange


class _TeeReader:
    """Stands in for http.client's socket file: every byte handed to the parser is kept."""

    def __init__(self, raw, sock: socket.socket, exchange: Exchange) -> None:
        self._raw = raw
        self._sock = sock
        self._exchange = exchange
        self.ended = False  # a read found the end of the stream

    def _before_read(self) -> None:
        remaining = self._exchange.remaining()
        if remaining <= 0:
            raise DeadlineReached()
        self._sock.settimeout(min(self._exchange.read_timeout, remaining))

    def _keep(self, data: bytes | memoryview) -> None:
        spool = self._exchange.spool
        room = self._exchange.max_bytes - spool.received
        if len(data) > room:
            spool.write(data[:room])
            raise SizeLimitReached()
        spool.write(data)

    # Each method below makes at most one socket read per deadline check: the buffered
    # reader's own read(n) and readline() would loop over recv() until satisfied, and a
    # server dripping one byte at a time could then hold a capture far past its deadline.

    def read1(self, size: int = -1) -> bytes:
        self._before_read()
        data = self._raw.read1(size)
        self._keep(data)
        return data

    def read(self, size: int | None = -1) -> bytes:
        chunks, wanted = [], (-1 if size is None or size < 0 else size)
        while wanted:
            data = self.read1(wanted if wanted > 0 else READ_SIZE)
            if not data:
                break
            chunks.append(data)
            if wanted > 0:
                wanted -= len(data)
        return b"".join(chunks)

    def readinto(self, buffer) -> int:
        self._before_read()
        count = self._raw.readinto1(buffer)
        self._keep(memoryview(buffer)[:count])
        return count

    def readline(self, limit: int = -1) -> bytes:
        chunks, taken = [], 0
        while limit < 0 or taken < limit:
            self._before_read()
            available = self._raw.peek(1)  # one recv() when the buffer is empty
            if not available:
                self.ended = True
                break
            if limit >= 0:
                available = available[: limit - taken]
            end = available.find(b"\n") + 1
            data = self._raw.read(end or len(available))  # already buffered: never blocks
            self._keep(data)
            chunks.append(data)
            taken += len(data)
            if end:
                break
        return b"".join(chunks)

    def peek(self, size: int = 0) -> bytes:  # looks without consuming, so nothing to keep
        return self._raw.peek(size)

    def close(self) -> None:
        self._raw.close()

    @property
    def closed(self) -> bool:
        return self._raw.closed

    def fileno(self) -> int:
        return self._raw.fileno()

    def flush(self) -> None:
        self._raw.flush()


class _RecordingResponse(http.client.HTTPResponse):
    def __init__(self, sock, debuglevel=0, method=None, url=None, *, exchange: Exchange) -> None:
        super().__init__(sock, debuglevel, method, url)
        self.fp = self._tee = _TeeReader(self.fp, sock, exchange)
        self._exchange = exchange

    def _read_status(self) -> tuple[str, int, str]:
        # http.client passes over 100 Continue only and takes any other 1xx (103 Early Hints) for
        # the response, leaving the real one on a kept-alive connection for the next request to
        # read as its own. Interim heads are kept apart: the response record is the final one.
        spool = self._exchange.spool
        while True:
            version, status, reason = super()._read_status()
            if not 100 <= status < 200 or status == http.client.SWITCHING_PROTOCOLS:
                return version, status, reason
            http.client.parse_headers(self.fp)  # an interim head's headers, read past (kept in the spool)
            spool.set_aside_interim()
            if sum(len(head) for head in spool.interim) > INTERIM_LIMIT:
                raise http.client.HTTPException(f"more than {INTERIM_LIMIT // 1024} KiB of interim (1xx) responses")

    def begin(self) -> None:
        super().begin()
        if self.status == http.client.SWITCHING_PROTOCOLS:
            self.will_close = True  # what follows on the connection is no longer HTTP, never to be reused
        # http.client takes the end of the stream for the end of the head, as if it were whole.
        self._exchange.head_cut = self._tee.ended
        self._exchange.status = self.status
        # Status line and headers are consumed; every later byte is payload.
        if self._exchange.spool.header_length is None:
            self._exchange.spool.mark_body_start()
            self._exchange.headers_seconds = self._exchange.elapsed()


def _tls_info(sock: ssl.SSLSocket, verified: bool) -> TLSInfo:
    # The chain the server presented, whether verified or not: the path OpenSSL built to a
    # trusted root would name certificates (a local CA bundle's root) that never crossed the wire.
    if hasattr(sock, "get_unverified_chain"):  # public from Python 3.13
        chain = sock.get_unverified_chain()
    else:
        chain = sock._sslobj.get_unverified_chain()
    chain_der = [c if isinstance(c, bytes) else c.public_bytes(ssl._ssl.ENCODING_DER) for c in chain or []]
    if not chain_der:
        leaf = sock.getpeercert(binary_form=True)
        chain_der = [leaf] if leaf else []
    cipher = sock.cipher()
    return TLSInfo(version=sock.version() or "", cipher=cipher[0] if cipher else "",
                   verified=verified, chain_der=chain_der)


class _RecordingMixin:
    """Connects to the pinned address only, and records both directions into the Exchange."""

    def __init__(self, *args, pinned_ip: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._pinned_ip = pinned_ip
        self._exchange: Exchange | None = None
        self.info: ConnectionInfo | None = None
        self._used_socket: socket.socket | None = None  # the socket an earlier request went out on

    def _new_conn(self) -> socket.socket:
        exchange = current_exchange()
        timeout = min(self.timeout, max(exchange.remaining(), 0.001))
        started = time.monotonic()
        try:
            sock = create_connection((self._pinned_ip, self.port), timeout,
                                     source_address=self.source_address, socket_options=self.socket_options)
        except socket.timeout as exc:
            raise ConnectTimeoutError(self, f"connection to {self._pinned_ip}:{self.port} timed out") from exc
        except OSError as exc:
            raise NewConnectionError(self, f"cannot connect to {self._pinned_ip}:{self.port}: {exc.strerror or exc}") from exc
        peer = sock.getpeername()
        self.info = ConnectionInfo(ip=peer[0], port=peer[1], connect_seconds=time.monotonic() - started)
        return sock

    def request(self, method, url, body=None, headers=None, **kwargs):
        self._exchange = current_exchange()
        # Not "has a socket": urllib3 connects an HTTPS connection before it asks for the request.
        self._exchange.connection_reused = self.sock is not None and self.sock is self._used_socket
        try:
            return super().request(method, url, body=body, headers=headers, **kwargs)
        finally:
            self._used_socket = self.sock

    def send(self, data) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError("only in-memory request bodies can be recorded")
        super().send(data)
        self._exchange.request_bytes += data

    def getresponse(self):
        self._exchange.connection = self.info
        self.response_class = partial(_RecordingResponse, exchange=self._exchange)
        return super().getresponse()


class RecordingHTTPConnection(_RecordingMixin, HTTPConnection):
    pass


class RecordingHTTPSConnection(_RecordingMixin, HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        self.info.tls = _tls_info(self.sock, verified=bool(self.is_verified))


class _PinnedHTTPPool(HTTPConnectionPool):
    ConnectionCls = RecordingHTTPConnection


class _PinnedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = RecordingHTTPSConnection


class RecordingAdapter(HTTPAdapter):
    """requests' HTTPAdapter, but every host goes through the SafeResolver to a pinned address."""

    def __init__(self, resolver: SafeResolver, per_host: int, spool_dir: Path | None) -> None:
        super().__init__(pool_maxsize=per_host, max_retries=0)
        self.resolver = resolver
        self.spool_dir = spool_dir
        self._per_host = per_host
        self._pools: dict[tuple, HTTPConnectionPool] = {}
        self._pools_lock = threading.Lock()

    @contextmanager
    def performing(self, exchange: Exchange) -> Iterator[Exchange]:
        """Requests sent on this thread inside the block are recorded into `exchange`."""
        _performing.exchange = exchange
        try:
            yield exchange
        finally:
            _performing.exchange = None

    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
        host_params, pool_kwargs = self.build_connection_pool_key_attributes(request, verify, cert)
        scheme, host = host_params["scheme"], host_params["host"]
        port = host_params["port"] or (443 if scheme == "https" else 80)
        resolution = self.resolver.resolve(host, port)  # raises Refused or NameNotResolved
        current_exchange().resolution = resolution
        if scheme == "http":
            pool_kwargs = {k: v for k, v in pool_kwargs.items() if k not in SSL_KEYWORDS}
        key = (scheme, host, port, resolution.address, tuple(sorted(pool_kwargs.items())))
        with self._pools_lock:
            pool = self._pools.get(key)
            if pool is None:
                pool_class = _PinnedHTTPSPool if scheme == "https" else _PinnedHTTPPool
                pool = pool_class(host, port, maxsize=self._per_host, block=False,
                                  pinned_ip=resolution.address, **pool_kwargs)
                self._pools[key] = pool
        return pool

    def close(self) -> None:
        """Nothing: every capture's requests session closes the adapters mounted on it when it
        ends, and this one, with its keep-alive pools, is shared by every capture and outlives
        them; closing it then would also fail requests under way on other threads."""

    def close_pools(self) -> None:
        """Close every connection pool, once no capture uses them (the Fetcher is closing)."""
        super().close()
        with self._pools_lock:
            for pool in self._pools.values():
                pool.close()
            self._pools.clear()
