"""`archiver doctor`: find and repair what an interrupted run left."""

from __future__ import annotations

from pathlib import Path

import click

from archiver.cli.common import collection_option, echo, json_option, key_option, print_json, signing_key
from archiver.store.collection import Collection
from archiver.check.doctor import diagnose
from archiver.check.doctor_shared import shared_findings


@click.command()
@click.option("--fix", is_flag=True, help="Repair what is found (never deleting evidence), and log it.")
@collection_option
@key_option
@json_option
def doctor(fix: bool, collection_dir: Path, key_file: Path | None, as_json: bool) -> None:
    """Find what an interrupted run left, and with --fix repair it.

    What it finds: WARC files still .open, records on disk that the
    catalog never listed, partial downloads in tmp/, a manifest written but never listed or
    never signed, a custody log line an append left torn. With --fix: whole records of an .open
    file are kept in a closed file and a torn tail is moved to warcs/quarantine/; a torn custody
    line is recorded as torn (its bytes kept); captures whose records and signed attestation
    reached the disk are cataloged from that attestation; an unlisted manifest is set aside in
    manifests/quarantine/ and an unsigned one signed; captures, imports and timestamp tokens
    the custody log missed are recorded there late, and so are documents it missed (each read
    again from the copy kept of it) and notes; every repair goes into the custody log. An
    import stopped before its file was cataloged is reported: importing that file again
    finishes it.

    On a shared collection it also lists, for a person to judge and never repairs: capture
    jobs whose worker stopped beating, objects in the store that no catalog row names (never
    deleted), and worker keys, custody entries or attestations by keys no custody entry announces;
    and, repaired with --fix, manifest files and document copies that only this folder holds,
    not the store every machine fetches them from.

    Exit 0 when nothing was found (or all was fixed), 1 when something needs --fix or a person,
    2 while another archiver process is working on the collection."""
    collection = Collection.open(collection_dir)
    diagnosis = diagnose(collection, signing_key(collection, key_file) if fix else None)
    diagnosis.findings += shared_findings(collection)
    if as_json:
        print_json({"healthy": diagnosis.healthy, "findings": [f.as_dict() for f in diagnosis.findings]})
    elif diagnosis.healthy:
        echo("Nothing left over from an interrupted run.")
    else:
        for finding in diagnosis.findings:
            echo(f"{finding.kind}: {finding.where}: {finding.detail}")
            if finding.fixed:
                echo(f"  fixed: {finding.fixed}")
    if any(finding.fixed is None for finding in diagnosis.findings):  # for --fix, or for a person
        raise SystemExit(1)
