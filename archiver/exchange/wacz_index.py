"""The index of a WACZ: every CDXJ line checked to point at a record of the WARC files."""

from __future__ import annotations

import json

from isal import igzip, isal_zlib

from archiver.check.findings import Report
from archiver.check.scan import FileScan
from archiver.exchange.zipreader import BundleRejected, Wacz

_LINE_LIMIT = 1 << 20  # the longest CDXJ line read


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
