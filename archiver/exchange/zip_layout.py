"""Where the pieces of a ZIP lie, for zipreader: the end records, and each entry's local
header, data and data descriptor. Together they must tile the file exactly, and every header
must say what the central directory says: a reader that scans a ZIP from its start (Java's
ZipInputStream, `jar x` from a pipe) or trusts a name in an extra field (`unzip`) must find the
very entries the directory lists, as zipreader reads them, or the ZIP is refused."""

from __future__ import annotations

import io
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from archiver.errors import ArchiverError, UsageProblem

_END = struct.Struct("<4s4H2LH")          # end of central directory record
_END64_LOCATOR = struct.Struct("<4sLQL")
_END64 = struct.Struct("<4sQ2H2L4Q")      # without extensible data: 56 bytes
_LOCAL = struct.Struct("<4s5H3L2H")       # local file header, before name and extra field
_CENTRAL = struct.Struct("<4s6H3L5H2L")   # central directory entry, before name, extra field and comment
FLAG_ENCRYPTED = 0x01
_FLAG_DESCRIPTOR = 0x08
_FLAG_UTF8 = 0x800
# The flags that change how a reader takes an entry's bytes or name; the others (compression
# level hints) may differ between a local header and the directory.
_FLAGS_READERS_HEED = FLAG_ENCRYPTED | _FLAG_DESCRIPTOR | _FLAG_UTF8
_DESCRIPTORS = (struct.Struct("<3L"), struct.Struct("<L2Q"))  # CRC-32 and sizes: 4 or 8 bytes each
_DESCRIPTOR_MAX = 4 + 20                 # its optional signature, then CRC-32 and ZIP64 sizes
_ZIP64_SIZE = 0xFFFFFFFF                 # in a size field: the size is in the ZIP64 extra field
_ZIP64_EXTRA = 0x0001
_UNICODE_PATH_EXTRA = 0x7075             # Info-ZIP's: a name `unzip` uses instead of the entry's


class NotAZip(UsageProblem):
    """A file that is no ZIP at all (empty, cut before its end records, another kind of file):
    given to import, the wrong file (exit code 2); given to verify-bundle, a bundle that fails."""


class BundleRejected(ArchiverError):
    """A ZIP whose structure could harm or deceive its reader: refused before any entry is
    trusted, or an entry whose bytes are not what the ZIP declares."""

    exit_code = 1  # the bundle fails verification, as a failed check would


@dataclass(frozen=True)
class EndRecords:
    count: int             # entries, as declared
    directory_offset: int
    directory_size: int
    comment: bytes         # the ZIP comment: text nothing in a WACZ signs, which `unzip` prints


def end_records(path: Path, file: BinaryIO) -> EndRecords:
    """The central directory as the end records declare it; the directory must end exactly
    where the end records begin (no bytes prepended or hidden)."""
    size = file.seek(0, io.SEEK_END)
    tail_start = max(0, size - (_END.size + 0xFFFF))
    file.seek(tail_start)
    tail = file.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < _END.size:
        raise NotAZip(f"{path} is not a ZIP file, so not a WACZ")
    _, disk, directory_disk, on_disk, count, directory_size, directory_offset, comment = _END.unpack_from(tail, at)
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
            signature, _, _, _, disk, directory_disk, on_disk, count, directory_size, directory_offset = _END64.unpack(record)
            if signature != b"PK\x06\x06" or disk64:
                raise BundleRejected("the ZIP64 end record is not where its locator says")
            directory_end = end64_at
    if disk or directory_disk or on_disk != count:
        raise BundleRejected("the ZIP spans several disks (or its end record says so of some entries)")
    if directory_offset + directory_size != directory_end:
        raise BundleRejected("the central directory does not end where the end record begins "
                             "(bytes prepended to the ZIP, or hidden inside it)")
    return EndRecords(count, directory_offset, directory_size, tail[at + _END.size:])


@dataclass(frozen=True)
class CentralEntry:
    """Of an entry's central directory record, what its local header must repeat."""

    version_needed: int
    time: int  # MS-DOS time and date, as stored
    date: int


def central_entries(file: BinaryIO, infos: list[zipfile.ZipInfo], ends: EndRecords) -> dict[str, CentralEntry]:
    """Each entry's record, walked in the central directory's bytes: the records must fill the
    directory exactly, each holding the name, extra field and comment zipfile read for it, on
    disk 0. Python's zipfile reads a record's name or comment past the directory's end as
    shorter, where `unzip` reads on into the end record: the two would name another entry, or
    show a comment nothing signs."""
    file.seek(ends.directory_offset)
    directory = file.read(ends.directory_size)
    entries: dict[str, CentralEntry] = {}
    at = 0
    for info in infos:
        if at + _CENTRAL.size > len(directory):
            raise BundleRejected(f"entry {info.filename!r}: its central directory record runs past the directory")
        (signature, _, version_needed, _, _, time, date, _, _, _, name_length, extra_length, comment_length,
         disk, _, _, _) = _CENTRAL.unpack_from(directory, at)
        name_at = at + _CENTRAL.size
        at = name_at + name_length + extra_length + comment_length
        encoding = "utf-8" if info.flag_bits & _FLAG_UTF8 else "cp437"
        if signature != b"PK\x01\x02" or at > len(directory) or \
                directory[name_at:name_at + name_length] != info.orig_filename.encode(encoding) or \
                directory[at - comment_length:at] != info.comment:
            raise BundleRejected(f"entry {info.filename!r}: its central directory record runs past the directory "
                                 "or is not where the one before it ends (readers would name it otherwise)")
        if disk:
            raise BundleRejected(f"entry {info.filename!r} is on disk {disk}: the ZIP spans several disks")
        entries[info.filename] = CentralEntry(version_needed, time, date)
    if at != len(directory):
        raise BundleRejected(f"{len(directory) - at:,} bytes of the central directory belong to no entry")
    return entries


def local_headers(file: BinaryIO, infos: list[zipfile.ZipInfo], directory_offset: int,
                  central: dict[str, CentralEntry]) -> dict[str, int]:
    """Where each entry's data begins. Entries in offset order must tile the file up to the
    central directory: an overlap lets one small piece of data stand for many entries (David
    Fifield's overlapping zip bomb) or one byte range for two contents, and bytes between
    entries can hold a whole entry the directory does not list."""
    data_offsets: dict[str, int] = {}
    end, previous = 0, None
    for info in sorted(infos, key=lambda i: i.header_offset):
        name = info.filename
        if info.header_offset < end:
            raise BundleRejected(f"entry {name!r} starts at byte {info.header_offset:,}, inside the data of "
                                 f"{previous!r}: entries overlap (an overlapping zip bomb?)")
        if info.header_offset > end:
            raise BundleRejected(f"{info.header_offset - end:,} bytes before entry {name!r} belong to no entry "
                                 "(data hidden in the ZIP)")
        file.seek(info.header_offset)
        header = file.read(_LOCAL.size)
        if len(header) < _LOCAL.size or header[:4] != b"PK\x03\x04":
            raise BundleRejected(f"entry {name!r} has no local header where the central directory says")
        _, version_needed, flags, method, time, date, crc, compressed, size, name_length, extra_length = _LOCAL.unpack(header)
        local_name = file.read(name_length)
        encoding = "utf-8" if info.flag_bits & _FLAG_UTF8 else "cp437"
        if local_name != info.orig_filename.encode(encoding):
            raise BundleRejected(f"entry {name!r} is named {local_name!r} in its local header")
        extra = _extra_fields(file.read(extra_length))
        _check_unicode_path(name, extra, _extra_fields(info.extra))
        local = (flags & _FLAGS_READERS_HEED, method, *_zip64_sizes(crc, compressed, size, extra))
        listed = (info.flag_bits & _FLAGS_READERS_HEED, info.compress_type, info.CRC, info.compress_size, info.file_size)
        if local != listed and not (flags & _FLAG_DESCRIPTOR and local[:2] == listed[:2] and local[2:] == (0, 0, 0)):
            raise BundleRejected(f"entry {name!r}: its local header disagrees with the central directory")
        # What a reader shows of it (its time, the version it needs) differs by where it looks otherwise.
        if CentralEntry(version_needed, time, date) != central[name]:
            raise BundleRejected(f"entry {name!r}: its local header gives another time, date or version needed "
                                 "than the central directory")
        data_offsets[name] = info.header_offset + _LOCAL.size + name_length + extra_length
        end = data_offsets[name] + info.compress_size
        if end <= directory_offset and info.flag_bits & _FLAG_DESCRIPTOR:
            end += _descriptor_length(file, end, info)
        if end > directory_offset:
            raise BundleRejected(f"entry {name!r}: its data runs into the central directory")
        previous = name
    if end != directory_offset:
        raise BundleRejected(f"{directory_offset - end:,} bytes before the central directory belong to no entry "
                             "(data hidden in the ZIP)")
    return data_offsets


def _extra_fields(extra: bytes) -> dict[int, bytes]:
    """An extra field's blocks by their id (the last, if one repeats)."""
    blocks, at = {}, 0
    while at + 4 <= len(extra):
        kind, length = struct.unpack_from("<2H", extra, at)
        blocks[kind] = extra[at + 4:at + 4 + length]
        at += 4 + length
    return blocks


def _check_unicode_path(name: str, *extras: dict[int, bytes]) -> None:
    """`unzip` extracts an entry under the name in its Unicode Path extra field (when that
    field's CRC matches the entry's name), so the field may only repeat the name."""
    for extra in extras:
        field = extra.get(_UNICODE_PATH_EXTRA)
        if field is not None and field[5:] != name.encode("utf-8"):
            raise BundleRejected(f"entry {name!r} names itself {field[5:]!r} in a Unicode Path extra field, "
                                 "which unzip would extract it as")


def _zip64_sizes(crc: int, compressed: int, size: int, extra: dict[int, bytes]) -> tuple[int, int, int]:
    """(CRC-32, compressed size, size) of a local header, sizes too large for its fields read
    from its ZIP64 extra field (uncompressed first, as the ZIP specification orders them)."""
    if _ZIP64_SIZE not in (compressed, size):
        return crc, compressed, size
    found = extra.get(_ZIP64_EXTRA, b"")
    values = iter(struct.unpack_from(f"<{len(found) // 8}Q", found))
    size = next(values, -1) if size == _ZIP64_SIZE else size
    compressed = next(values, -1) if compressed == _ZIP64_SIZE else compressed
    return crc, compressed, size


def _descriptor_length(file: BinaryIO, at: int, info: zipfile.ZipInfo) -> int:
    """The length of the data descriptor at `at` (with or without its signature, with 4- or
    8-byte sizes), which must give the central directory's CRC-32 and sizes."""
    file.seek(at)
    raw = file.read(_DESCRIPTOR_MAX)
    expected = (info.CRC, info.compress_size, info.file_size)
    for skip in ((4, 0) if raw[:4] == b"PK\x07\x08" else (0,)):
        for form in _DESCRIPTORS:
            if len(raw) >= skip + form.size and form.unpack_from(raw, skip) == expected:
                return skip + form.size
    raise BundleRejected(f"entry {info.filename!r}: its data descriptor disagrees with the central directory")
