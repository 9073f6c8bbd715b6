"""Reading a WACZ (a ZIP) safely, without extracting it, and the checks that apply to any WACZ,
ours or another tool's: the package (datapackage.json, its digest, every file listed and
hashed), the signature of the digest, the digests the WARC records declare, and the index.

Nothing in a ZIP is trusted before its central directory has been inspected. Names that could
escape a folder, links and devices, duplicate names, entries sharing bytes (the overlapping zip
bomb), sizes and compression ratios beyond bounds, encryption, and end records that disagree
with the directory refuse the whole bundle (BundleRejected). Reading then never yields more
than an entry declares, nor accepts less. Nothing is ever written to disk.

Findings go to a verify.Report. Report has no warning level, so a departure from WACZ 1.1.1
that puts no content in doubt (a deflated WARC, an upper-case resource name) is listed among
`not_checked` as "warning: …"; it never fails the report."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import stat
import struct
import threading
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from isal import igzip, isal_zlib

from archiver.errors import ArchiverError, UsageProblem
from archiver.check.scan import HTTP_TYPES, FileScan, ScannedRecord, scan_stream
from archiver.check.findings import Report

MAX_ENTRIES = 100_000
MAX_TOTAL_SIZE = 20 * 10**9
MAX_RATIO = 200
# Below this size a deflated entry cannot be a bomb, and short repetitive JSON legitimately
# compresses past 200:1; bigger entries are held to the ratio.
RATIO_FLOOR = 1 << 20
# The central directory is parsed whole into memory: bounded before parsing, at a generous
# 1 KiB per allowed entry (a WACZ's names are short).
_DIRECTORY_BYTES_PER_ENTRY = 1024

DATAPACKAGE = "datapackage.json"
DIGEST_FILE = "datapackage-digest.json"
DATAPACKAGE_LIMIT = 64 << 20   # 100,000 resources at ~300 bytes each, with room to spare
DIGEST_FILE_LIMIT = 4 << 20    # a domain signature carries certificate chains: tens of KB

_READ_SIZE = 1 << 20
_LINE_LIMIT = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"

_END = struct.Struct("<4s4H2LH")          # end of central directory record
_END64_LOCATOR = struct.Struct("<4sLQL")
_END64 = struct.Struct("<4sQ2H2L4Q")      # without extensible data: 56 bytes
_LOCAL = struct.Struct("<4s5H3L2H")       # local file header, before name and extra field
_FLAG_ENCRYPTED = 0x01
_FLAG_DESCRIPTOR = 0x08
_FLAG_UTF8 = 0x800
_DESCRIPTOR_MIN = 12                     # a data descriptor without signature or ZIP64 sizes
_DOS_DIRECTORY = 0x10
_FILE_KINDS = {stat.S_IFLNK: "a symbolic link", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
               stat.S_IFIFO: "a named pipe", stat.S_IFSOCK: "a socket"}


class BundleRejected(ArchiverError):
    """A ZIP whose structure could harm or deceive its reader: refused before any entry is
    trusted, or an entry whose bytes are not what the ZIP declares."""

    exit_code = 1  # the bundle fails verification, as a failed check would


@dataclass(frozen=True)
class EntryInfo:
    name: str
    size: int             # declared uncompressed size
    compressed_size: int
    compress_type: int    # zipfile.ZIP_STORED or zipfile.ZIP_DEFLATED
    crc: int
    data_offset: int      # where its compressed bytes begin, past the local header


class Wacz:
    """An opened, inspected ZIP. Entries are read from the file object that was inspected,
    never from the path again, so the file cannot be swapped between inspection and reading."""

    def __init__(self, path: Path, file: BinaryIO, entries: dict[str, EntryInfo]) -> None:
        self.path = path
        self._file = file
        self._entries = entries
        self._lock = threading.Lock()  # streams share the file object's position

    def names(self) -> list[str]:
        """Every file entry, in central-directory order (folder entries are not files)."""
        return list(self._entries)

    def info(self, name: str) -> EntryInfo:
        return self._entries[name]

    def open(self, name: str) -> BinaryIO:
        """A stream of the entry's bytes; raises BundleRejected as soon as it yields more bytes
        than declared, and at its end if it held fewer or its CRC-32 differs. KeyError if absent."""
        return io.BufferedReader(_EntryReader(self, self._entries[name]), buffer_size=_READ_SIZE)

    def read(self, name: str, limit: int) -> bytes:
        """A small entry whole (JSON, PEM): refused when it declares more than `limit` bytes."""
        entry = self._entries[name]
        if entry.size > limit:
            raise BundleRejected(f"entry {name!r} declares {entry.size:,} bytes, more than the {limit:,} allowed for it")
        with self.open(name) as stream:
            return stream.read()

    def _read_at(self, offset: int, count: int) -> bytes:
        with self._lock:
            self._file.seek(offset)
            return self._file.read(count)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "Wacz":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _EntryReader(io.RawIOBase):
    """One entry's bytes, inflated with bounded output: asks for one byte more than the
    declared size remains, so a header that lies low is caught at its first extra byte."""

    def __init__(self, wacz: Wacz, entry: EntryInfo) -> None:
        self._wacz = wacz
        self._entry = entry
        self._position = entry.data_offset
        self._left = entry.compressed_size
        self._inflater = zlib.decompressobj(-15) if entry.compress_type == zipfile.ZIP_DEFLATED else None
        self._tail = b""
        self._produced = 0
        self._crc = 0
        self._finished = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:
        if self._finished:
            return 0
        data = self._next(min(len(buffer), self._entry.size - self._produced + 1))
        self._produced += len(data)
        if self._produced > self._entry.size:
            self._finished = True
            raise BundleRejected(f"entry {self._entry.name!r} yields more than the {self._entry.size:,} bytes it "
                                 "declares (a lying header); reading stopped")
        if not data:
            self._finish()
            return 0
        self._crc = zlib.crc32(data, self._crc)
        buffer[:len(data)] = data
        return len(data)

    def _raw(self, count: int) -> bytes:
        count = min(count, self._left)
        data = self._wacz._read_at(self._position, count)
        if len(data) < count:  # inspection saw the data whole: the file shrank since
            self._finished = True
            raise BundleRejected(f"entry {self._entry.name!r} is cut short: the file ends inside its data")
        self._position += count
        self._left -= count
        return data

    def _next(self, count: int) -> bytes:
        if self._inflater is None:
            return self._raw(count)
        while not self._inflater.eof:
            if not self._tail:
                if not self._left:
                    return b""  # the deflate stream is cut short: _finish says so
                self._tail = self._raw(_READ_SIZE)
            data = self._inflater.decompress(self._tail, count)
            self._tail = self._inflater.unconsumed_tail
            if data:
                return data
        return b""

    def _finish(self) -> None:
        self._finished = True
        name = self._entry.name
        if self._inflater is not None and not self._inflater.eof:
            raise BundleRejected(f"entry {name!r}: its deflate stream is cut short")
        if self._inflater is not None and (self._left or self._inflater.unused_data):
            raise BundleRejected(f"entry {name!r}: bytes follow its deflate stream inside the entry")
        if self._produced < self._entry.size:
            raise BundleRejected(f"entry {name!r} holds {self._produced:,} bytes, not the {self._entry.size:,} it declares")
        if self._crc != self._entry.crc:
            raise BundleRejected(f"entry {name!r}: CRC-32 does not match; the entry is damaged or altered")


# -- opening and inspecting -------------------------------------------------------------

def open_wacz(path: Path, *, max_entries: int = MAX_ENTRIES, max_total_size: int = MAX_TOTAL_SIZE,
              max_ratio: int = MAX_RATIO) -> Wacz:
    """The WACZ at `path`, its central directory inspected: UsageProblem if it is not a ZIP,
    BundleRejected (naming the entry) if anything in its structure is unsafe or ambiguous."""
    try:
        file = open(path, "rb")
    except OSError as exc:
        raise UsageProblem(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        entries = _inspect(path, file, max_entries, max_total_size, max_ratio)
    except BaseException:
        file.close()
        raise
    return Wacz(path, file, entries)


def _inspect(path: Path, file: BinaryIO, max_entries: int, max_total_size: int, max_ratio: int) -> dict[str, EntryInfo]:
    declared_count, directory_offset, directory_size = _end_records(path, file)
    if declared_count > max_entries:
        raise BundleRejected(f"the ZIP declares {declared_count:,} entries, more than the {max_entries:,} allowed")
    if directory_size > max_entries * _DIRECTORY_BYTES_PER_ENTRY:
        raise BundleRejected(f"the ZIP's central directory is {directory_size:,} bytes, "
                             f"more than {max_entries:,} entries need")
    file.seek(0)
    try:
        with zipfile.ZipFile(file) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, struct.error, EOFError, NotImplementedError, OverflowError) as exc:
        raise BundleRejected(f"the ZIP's central directory cannot be read: {exc}") from None
    if len(infos) != declared_count:
        # Readers that trust the count and readers that trust the directory would see different files.
        raise BundleRejected(f"the ZIP's end record declares {declared_count:,} entries, its central directory "
                             f"holds {len(infos):,}")
    seen: dict[str, str] = {}
    total = 0
    for info in infos:
        _check_entry(info, max_ratio)
        # Names that differ only in case or Unicode form are one file on many systems.
        key = unicodedata.normalize("NFC", info.filename).casefold()
        if key in seen:
            raise BundleRejected(f"entry {info.filename!r} duplicates the name {seen[key]!r}")
        seen[key] = info.filename
        total += info.file_size
    if total > max_total_size:
        largest = max(infos, key=lambda i: i.file_size)
        raise BundleRejected(f"the ZIP declares {total:,} bytes uncompressed in all (largest: {largest.filename!r}, "
                             f"{largest.file_size:,}), more than the {max_total_size:,} allowed")
    offsets = _local_headers(file, infos, directory_offset)
    return {info.filename: EntryInfo(info.filename, info.file_size, info.compress_size, info.compress_type,
                                     info.CRC, offsets[info.filename])
            for info in infos if not info.filename.endswith("/")}


def _end_records(path: Path, file: BinaryIO) -> tuple[int, int, int]:
    """(entry count, offset, size) of the central directory, as the end records declare them;
    the directory must end exactly where the end records begin (no bytes prepended or hidden)."""
    size = file.seek(0, io.SEEK_END)
    tail_start = max(0, size - (_END.size + 0xFFFF))
    file.seek(tail_start)
    tail = file.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < _END.size:
        raise UsageProblem(f"{path} is not a ZIP file, so not a WACZ")
    _, disk, directory_disk, _, count, directory_size, directory_offset, comment = _END.unpack_from(tail, at)
    end_at = tail_start + at
    if end_at + _END.size + comment != size:
        raise BundleRejected(f"{size - end_at - _END.size - comment:,} bytes follow the end of the ZIP")
    directory_end = end_at
    if end_at >= _END64_LOCATOR.size:
        file.seek(end_at - _END64_LOCATOR.size)
        signature, disk64, end64_at, _ = _END64_LOCATOR.unpack(file.read(_END64_LOCATOR.size))
        if signature == b"PK\x06\x07":
            # The record must sit right before its locator: checked before seeking anywhere it says.
            if end64_at + _END64.size + _END64_LOCATOR.size != end_at:
                raise BundleRejected("the ZIP64 end record is not where its locator says")
            file.seek(end64_at)
            record = file.read(_END64.size)
            signature, _, _, _, disk, directory_disk, _, count, directory_size, directory_offset = _END64.unpack(record)
            if signature != b"PK\x06\x06" or disk64:
                raise BundleRejected("the ZIP64 end record is not where its locator says")
            directory_end = end64_at
    if disk or directory_disk:
        raise BundleRejected("the ZIP spans several disks")
    if directory_offset + directory_size != directory_end:
        raise BundleRejected("the central directory does not end where the end record begins "
                             "(bytes prepended to the ZIP, or hidden inside it)")
    return count, directory_offset, directory_size


def _check_entry(info: zipfile.ZipInfo, max_ratio: int) -> None:
    name = info.filename
    if info.orig_filename != name:  # zipfile cuts a name at its first NUL
        raise BundleRejected(f"entry {info.orig_filename!r} has a NUL character in its name")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise BundleRejected(f"entry {name!r} has a control character in its name")
    if "\\" in name:
        raise BundleRejected(f"entry {name!r} has a backslash in its name, a folder separator on Windows")
    if name.startswith("/"):
        raise BundleRejected(f"entry {name!r} has an absolute path")
    if len(name) >= 2 and name[1] == ":" and name[0].isascii() and name[0].isalpha():
        raise BundleRejected(f"entry {name!r} starts with a drive letter")
    parts = name.removesuffix("/").split("/")
    if ".." in parts:
        raise BundleRejected(f"entry {name!r} has a '..' component, which climbs out of its folder")
    if any(part in ("", ".") for part in parts):
        raise BundleRejected(f"entry {name!r} has an empty or '.' component: it names another entry's path")
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if kind in _FILE_KINDS:
        raise BundleRejected(f"entry {name!r} is {_FILE_KINDS[kind]}, not a regular file")
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise BundleRejected(f"entry {name!r} has the unknown file type {kind:#o}")
    folder = kind == stat.S_IFDIR or bool(info.external_attr & _DOS_DIRECTORY)
    if folder and not name.endswith("/"):
        raise BundleRejected(f"entry {name!r} is marked as a folder but named like a file")
    if name.endswith("/") and info.file_size:
        raise BundleRejected(f"entry {name!r} is named like a folder but holds {info.file_size:,} bytes")
    if info.flag_bits & _FLAG_ENCRYPTED:
        raise BundleRejected(f"entry {name!r} is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise BundleRejected(f"entry {name!r} uses compression method {info.compress_type}, "
                             "neither stored nor deflated as WACZ uses")
    if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
        raise BundleRejected(f"entry {name!r} is stored but declares {info.file_size:,} bytes "
                             f"in {info.compress_size:,}")
    if (info.compress_type == zipfile.ZIP_DEFLATED and info.file_size > RATIO_FLOOR
            and info.file_size > max_ratio * info.compress_size):
        raise BundleRejected(f"entry {name!r} inflates {info.compress_size:,} bytes to {info.file_size:,}, "
                             f"beyond 1:{max_ratio} (a zip bomb?)")


def _local_headers(file: BinaryIO, infos: list[zipfile.ZipInfo], directory_offset: int) -> dict[str, int]:
    """Where each entry's data begins. Entries in offset order must not overlap, nor reach
    into the central directory: an overlap lets one small piece of data stand for many
    entries (David Fifield's overlapping zip bomb) or one byte range for two contents."""
    data_offsets: dict[str, int] = {}
    end, previous = 0, None
    for info in sorted(infos, key=lambda i: i.header_offset):
        name = info.filename
        if info.header_offset < end:
            raise BundleRejected(f"entry {name!r} starts at byte {info.header_offset:,}, inside the data of "
                                 f"{previous!r}: entries overlap (an overlapping zip bomb?)")
        file.seek(info.header_offset)
        header = file.read(_LOCAL.size)
        if len(header) < _LOCAL.size or header[:4] != b"PK\x03\x04":
            raise BundleRejected(f"entry {name!r} has no local header where the central directory says")
        _, _, flags, method, _, _, _, _, _, name_length, extra_length = _LOCAL.unpack(header)
        local_name = file.read(name_length)
        encoding = "utf-8" if info.flag_bits & _FLAG_UTF8 else "cp437"
        if local_name != info.orig_filename.encode(encoding):
            raise BundleRejected(f"entry {name!r} is named {local_name!r} in its local header")
        if method != info.compress_type or flags & _FLAG_ENCRYPTED:
            raise BundleRejected(f"entry {name!r}: its local header disagrees with the central directory")
        data_offsets[name] = info.header_offset + _LOCAL.size + name_length + extra_length
        end = data_offsets[name] + info.compress_size + (_DESCRIPTOR_MIN if info.flag_bits & _FLAG_DESCRIPTOR else 0)
        if end > directory_offset:
            raise BundleRejected(f"entry {name!r}: its data runs into the central directory")
        previous = name
    return data_offsets


# -- warnings and small files -----------------------------------------------------------

def _warn(report: Report, name: str, holds: bool, where: str, detail: str) -> None:
    """A departure from WACZ 1.1.1 that puts no content in doubt: counted when it holds, else
    listed with the caveats, since Report has no warning level."""
    if holds:
        report.passed[name] += 1
    else:
        report.not_checked.append(f"warning: {where}: {detail}")


def _load_object(wacz: Wacz, name: str, limit: int) -> tuple[bytes | None, dict | None, str | None]:
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
        while chunk := stream.read(_READ_SIZE):
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
    data, datapackage, problem = _load_object(wacz, DATAPACKAGE, DATAPACKAGE_LIMIT)
    if data is not None:
        _check_digest_file(wacz, data, report)
    if not report.check("datapackage readable", datapackage is not None, DATAPACKAGE, problem or ""):
        return None
    _warn(report, "datapackage profile", datapackage.get("profile") == "data-package", DATAPACKAGE,
          f"profile is {datapackage.get('profile')!r}, not 'data-package'")
    _warn(report, "wacz_version", datapackage.get("wacz_version") == "1.1.1", DATAPACKAGE,
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
    _, digest, problem = _load_object(wacz, DIGEST_FILE, DIGEST_FILE_LIMIT)
    if not report.check("datapackage digest readable", digest is not None, DIGEST_FILE, problem or ""):
        return
    report.check("datapackage digest path", digest.get("path") == DATAPACKAGE, DIGEST_FILE,
                 f"path is {digest.get('path')!r}, not {DATAPACKAGE!r}")
    spec = _algorithm(digest.get("hash"))
    if not report.check("datapackage digest form", spec is not None, DIGEST_FILE,
                        f"hash {digest.get('hash')!r} is not '<algorithm>:<hex>'"):
        return
    algorithm, expected = spec
    _warn(report, "datapackage digest algorithm", algorithm == "sha256", DIGEST_FILE,
          f"datapackage.json hashed with {algorithm}, not sha256")
    computed = hashlib.new(algorithm, datapackage_bytes).hexdigest()
    report.check("datapackage digest", computed == expected, DATAPACKAGE,
                 f"{DIGEST_FILE} says {algorithm}:{expected}, datapackage.json is {algorithm}:{computed}")


def _check_resource_name(name: object, path: str, seen: set[str], report: Report) -> None:
    """WACZ 1.1.1 asks for lowercase, unique names; players key on paths, so only a warning."""
    if not isinstance(name, str):
        _warn(report, "resource name", False, path, "no name (WACZ 1.1.1 asks for one)")
        return
    _warn(report, "resource name", name == name.lower() and name not in seen, path,
          f"name {name!r} is {'not lowercase' if name != name.lower() else 'used twice'}")
    seen.add(name)


def _check_resource(wacz: Wacz, path: str, resource: dict, report: Report) -> None:
    spec_text, size = resource.get("hash"), resource.get("bytes")
    stats = resource.get("stats")
    if spec_text is None and isinstance(stats, dict):
        # WACZ 1.0 put the hash and size in `stats`, and the algorithm in `hashing`.
        _warn(report, "resource form", False, path, "hash and size in 'stats' (WACZ 1.0 form)")
        spec_text, size = f"{resource.get('hashing')}:{stats.get('hash')}", stats.get("bytes")
    spec = _algorithm(spec_text)
    if not report.check("resource hash form", spec is not None, path,
                        f"hash {spec_text!r} is not '<algorithm>:<hex>' with an algorithm hashlib knows"):
        return
    algorithm, expected = spec
    _warn(report, "resource hash algorithm", algorithm == "sha256", path, f"hashed with {algorithm}, not sha256")
    try:
        computed, actual = _hash_entry(wacz, path, algorithm)
    except BundleRejected as exc:
        report.check("entry readable", False, path, str(exc))
        return
    report.check("resource hash", computed == expected, path,
                 f"datapackage.json says {algorithm}:{expected}, the file is {algorithm}:{computed}")
    report.check("resource size", type(size) is int and size == actual, path,
                 f"datapackage.json says {size!r} bytes, the file has {actual:,}")


# -- the signature of datapackage-digest.json -------------------------------------------

def check_signed_data(digest_json: dict, datapackage: dict, report: Report) -> str | None:
    """The signedData of datapackage-digest.json. Anonymous form: ECDSA P-384 / SHA-256, raw
    r||s, over the ASCII `hash`, with the SPKI `publicKey`. Domain form (authsign): the same
    hash signed with the domain certificate's key, the certificate chain's links checked,
    its root and time signature not (no trusted roots offline). Returns the SHA-256
    fingerprint (hex) of the signing key's SPKI when the signature verifies, else None."""
    signed = digest_json.get("signedData")
    if signed is None:
        report.not_checked.append(f"{DIGEST_FILE}: not signed (no signedData)")
        return None
    if not report.check("signedData readable", isinstance(signed, dict), DIGEST_FILE, "signedData is not an object"):
        return None
    report.check("signed hash", signed.get("hash") == digest_json.get("hash"), DIGEST_FILE,
                 f"signedData.hash {signed.get('hash')!r} is not the digest file's hash {digest_json.get('hash')!r}")
    report.check("signed created", signed.get("created") == datapackage.get("created"), DIGEST_FILE,
                 f"signedData.created {signed.get('created')!r} is not datapackage.json's created "
                 f"{datapackage.get('created')!r}")
    message = signed.get("hash")
    if not report.check("signed hash form", isinstance(message, str) and message.isascii(), DIGEST_FILE,
                        "signedData.hash is not an ASCII string"):
        return None
    if "domainCert" in signed or "domain" in signed:
        return _check_domain_signature(signed, message.encode("ascii"), report)
    return _check_anonymous_signature(signed, message.encode("ascii"), report)


def _b64(value: object) -> bytes | None:
    try:
        return base64.b64decode(value, validate=True) if isinstance(value, str) else None
    except (binascii.Error, ValueError):
        return None


def _spki_fingerprint(key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey) -> str:
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def _check_anonymous_signature(signed: dict, message: bytes, report: Report) -> str | None:
    for field in ("software", "version"):
        _warn(report, "signedData fields", field in signed, DIGEST_FILE, f"signedData has no {field!r}")
    spki = _b64(signed.get("publicKey"))
    try:
        key = serialization.load_der_public_key(spki) if spki is not None else None
    except (ValueError, UnsupportedAlgorithm):
        key = None
    if not report.check("signing key", isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp384r1",
                        DIGEST_FILE, "signedData.publicKey is not a base64 SPKI ECDSA P-384 key (the form players accept)"):
        return None
    raw = _b64(signed.get("signature"))
    if not report.check("signature form", raw is not None and len(raw) == 96, DIGEST_FILE,
                        "signedData.signature is not base64 of a raw P-384 r||s (96 bytes)"):
        return None
    der = encode_dss_signature(int.from_bytes(raw[:48], "big"), int.from_bytes(raw[48:], "big"))
    try:
        key.verify(der, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        report.check("signature", False, DIGEST_FILE, "the ECDSA signature over the hash does not verify with publicKey")
        return None
    report.check("signature", True, DIGEST_FILE, "")
    return _spki_fingerprint(key)


def _check_domain_signature(signed: dict, message: bytes, report: Report) -> str | None:
    try:
        chain = x509.load_pem_x509_certificates(str(signed.get("domainCert", "")).encode("ascii"))
    except ValueError:
        chain = []
    if not report.check("domain certificate", bool(chain), DIGEST_FILE, "signedData.domainCert holds no PEM certificate"):
        return None
    leaf, key = chain[0], chain[0].public_key()
    signature = _b64(signed.get("signature")) or b""
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, message, ec.ECDSA(hashes.SHA256()))   # authsign: DER, base64
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())  # wacz-signing with RSA keys
        else:
            raise InvalidSignature
        verified = True
    except InvalidSignature:
        verified = False
    report.check("domain signature", verified, DIGEST_FILE,
                 "signedData.signature over the hash does not verify with the domain certificate's key")
    domain = signed.get("domain")
    report.check("signing domain", domain in _certificate_names(leaf), DIGEST_FILE,
                 f"signedData.domain {domain!r} is not a name of the domain certificate")
    for child, issuer in zip(chain, chain[1:]):
        try:
            child.verify_directly_issued_by(issuer)
            linked = True
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            linked = False
        report.check("domain certificate chain link", linked, DIGEST_FILE,
                     f"{child.subject.rfc4514_string()} is not signed by the next certificate, {issuer.subject.rfc4514_string()}")
    report.not_checked.append(
        f"{DIGEST_FILE}: domain certificate chain ends at {chain[-1].issuer.rfc4514_string()!r}; whether that is a "
        "trusted root, and whether the certificate was valid when signing, is not checkable offline without trusted roots")
    report.not_checked.append(f"{DIGEST_FILE}: timeSignature (RFC 3161 token over the signature): not checked")
    return _spki_fingerprint(key) if verified else None


def _certificate_names(certificate: x509.Certificate) -> set[str]:
    names = {a.value for a in certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)}
    try:
        names |= set(certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
                     .value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        pass
    return names


# -- the WARC records -------------------------------------------------------------------

def check_archives(wacz: Wacz, report: Report) -> list[FileScan]:
    """Every archive/*.warc(.gz) streamed through scan_stream, each record's declared block and
    payload digests against its bytes. SHA-256 digests come from that one reading; digests in
    another algorithm hashlib knows (sha1, as most tools write) are checked by a second
    streaming pass over that file. Records without digests are counted as not checked."""
    names = [n for n in wacz.names() if n.startswith("archive/") and n.endswith((".warc", ".warc.gz"))]
    report.check("archives present", bool(names), "archive/", "no WARC file in archive/")
    scans = []
    for name in names:
        _warn(report, "archive stored", wacz.info(name).compress_type == zipfile.ZIP_STORED, name,
              "deflated, where WACZ stores WARC files so that players can seek into them")
        scans.append(check_warc(lambda name=name: wacz.open(name), name, report))
    return scans


def check_warc(open_stream: Callable[[], BinaryIO], name: str, report: Report) -> FileScan:
    """One WARC, opened by `open_stream` (called once or twice), read through scan_stream, each
    record's declared block and payload digests checked against its bytes, whatever the
    algorithm: SHA-256 from that reading, others (sha1, as most tools write) by a second pass."""
    try:
        with open_stream() as stream:
            scan = scan_stream(stream, name)
        report.check("archive readable", scan.error is None, name, scan.error or "")
        if _check_sha256_digests(name, scan, report):
            with open_stream() as stream:
                _check_other_digests(stream, name, report)
    except BundleRejected as exc:
        report.check("entry readable", False, name, str(exc))
        scan = FileScan(name, error=str(exc))
    return scan


def _digest_bytes(declared: str, size: int) -> bytes | None:
    """The raw digest in a WARC digest value: hex, base32 (as most tools write sha1) or base64."""
    value = declared.partition(":")[2].strip()
    if len(value) == 2 * size and all(c in "0123456789abcdefABCDEF" for c in value):
        return bytes.fromhex(value)
    for decode in (lambda v: base64.b32decode(v.upper() + "=" * (-len(v) % 8)),
                   lambda v: base64.b64decode(v, validate=True),
                   lambda v: base64.urlsafe_b64decode(v)):
        try:
            raw = decode(value)
        except (binascii.Error, ValueError):
            continue
        if len(raw) == size:
            return raw
    return None


def _known_algorithm(declared: str) -> str | None:
    algorithm = declared.partition(":")[0].strip().lower()
    try:
        return algorithm if hashlib.new(algorithm).digest_size else None
    except ValueError:
        return None


def _compare(report: Report, check: str, where: str, header: str, declared: str, computed: bytes, algorithm: str) -> None:
    expected = _digest_bytes(declared, len(computed))
    report.check(check, expected == computed, where,
                 f"{header}: declared {declared}, computed {algorithm}:{computed.hex()}" if expected is not None
                 else f"{header}: {declared!r} is not a {algorithm} digest in hex, base32 or base64")


def _check_sha256_digests(name: str, scan: FileScan, report: Report) -> bool:
    """Checks the SHA-256 digests from the scan; True when some records declare digests in
    another known algorithm, for _check_other_digests."""
    others = False
    undigested = revisits = unknown = 0
    for record in scan.records:
        declared = {h: record.headers.get(h) for h in ("WARC-Block-Digest", "WARC-Payload-Digest")}
        if not any(declared.values()):
            undigested += 1
            continue
        for header, value in declared.items():
            if not value:
                continue
            if header == "WARC-Payload-Digest" and record.type == "revisit":
                revisits += 1  # it names the payload of an earlier capture, not its own
                continue
            algorithm = _known_algorithm(value)
            if algorithm is None:
                unknown += 1
            elif algorithm != "sha256":
                others = True
            else:
                computed = record.block_digest if header == "WARC-Block-Digest" else _sha256_payload(record)
                check = "record block digest" if header == "WARC-Block-Digest" else "record payload digest"
                _compare(report, check, f"{name} {record.id}", header, value, bytes.fromhex(computed[7:]), "sha256")
    for count, what in ((undigested, "records carry no digest"),
                        (revisits, "revisit payload digests name an earlier capture's payload"),
                        (unknown, "digests use an algorithm hashlib does not know")):
        if count:
            report.not_checked.append(f"{name}: {count} {what}: not checked")
    return others


def _sha256_payload(record: ScannedRecord) -> str:
    # Outside HTTP records the payload is the whole block (as warcio check reads it).
    return record.payload_digest if record.payload_digest is not None else record.block_digest


def _check_other_digests(stream: BinaryIO, name: str, report: Report) -> None:
    """A second reading of one WARC for the digests scan_stream does not compute: each record's
    block and payload hashed with the algorithm its own header names. Damage ends the pass
    quietly: the scan has already reported it."""
    inflated = igzip.IGzipFile(fileobj=stream) if stream.peek(2)[:2] == _GZIP_MAGIC else stream
    try:
        while line := inflated.readline(_LINE_LIMIT):
            if line in (b"\r\n", b"\n"):
                continue
            if not line.startswith(b"WARC/"):
                return
            headers: dict[str, str] = {}
            while (line := inflated.readline(_LINE_LIMIT)) not in (b"\r\n", b"\n", b""):
                field, _, value = line.decode("utf-8", "replace").partition(":")
                headers[field.strip()] = value.strip()
            if not _rehash_record(inflated, headers, name, report):
                return
    except (OSError, EOFError, ValueError, isal_zlib.error):
        return


def _rehash_record(stream: BinaryIO, headers: dict[str, str], name: str, report: Report) -> bool:
    """False when the record is cut short."""
    length = int(headers.get("Content-Length", "-1"))
    if length < 0:
        return False
    record_type = headers.get("WARC-Type")
    block, payload = headers.get("WARC-Block-Digest"), headers.get("WARC-Payload-Digest")
    block_algorithm = _known_algorithm(block) if block else None
    payload_algorithm = _known_algorithm(payload) if payload and record_type != "revisit" else None
    block_hash = hashlib.new(block_algorithm) if block_algorithm not in (None, "sha256") else None
    payload_hash = hashlib.new(payload_algorithm) if payload_algorithm not in (None, "sha256") else None
    # The same rule as scan_stream: an HTTP record's payload follows the blank line ending its head.
    in_head = record_type in HTTP_TYPES and "application/http" in headers.get("Content-Type", "")
    head = bytearray()
    left = length
    while left:
        piece = stream.read(min(left, _READ_SIZE))
        if not piece:
            return False
        left -= len(piece)
        if block_hash is not None:
            block_hash.update(piece)
        if in_head:
            searched_from = max(0, len(head) - 3)
            head += piece
            end = _head_end(head, searched_from)
            if end is None:
                continue
            in_head, piece = False, bytes(head[end:])
        if payload_hash is not None:
            payload_hash.update(piece)
    if in_head and payload_hash is not None:  # no blank line: all head, an empty payload
        payload_hash = hashlib.new(payload_algorithm)
    where = f"{name} {headers.get('WARC-Record-ID')}"
    if block_hash is not None:
        _compare(report, "record block digest", where, "WARC-Block-Digest", block, block_hash.digest(), block_algorithm)
    if payload_hash is not None:
        _compare(report, "record payload digest", where, "WARC-Payload-Digest", payload, payload_hash.digest(),
                 payload_algorithm)
    return True


def _head_end(head: bytearray, start: int) -> int | None:
    """Index just past the first blank line (CRLF or bare LF) in `head`, searching from `start`."""
    ends = [i + n for i, n in ((head.find(b"\r\n\r\n", start), 4), (head.find(b"\n\n", start), 2)) if i >= 0]
    return min(ends) if ends else None


# -- the index --------------------------------------------------------------------------

def check_index(wacz: Wacz, report: Report, scans: list[FileScan]) -> None:
    """Every CDXJ line of indexes/*.cdx, *.cdxj (or .gz) points, by filename, offset and
    length, at a record that begins there in that archive file. The ZipNum block index
    (index.idx), sort order and the lines' url/digest fields are not checked."""
    starts: dict[str, dict[int, int]] = {}
    for scan in scans:
        if scan.error is None:
            # A record spans from its start to the next start: for gzip, its member(s).
            offsets = sorted({record.offset for record in scan.records})
            starts[scan.name.removeprefix("archive/")] = {
                offset: end - offset for offset, end in zip(offsets, offsets[1:] + [scan.size])}
    unreadable = {scan.name.removeprefix("archive/") for scan in scans if scan.error is not None}
    indexes = [n for n in wacz.names() if n.startswith("indexes/") and n.endswith((".cdx", ".cdxj", ".cdx.gz", ".cdxj.gz"))]
    report.check("index present", bool(indexes), "indexes/", "no CDXJ index in indexes/")
    for name in indexes:
        try:
            _check_index_file(wacz, name, starts, unreadable, report)
        except BundleRejected as exc:
            report.check("entry readable", False, name, str(exc))
    for name in wacz.names():
        if name.startswith("indexes/") and name.endswith(".idx"):
            report.not_checked.append(f"{name}: ZipNum block index not checked")


def _check_index_file(wacz: Wacz, name: str, starts: dict[str, dict[int, int]], unreadable: set[str],
                      report: Report) -> None:
    legacy = 0
    with wacz.open(name) as stream:
        lines = igzip.IGzipFile(fileobj=stream) if name.endswith(".gz") else stream
        try:
            for number, line in enumerate(iter(lambda: lines.readline(_LINE_LIMIT), b""), 1):
                where = f"{name} line {number}"
                if not line.endswith(b"\n") and len(line) >= _LINE_LIMIT:
                    report.check("index line", False, where, f"longer than {_LINE_LIMIT:,} bytes; the rest not read")
                    return
                if not line.strip() or line.startswith((b"!", b" CDX")):
                    continue
                fields = _cdxj_fields(line)
                if fields is None:
                    legacy += 1
                    continue
                filename, offset, length = fields
                if filename in unreadable:
                    continue  # the archive's own failure says why
                records = starts.get(filename)
                if not report.check("index target file", records is not None, where,
                                    f"points at {filename!r}, not a WARC file in archive/"):
                    continue
                report.check("index target record", records.get(offset) == length, where,
                             f"{filename} offset {offset} length {length}: " +
                             (f"the record there is {records[offset]} bytes long" if offset in records
                              else "no record begins there"))
        except (OSError, EOFError, isal_zlib.error) as exc:
            report.check("index readable", False, name, f"not a readable gzip file: {exc}")
    if legacy:
        report.not_checked.append(f"{name}: {legacy} lines not in CDXJ form (legacy CDX): not checked")


def _cdxj_fields(line: bytes) -> tuple[str, int, int] | None:
    """(filename, offset, length) of a CDXJ line; None for lines in another form."""
    parts = line.split(b" ", 2)
    if len(parts) < 3:
        return None
    try:
        value = json.loads(parts[2])
        filename, offset, length = value["filename"], int(value["offset"]), int(value["length"])
    except (ValueError, KeyError, TypeError):
        return None
    return (filename, offset, length) if isinstance(filename, str) else None


# -- all of it --------------------------------------------------------------------------

def check_wacz(wacz: Wacz, report: Report) -> tuple[list[FileScan], str | None]:
    """Every check that applies to any WACZ. Returns the WARC scans and the fingerprint of the
    datapackage signing key when its signature verified."""
    datapackage = check_package(wacz, report)
    signer = None
    if datapackage is not None and DIGEST_FILE in wacz.names():
        _, digest_json, _ = _load_object(wacz, DIGEST_FILE, DIGEST_FILE_LIMIT)
        if digest_json is not None:
            signer = check_signed_data(digest_json, datapackage, report)
    scans = check_archives(wacz, report)
    check_index(wacz, report, scans)
    return scans, signer


def verify_wacz(path: Path) -> Report:
    """Every check above on the WACZ at `path`."""
    report = Report()
    with open_wacz(path) as wacz:
        check_wacz(wacz, report)
    return report
