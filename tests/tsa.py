"""A real timestamp authority for tests, fully offline: its CA and TSA certificates are made
with `openssl req`/`openssl x509`, every reply comes from `openssl ts -reply`, and it answers
over HTTP on 127.0.0.1, so the client is tested on its real path.

Use the `local_tsa` fixture (import it into the test module:
`from tests.tsa import local_tsa  # noqa: F401`), or `LocalTSA(folder)` for a second one with
its own CA (`LocalTSA(folder, clock="-1h")`: one whose clock is an hour behind, every openssl
it runs under `faketime`). Set `tsa.mode` to make it misbehave:

- "ok": a granted token from `openssl ts -reply`;
- "down": HTTP 500;
- "garbage": 200 with the right Content-Type and bytes that are not DER;
- "replay": the first reply it ever gave, whatever was asked (wrong imprint or nonce);
- "reject": a real refusal from `openssl ts -reply` (its policy accepts only SHA-512);
- "slow": as "ok", each reply held back `slow_seconds` (a TSA slower than a client's timeout);
- "resign": a genuine token signed again by `resigner` (a certificate and key from
  `issue_certificate`, such as one without the timeStamping extended key usage).
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest

TIME_STAMP_TOKEN_TYPE = "1.2.840.113549.1.9.16.1.4"  # id-ct-TSTInfo

_TSA_SECTION = """
serial = {folder}/serial
crypto_device = builtin
signer_cert = {folder}/tsa.pem
signer_key = {folder}/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
other_policies = 1.2.3.4.2
accuracy = secs:1
ordering = no
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""

_CONFIG = """# made by tests/tsa.py
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = archiver test TSA CA

[ v3_ca ]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash

[ v3_tsa ]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature,nonRepudiation
extendedKeyUsage = critical,timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ tsa ]
default_tsa = tsa_config

[ tsa_config ]
{tsa_section}
digests = sha256, sha384, sha512

[ reject_config ]
{tsa_section}
digests = sha512
"""


def openssl(*args: str | Path, cwd: Path | None = None, clock: str | None = None) -> bytes:
    """Run openssl (with its clock set off by `clock`, a faketime offset such as "-1h", when
    given); its stdout, or AssertionError with its stderr."""
    command = ["openssl", *map(str, args)]
    done = subprocess.run(["faketime", "-f", clock, *command] if clock else command, cwd=cwd, capture_output=True)
    assert done.returncode == 0, f"openssl {' '.join(map(str, args))} failed: {done.stderr.decode(errors='replace')}"
    return done.stdout


def der_sequence(content: bytes) -> bytes:
    if len(content) < 0x80:
        return b"\x30" + bytes([len(content)]) + content
    size = len(content).to_bytes((len(content).bit_length() + 7) // 8, "big")
    return b"\x30" + bytes([0x80 | len(size)]) + size + content


class LocalTSA:
    """A CA, a TSA certificate signed by it (EKU critical,timeStamping) and an HTTP server on
    127.0.0.1 that answers timestamp queries with `openssl ts -reply -config tsa.cnf`."""

    def __init__(self, folder: Path, key: str = "ec", clock: str | None = None) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.key = key
        self.clock = clock  # its certificates are made by the same clock, so valid at its genTimes
        self.mode = "ok"
        self.resigner: tuple[Path, Path] | None = None
        self.slow_seconds = 3.0
        self.queries = 0
        self._first_reply: bytes | None = None
        self._lock = threading.Lock()  # openssl ts -reply increments the serial file
        self.config = folder / "tsa.cnf"
        self.config.write_text(_CONFIG.format(tsa_section=_TSA_SECTION.format(folder=folder)))
        (folder / "serial").write_text("01\n")
        self.ca_pem_path = folder / "ca.pem"
        self.ca_key_path = folder / "ca.key"
        self._openssl("req", "-x509", "-new", *self._newkey(), "-nodes", "-keyout", self.ca_key_path,
                      "-out", self.ca_pem_path, "-subj", "/CN=archiver test TSA CA", "-days", "2",
                      "-config", self.config, "-extensions", "v3_ca")
        self.tsa_cert_path, self.tsa_key_path = self.issue_certificate("tsa", "archiver test TSA", "v3_tsa")
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/tsa"

    def _openssl(self, *args: str | Path, cwd: Path | None = None) -> bytes:
        return openssl(*args, cwd=cwd, clock=self.clock)

    def _newkey(self) -> list[str]:
        return ["-newkey", "rsa:2048"] if self.key == "rsa" else ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]

    def issue_certificate(self, stem: str, common_name: str, extensions: str) -> tuple[Path, Path]:
        """A certificate from this CA with the extensions of `extensions`, a section of
        tsa.cnf or text added to it as a new section; (certificate, key) paths."""
        if "=" in extensions:
            with self.config.open("a") as config:
                config.write(f"\n[ {stem}_ext ]\n{extensions}\n")
            extensions = f"{stem}_ext"
        cert, key, request = (self.folder / f"{stem}.pem", self.folder / f"{stem}.key", self.folder / f"{stem}.csr")
        self._openssl("req", "-new", *self._newkey(), "-nodes", "-keyout", key, "-out", request,
                      "-subj", f"/CN={common_name}", "-config", self.config)
        self._openssl("x509", "-req", "-in", request, "-CA", self.ca_pem_path, "-CAkey", self.ca_key_path,
                      "-CAcreateserial", "-days", "2", "-extfile", self.config, "-extensions", extensions, "-out", cert)
        return cert, key

    def reply(self, query: bytes, section: str = "tsa_config") -> bytes:
        """`openssl ts -reply` for one DER query."""
        with self._lock, tempfile.TemporaryDirectory(dir=self.folder) as work:
            query_file, reply_file = Path(work) / "q.tsq", Path(work) / "r.tsr"
            query_file.write_bytes(query)
            self._openssl("ts", "-reply", "-config", self.config, "-section", section,
                          "-queryfile", query_file, "-out", reply_file)
            return reply_file.read_bytes()

    def resign(self, reply: bytes, cert: Path, key: Path) -> bytes:
        """The TSTInfo of `reply` signed again, by `cert`'s key with `openssl cms -sign`, and
        wrapped as a granted TimeStampResponse: how a TSA certificate without the proper
        extended key usage would sign (openssl ts -reply refuses such a certificate)."""
        with tempfile.TemporaryDirectory(dir=self.folder) as work:
            folder = Path(work)
            (folder / "r.tsr").write_bytes(reply)
            self._openssl("ts", "-reply", "-in", "r.tsr", "-token_out", "-out", "token.der", cwd=folder)
            self._openssl("cms", "-verify", "-noverify", "-inform", "DER", "-in", "token.der", "-out", "tstinfo.der",
                          cwd=folder)
            self._openssl("cms", "-sign", "-binary", "-nodetach", "-nosmimecap", "-econtent_type",
                          TIME_STAMP_TOKEN_TYPE, "-md", "sha256", "-in", "tstinfo.der", "-signer", cert, "-inkey", key,
                          "-outform", "DER", "-out", "signed.der", cwd=folder)
            return der_sequence(der_sequence(b"\x02\x01\x00") + (folder / "signed.der").read_bytes())

    def _answer(self, query: bytes) -> tuple[int, bytes]:
        self.queries += 1
        if self.mode == "down":
            return 500, b"TSA down for maintenance"
        if self.mode == "garbage":
            return 200, b"<html>this is not a timestamp</html>"
        if self.mode == "reject":
            return 200, self.reply(query, "reject_config")
        if self.mode == "resign":
            assert self.resigner is not None, "set tsa.resigner to the certificate and key to sign with"
            return 200, self.resign(self.reply(query), *self.resigner)
        if self.mode == "slow":
            time.sleep(self.slow_seconds)
        if self.mode == "replay" and self._first_reply is not None:
            return 200, self._first_reply
        answer = self.reply(query)
        if self._first_reply is None:
            self._first_reply = answer
        return 200, answer

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        tsa = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                query = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Type") != "application/timestamp-query":
                    status, body, kind = 415, b"expected application/timestamp-query", "text/plain"
                else:
                    status, body = tsa._answer(query)
                    kind = "application/timestamp-reply" if status == 200 else "text/plain"
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped waiting (a "slow" reply past its timeout)

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep test output clean

        return Handler

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def local_tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTSA]:
    tsa = LocalTSA(tmp_path_factory.mktemp("tsa"))
    yield tsa
    tsa.stop()
