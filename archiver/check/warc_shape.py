"""What a WARC must be for each of its records to be found by itself, as players, indexes and
this catalog find them, whoever wrote it: a gzipped file holds one gzip member per record
(players seek to a member; warcio refuses a file gzipped as a whole), and no record id names
two records (an index, a bundle or a catalog row would point at either)."""

from __future__ import annotations

from collections import Counter

from archiver.check.findings import Report
from archiver.check.scan import FileScan


def check_shape(scan: FileScan, report: Report) -> None:
    """The checks above on one scanned WARC (a record's offset in a scan is that of the gzip
    member it starts in, so records sharing an offset share a member)."""
    name, records = scan.name, scan.records
    shared = sum(n for n in Counter(record.offset for record in records).values() if n > 1)
    report.check("one gzip member per record", not shared, name,
                 lambda: f"gzipped as a whole ({shared} of its {len(records)} records share a gzip member), where each "
                         "record needs a member of its own for a player to seek to it; recompress it with "
                         "`warcio recompress`")
    repeated = [record_id for record_id, n in Counter(record.id for record in records if record.id).items()
                if n > 1]
    report.check("record ids unique", not repeated, name,
                 lambda: f"{len(repeated)} WARC-Record-ID(s) each name more than one record, such as {repeated[0]}: "
                         "an index or a citation of it could mean either")
