"""Reading WACZ files safely and checking them: WACZs made by other tools (the shared corpus),
WACZs built here and signed with a P-384 key, and hostile ZIPs built byte by byte, each refused
with a reason naming the entry, and nothing written to disk."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import stat
import struct
import uuid
import warnings
import zipfile
import zlib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from archiver.errors import UsageProblem
from archiver.check.findings import Report
from archiver.exchange.bundle_verify import verify_bundle
from archiver.exchange.wacz import verify_wacz
from archiver.exchange.wacz_package import check_package
from archiver.exchange.wacz_signature import check_signed_data
from archiver.exchange.wacz_warcs import check_archives
from archiver.exchange.zipreader import BundleRejected, open_wacz
from tests.conftest import corpus
from tests.tsa import _TSA_SECTION as TSA_SECTION, local_tsa, openssl  # noqa: F401 (a fixture)

CREATED = "2024-05-01T12:00:00Z"



def failed(report: Report) -> set[tuple[str, str]]:
    return {(f.check, f.where) for f in report.failures}


# -- building WARC files and WACZs ------------------------------------------------------

def warc_digest(algorithm: str, data: bytes) -> str:
    """As tools write them: sha256 in hex, sha1 in base32."""
    raw = hashlib.new(algorithm, data).digest()
    return f"{algorithm}:{raw.hex() if algorithm == 'sha256' else base64.b32encode(raw).decode()}"


def response_record(url: str, body: bytes, *, algorithm: str | None = "sha256", payload_digest: str | None = None) -> bytes:
    block = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    headers = {"WARC-Type": "response", "WARC-Record-ID": f"<urn:uuid:{uuid.uuid4()}>", "WARC-Date": CREATED,
               "WARC-Target-URI": url, "Content-Type": "application/http;msgtype=response"}
    if algorithm:
        headers["WARC-Block-Digest"] = warc_digest(algorithm, block)
        headers["WARC-Payload-Digest"] = payload_digest or warc_digest(algorithm, body)
    headers["Content-Length"] = str(len(block))
    head = "WARC/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return head.encode() + block + b"\r\n\r\n"


def record_id(record: bytes) -> str:
    return next(line.split(": ", 1)[1] for line in record.decode("latin-1").split("\r\n") if line.startswith("WARC-Record-ID"))


def warc_gz(records: list[bytes]) -> tuple[bytes, list[tuple[int, int]]]:
    """One gzip member per record, and each member's (offset, length)."""
    members = [gzip.compress(r) for r in records]
    positions, offset = [], 0
    for member in members:
        positions.append((offset, len(member)))
        offset += len(member)
    return b"".join(members), positions


def cdxj(filename: str, positions: list[tuple[int, int]]) -> bytes:
    return b"".join(f'com,example)/{i} 20240501120000 {json.dumps({"url": f"https://example.com/{i}", "filename": filename, "offset": o, "length": n})}\n'.encode()
                    for i, (o, n) in enumerate(positions))


def standard_files(records: list[bytes] | None = None) -> dict[str, bytes]:
    records = records or [response_record("https://example.com/", b"<p>hello</p>"),
                          response_record("https://example.com/b", b"<p>b</p>")]
    warc, positions = warc_gz(records)
    return {"archive/data.warc.gz": warc, "indexes/index.cdxj": cdxj("data.warc.gz", positions),
            "pages/pages.jsonl": b'{"format":"json-pages-1.0","id":"pages","title":"All Pages"}\n'
                                 b'{"url":"https://example.com/","ts":"2024-05-01T12:00:00Z"}\n'}


def datapackage(files: dict[str, bytes]) -> bytes:
    resources = [{"name": Path(name).name, "path": name, "hash": "sha256:" + hashlib.sha256(data).hexdigest(),
                  "bytes": len(data)} for name, data in files.items()]
    return json.dumps({"profile": "data-package", "title": "test", "resources": resources, "created": CREATED,
                       "wacz_version": "1.1.1", "software": "test"}, indent=2).encode()


def raw_signature(key: ec.EllipticCurvePrivateKey, message: str) -> str:
    r, s = decode_dss_signature(key.sign(message.encode("ascii"), ec.ECDSA(hashes.SHA256())))
    size = (key.curve.key_size + 7) // 8
    return base64.b64encode(r.to_bytes(size, "big") + s.to_bytes(size, "big")).decode()


def spki(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def write_zip(path: Path, files: dict[str, bytes], stored: tuple[str, ...] = ("archive/",)) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            method = zipfile.ZIP_STORED if name.startswith(stored) else zipfile.ZIP_DEFLATED
            archive.writestr(name, data, compress_type=method)


def build_wacz(path: Path, files: dict[str, bytes] | None = None, *, key: ec.EllipticCurvePrivateKey | None = None,
               listed: dict[str, bytes] | None = None, signed_changes: dict | None = None,
               alter_datapackage=None, stored: tuple[str, ...] = ("archive/",)) -> Path:
    """A WACZ as archiver makes it: `listed` are the files datapackage.json lists (default: all)."""
    files = standard_files() if files is None else files
    package = datapackage(files if listed is None else listed)
    digest: dict = {"path": "datapackage.json", "hash": "sha256:" + hashlib.sha256(package).hexdigest()}
    if key is not None:
        digest["signedData"] = {"hash": digest["hash"], "created": CREATED, "software": "test", "version": "0.1.0",
                                "signature": raw_signature(key, digest["hash"]),
                                "publicKey": base64.b64encode(spki(key)).decode(), **(signed_changes or {})}
    if alter_datapackage is not None:
        package = alter_datapackage(package)
    write_zip(path, {**files, "datapackage.json": package, "datapackage-digest.json": json.dumps(digest).encode()}, stored)
    return path


# -- WACZs from other tools -------------------------------------------------------------

@pytest.mark.parametrize("name", ["py-wacz-valid_example_2.wacz", "wacz-signing-not-signed.wacz"])
def test_foreign_waczs_pass_the_package_hash_checks(name):
    report = Report()
    with open_wacz(corpus(name)) as wacz:
        package = check_package(wacz, report)
    assert report.ok, report.failures
    assert package["wacz_version"] == "1.1.1"
    assert report.passed["resource hash"] == 4 and report.passed["resource size"] == 4
    assert report.passed["datapackage digest"] == 1


def test_a_wacz_without_datapackage_fails_naming_it():
    """harvard-lil's ill-digest.wacz is a pre-1.0 layout (webarchive.yaml, no datapackage
    files); its WARC's sha1 digests all hold, checked by the second pass."""
    report = verify_wacz(corpus("wacz-signing-ill-digest.wacz"))
    assert failed(report) == {("datapackage present", "datapackage.json")}
    assert report.passed["record block digest"] == 260 and report.passed["record payload digest"] == 260
    assert report.passed["index target record"] == 130


def test_sha1_payload_digests_over_dechunked_bodies_pass_counted_apart():
    """Five records of wacz-signing's not-signed.wacz declare sha1 (hex) payload digests of the
    de-chunked body (as warcprox writes them; `warcio check` fails exactly these five): they
    hold, counted apart from the digests of the bytes stored."""
    report = Report()
    with open_wacz(corpus("wacz-signing-not-signed.wacz")) as wacz:
        scans = check_archives(wacz, report)
    assert report.ok, report.failures
    assert report.passed["record payload digest of the de-chunked body"] == 5
    assert report.passed["record block digest"] == 175
    assert len(scans) == 1 and len(scans[0].records) == 177


def test_a_domain_signature_chaining_to_a_mozilla_root_at_its_signing_time_is_trusted():
    """The authsign signature over the hash verifies with the domain certificate's key, and the
    certificate chains, for its domain, to a root of Mozilla's store (certifi) as of signedData.created."""
    report = Report()
    with open_wacz(corpus("py-wacz-valid_signed_example_1.wacz")) as wacz:
        package = check_package(wacz, report)
        digest = json.loads(wacz.read("datapackage-digest.json", 1 << 20))
    fingerprint = check_signed_data(digest, package, report)
    assert report.ok, report.failures
    assert report.passed["domain signature"] == 1 and report.passed["signing domain"] == 1
    assert report.passed["domain certificate chain link"] == 2 and report.passed["domain certificate trusted"] == 1
    assert any("chains to 'CN=ISRG Root X1" in line and "not checkable offline" in line for line in report.not_checked)
    assert any("timeSignature" in line and "not checked" in line for line in report.not_checked)
    assert fingerprint is not None and len(fingerprint) == 64


def test_a_trusted_domain_certificate_says_its_signing_time_is_the_signers_word():
    """signedData.created is outside the signature: anyone holding the key of a certificate long
    expired can set it within that certificate's validity, so the trust it bought must say so."""
    report = Report()
    with open_wacz(corpus("py-wacz-valid_signed_example_1.wacz")) as wacz:
        package = check_package(wacz, report)
        digest = json.loads(wacz.read("datapackage-digest.json", 1 << 20))
    assert check_signed_data(digest, package, report) is not None
    trusted = [line for line in report.not_checked if "chains to 'CN=ISRG Root X1" in line]
    assert len(trusted) == 1 and "the signer's own word, outside the signature" in trusted[0], trusted


def test_a_domain_signature_by_a_staging_certificate_fails_as_upstream_names_it_invalid():
    """py-wacz's 'invalid' signed example: the signature verifies with its certificate's key, but
    the certificate is Let's Encrypt staging's, which chains to no trusted root: it vouches for no one."""
    report = Report()
    with open_wacz(corpus("py-wacz-invalid_signed_example_1.wacz")) as wacz:
        package = check_package(wacz, report)
        digest = json.loads(wacz.read("datapackage-digest.json", 1 << 20))
    assert check_signed_data(digest, package, report) is None
    assert report.passed["domain signature"] == 1
    assert failed(report) == {("domain certificate trusted", "datapackage-digest.json")}
    assert "(STAGING) Pretend Pear X1" in report.failures[0].detail


@pytest.mark.parametrize("created", ["2031-01-01T00:00:00Z", "2022-01-18 19:00:12", "yesterday", None])
def test_a_domain_certificate_outside_its_validity_at_the_signing_time_or_no_time_fails(created):
    """Checked at signedData.created: a time after the certificate expired, a time with no zone,
    or none, cannot make the certificate vouch for the signature."""
    with open_wacz(corpus("py-wacz-valid_signed_example_1.wacz")) as wacz:
        digest = json.loads(wacz.read("datapackage-digest.json", 1 << 20))
    digest["signedData"]["created"] = created
    report = Report()
    assert check_signed_data(digest, {"created": created}, report) is None
    assert {check for check, _ in failed(report)} <= {"domain certificate trusted", "signing time"}
    assert len(failed(report)) == 1


@pytest.mark.parametrize("domain", ["archive.example", [], {"name": "archive.example"}])
def test_a_domain_not_named_by_the_certificate_fails(domain):
    """signedData is outside the signature: a list there, as anyone can send, is a finding too."""
    with open_wacz(corpus("py-wacz-valid_signed_example_1.wacz")) as wacz:
        digest = json.loads(wacz.read("datapackage-digest.json", 1 << 20))
    digest["signedData"]["domain"] = domain
    report = Report()
    check_signed_data(digest, {"created": digest["signedData"]["created"]}, report)
    assert failed(report) == {("signing domain", "datapackage-digest.json")}


def test_a_domain_signature_over_another_hash_fails():
    with open_wacz(corpus("py-wacz-valid_signed_example_1.wacz")) as wacz:
        digest = json.loads(wacz.read("datapackage-digest.json", 1 << 20))
    digest["signedData"]["hash"] = digest["hash"] = "sha256:" + "0" * 64
    report = Report()
    assert check_signed_data(digest, {"created": digest["signedData"]["created"]}, report) is None
    assert failed(report) == {("domain signature", "datapackage-digest.json")}


# -- the time signature of a domain signature (authsign's RFC 3161 token) ------------------

def _signed_example(name: str = "py-wacz-valid_signed_example_1.wacz") -> dict:
    with open_wacz(corpus(name)) as wacz:
        return json.loads(wacz.read("datapackage-digest.json", 1 << 20))


def _free_tsa_root() -> bytes:
    """The root of FreeTSA, which made the example's token, as a verifier would download it
    (here read from the certificates the example carries, its last one)."""
    signed = _signed_example()["signedData"]
    root = x509.load_pem_x509_certificates(signed["timestampCert"].encode())[-1]
    return root.public_bytes(serialization.Encoding.PEM)


def _trust_line(report: Report) -> str:
    [line] = [line for line in report.not_checked if "chains to 'CN=ISRG Root X1" in line]
    return line


def test_a_time_signature_by_a_trusted_tsa_makes_the_signing_time_the_tsas_word():
    """authsign timestamps the signature with FreeTSA: held to FreeTSA's root, the token over
    the ASCII signature holds (imprint, the TSA's signature with the certificate the bundle
    carries, its chain) and gives signedData.created, so that time is no longer the signer's word."""
    digest, report = _signed_example(), Report()
    assert check_signed_data(digest, {"created": digest["signedData"]["created"]}, report, _free_tsa_root()) is not None
    assert report.ok, report.failures
    assert report.passed["time signature"] == 1 and report.passed["time signature time"] == 1
    line = _trust_line(report)
    assert "valid at 2022-01-18T19:00:12Z, the time " in line and "RFC 3161 token (genTime 2022-01-18T19:00:12Z) confirms" in line
    assert "www.freetsa.org" in line and "signer's own word" not in line, line


def test_without_tsa_roots_a_time_signature_that_holds_leaves_the_signing_time_the_signers_word():
    digest, report = _signed_example(), Report()
    assert check_signed_data(digest, {"created": digest["signedData"]["created"]}, report) is not None
    assert "time signature" not in report.passed and "time signature time" not in report.passed
    [said] = [line for line in report.not_checked if "timeSignature, an RFC 3161 token" in line]
    assert "who that TSA is was not checked (give its CA certificate with --tsa-roots)" in said, said
    assert "signer's own word" in _trust_line(report)


def test_a_signing_time_other_than_the_time_signatures_fails():
    digest = _signed_example()
    digest["signedData"]["created"] = created = "2022-01-18T20:00:12Z"  # an hour on: the certificate was valid then too
    report = Report()
    assert check_signed_data(digest, {"created": created}, report, _free_tsa_root()) is not None
    assert failed(report) == {("time signature time", "datapackage-digest.json")}
    assert "genTime 2022-01-18T19:00:12Z" in report.failures[0].detail
    assert "signer's own word" in _trust_line(report)


@pytest.mark.parametrize("roots", [None, "FreeTSA"])
def test_a_time_signature_over_another_signature_fails_with_or_without_roots(roots):
    digest = _signed_example()
    digest["signedData"]["timeSignature"] = _signed_example("py-wacz-invalid_signed_example_1.wacz")["signedData"]["timeSignature"]
    report = Report()
    check_signed_data(digest, {"created": digest["signedData"]["created"]}, report,
                      _free_tsa_root() if roots else None)
    assert failed(report) == {("time signature", "datapackage-digest.json")}
    assert "hash imprint does not match" in report.failures[0].detail


def test_a_time_signature_by_a_tsa_outside_the_roots_given_fails():
    digest, report = _signed_example(), Report()
    web_ca = x509.load_pem_x509_certificates(digest["signedData"]["domainCert"].encode())[-1]  # a CA, not FreeTSA's
    check_signed_data(digest, {"created": digest["signedData"]["created"]}, report,
                      web_ca.public_bytes(serialization.Encoding.PEM))
    assert failed(report) == {("time signature", "datapackage-digest.json")}
    assert "TSA certificate does not chain to the trusted roots" in report.failures[0].detail


def test_with_tsa_roots_a_domain_signature_without_a_time_signature_fails():
    """Asked to hold the signing time to a TSA, a WACZ that leaves its token out (as the key of a
    certificate long expired would) cannot pass; without roots it is said not checked."""
    digest = _signed_example()
    del digest["signedData"]["timeSignature"]
    report = Report()
    check_signed_data(digest, {"created": digest["signedData"]["created"]}, report, _free_tsa_root())
    assert failed(report) == {("time signature", "datapackage-digest.json")}
    assert "no timeSignature" in report.failures[0].detail
    report = Report()
    assert check_signed_data(digest, {"created": digest["signedData"]["created"]}, report) is not None
    assert report.ok and "datapackage-digest.json: no timeSignature (RFC 3161 token over the signature)" in report.not_checked


def test_a_time_signature_whose_accuracy_spans_years_confirms_no_signing_time(local_tsa, tmp_path):
    """A trusted TSA's token stating an accuracy of years would place a 90-day certificate's
    signature anywhere in them: it confirms no time, however near its genTime."""
    digest = _signed_example()
    signed = digest["signedData"]
    (tmp_path / "signature.txt").write_text(signed["signature"])
    query = openssl("ts", "-query", "-data", tmp_path / "signature.txt", "-sha256", "-no_nonce")
    section = TSA_SECTION.format(folder=local_tsa.folder).replace("accuracy = secs:1", "accuracy = secs:300000000")
    with local_tsa.config.open("a") as config:
        config.write(f"\n[ wide_accuracy ]\n{section}digests = sha256\n")
    signed["timeSignature"] = base64.b64encode(local_tsa.reply(query, "wide_accuracy")).decode()
    signed["timestampCert"] = local_tsa.tsa_cert_path.read_text()
    report = Report()
    check_signed_data(digest, {"created": signed["created"]}, report, local_tsa.ca_pem_path.read_bytes())
    assert report.passed["time signature"] == 1
    assert failed(report) == {("time signature accuracy", "datapackage-digest.json")}
    assert "accuracy of 3e+08 s: too wide to confirm signedData.created" in report.failures[0].detail
    assert "signer's own word" in _trust_line(report)


def test_a_tsa_certificate_given_as_its_own_root_does_not_pass_and_is_said_in_words():
    """FreeTSA's own certificate, not its CA's, given as the root: the library refuses it; the
    reason is said without the OpenSSL error stack it dumps."""
    digest, report = _signed_example(), Report()
    leaf = x509.load_pem_x509_certificates(digest["signedData"]["timestampCert"].encode())[0]
    check_signed_data(digest, {"created": digest["signedData"]["created"]}, report,
                      leaf.public_bytes(serialization.Encoding.PEM))
    assert failed(report) == {("time signature", "datapackage-digest.json")}
    detail = report.failures[0].detail
    assert detail.endswith("rfc3161-client rejects the token: Unable to verify pkcs7 signature (certificate verify error)")
    assert "ErrorStack" not in detail, detail


def test_verify_bundle_holds_a_foreign_time_signature_to_the_tsa_roots_given():
    report = verify_bundle(corpus("py-wacz-valid_signed_example_1.wacz"), None, _free_tsa_root())
    assert report.ok, report.failures
    assert report.passed["time signature"] == 1 and report.passed["time signature time"] == 1


# -- anonymous signatures ---------------------------------------------------------------

@pytest.fixture
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


def test_a_signed_wacz_verifies_and_names_its_key(tmp_path, key):
    path = build_wacz(tmp_path / "ok.wacz", key=key)
    report = verify_wacz(path)
    assert report.ok, report.failures
    assert report.passed["signature"] == 1 and report.passed["index target record"] == 2
    assert report.passed["record block digest"] == 2 and report.passed["record payload digest"] == 2
    with open_wacz(path) as wacz:
        package = check_package(wacz, Report())
        digest = json.loads(wacz.read("datapackage-digest.json", 1 << 20))
    assert check_signed_data(digest, package, Report()) == hashlib.sha256(spki(key)).hexdigest()


def test_one_changed_byte_of_datapackage_fails_the_digest(tmp_path, key):
    path = build_wacz(tmp_path / "x.wacz", key=key, alter_datapackage=lambda d: d.replace(b'"test"', b'"tesT"', 1))
    assert failed(verify_wacz(path)) == {("datapackage digest", "datapackage.json")}


def test_an_altered_signature_fails(tmp_path, key):
    path = build_wacz(tmp_path / "x.wacz", key=key)
    with open_wacz(path) as wacz:
        package = check_package(wacz, Report())
        digest = json.loads(wacz.read("datapackage-digest.json", 1 << 20))
    signature = bytearray(base64.b64decode(digest["signedData"]["signature"]))
    signature[10] ^= 1
    digest["signedData"]["signature"] = base64.b64encode(signature).decode()
    report = Report()
    assert check_signed_data(digest, package, report) is None
    assert failed(report) == {("signature", "datapackage-digest.json")}


def test_a_signature_with_another_created_fails(tmp_path, key):
    path = build_wacz(tmp_path / "x.wacz", key=key, signed_changes={"created": "2024-05-01T12:00:01Z"})
    assert failed(verify_wacz(path)) == {("signed created", "datapackage-digest.json")}


def test_a_signature_by_a_p256_key_is_not_the_accepted_form(tmp_path):
    path = build_wacz(tmp_path / "x.wacz", key=ec.generate_private_key(ec.SECP256R1()))
    assert failed(verify_wacz(path)) == {("signing key", "datapackage-digest.json")}


def test_an_unsigned_wacz_says_so(tmp_path):
    report = verify_wacz(build_wacz(tmp_path / "x.wacz"))
    assert report.ok
    assert "datapackage-digest.json: not signed (no signedData)" in report.not_checked


# -- the package ------------------------------------------------------------------------

def test_an_unlisted_file_fails(tmp_path):
    files = standard_files()
    path = build_wacz(tmp_path / "x.wacz", {**files, "extra/payload.js": b"alert(1)"}, listed=files)
    assert failed(verify_wacz(path)) == {("file listed", "extra/payload.js")}


def test_a_zip_comment_fails_as_text_nothing_signs(tmp_path):
    path = build_wacz(tmp_path / "x.wacz", key=ec.generate_private_key(ec.SECP384R1()))
    with zipfile.ZipFile(path, "a") as archive:
        archive.comment = b"All signatures verified by the court's expert."
    report = verify_wacz(path)
    assert failed(report) == {("no ZIP comment", "the ZIP comment")}
    assert "All signatures verified by the court's expert." in report.failures[0].detail


def test_a_listed_file_missing_or_different_fails(tmp_path):
    files = standard_files()
    listed = {**files, "pages/pages.jsonl": files["pages/pages.jsonl"] + b"\n", "extra/gone.json": b"{}"}
    assert failed(verify_wacz(build_wacz(tmp_path / "x.wacz", files, listed=listed))) == {
        ("resource hash", "pages/pages.jsonl"), ("resource size", "pages/pages.jsonl"),
        ("resource present", "extra/gone.json")}


def test_other_hash_algorithms_are_checked_and_named(tmp_path):
    files = standard_files()
    package = json.loads(datapackage(files))
    pages = next(r for r in package["resources"] if r["path"] == "pages/pages.jsonl")
    pages["hash"] = "sha512:" + hashlib.sha512(files["pages/pages.jsonl"]).hexdigest()
    pages["name"] = "Pages.jsonl"
    path = tmp_path / "x.wacz"
    data = json.dumps(package).encode()
    write_zip(path, {**files, "datapackage.json": data, "datapackage-digest.json": json.dumps(
        {"path": "datapackage.json", "hash": "sha256:" + hashlib.sha256(data).hexdigest()}).encode()})
    report = verify_wacz(path)
    assert report.ok, report.failures
    assert "warning: pages/pages.jsonl: hashed with sha512, not sha256" in report.not_checked
    assert "warning: pages/pages.jsonl: name 'Pages.jsonl' is not lowercase" in report.not_checked
    pages["hash"] = "sha512:" + "0" * 128
    data = json.dumps(package).encode()
    write_zip(path, {**files, "datapackage.json": data, "datapackage-digest.json": json.dumps(
        {"path": "datapackage.json", "hash": "sha256:" + hashlib.sha256(data).hexdigest()}).encode()})
    assert failed(verify_wacz(path)) == {("resource hash", "pages/pages.jsonl")}


# -- WARC records and the index ---------------------------------------------------------

def test_a_record_whose_bytes_differ_from_its_sha256_digest_fails_naming_it(tmp_path):
    bad = response_record("https://example.com/bad", b"<p>x</p>", payload_digest=warc_digest("sha256", b"other"))
    good = response_record("https://example.com/", b"<p>y</p>")
    report = verify_wacz(build_wacz(tmp_path / "x.wacz", standard_files([good, bad])))
    assert failed(report) == {("record payload digest", f"archive/data.warc.gz {record_id(bad)}")}


def test_sha1_base32_digests_are_checked_by_a_second_pass(tmp_path):
    good = response_record("https://example.com/", b"<p>y</p>", algorithm="sha1")
    bad = response_record("https://example.com/bad", b"<p>x</p>", algorithm="sha1", payload_digest=warc_digest("sha1", b"z"))
    report = verify_wacz(build_wacz(tmp_path / "x.wacz", standard_files([good, bad])))
    assert failed(report) == {("record payload digest", f"archive/data.warc.gz {record_id(bad)}")}
    assert report.passed["record block digest"] == 2 and report.passed["record payload digest"] == 1


def test_records_without_digests_are_counted_not_checked(tmp_path):
    records = [response_record("https://example.com/", b"a", algorithm=None), response_record("https://example.com/b", b"b")]
    report = verify_wacz(build_wacz(tmp_path / "x.wacz", standard_files(records)))
    assert report.ok
    assert "archive/data.warc.gz: 1 records carry no digest: not checked" in report.not_checked


def test_a_revisit_payload_digest_names_an_earlier_payload_and_is_not_checked(tmp_path):
    revisit = response_record("https://example.com/", b"", payload_digest=warc_digest("sha256", b"the original"))
    revisit = revisit.replace(b"WARC-Type: response", b"WARC-Type: revisit")
    report = verify_wacz(build_wacz(tmp_path / "x.wacz", standard_files([revisit])))
    assert report.ok, report.failures
    assert report.passed["record block digest"] == 1 and report.passed["record payload digest"] == 0
    assert ("archive/data.warc.gz: 1 revisit payload digests name an earlier capture's payload, not in this file: "
            "not checked") in report.not_checked


def as_revisit_of(original: bytes, payload: bytes) -> bytes:
    """A revisit record standing for `original` (WARC-Refers-To), declaring `payload`'s digest."""
    revisit = response_record("https://example.com/", b"", payload_digest=warc_digest("sha256", payload))
    return revisit.replace(b"WARC-Type: response", b"WARC-Type: revisit").replace(
        b"WARC-Target-URI", b"WARC-Refers-To: " + record_id(original).encode() + b"\r\nWARC-Target-URI", 1)


@pytest.mark.parametrize("declared, ok", [(b"the original", True), (b"something else", False)])
def test_a_revisit_whose_original_is_in_the_same_file_is_checked_against_it(tmp_path, declared, ok):
    original = response_record("https://example.com/", b"the original")
    revisit = as_revisit_of(original, declared)
    report = verify_wacz(build_wacz(tmp_path / "x.wacz", standard_files([original, revisit])))
    assert not any("revisit" in line for line in report.not_checked), report.not_checked
    assert report.ok is ok
    if ok:
        assert report.passed["revisit payload digest"] == 1
    else:
        assert failed(report) == {("revisit payload digest", f"archive/data.warc.gz {record_id(revisit)}")}


def test_a_deflated_warc_is_read_and_warned_about(tmp_path):
    report = verify_wacz(build_wacz(tmp_path / "x.wacz", stored=()))
    assert report.ok and report.passed["record block digest"] == 2
    assert any(line.startswith("warning: archive/data.warc.gz: deflated") for line in report.not_checked)


def test_an_index_line_pointing_nowhere_fails(tmp_path):
    files = standard_files()
    index = files["indexes/index.cdxj"].splitlines(keepends=True)
    line = json.loads(index[1].split(b" ", 2)[2])
    index[1] = index[1].replace(b'"offset": %d' % line["offset"], b'"offset": %d' % (line["offset"] + 1))
    index.append(b'com,example)/c 20240501120000 {"filename": "other.warc.gz", "offset": 0, "length": 10}\n')
    files["indexes/index.cdxj"] = b"".join(index)
    report = verify_wacz(build_wacz(tmp_path / "x.wacz", files))
    assert failed(report) == {("index target record", "indexes/index.cdxj line 2"),
                              ("index target file", "indexes/index.cdxj line 3")}
    assert report.passed["index target record"] == 1


# -- reading ----------------------------------------------------------------------------

def test_streams_give_the_entry_bytes_and_small_reads_are_bounded(tmp_path):
    files = standard_files()
    with open_wacz(build_wacz(tmp_path / "x.wacz", files, stored=())) as wacz:
        with wacz.open("archive/data.warc.gz") as stream:
            assert stream.read() == files["archive/data.warc.gz"]
        assert wacz.read("pages/pages.jsonl", 1000) == files["pages/pages.jsonl"]
        assert wacz.info("pages/pages.jsonl").compress_type == zipfile.ZIP_DEFLATED
        with pytest.raises(BundleRejected, match="'pages/pages.jsonl' declares 120 bytes, more than the 100 allowed"):
            wacz.read("pages/pages.jsonl", 100)
        with pytest.raises(KeyError):
            wacz.open("nothing")


def test_not_a_zip_is_a_usage_problem(tmp_path):
    path = tmp_path / "x.wacz"
    path.write_bytes(b"WARC/1.1\r\n" * 10)
    with pytest.raises(UsageProblem, match="is not a ZIP file"):
        open_wacz(path)
    with pytest.raises(UsageProblem, match="cannot read"):
        open_wacz(tmp_path / "missing.wacz")


@pytest.mark.parametrize("received", [b"", b"WARC/1.1\r\n" * 10, "cut"])
def test_a_received_bundle_that_is_no_whole_zip_fails_verification_with_a_report(run_cli, tmp_path, received):
    """Damaged in transit, emptied, or another file: the bundle fails (exit 1), and --json still
    answers on stdout with the report, never an error a script would have to look for elsewhere."""
    path = tmp_path / "received.wacz"
    whole = build_wacz(tmp_path / "whole.wacz").read_bytes()
    path.write_bytes(whole[:len(whole) // 2] if received == "cut" else received)
    result = run_cli("verify-bundle", path, "--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is False and [f["check"] for f in report["failures"]] == ["bundle readable"]
    assert "is not a ZIP file" in report["failures"][0]["detail"]


def test_bad_usage_of_verify_bundle_is_refused_in_one_line(run_cli, tmp_path):
    bundle = build_wacz(tmp_path / "x.wacz")
    (tmp_path / "roots.pem").write_text("not a certificate")
    for args, said in ((["--tsa-roots", tmp_path / "roots.pem"], "holds no PEM certificate"),
                       (["--fingerprint", ""], "verify-bundle: --fingerprint is given an empty value"),
                       (["--fingerprint", "zz"], "not a key fingerprint: 'zz'")):
        result = run_cli("verify-bundle", bundle, *args)
        assert result.exit_code == 2 and said in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.output


# -- hostile ZIPs -----------------------------------------------------------------------

def zip_bytes(entries: list[tuple[str | zipfile.ZipInfo, bytes]], method: int = zipfile.ZIP_STORED) -> bytearray:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of duplicate names: the point of one test
        with zipfile.ZipFile(buffer, "w", method) as archive:
            for name, data in entries:
                archive.writestr(name, data)
    return bytearray(buffer.getvalue())


def central_header(data: bytearray, index: int) -> int:
    """Offset of the index-th central directory header."""
    at = -1
    for _ in range(index + 1):
        at = data.index(b"PK\x01\x02", at + 1)
    return at


def set_field(data: bytearray, at: int, fmt: str, value: int) -> None:
    struct.pack_into(fmt, data, at, value)


@pytest.fixture
def refuse(tmp_path, monkeypatch):
    """Writes the hostile bytes, opens them expecting BundleRejected (and no other exception),
    and checks that nothing was written anywhere under the test's folder, the working folder."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)

    def refuse(data: bytes, match: str, **limits) -> BundleRejected:
        path = tmp_path / "hostile.wacz"
        path.write_bytes(data)
        before = sorted(tmp_path.rglob("*"))
        with pytest.raises(BundleRejected, match=match) as caught:
            open_wacz(path, **limits)
        assert sorted(tmp_path.rglob("*")) == before
        assert str(caught.value).count("\n") == 0
        return caught.value

    return refuse


@pytest.mark.parametrize("name, reason", [
    ("../evil", r"'\.\./evil' has a '\.\.' component"),
    ("archive/../../evil", r"'archive/\.\./\.\./evil' has a '\.\.' component"),
    ("/abs", r"'/abs' has an absolute path"),
    ("..\\evil", r"'\.\.\\\\evil' has a backslash"),
    ("C:/evil", r"'C:/evil' starts with a drive letter"),
    ("a//b", r"'a//b' has an empty or '\.' component"),
    ("./a", r"'\./a' has an empty or '\.' component"),
    ("a\nb", r"'a\\nb' has a control character"),
])
def test_names_that_could_escape_or_alias_are_refused(refuse, name, reason):
    refuse(zip_bytes([("ok.txt", b"fine"), (name, b"evil")]), reason)


def test_a_name_cut_by_a_nul_is_refused(refuse):
    data = zip_bytes([("aXb", b"x")])
    refuse(bytes(data).replace(b"aXb", b"a\x00b"), r"'a\\x00b' has a NUL character")


def test_a_symlink_entry_is_refused(refuse):
    link = zipfile.ZipInfo("archive/link.warc.gz")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    refuse(zip_bytes([(link, b"/etc/passwd")]), "'archive/link.warc.gz' is a symbolic link, not a regular file")


def test_a_fifo_entry_is_refused(refuse):
    fifo = zipfile.ZipInfo("pipe")
    fifo.external_attr = (stat.S_IFIFO | 0o644) << 16
    refuse(zip_bytes([(fifo, b"")]), "'pipe' is a named pipe")


def test_a_folder_entry_holding_data_is_refused_and_empty_ones_are_ignored(refuse, tmp_path):
    folder = zipfile.ZipInfo("archive/")
    folder.external_attr = (stat.S_IFDIR | 0o755) << 16 | 0x10
    refuse(zip_bytes([(folder, b"hidden")]), "'archive/' is named like a folder but holds 6 bytes")
    path = tmp_path / "folders.zip"
    path.write_bytes(zip_bytes([(folder, b""), ("archive/a.warc", b"x")]))
    with open_wacz(path) as wacz:
        assert wacz.names() == ["archive/a.warc"]


def test_an_entry_of_unknown_type_or_a_folder_named_like_a_file_is_refused(refuse):
    odd = zipfile.ZipInfo("odd")
    odd.external_attr = (0o150000 | 0o644) << 16
    refuse(zip_bytes([(odd, b"")]), "'odd' has the unknown file type 0o150000")
    folder = zipfile.ZipInfo("archive")
    folder.external_attr = (stat.S_IFDIR | 0o755) << 16
    refuse(zip_bytes([(folder, b"")]), "'archive' is marked as a folder but named like a file")


@pytest.mark.parametrize("first, second", [("datapackage.json", "datapackage.json"),
                                           ("datapackage.json", "DataPackage.json"),
                                           ("caf\u00e9.txt", "cafe\u0301.txt")])
def test_duplicate_names_are_refused(refuse, first, second):
    refuse(zip_bytes([(first, b"{}"), (second, b'{"evil": 1}')]), f"{second!r} duplicates the name {first!r}")


def test_two_entries_sharing_one_local_header_are_refused(refuse):
    """Two central-directory entries pointing at the same local data: the overlapping zip bomb."""
    data = zip_bytes([("a.txt", b"x" * 100), ("b.txt", b"y" * 100)])
    set_field(data, central_header(data, 1) + 42, "<L", 0)
    refuse(bytes(data), r"'(a|b)\.txt' starts at byte 0, inside the data of '(a|b)\.txt': entries overlap")


def test_an_entry_starting_inside_another_entrys_data_is_refused(refuse):
    """David Fifield's construction: a local header inside the previous entry's data."""
    data = zip_bytes([("a.txt", b"x" * 100), ("b.txt", b"y" * 100)])
    set_field(data, central_header(data, 1) + 42, "<L", 40)
    refuse(bytes(data), r"'b\.txt' starts at byte 40, inside the data of 'a\.txt'")


def test_a_high_ratio_deflate_bomb_is_refused(refuse):
    refuse(zip_bytes([("archive/bomb.warc", bytes(50_000_000))], zipfile.ZIP_DEFLATED),
           r"'archive/bomb\.warc' inflates \d[\d,]* bytes to 50,000,000, beyond 1:200")


def test_an_entry_yielding_more_than_it_declares_is_stopped(tmp_path):
    """A lying header: 2 MB of data declared as 1,000 bytes. Opening cannot tell; reading stops
    once byte 1,001 comes out, and the archive check reports the entry."""
    content = hashlib.sha256(b"seed").digest() * 65536
    data = zip_bytes([("archive/big.warc", content)], zipfile.ZIP_DEFLATED)
    set_field(data, central_header(data, 0) + 24, "<L", 1000)
    set_field(data, 22, "<L", 1000)
    path = tmp_path / "liar.zip"
    path.write_bytes(data)
    with open_wacz(path) as wacz:
        with pytest.raises(BundleRejected, match="'archive/big.warc' yields more than the 1,000 bytes it declares"):
            wacz.read("archive/big.warc", 1000)
        report = Report()
        scans = check_archives(wacz, report)
    assert failed(report) == {("entry readable", "archive/big.warc")}
    assert scans[0].records == [] and "lying header" in scans[0].error


def test_an_entry_shorter_than_declared_or_with_a_wrong_crc_is_refused(tmp_path):
    data = zip_bytes([("a.txt", b"hello world")])
    path = tmp_path / "x.zip"
    path.write_bytes(bytes(data).replace(b"hello world", b"hello_world"))
    with open_wacz(path) as wacz, pytest.raises(BundleRejected, match="'a.txt': CRC-32 does not match"):
        wacz.read("a.txt", 100)
    data = zip_bytes([("a.txt", b"hello world")], zipfile.ZIP_DEFLATED)
    set_field(data, central_header(data, 0) + 24, "<L", 12)
    set_field(data, 22, "<L", 12)
    path.write_bytes(data)
    with open_wacz(path) as wacz, pytest.raises(BundleRejected, match="'a.txt' holds 11 bytes, not the 12 it declares"):
        wacz.read("a.txt", 100)


def test_entries_whose_sizes_or_methods_do_not_add_up_are_refused(refuse):
    refuse(zip_bytes([("a.bz2", b"x" * 100)], zipfile.ZIP_BZIP2), "'a.bz2' uses compression method 12")
    stored = zip_bytes([("a.txt", b"x" * 100)])
    set_field(stored, central_header(stored, 0) + 24, "<L", 99)
    refuse(bytes(stored), "'a.txt' is stored but declares 99 bytes in 100")
    deflated = zip_bytes([("a.txt", b"x" * 100)], zipfile.ZIP_DEFLATED)
    set_field(deflated, central_header(deflated, 0) + 20, "<L", 40)
    set_field(deflated, 18, "<L", 40)
    refuse(bytes(deflated), "'a.txt': its data runs into the central directory")
    method = zip_bytes([("a.txt", b"x" * 100)])
    set_field(method, 8, "<H", zipfile.ZIP_DEFLATED)
    refuse(bytes(method), "'a.txt': its local header disagrees with the central directory")


def test_a_deflate_stream_cut_short_or_followed_by_hidden_bytes_is_refused(tmp_path):
    path = tmp_path / "x.zip"
    cut = zip_bytes([("a.txt", b"hello world" * 10)], zipfile.ZIP_DEFLATED)
    size = struct.unpack_from("<L", cut, 18)[0]
    # The stream's last two bytes removed, and every header made to agree with what is left.
    directory = central_header(cut, 0)
    set_field(cut, directory + 20, "<L", size - 2)
    set_field(cut, 18, "<L", size - 2)
    set_field(cut, cut.rindex(b"PK\x05\x06") + 16, "<L", directory - 2)
    path.write_bytes(bytes(cut[:directory - 2]) + bytes(cut[directory:]))
    with open_wacz(path) as wacz, pytest.raises(BundleRejected, match="'a.txt': its deflate stream is cut short"):
        wacz.read("a.txt", 1000)
    # Four bytes slipped between the deflate stream and the central directory, counted as the entry's.
    data = zip_bytes([("a.txt", b"hello world" * 10)], zipfile.ZIP_DEFLATED)
    directory = central_header(data, 0)
    set_field(data, 18, "<L", size + 4)
    set_field(data, directory + 20, "<L", size + 4)
    end = data.rindex(b"PK\x05\x06")
    set_field(data, end + 16, "<L", directory + 4)
    path.write_bytes(bytes(data[:directory]) + b"junk" + bytes(data[directory:]))
    with open_wacz(path) as wacz, pytest.raises(BundleRejected, match="'a.txt': bytes follow its deflate stream"):
        wacz.read("a.txt", 1000)


def test_an_encrypted_entry_is_refused(refuse):
    data = zip_bytes([("secret.txt", b"x")])
    header = central_header(data, 0)
    set_field(data, header + 8, "<H", 1)
    set_field(data, 6, "<H", 1)
    refuse(bytes(data), "'secret.txt' is encrypted")


def test_too_many_entries_are_refused(refuse):
    entries = [(f"{i}", b"") for i in range(11)]
    refuse(zip_bytes(entries), "declares 11 entries, more than the 10 allowed", max_entries=10)
    # A directory too big for the entries allowed is refused before it is parsed.
    refuse(zip_bytes([(f"{i:0>1100}", b"") for i in range(2)]), "central directory is 2,292 bytes, more than 2 entries need",
           max_entries=2)


def test_a_count_that_disagrees_with_the_directory_is_refused(refuse):
    data = zip_bytes([("a", b"1"), ("b", b"2")])
    end = data.rindex(b"PK\x05\x06")
    set_field(data, end + 8, "<H", 1)
    set_field(data, end + 10, "<H", 1)
    refuse(bytes(data), "end record declares 1 entries, its central directory holds 2")


def test_a_declared_total_beyond_the_bound_is_refused(refuse):
    refuse(zip_bytes([("a", b"x" * 600), ("b", b"y" * 500)]),
           "declares 1,100 bytes uncompressed in all \\(largest: 'a', 600\\), more than the 1,000 allowed",
           max_total_size=1000)


def test_bytes_before_or_after_the_zip_are_refused(refuse):
    data = bytes(zip_bytes([("a", b"1")]))
    refuse(b"MZ stub" + data, "bytes prepended to the ZIP")
    refuse(data + b"trailer", "7 bytes follow the end of the ZIP")


def test_a_local_header_naming_another_file_is_refused(refuse):
    data = bytes(zip_bytes([("aaa", b"1")]))
    refuse(data.replace(b"aaa", b"aab", 1), "entry 'aaa' is named b'aab' in its local header")


def local_entry(name: str, data: bytes) -> bytes:
    """A whole entry as a ZIP stores it before its central directory: local header, then data."""
    whole = zip_bytes([(name, data)])
    return bytes(whole[:central_header(whole, 0)])


def slipped_in(data: bytearray, at: int, extra: bytes) -> bytes:
    """`extra` inserted at byte `at`, every offset the central directory and end record hold
    moved along, so that a reader of the directory finds every entry as before."""
    end = data.rindex(b"PK\x05\x06")
    header = directory = struct.unpack_from("<L", data, end + 16)[0]
    while data.startswith(b"PK\x01\x02", header):
        offset = struct.unpack_from("<L", data, header + 42)[0]
        if offset >= at:
            set_field(data, header + 42, "<L", offset + len(extra))
        header += 46 + sum(struct.unpack_from("<3H", data, header + 28))
    set_field(data, end + 16, "<L", directory + len(extra))
    return bytes(data[:at]) + extra + bytes(data[at:])


@pytest.mark.parametrize("where", ["first", "between", "last"])
def test_an_entry_hidden_outside_the_central_directory_is_refused(refuse, where):
    """A whole entry no directory header points at, before, between or after the listed ones:
    a reader scanning the ZIP from its start (Java's ZipInputStream, `jar x` from a pipe) takes
    it for a file, `datapackage.json` here, while every listed entry still checks out."""
    data = zip_bytes([("datapackage.json", b'{"signed": true}'), ("b.txt", b"signed too")])
    forged = local_entry("datapackage.json", b'{"forged": true}')
    at = {"first": 0, "between": data.index(b"PK\x03\x04", 1), "last": central_header(data, 0)}[where]
    before = {"first": "entry 'datapackage.json'", "between": "entry 'b.txt'", "last": "the central directory"}[where]
    refuse(slipped_in(data, at, forged), f"{len(forged)} bytes before {before} belong to no entry")


@pytest.mark.parametrize("field, at, value", [("CRC-32", 14, 7), ("compressed size", 18, 7), ("size", 22, 7),
                                              ("UTF-8 flag", 6, 0x800)])
def test_a_local_header_disagreeing_with_the_directory_is_refused(refuse, field, at, value):
    """A reader scanning from the start reads each entry by its local header alone."""
    data = zip_bytes([("a.txt", b"x" * 100)])
    set_field(data, at, "<H" if at == 6 else "<L", value)
    refuse(bytes(data), "'a.txt': its local header disagrees with the central directory")


@pytest.mark.parametrize("field, at, value", [("time", 10, 0x1234), ("date", 12, 0x4321), ("version needed", 4, 45)])
def test_a_local_header_giving_another_time_or_version_than_the_directory_is_refused(refuse, field, at, value):
    """Nothing signs an entry's time, but the two readers must not show different ones."""
    data = zip_bytes([("a.txt", b"x" * 100)])
    set_field(data, at, "<H", value)
    refuse(bytes(data), "'a.txt': its local header gives another time, date or version needed")


@pytest.mark.parametrize("length, at", [("name", 28), ("extra field", 30), ("comment", 32)])
def test_a_last_directory_record_running_past_the_directory_is_refused(refuse, length, at):
    """Python's zipfile reads such a record's name or comment short where `unzip` reads on into
    the end record: one lists 'b.txt', the other a name or comment nothing signs."""
    data = zip_bytes([("a.txt", b"a"), ("b.txt", b"b")])
    last = central_header(data, 1)
    set_field(data, last + at, "<H", struct.unpack_from("<H", data, last + at)[0] + 1)
    refuse(bytes(data), "'b.txt': its central directory record runs past the directory")


def test_an_end_record_counting_other_entries_on_its_disk_is_refused(refuse):
    data = zip_bytes([("a.txt", b"a"), ("b.txt", b"b")])
    set_field(data, data.rindex(b"PK\x05\x06") + 8, "<H", 1)
    refuse(bytes(data), "the ZIP spans several disks")


def named_by_extra_field(name: str, shown: str) -> zipfile.ZipInfo:
    """An entry carrying Info-ZIP's Unicode Path extra field, whose name `unzip` extracts it as."""
    field = struct.pack("<BL", 1, zlib.crc32(name.encode())) + shown.encode()
    info = zipfile.ZipInfo(name)
    info.extra = struct.pack("<2H", 0x7075, len(field)) + field
    return info


def test_a_unicode_path_extra_field_naming_another_file_is_refused(refuse, tmp_path):
    """`unzip -l` lists this ZIP as two files named b.txt, the first holding a.txt's bytes."""
    renamed = zip_bytes([(named_by_extra_field("a.txt", "b.txt"), b"signed as a.txt"), ("b.txt", b"b")])
    refuse(bytes(renamed), "entry 'a.txt' names itself b'b.txt' in a Unicode Path extra field")
    path = tmp_path / "same.zip"
    path.write_bytes(zip_bytes([(named_by_extra_field("caf\u00e9.txt", "caf\u00e9.txt"), b"x")]))
    with open_wacz(path) as wacz:
        assert wacz.names() == ["caf\u00e9.txt"]


def written_unseekable(entries: list[tuple[str, bytes]], zip64: bool) -> bytearray:
    """A ZIP as written to a pipe: every entry's sizes and CRC-32 in a data descriptor after it."""
    class Pipe(io.BytesIO):
        def seek(self, *args: int) -> int:
            raise io.UnsupportedOperation("a pipe")

    pipe = Pipe()
    with zipfile.ZipFile(pipe, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            with archive.open(name, "w", force_zip64=zip64) as entry:
                entry.write(data)
    return bytearray(pipe.getvalue())


@pytest.mark.parametrize("zip64", [False, True], ids=["32-bit sizes", "ZIP64 sizes"])
def test_entries_followed_by_data_descriptors_are_read_and_a_lying_descriptor_is_refused(tmp_path, refuse, zip64):
    data = written_unseekable([("a.txt", b"hello " * 50), ("b.txt", b"world " * 50)], zip64)
    assert data.count(b"PK\x07\x08") == 2
    path = tmp_path / "streamed.zip"
    path.write_bytes(data)
    with open_wacz(path) as wacz:
        assert (wacz.read("a.txt", 1000), wacz.read("b.txt", 1000)) == (b"hello " * 50, b"world " * 50)
    descriptor = data.index(b"PK\x07\x08")
    set_field(data, descriptor + 4, "<L", 7)
    refuse(bytes(data), "'a.txt': its data descriptor disagrees with the central directory")


def test_zip64_end_records_are_read(tmp_path):
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for i in range(65536):
            archive.writestr(f"f/{i}", b"")
    assert b"PK\x06\x06" in path.read_bytes()[-200:]
    with open_wacz(path) as wacz:
        assert len(wacz.names()) == 65536


@pytest.mark.parametrize("end64_at", [2**64 - 1, 2**63, 0], ids=["max", "past-off_t", "start"])
def test_a_zip64_locator_pointing_anywhere_is_refused_before_seeking(refuse, end64_at):
    """Found by bench/fuzz.py wacz: a ZIP64 locator naming an offset past what a file offset can
    hold made the seek raise OSError (EINVAL) instead of a refusal."""
    data = zip_bytes([("ok.txt", b"fine")])
    end = data.rfind(b"PK\x05\x06")
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, end64_at, 1)
    data[end:end] = locator
    refuse(bytes(data), "the ZIP64 end record is not where its locator says")


def _signed_by_certificate_for(names: list[str], domain: str) -> tuple[dict, dict]:
    """A digest file signed as authsign signs one, by a certificate for `names` made here (a
    self-signed one: its signature and names can hold, its trust cannot)."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "signer")])
    now = dt.datetime.now(dt.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
                   .not_valid_after(now + dt.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName(name) for name in names]), critical=False)
                   .sign(key, hashes.SHA256()))
    digest, created = "sha256:" + "ab" * 32, now.strftime("%Y-%m-%dT%H:%M:%SZ")
    signature = key.sign(digest.encode("ascii"), ec.ECDSA(hashes.SHA256()))
    signed = {"hash": digest, "created": created, "software": "authsigner", "version": "0.1.0", "domain": domain,
              "domainCert": certificate.public_bytes(serialization.Encoding.PEM).decode(),
              "signature": base64.b64encode(signature).decode()}
    return {"path": "datapackage.json", "hash": digest, "signedData": signed}, {"created": created}


@pytest.mark.parametrize("domain, named", [("news.example.org", True), ("NEWS.example.org", True),
                                           ("example.org", False), ("a.news.example.org", False)])
def test_a_wildcard_certificate_names_the_domains_of_its_first_label_only(domain, named):
    """As a browser matches a site: *.example.org is news.example.org's, not example.org's nor a
    deeper name's. (Self-made, the certificate is still not trusted: that check fails apart.)"""
    digest, package = _signed_by_certificate_for(["*.example.org"], domain)
    report = Report()
    check_signed_data(digest, package, report)
    assert report.passed["domain signature"] == 1
    assert (("signing domain", "datapackage-digest.json") in failed(report)) is (not named)
    assert ("domain certificate trusted", "datapackage-digest.json") in failed(report)
