"""RFC 3161 timestamps against a real TSA (openssl ts, served on 127.0.0.1) and real openssl
verification; every failure a caller must tell apart is named."""

from __future__ import annotations

import hashlib
import re
import socket
import subprocess
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from rfc3161_client import decode_timestamp_response

from archiver.errors import ArchiverError
from archiver.evidence.timestamps.cms import SIGNATURE_INVALID
from archiver.evidence.timestamps.request import MAX_REPLY_BYTES, request_timestamp, timestamp_with_any
from archiver.evidence.timestamps.token import TimestampError, describe_token
from archiver.evidence.timestamps.verification import (CHAIN_INVALID, EKU_MISSING, IMPRINT_MISMATCH, MALFORMED,
                                                       NOT_VALID_THEN, verify_timestamp)
from tests.conftest import Responder, http_response
from tests.tsa import LocalTSA, local_tsa  # noqa: F401

DATA = b'{"manifest":{"captures":[]},"previous_manifest_sha256":null,"sequence":1}'


@pytest.fixture
def dead_tsa(closed_port) -> str:
    """A TSA URL on 127.0.0.1 where nothing listens."""
    return f"http://127.0.0.1:{closed_port}/tsa"


def answer_after_query(response: bytes) -> Responder:
    """For conftest's raw_server: read the whole query first, as closing a socket with unread
    bytes resets the connection before the client has read the answer."""
    def respond(conn: socket.socket, request: bytes) -> None:
        head, _, body = request.partition(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
        while len(body) < length:
            body += conn.recv(65536)
        conn.sendall(response)
    return respond


@pytest.fixture
def token(local_tsa: LocalTSA) -> bytes:
    return request_timestamp(DATA, local_tsa.url)


# -- tokens that verify ------------------------------------------------------------------

@pytest.mark.parametrize("key", ["ec", "rsa"])
def test_token_from_the_local_tsa_verifies(tmp_path: Path, key: str) -> None:
    tsa = LocalTSA(tmp_path, key=key)
    try:
        token = request_timestamp(DATA, tsa.url)
        check = verify_timestamp(token, DATA, tsa.ca_pem_path.read_bytes())
    finally:
        tsa.stop()
    assert tsa.queries == 1, "the token must come over HTTP from the TSA"
    assert check.ok and check.problems == []
    assert check.tsa == "CN=archiver test TSA"
    assert check.gen_time is not None and abs(datetime.now(timezone.utc) - check.gen_time) < timedelta(minutes=1)


def test_openssl_ts_verify_accepts_the_saved_reply(local_tsa: LocalTSA, token: bytes, tmp_path: Path) -> None:
    data, reply = tmp_path / "manifest.json", tmp_path / "r.tsr"
    data.write_bytes(DATA)
    reply.write_bytes(token)

    def openssl_verify(data_file: Path) -> subprocess.CompletedProcess:
        return subprocess.run(["openssl", "ts", "-verify", "-data", str(data_file), "-in", str(reply),
                               "-CAfile", str(local_tsa.ca_pem_path), "-untrusted", str(local_tsa.tsa_cert_path)],
                              capture_output=True, text=True)

    done = openssl_verify(data)
    assert done.returncode == 0 and "Verification: OK" in done.stdout, done.stderr
    other = tmp_path / "other.json"
    other.write_bytes(DATA + b" ")
    assert openssl_verify(other).returncode != 0, "openssl must be able to say no, or the check above means nothing"


def test_describe_token_reports_the_claims(token: bytes) -> None:
    described = describe_token(token)
    assert described["imprint"] == hashlib.sha256(DATA).hexdigest()
    assert described["hash_algorithm"] == "sha256"
    assert described["tsa"] == "CN=archiver test TSA"
    assert described["policy"] == "1.2.3.4.1"
    assert isinstance(described["serial"], int) and described["serial"] > 0
    assert datetime.fromisoformat(str(described["gen_time"])).tzinfo is not None


def test_a_bundle_of_several_roots_is_searched(local_tsa: LocalTSA, token: bytes, tmp_path: Path) -> None:
    stranger = LocalTSA(tmp_path / "stranger")
    stranger.stop()
    bundle = stranger.ca_pem_path.read_bytes() + local_tsa.ca_pem_path.read_bytes() * 2
    assert verify_timestamp(token, DATA, bundle).ok


# -- each failed part is named -------------------------------------------------------------

def test_other_data_is_a_hash_imprint_mismatch(local_tsa: LocalTSA, token: bytes) -> None:
    check = verify_timestamp(token, DATA + b" ", local_tsa.ca_pem_path.read_bytes())
    assert not check.ok
    assert check.problems == [IMPRINT_MISMATCH]
    assert check.gen_time is not None  # still what the token claims, for the report


def test_another_ca_as_roots_is_a_chain_problem(local_tsa: LocalTSA, token: bytes, tmp_path: Path) -> None:
    # Same CA name, another key: a look-alike root must not pass.
    stranger = LocalTSA(tmp_path / "stranger")
    stranger.stop()
    check = verify_timestamp(token, DATA, stranger.ca_pem_path.read_bytes())
    assert not check.ok
    assert check.problems == [CHAIN_INVALID]


def test_a_flipped_signature_byte_is_an_invalid_signature(local_tsa: LocalTSA, token: bytes) -> None:
    damaged = token[:-1] + bytes([token[-1] ^ 0x01])  # openssl ends the reply with the signature
    check = verify_timestamp(damaged, DATA, local_tsa.ca_pem_path.read_bytes())
    assert check.problems == [SIGNATURE_INVALID]


def test_an_edited_tstinfo_breaks_the_signature(local_tsa: LocalTSA, token: bytes) -> None:
    # The nonce sits in the signed TSTInfo; change it as a forger would.
    nonce = decode_timestamp_response(token).tst_info.nonce
    encoded = nonce.to_bytes((nonce.bit_length() + 7) // 8, "big")
    assert token.count(encoded) == 1
    edited = token.replace(encoded, encoded[:-1] + bytes([encoded[-1] ^ 0x01]))
    assert decode_timestamp_response(edited).tst_info.nonce == nonce ^ 0x01
    check = verify_timestamp(edited, DATA, local_tsa.ca_pem_path.read_bytes())
    assert check.problems == [SIGNATURE_INVALID]


def test_no_flipped_bit_passes_and_none_raises(local_tsa: LocalTSA, token: bytes) -> None:
    roots = local_tsa.ca_pem_path.read_bytes()
    passed = []
    for position in range(len(token)):
        for bit in (0x01, 0x80):
            damaged = bytearray(token)
            damaged[position] ^= bit
            if verify_timestamp(bytes(damaged), DATA, roots).ok:
                passed.append((position, bit))
    assert passed == []


def test_truncated_or_foreign_bytes_are_malformed(local_tsa: LocalTSA, token: bytes) -> None:
    roots = local_tsa.ca_pem_path.read_bytes()
    for damaged in [token[:size] for size in range(len(token))] + [b"<html>not a token</html>", token + b"\x00"]:
        check = verify_timestamp(damaged, DATA, roots)
        assert check.problems == [MALFORMED], len(damaged)
    with pytest.raises(TimestampError, match="malformed timestamp token"):
        describe_token(token[:-1])


LAX_SIGNERS = pytest.mark.parametrize("extensions", [
    "basicConstraints=critical,CA:false\nkeyUsage=critical,digitalSignature",
    "basicConstraints=critical,CA:false\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=timeStamping",
], ids=["no-eku", "non-critical-eku"])


@LAX_SIGNERS
def test_a_signer_without_the_critical_timestamping_eku_is_named(local_tsa: LocalTSA, extensions: str) -> None:
    # openssl ts -reply refuses such a certificate, so a genuine TSTInfo is signed again with
    # openssl cms; the control shows that nothing but the EKU differs. The certificates come
    # first: they must be valid at the token's genTime.
    control = local_tsa.issue_certificate("control", "archiver control TSA", "basicConstraints=critical,CA:false\n"
                                          "keyUsage=critical,digitalSignature\nextendedKeyUsage=critical,timeStamping")
    lax = local_tsa.issue_certificate("lax", "archiver lax TSA", extensions)
    token = request_timestamp(DATA, local_tsa.url)
    roots = local_tsa.ca_pem_path.read_bytes()
    assert verify_timestamp(local_tsa.resign(token, *control), DATA, roots).ok
    check = verify_timestamp(local_tsa.resign(token, *lax), DATA, roots)
    assert check.problems == [EKU_MISSING]
    assert check.tsa == "CN=archiver lax TSA"


def test_roots_without_a_certificate_are_a_usage_error(token: bytes) -> None:
    with pytest.raises(TimestampError, match="no PEM certificate"):
        verify_timestamp(token, DATA, b"not a bundle")


# -- asking TSAs that misbehave ----------------------------------------------------------------

def test_a_tsa_answering_500_is_an_error_naming_it(local_tsa: LocalTSA) -> None:
    local_tsa.mode = "down"
    with pytest.raises(TimestampError) as raised:
        request_timestamp(DATA, local_tsa.url)
    assert isinstance(raised.value, ArchiverError)
    assert str(raised.value) == f"timestamp authority {local_tsa.url}: answered HTTP 500 Internal Server Error"


def test_an_unreachable_tsa_is_an_error_naming_it(network_sandbox: list, dead_tsa: str) -> None:
    url = dead_tsa
    with pytest.raises(TimestampError) as raised:
        request_timestamp(DATA, url, timeout=2)
    assert str(raised.value) == f"timestamp authority {url}: unreachable (Connection refused)"
    assert network_sandbox == []


def test_a_tsa_that_never_answers_times_out(raw_server) -> None:
    """The server holds the request until the test ends: without the timeout the call would
    wait that long and then fail some other way (a closed connection), not with this message."""
    released = threading.Event()
    server = raw_server({"/tsa": lambda conn, request: released.wait(60)})
    try:
        with pytest.raises(TimestampError, match=r"^timestamp authority http://127\.0\.0\.1:\d+/tsa: no answer within 0.3s$"):
            request_timestamp(DATA, server.url("/tsa"), timeout=0.3)
    finally:
        released.set()


def test_a_garbage_reply_is_malformed(local_tsa: LocalTSA) -> None:
    local_tsa.mode = "garbage"
    with pytest.raises(TimestampError, match=rf"^timestamp authority {local_tsa.url}: malformed reply \("):
        request_timestamp(DATA, local_tsa.url)


def test_a_refusal_from_openssl_is_not_granted(local_tsa: LocalTSA) -> None:
    local_tsa.mode = "reject"
    with pytest.raises(TimestampError, match=r"request not granted \(status 2: Message digest algorithm is not supported"):
        request_timestamp(DATA, local_tsa.url)


def test_a_replayed_reply_fails_on_nonce_or_imprint(local_tsa: LocalTSA, token: bytes) -> None:
    local_tsa.mode = "replay"  # from now on, the reply that made `token`
    with pytest.raises(TimestampError, match="nonce does not match"):
        request_timestamp(DATA, local_tsa.url)
    with pytest.raises(TimestampError, match="message imprint does not match the data sent"):
        request_timestamp(b"other manifest", local_tsa.url)


def test_a_reply_of_another_type_is_refused(raw_server) -> None:
    server = raw_server({"/tsa": answer_after_query(http_response(b"<html>login</html>", headers=[("Content-Type", "text/html")]))})
    with pytest.raises(TimestampError, match="answered with Content-Type text/html, not application/timestamp-reply"):
        request_timestamp(DATA, server.url("/tsa"))


def test_an_oversized_reply_is_refused(raw_server) -> None:
    body = b"\x30" * (MAX_REPLY_BYTES + 1)
    server = raw_server({"/tsa": answer_after_query(http_response(body, headers=[("Content-Type", "application/timestamp-reply")]))})
    with pytest.raises(TimestampError, match=f"reply larger than {MAX_REPLY_BYTES} bytes"):
        request_timestamp(DATA, server.url("/tsa"))


# -- several TSAs --------------------------------------------------------------------------------

def test_the_next_tsa_is_used_and_the_dead_one_reported(local_tsa: LocalTSA, tmp_path: Path, dead_tsa: str) -> None:
    dead = dead_tsa
    down = LocalTSA(tmp_path / "down")
    down.mode = "down"
    try:
        outcome = timestamp_with_any(DATA, [dead, down.url, local_tsa.url], timeout=5)
    finally:
        down.stop()
    assert outcome.url == local_tsa.url
    assert outcome.token is not None and verify_timestamp(outcome.token, DATA, local_tsa.ca_pem_path.read_bytes()).ok
    assert outcome.failures == [f"timestamp authority {dead}: unreachable (Connection refused)",
                                f"timestamp authority {down.url}: answered HTTP 500 Internal Server Error"]


def test_when_no_tsa_answers_every_failure_is_reported(local_tsa: LocalTSA, dead_tsa: str) -> None:
    dead = dead_tsa
    local_tsa.mode = "garbage"
    outcome = timestamp_with_any(DATA, [dead, local_tsa.url], timeout=5)
    assert outcome.token is None and outcome.url is None
    assert len(outcome.failures) == 2
    assert outcome.failures[0].startswith(f"timestamp authority {dead}: unreachable")
    assert outcome.failures[1].startswith(f"timestamp authority {local_tsa.url}: malformed reply")


# -- a token `verify` would fail is refused on arrival ----------------------------------------

@LAX_SIGNERS
@pytest.mark.parametrize("trusted", [True, False], ids=["with-roots", "without-roots"])
def test_a_token_without_the_critical_timestamping_eku_is_refused_on_arrival(local_tsa: LocalTSA, extensions: str,
                                                                               trusted: bool) -> None:
    local_tsa.resigner = local_tsa.issue_certificate("lax", "archiver lax TSA", extensions)
    local_tsa.mode = "resign"
    roots = local_tsa.ca_pem_path.read_bytes() if trusted else None
    with pytest.raises(TimestampError) as raised:
        request_timestamp(DATA, local_tsa.url, roots=roots)
    assert str(raised.value).startswith(f"timestamp authority {local_tsa.url}: its token fails verification"
                                        f" ({EKU_MISSING}), so it was not kept; use an authority whose tokens verify")


def test_a_token_of_a_tsa_outside_the_trusted_roots_is_refused_on_arrival(local_tsa: LocalTSA, tmp_path: Path) -> None:
    stranger = LocalTSA(tmp_path / "stranger")
    stranger.stop()
    assert request_timestamp(DATA, local_tsa.url), "the token is good but for the roots"
    with pytest.raises(TimestampError, match=re.escape(f"its token fails verification ({CHAIN_INVALID})")):
        request_timestamp(DATA, local_tsa.url, roots=stranger.ca_pem_path.read_bytes())


def test_a_token_signed_outside_its_certificate_validity_is_refused_without_roots(tmp_path: Path) -> None:
    # Its certificates are made an hour ahead, its tokens on time: before they were valid.
    tsa = LocalTSA(tmp_path, clock="+1h")
    tsa.clock = None
    try:
        with pytest.raises(TimestampError, match=re.escape(f"its token fails verification ({NOT_VALID_THEN})")):
            request_timestamp(DATA, tsa.url)
    finally:
        tsa.stop()


@pytest.mark.parametrize("clock", ["-1h", "+1h"], ids=["behind", "ahead"])
def test_a_tsa_whose_clock_is_wrong_is_refused_on_arrival(tmp_path: Path, clock: str) -> None:
    """Its certificates are made by the same wrong clock, so its tokens verify: only the time is wrong."""
    tsa = LocalTSA(tmp_path, clock=clock)
    try:
        with pytest.raises(TimestampError, match=rf"^timestamp authority {re.escape(tsa.url)}: its clock and this "
                                                 r"machine's disagree \(genTime \S+Z, asked at \S+Z by this machine's "
                                                 r"clock\), so its token was not kept"):
            request_timestamp(DATA, tsa.url, roots=tsa.ca_pem_path.read_bytes())
    finally:
        tsa.stop()


def test_a_refused_token_is_its_tsa_failing_and_the_next_is_asked(local_tsa: LocalTSA, tmp_path: Path) -> None:
    lax = LocalTSA(tmp_path / "lax")
    lax.resigner = lax.issue_certificate("lax", "archiver lax TSA", "basicConstraints=critical,CA:false\n"
                                         "keyUsage=critical,digitalSignature")
    lax.mode = "resign"
    roots = lax.ca_pem_path.read_bytes() + local_tsa.ca_pem_path.read_bytes()
    try:
        outcome = timestamp_with_any(DATA, [lax.url, local_tsa.url], timeout=60, roots=roots)
    finally:
        lax.stop()
    assert outcome.url == local_tsa.url and outcome.token is not None
    assert [failure.split(" (")[0] for failure in outcome.failures] == [
        f"timestamp authority {lax.url}: its token fails verification"]


def test_trusted_roots_without_a_certificate_ask_no_tsa(local_tsa: LocalTSA) -> None:
    outcome = timestamp_with_any(DATA, [local_tsa.url], roots=b"not a bundle")
    assert outcome.token is None and local_tsa.queries == 0
    assert outcome.failures == ["trusted TSA roots: no PEM certificate found; [timestamps] trusted_roots must name a"
                                " PEM file of the TSAs' CA certificates"]
