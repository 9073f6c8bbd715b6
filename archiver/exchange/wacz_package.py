"""The package of a WACZ, as WACZ 1.1.1 defines it: datapackage.json, its digest in
datapackage-digest.json, and every file of the ZIP listed there with its hash and size.

Findings go to a findings.Report. Report has no warning level, so a departure from WACZ 1.1.1
that puts no content in doubt (a deflated WARC, an upper-case resource name) is listed among
`not_checked` as "warning: …" by `warn`, which the other WACZ checks share; it never fails
the report."""

from __future__ import annotations

import hashlib
import json

from archiver.check.findings import Report
from archiver.exchange.zipreader import READ_SIZE, BundleRejected, Wacz

DATAPACKAGE = "datapackage.json"
DIGEST_FILE = "datapackage-digest.json"
DATAPACKAGE_LIMIT = 64 << 20   # 100,000 resources at ~300 bytes each, with room to spare
DIGEST_FILE_LIMIT = 4 << 20    # a domain signature carries certificate chains: tens of KB


# -- warnings and small files -----------------------------------------------------------

def warn(report: Report, name: str, holds: bool, where: str, detail: str) -> None:
    """A departure from WACZ 1.1.1 that puts no content in doubt: counted when it holds, else
    listed with the caveats, since Report has no warning level."""
    if holds:
        report.count_passed(name)
    else:
        report.not_checked.append(f"warning: {where}: {detail}")


def load_object(wacz: Wacz, name: str, limit: int) -> tuple[bytes | None, dict | None, str | None]:
    """(bytes, parsed JSON object, problem)."""
    try:
        data = wacz.read(name, limit)
    except BundleRejected as exc:
        return None, None, str(exc)
    try:
        value = json.loads(data)
    except ValueError as exc:
        return data, None, f"not JSON: {exc}"
    if not isinstance(value, dict):
        return data, None, "not a JSON object"
    return data, value, None


def _algorithm(spec: object) -> tuple[str, str] | None:
    """("sha256", "<hex>") from "sha256:<hex>", for any algorithm hashlib knows with a fixed
    digest size; None when it is not of that form."""
    if not isinstance(spec, str) or ":" not in spec:
        return None
    algorithm, _, value = spec.partition(":")
    algorithm = algorithm.strip().lower()
    try:
        size = hashlib.new(algorithm).digest_size
    except (ValueError, TypeError):
        return None
    value = value.strip().lower()
    if not size or len(value) != 2 * size or any(c not in "0123456789abcdef" for c in value):
        return None
    return algorithm, value


def _hash_entry(wacz: Wacz, name: str, algorithm: str) -> tuple[str, int]:
    digest = hashlib.new(algorithm)
    size = 0
    with wacz.open(name) as stream:
        while chunk := stream.read(READ_SIZE):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


# -- the package: datapackage.json and its digest ---------------------------------------

def check_package(wacz: Wacz, report: Report) -> dict | None:
    """datapackage.json against the ZIP: its digest file, every resource's hash and size
    (streamed), and no file left unlisted. Returns the parsed datapackage, or None."""
    names = set(wacz.names())
    if DATAPACKAGE not in names:
        report.check("datapackage present", False, DATAPACKAGE,
                     "missing: nothing lists or hashes the files of this WACZ")
        return None
    data, datapackage, problem = load_object(wacz, DATAPACKAGE, DATAPACKAGE_LIMIT)
    if data is not None:
        _check_digest_file(wacz, data, report)
    if not report.check("datapackage readable", datapackage is not None, DATAPACKAGE, problem or ""):
        return None
    warn(report, "datapackage profile", datapackage.get("profile") == "data-package", DATAPACKAGE,
          f"profile is {datapackage.get('profile')!r}, not 'data-package'")
    warn(report, "wacz_version", datapackage.get("wacz_version") == "1.1.1", DATAPACKAGE,
          f"wacz_version is {datapackage.get('wacz_version')!r}; checked by the rules of WACZ 1.1.1")
    resources = datapackage.get("resources")
    if not report.check("datapackage resources", isinstance(resources, list), DATAPACKAGE, "resources is not a list"):
        return datapackage
    listed: set[str] = set()
    resource_names: set[str] = set()
    for index, resource in enumerate(resources):
        path = resource.get("path") if isinstance(resource, dict) else None
        where = path if isinstance(path, str) else f"{DATAPACKAGE} resources[{index}]"
        if not report.check("resource entry", isinstance(path, str), where, "a resource without a path"):
            continue
        if not report.check("resource listed once", path not in listed, path, "listed twice in datapackage.json"):
            continue
        listed.add(path)
        _check_resource_name(resource.get("name"), path, resource_names, report)
        if report.check("resource present", path in names, path, "listed in datapackage.json but not in the ZIP"):
            _check_resource(wacz, path, resource, report)
    for name in sorted(names - listed - {DATAPACKAGE, DIGEST_FILE}):
        report.check("file listed", False, name, "in the ZIP but not listed in datapackage.json: nothing vouches for it")
    return datapackage


def _check_digest_file(wacz: Wacz, datapackage_bytes: bytes, report: Report) -> None:
    if DIGEST_FILE not in wacz.names():
        report.check("datapackage digest", False, DIGEST_FILE, "missing: WACZ 1.1.1 binds datapackage.json by its hash there")
        return
    _, digest, problem = load_object(wacz, DIGEST_FILE, DIGEST_FILE_LIMIT)
    if not report.check("datapackage digest readable", digest is not None, DIGEST_FILE, problem or ""):
        return
    report.check("datapackage digest path", digest.get("path") == DATAPACKAGE, DIGEST_FILE,
                 f"path is {digest.get('path')!r}, not {DATAPACKAGE!r}")
    spec = _algorithm(digest.get("hash"))
    if not report.check("datapackage digest form", spec is not None, DIGEST_FILE,
                        f"hash {digest.get('hash')!r} is not '<algorithm>:<hex>'"):
        return
    algorithm, expected = spec
    warn(report, "datapackage digest algorithm", algorithm == "sha256", DIGEST_FILE,
          f"datapackage.json hashed with {algorithm}, not sha256")
    computed = hashlib.new(algorithm, datapackage_bytes).hexdigest()
    report.check("datapackage digest", computed == expected, DATAPACKAGE,
                 f"{DIGEST_FILE} says {algorithm}:{expected}, datapackage.json is {algorithm}:{computed}")


def _check_resource_name(name: object, path: str, seen: set[str], report: Report) -> None:
    """WACZ 1.1.1 asks for lowercase, unique names; players key on paths, so only a warning."""
    if not isinstance(name, str):
        warn(report, "resource name", False, path, "no name (WACZ 1.1.1 asks for one)")
        return
    warn(report, "resource name", name == name.lower() and name not in seen, path,
          f"name {name!r} is {'not lowercase' if name != name.lower() else 'used twice'}")
    seen.add(name)


def _check_resource(wacz: Wacz, path: str, resource: dict, report: Report) -> None:
    spec_text, size = resource.get("hash"), resource.get("bytes")
    stats = resource.get("stats")
    if spec_text is None and isinstance(stats, dict):
        # WACZ 1.0 put the hash and size in `stats`, and the algorithm in `hashing`.
        warn(report, "resource form", False, path, "hash and size in 'stats' (WACZ 1.0 form)")
        spec_text, size = f"{resource.get('hashing')}:{stats.get('hash')}", stats.get("bytes")
    spec = _algorithm(spec_text)
    if not report.check("resource hash form", spec is not None, path,
                        f"hash {spec_text!r} is not '<algorithm>:<hex>' with an algorithm hashlib knows"):
        return
    algorithm, expected = spec
    warn(report, "resource hash algorithm", algorithm == "sha256", path, f"hashed with {algorithm}, not sha256")
    try:
        computed, actual = _hash_entry(wacz, path, algorithm)
    except BundleRejected as exc:
        report.check("entry readable", False, path, str(exc))
        return
    report.check("resource hash", computed == expected, path,
                 f"datapackage.json says {algorithm}:{expected}, the file is {algorithm}:{computed}")
    report.check("resource size", type(size) is int and size == actual, path,
                 f"datapackage.json says {size!r} bytes, the file has {actual:,}")
