"""Reading a ZIP safely, without extracting it: the reader every WACZ check stands on.

Nothing in a ZIP is trusted before its central directory has been inspected. Names that could
escape a folder, links and devices, duplicate names, entries sharing bytes (the overlapping zip
bomb), sizes and compression ratios beyond bounds, encryption, and end records, local headers or
bytes between entries that another reader could take for other files (zip_layout) refuse the
whole bundle (BundleRejected). Reading then never yields more
than an entry declares, nor accepts less. Nothing is ever written to disk."""

from __future__ import annotations

import hashlib
import io
import stat
import struct
import threading
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from archiver.errors import UsageProblem
from archiver.exchange.zip_layout import FLAG_ENCRYPTED, BundleRejected, central_entries, end_records, local_headers

MAX_ENTRIES = 100_000
MAX_TOTAL_SIZE = 20 * 10**9
MAX_RATIO = 200
# Below this size a deflated entry cannot be a bomb, and short repetitive JSON legitimately
# compresses past 200:1; bigger entries are held to the ratio.
RATIO_FLOOR = 1 << 20
# The central directory is parsed whole into memory: bounded before parsing, at a generous
# 1 KiB per allowed entry (a WACZ's names are short).
_DIRECTORY_BYTES_PER_ENTRY = 1024

# Entries are read, and hashed by their readers, in pieces of this size.
READ_SIZE = 1 << 20

_DOS_DIRECTORY = 0x10
_FILE_KINDS = {stat.S_IFLNK: "a symbolic link", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
               stat.S_IFIFO: "a named pipe", stat.S_IFSOCK: "a socket"}


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

    def __init__(self, path: Path, file: BinaryIO, entries: dict[str, EntryInfo], comment: bytes,
                 entry_comments: dict[str, bytes] | None = None, folders: list[str] | None = None) -> None:
        self.path = path
        self._file = file
        self._entries = entries
        self.comment = comment  # the ZIP comment, which nothing in a WACZ signs
        self.entry_comments = entry_comments or {}  # each entry's own comment, which `unzip -v` prints
        self.folders = folders or []  # folder entries: no bytes, but `unzip` makes each folder
        self._lock = threading.Lock()  # streams share the file object's position

    def names(self) -> list[str]:
        """Every file entry, in central-directory order (folder entries are not files)."""
        return list(self._entries)

    def info(self, name: str) -> EntryInfo:
        return self._entries[name]

    def open(self, name: str) -> BinaryIO:
        """A stream of the entry's bytes; raises BundleRejected as soon as it yields more bytes
        than declared, and at its end if it held fewer or its CRC-32 differs. KeyError if absent."""
        return io.BufferedReader(_EntryReader(self, self._entries[name]), buffer_size=READ_SIZE)

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

    def sha256(self) -> str:
        """The SHA-256 (hex) of the whole file, as inspected."""
        with self._lock:
            self._file.seek(0)
            return hashlib.file_digest(self._file, "sha256").hexdigest()

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
                self._tail = self._raw(READ_SIZE)
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
        entries, comment, entry_comments, folders = _inspect(path, file, max_entries, max_total_size, max_ratio)
    except BaseException:
        file.close()
        raise
    return Wacz(path, file, entries, comment, entry_comments, folders)


def _inspect(path: Path, file: BinaryIO, max_entries: int, max_total_size: int,
             max_ratio: int) -> tuple[dict[str, EntryInfo], bytes, dict[str, bytes], list[str]]:
    ends = end_records(path, file)
    declared_count, directory_size = ends.count, ends.directory_size
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
    offsets = local_headers(file, infos, ends.directory_offset, central_entries(file, infos, ends))
    entries = {info.filename: EntryInfo(info.filename, info.file_size, info.compress_size, info.compress_type,
                                        info.CRC, offsets[info.filename])
               for info in infos if not info.filename.endswith("/")}
    return (entries, ends.comment, {info.filename: info.comment for info in infos if info.comment},
            [info.filename for info in infos if info.filename.endswith("/")])


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
    if info.flag_bits & FLAG_ENCRYPTED:
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
