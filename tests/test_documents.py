"""The citing documents are kept: a content-addressed copy of each version read, listed in the
manifest; bundles carry them, or, for `--claim`, only the chosen claims with Merkle proofs."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from tests.conftest import http_response, send_bytes
from tests.test_bundle import failed, make_bundle, rewrite, verify_bundle

CATALOG_BACKENDS = ("sqlite", "postgresql")  # every test with a collection runs on both (conftest)

HEADLINE = "Bridge closed to lorries after the flood"
CITED = "The council confirmed the closure in its notice"
OTHER = "A local haulier disputed the council's figures"
UNCITED = "Residents had warned about the cracks for years"


def copies(root: Path) -> dict[str, bytes]:
    """Every kept document copy, by its path under the collection."""
    folder = root / "documents"
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()} if folder.exists() else {}


def copy_path(data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    return f"documents/sha256/{digest[:2]}/{digest}"


@pytest.fixture
def article(run_cli, raw_server, collection, tmp_path):
    """A document of four claims citing two pages, captured into a collection."""
    server = raw_server({
        "/notice": send_bytes(http_response(b"<html><title>Notice</title><p>bridge shut</p></html>")),
        "/haulier": send_bytes(http_response(b"<html><title>Haulier</title><p>figures wrong</p></html>")),
    })
    path = collection.root / "seeds" / "bridge.md"
    path.write_bytes(f"# {HEADLINE}\n\n{CITED}: {server.url('/notice')}\n\n{OTHER} {server.url('/haulier')}\n\n"
                     f"{UNCITED}.\n".encode())
    result = run_cli("capture", "-C", collection.root, path)
    assert result.exit_code == 0, result.output
    claims = json.loads(run_cli("claims", "-C", collection.root, "--json").stdout)
    fingerprint = json.loads(run_cli("keys", "show", "-C", collection.root, "--json").stdout)["keys"][0]["fingerprint"]
    return {"collection": collection, "path": path, "server": server, "claims": claims, "fingerprint": fingerprint,
            "tmp": tmp_path}


def claim_id(article, words: str) -> str:
    return next(c["id"] for c in article["claims"] if words in c["text"])


def manifest(run_cli, root: Path) -> dict:
    assert run_cli("manifest", "-C", root).exit_code == 0
    return json.loads((root / "manifests" / "manifest.json").read_bytes())["manifest"]


def test_each_version_read_is_kept_once_and_listed_in_the_manifest(run_cli, article):
    root, path = article["collection"].root, article["path"]
    first = path.read_bytes()
    assert copies(root) == {copy_path(first): first}

    assert run_cli("capture", "-C", root, path).exit_code == 0  # the same bytes again: still one copy
    assert copies(root) == {copy_path(first): first}

    second = first.replace(b"for years", b"for a decade")
    path.write_bytes(second)
    assert run_cli("capture", "-C", root, path).exit_code == 0
    assert copies(root) == {copy_path(first): first, copy_path(second): second}

    [document] = manifest(run_cli, root)["documents"]
    assert document["key"] == "seeds/bridge.md"
    assert sorted((v["sha256"], v["size"]) for v in document["versions"]) == sorted(
        (hashlib.sha256(data).hexdigest(), len(data)) for data in (first, second))
    assert document["claims_tree"]["size"] == 5  # four claims read first, one more from the edit


def test_verify_finds_a_changed_copy(run_cli, article):
    root = article["collection"].root
    assert run_cli("verify", "-C", root).exit_code == 0
    [stored] = copies(root)
    data = bytearray((root / stored).read_bytes())
    data[3] ^= 0x01
    (root / stored).chmod(0o644)  # kept read-only
    (root / stored).write_bytes(bytes(data))
    result = run_cli("verify", "-C", root, "--json")
    assert result.exit_code == 1
    failures = json.loads(result.stdout)["failures"]
    assert [f["check"] for f in failures] == ["document copy"], failures
    assert failures[0]["where"] == stored


def test_a_full_bundle_carries_the_document_byte_for_byte(run_cli, article):
    bundle = make_bundle(run_cli, article, "--all")
    original = article["path"].read_bytes()
    name = f"evidence/document-{hashlib.sha256(original).hexdigest()}"
    assert zipfile.ZipFile(bundle).read(name) == original
    report = verify_bundle(run_cli, bundle, article["fingerprint"])
    assert report["ok"], report["failures"]
    assert report["passed"]["document copy"] == 1 and report["passed"]["claim inclusion"] == 4

    tampered = rewrite(bundle, lambda n, d: d.replace(b"lorries", b"lorrys") if n == name else d)
    assert "document copy" in failed(verify_bundle(run_cli, tampered, article["fingerprint"]))


def test_a_claim_bundle_proves_its_claim_and_discloses_no_other(run_cli, article):
    chosen = claim_id(article, CITED)
    bundle = make_bundle(run_cli, article, "--claim", chosen)
    with zipfile.ZipFile(bundle) as wacz:
        files = {name: wacz.read(name) for name in wacz.namelist()}
    assert not [name for name in files if name.startswith("evidence/document-")]
    for secret in (HEADLINE, OTHER, UNCITED, "Bridge closed", "haulier", "cracks"):
        assert not [name for name, data in files.items() if secret.encode() in data], secret
    assert CITED.encode() in files["evidence/claims.json"]
    report = verify_bundle(run_cli, bundle, article["fingerprint"])
    assert report["ok"], report["failures"]
    assert report["passed"]["claim inclusion"] == 1 and report["passed"]["document inclusion"] == 1

    altered = rewrite(bundle, lambda n, d: d.replace(b"confirmed the closure", b"denied the closure")
                      if n == "evidence/claims.json" else d)
    assert claim_failures(verify_bundle(run_cli, altered, article["fingerprint"])) == [chosen]

    def bend_proof(name, data):
        if name != "evidence/documents.json":
            return data
        proofs = json.loads(data)
        [claim] = proofs["claims"]
        claim["proof"][0] = "00" * 32
        return json.dumps(proofs).encode()
    assert claim_failures(verify_bundle(run_cli, rewrite(bundle, bend_proof), article["fingerprint"])) == [chosen]


def claim_failures(report: dict) -> list[str]:
    """The claims named by failed `claim inclusion` checks."""
    assert not report["ok"]
    return [f["where"].rsplit(" ", 1)[-1] for f in report["failures"] if f["check"] == "claim inclusion"]
