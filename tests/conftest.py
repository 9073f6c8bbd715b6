"""Test harness: a network sandbox (loopback only), raw-socket HTTP servers, a test CA,
and collections that allow 127.0.0.1 and nothing else."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import re
import subprocess
import sys
import ipaddress
import shutil
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
from click.testing import CliRunner
from types import SimpleNamespace
from warcio.checker import Checker
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from archiver.capture.run import CaptureRun
from archiver.cli import cli
from archiver.store.collection import Collection
from archiver.evidence.keys import create_signing_key, open_signing_key
from tests import pg, radosgw

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _is_loopback(address) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _loopback_only_network() -> str | None:
    """Move this process, before it starts any thread, into a network namespace of its own
    holding only loopback: then nothing a test starts (Python, openssl, Chromium) can reach
    beyond 127.0.0.1 even if every guard broke. Needs root (or user namespaces); where the
    machine refuses, the socket patch below and Chromium's flags still hold. Why not, if so."""
    import ctypes

    clone_newnet = 0x40000000
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(clone_newnet) != 0:
        return f"unshare(CLONE_NEWNET): {os.strerror(ctypes.get_errno())}"
    up = subprocess.run(["ip", "link", "set", "lo", "up"], capture_output=True, text=True)
    return None if up.returncode == 0 else f"ip link set lo up: {up.stderr.strip()}"


def pytest_configure(config):
    config.loopback_only_network = _loopback_only_network() if shutil.which("ip") else "no `ip` command"


def pytest_report_header(config):
    why_not = config.loopback_only_network
    return "network: a namespace with loopback only" if why_not is None else f"network: the machine's own ({why_not})"


# Where CI=true (as .ci/run runs in CI), a skip is a failure: a test that cannot run there for
# want of a tool, package or corpus must turn CI red, not leave it green having tested less.
SKIP_FAILS = os.environ.get("CI", "").lower() in {"true", "1"}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if SKIP_FAILS and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2].removeprefix("Skipped: ") if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped, which fails where CI={os.environ['CI']}: {reason}"
    return report


@pytest.fixture(autouse=True)
def own_config_folder(tmp_path, monkeypatch):
    """Keys go to a per-test config folder, never the user's; no key or passphrase from outside."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("ARCHIVER_KEY", raising=False)
    monkeypatch.delenv("ARCHIVER_PASSPHRASE", raising=False)


@pytest.fixture(autouse=True)
def plain_http_captures(monkeypatch):
    """Captures are plain HTTP (an empty $ARCHIVER_CHROMIUM means: no browser), as most tests pin
    down each exchange byte for byte; the browser tests name Chromium themselves."""
    monkeypatch.setenv("ARCHIVER_CHROMIUM", "")


@pytest.fixture(autouse=True)
def network_sandbox(monkeypatch):
    """No test can reach beyond loopback, even through a broken guard: connecting anywhere
    else fails and is logged, and DNS answers only for localhost (nothing goes to a resolver)."""
    attempts: list = []

    def connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
            attempts.append(address)
            raise ConnectionRefusedError(f"test sandbox: no connections beyond loopback ({address})")
        return _real_connect(sock, address)

    def connect_ex(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
            attempts.append(address)
            return 111
        return _real_connect_ex(sock, address)

    def getaddrinfo(host, port, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        try:
            ipaddress.ip_address(str(name).split("%")[0])
        except ValueError:
            if name != "localhost":
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
            name = "127.0.0.1"
        return _real_getaddrinfo(name, port, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return attempts


# -- raw-socket servers -----------------------------------------------------------------

Responder = Callable[[socket.socket, bytes], None]


def send_bytes(data: bytes) -> Responder:
    """A response sent exactly as given, then the connection is closed."""
    def respond(conn: socket.socket, request: bytes) -> None:
        conn.sendall(data)
    return respond


def http_response(body: bytes = b"", status: str = "200 OK", headers: list[tuple[str, str]] | None = None) -> bytes:
    head = [f"HTTP/1.1 {status}"] + [f"{k}: {v}" for k, v in (headers or [("Content-Type", "text/html")])]
    head += [f"Content-Length: {len(body)}", "Connection: close"]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def eventually(condition: Callable[[], bool], what: str) -> None:
    """Wait until `condition()` holds: for what a server thread records after its client has
    seen the effect (a connection accepted, a socket closed), which a loaded machine may run late."""
    deadline = time.monotonic() + 60  # a guard against a hang, not a guess of how long it takes
    while not condition():
        assert time.monotonic() < deadline, f"still not {what}"
        time.sleep(0.01)


def redirect(location: str, status: str = "302 Found") -> Responder:
    return send_bytes(http_response(b"moved", status, [("Location", location)]))


@dataclass
class RawServer:
    """One request per connection; routes map a path to what is sent back, byte for byte."""

    host: str = "127.0.0.1"
    routes: dict[str, Responder] = field(default_factory=dict)
    tls: ssl.SSLContext | None = None
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)

    def start(self) -> "RawServer":
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((self.host, 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self._stop = False
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()
        return self

    def url(self, path: str = "/") -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}{path}"

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self.tls:
                conn = self.tls.wrap_socket(conn, server_side=True)
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                request += chunk
            self.requests.append(request)
            path = request.split(b" ", 2)[1].decode()
            self.routes.get(path, send_bytes(http_response(b"not found", "404 Not Found")))(conn, request)
        except (OSError, ssl.SSLError):
            pass
        finally:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def stop(self) -> None:
        # Woken and ended before the socket is closed: an accept() still blocked on a closed
        # descriptor would take, once its number is reused, the connections of the next server
        # given it (a local TSA's request answered 404 here, and its own accept left hanging).
        self._stop = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._acceptor.join(10)
        self._sock.close()


@pytest.fixture
def closed_port():
    """A port on 127.0.0.1 where nothing listens, for the whole test: held bound and never
    listening, so a connection to it is refused and no server the test starts can be given it
    (as it can be a port bound and released)."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


@pytest.fixture
def raw_server():
    servers: list[RawServer] = []

    def start(routes: dict[str, Responder] | None = None, host: str = "127.0.0.1",
              tls: ssl.SSLContext | None = None) -> RawServer:
        server = RawServer(host=host, routes=routes or {}, tls=tls).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


# -- a test certificate authority -------------------------------------------------------

@dataclass
class TestCA:
    ca_pem: Path
    server_context: ssl.SSLContext  # presents its leaf and the CA
    leaf_der: bytes
    leaf_alone_context: ssl.SSLContext  # presents its leaf alone, as many servers do


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory) -> TestCA:
    folder = tmp_path_factory.mktemp("ca")
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "archiver test CA")])
    ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
               .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_pem = folder / "ca.pem"
    ca_pem.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    chain = folder / "server.pem"
    chain.write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(serialization.Encoding.PEM))
    key_file = folder / "server.key"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain, key_file)
    leaf_alone = folder / "leaf.pem"
    leaf_alone.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    leaf_alone_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    leaf_alone_context.load_cert_chain(leaf_alone, key_file)
    return TestCA(ca_pem=ca_pem, server_context=context, leaf_der=leaf.public_bytes(serialization.Encoding.DER),
                  leaf_alone_context=leaf_alone_context)


# -- collections and the CLI ------------------------------------------------------------

def allow_networks(root: Path, *networks: str) -> None:
    config = root / "archiver.toml"
    text = config.read_text()
    config.write_text(text.replace("allow_networks = []", f"allow_networks = {list(networks)!r}".replace("'", '"')))


def use_tsa(root: Path, tsa, trust: bool = True, timeout: float = 60.0) -> None:
    """Make the collection at `root` timestamp its manifests with `tsa` (a tests.tsa.LocalTSA),
    trusting its CA when `trust`. Archiver waits up to `timeout` seconds for each reply: a
    generous bound, as the TSA runs `openssl ts -reply` per query in the test process, on what
    may be a loaded machine (past the bound the reply is a failure, and the test's outcome too)."""
    config = root / "archiver.toml"
    text = config.read_text().replace("authorities = []", f'authorities = ["{tsa.url}"]\ntimeout = {timeout}')
    if trust:
        shutil.copyfile(tsa.ca_pem_path, root / "tsa-roots.pem")
        text = text.replace('trusted_roots = ""', 'trusted_roots = "tsa-roots.pem"')
    config.write_text(text)


# Third-party WARC and WACZ files (warcio's, py-wacz's, Browsertrix's) kept beside the checkout, not in it.
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def corpus(name: str) -> Path:
    """The corpus file `name`; the test is skipped where the corpus is not beside this checkout."""
    path = CORPUS / name
    if not path.exists():
        pytest.skip(f"third-party corpus file {name} not found in {CORPUS} (a fresh clone has none)")
    return path


def fingerprint_of(run_cli, collection) -> str:
    """The fingerprint of the collection's first key."""
    return json.loads(run_cli("keys", "show", "-C", collection.root, "--json").stdout)["keys"][0]["fingerprint"]


def make_collection(root: Path, catalog_url: str | None = None) -> Collection:
    """A collection with its key that may capture 127.0.0.1 only: other loopback and private
    addresses stay refused. Its catalog is in `catalog_url` when given."""
    create_signing_key(Collection.init(root, name="test", operator="tester@example", catalog_url=catalog_url), None, None)
    allow_networks(root, "127.0.0.1/32")
    return Collection.open(root)


@pytest.fixture
def collection(tmp_path, catalog_backend) -> Collection:
    """make_collection(), its catalog on `catalog_backend`; afterwards, every WARC the test
    wrote must pass `warcio check` and be closed."""
    collection = make_collection(tmp_path / "collection", catalog_backend)
    yield collection
    assert not list(collection.storage.folder.glob("*.open")), "a WARC file was left open"
    files = sorted(collection.storage.folder.glob("*.warc.gz"))
    if files:
        checker = Checker(SimpleNamespace(inputs=[str(f) for f in files], verbose=False))
        assert checker.process_all() == 0, f"warcio check failed on {files}"


@pytest.fixture
def run_cli():
    def run(*args: str, env: dict | None = None):
        return CliRunner().invoke(cli, [str(a) for a in args], env=env, catch_exceptions=False)
    return run


def capture(collection: Collection, *urls: str, resolver=None, **overrides):
    """Capture `urls` into `collection` with its settings changed by `overrides`; the rows."""
    settings = dataclasses.replace(collection.config.capture, **overrides)
    with CaptureRun(collection, settings, open_signing_key(collection, None, None), resolver=resolver) as run:
        return run.capture(list(urls))


# -- reading what was written -----------------------------------------------------------

@dataclass
class Record:
    headers: dict[str, str]
    block: bytes
    offset: int
    file: Path

    @property
    def type(self) -> str:
        return self.headers["WARC-Type"]

    @property
    def id(self) -> str:
        return self.headers["WARC-Record-ID"]


def warc_records(folder: Path) -> list[Record]:
    """Every record of every closed WARC in `folder`, its block unparsed."""
    from warcio.archiveiterator import ArchiveIterator

    found = []
    for path in sorted(folder.glob("*.warc.gz")):
        with open(path, "rb") as stream:
            iterator = ArchiveIterator(stream, no_record_parse=True)
            for record in iterator:
                block = record.raw_stream.read()
                found.append(Record(dict(record.rec_headers.headers), block, iterator.get_record_offset(), path))
    return found


def warcio_check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "import sys; from warcio.cli import main; main(sys.argv[1:])",
                           "check", "-v", str(path)], capture_output=True, text=True)


_REQUEST_LINE = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+ \S+ HTTP/\d\.\d")


def assert_exchanges_sound(folder: Path) -> None:
    """Every WARC file in `folder` passes `warcio check`, every request record holds a whole HTTP
    request (one never sent has no record), and every WARC-Concurrent-To, each of a record's
    several too, names a record in the same file."""
    from warcio.archiveiterator import ArchiveIterator

    paths = sorted(folder.glob("*.warc.gz"))
    assert paths, f"no WARC file in {folder}"
    for path in paths:
        checked = warcio_check(path)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        ids, named = set(), []
        with open(path, "rb") as stream:
            for record in ArchiveIterator(stream, no_record_parse=True):
                headers = record.rec_headers.headers
                record_id = record.rec_headers.get_header("WARC-Record-ID")
                ids.add(record_id)
                named += [(record_id, value) for name, value in headers if name.lower() == "warc-concurrent-to"]
                block = record.raw_stream.read()
                if record.rec_type == "request":
                    head, ended, _ = block.partition(b"\r\n\r\n")
                    assert ended and _REQUEST_LINE.fullmatch(head.split(b"\r\n", 1)[0]), (path.name, record_id, block[:200])
        assert [pair for pair in named if pair[1] not in ids] == [], path.name


# -- the catalog on SQLite and on PostgreSQL ----------------------------------------------

@pytest.fixture(scope="session")
def postgresql_cluster():
    """A PostgreSQL 15 cluster on 127.0.0.1 for the whole session (tests/pg.py)."""
    why_not = pg.missing()
    if why_not:
        pytest.skip(why_not)
    cluster = pg.Cluster()
    yield cluster
    cluster.stop()


@pytest.fixture
def postgresql_url(postgresql_cluster) -> str:
    """The URL of a fresh, empty PostgreSQL database."""
    return postgresql_cluster.new_database()


def pytest_generate_tests(metafunc):
    # A module that sets CATALOG_BACKENDS runs its tests that use a collection on each backend.
    backends = getattr(metafunc.module, "CATALOG_BACKENDS", None)
    if backends and "catalog_backend" in metafunc.fixturenames:
        metafunc.parametrize("catalog_backend", backends, indirect=True)


@pytest.fixture
def catalog_backend(request) -> str | None:
    """None for a collection's own catalog.sqlite; else the URL of a fresh PostgreSQL database."""
    if getattr(request, "param", "sqlite") == "sqlite":
        return None
    return request.getfixturevalue("postgresql_url")


# -- an S3 store: Ceph radosgw, one cluster for the whole session ----------------------------

@pytest.fixture(scope="session")
def gateway(tmp_path_factory):
    if missing := radosgw.missing_tools():
        pytest.skip(f"Ceph is not installed (no {', '.join(missing)}): "
                    "apt-get install ceph-mon ceph-osd radosgw ceph-common")
    started = radosgw.start(tmp_path_factory.mktemp("ceph"))
    yield started
    started.stop()


@pytest.fixture
def s3(gateway, monkeypatch, tmp_path):
    """The store's admin client for the test; archiver finds the same store through the
    standard AWS variables, and no AWS file of the machine's."""
    for name, value in gateway.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    import boto3
    from botocore.config import Config as BotoConfig

    return boto3.client("s3", endpoint_url=gateway.endpoint, aws_access_key_id=gateway.access_key,
                        aws_secret_access_key=gateway.secret_key, region_name="us-east-1",
                        config=BotoConfig(request_checksum_calculation="when_required",
                                          response_checksum_validation="when_required"))
