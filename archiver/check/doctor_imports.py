"""An imported WARC stored in warcs/ that the catalog never listed: an import that stopped
before cataloging it (importing the same file again finishes it), or one an earlier version
stored though no player could read it record by record (a file gzipped as a whole), which no
import can ever catalog: set aside in warcs/quarantine/, its bytes kept, as a torn tail is."""

from __future__ import annotations

from archiver.check.doctor_findings import Diagnosis, Finding
from archiver.check.findings import Report
from archiver.check.scan import scan_warc
from archiver.check.warc_shape import check_shape
from archiver.store.collection import Collection
from archiver.store.storage import LocalFolder


def uncataloged_import(collection: Collection, name: str, fix: bool, diagnosis: Diagnosis) -> None:
    """The finding for the imported file `name`, which the catalog does not list; with `fix`,
    one that can never be cataloged is set aside (in a local folder: a bucket keeps it, named)."""
    report = Report()
    check_shape(scan_warc(collection.storage, name, hash_file=False), report)
    if report.ok:
        # Stored, never cataloged: only the import knows where it came from, and finishes it.
        diagnosis.findings.append(Finding("interrupted import", f"warcs/{name}", "an import stopped before the catalog "
                                          "listed it: import the same file again to finish it"))
        return
    failure = report.failures[0]
    finding = Finding("unimportable import", f"warcs/{name}",
                      f"stored by an earlier version's import, never cataloged, and never can be: {failure.detail}")
    diagnosis.findings.append(finding)
    storage = collection.storage
    if fix and isinstance(storage, LocalFolder):
        finding.fixed = f"set aside in warcs/{storage.set_aside(name)}; import the original file once recompressed"
