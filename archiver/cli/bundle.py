"""`archiver bundle`: export a signed, WACZ-compatible evidence bundle."""

from __future__ import annotations

from pathlib import Path

import click

from archiver.exchange.bundle import Selection, export_bundle
from archiver.capture.targets import document_key
from archiver.read.urls import lookup_key
from archiver.cli.recovery import repair_interrupted
from archiver.cli.common import (collection_option, echo, json_option, key_option, output_option, print_json,
                                 shows_progress, signing_key, working)
from archiver.store.collection import Collection
from archiver.evidence.signing import grouped


@click.command()
@output_option("The bundle to write (FILE.wacz).", required=True)
@click.option("--claim", "claims", multiple=True, help="A claim id (or unique prefix) to include; repeatable.")
@click.option("--url", "urls", multiple=True, help="Every capture of this URL and the claims citing it; repeatable.")
@click.option("--document", "documents", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Every claim of this document; repeatable.")
@click.option("--all", "everything", is_flag=True, help="Every claim and capture of the collection.")
@click.option("--include-revoked", is_flag=True,
              help="Carry captures and custody entries signed by a key revoked from before them (left out by "
                   "default); verify-bundle fails them.")
@collection_option
@key_option
@json_option
def bundle(output: Path, claims: tuple[str, ...], urls: tuple[str, ...], documents: tuple[Path, ...], everything: bool,
           include_revoked: bool, collection_dir: Path, key_file: Path | None, as_json: bool) -> None:
    """Export the captures behind a selection as one WACZ file, to be verified offline.

    A court or NGO can verify it with nothing but the file and the key fingerprint (`archiver
    verify-bundle`), and open it in pywb or ReplayWeb.page. Its evidence/report.html explains it in plain words.

    A bundle for one claim reveals no other claim, URL or document: it proves its captures
    belong to the collection's signed manifest with Merkle inclusion proofs.

    Captures attested by a key revoked from before they were made, and custody entries a key
    signed after its revocation took effect, are left out (a thief holding the key may have
    made them), and named in the report and by verify-bundle; a capture of the same URL made
    since with the current key is bundled in their place. --include-revoked carries them.

    Exit 0 when written; 1 when timestamps are configured and the bundle carries none for its
    checkpoint (it is still written, without; the next bundle or `archiver manifest` asks
    again), or when it holds captures attested by a key revoked from before they were made
    (--include-revoked), or custody entries signed by a key revoked or rotated out before them
    (written, and named); 2 on bad usage (and when every capture of the selection is left out),
    3 when the machine refused."""
    if not (claims or urls or documents or everything):
        raise click.UsageError("choose what to bundle: --claim, --url, --document or --all")
    if everything and (claims or urls or documents):
        # Never widen a chosen selection to all: the bundle would reveal every other claim.
        narrower = "/".join(name for name, given in (("--claim", claims), ("--url", urls), ("--document", documents)) if given)
        raise click.UsageError(f"--all takes every claim and capture, and {narrower} only some: give --all alone, "
                               f"or {narrower} without it")
    if output.suffix.lower() != ".wacz":
        raise click.UsageError("the bundle's name must end in .wacz")
    for url in urls:  # refused as `capture` refuses it, not found in no capture
        lookup_key(url)
    collection = Collection.open(collection_dir)
    key = signing_key(collection, key_file)
    repair_interrupted(collection, key)
    selection = Selection(list(claims), list(urls), [document_key(d, collection.root) for d in documents], everything)
    with working("bundling", shows_progress(as_json)) as step:
        result = export_bundle(collection, key, selection, output, step, include_revoked)
    # A bundle without the timestamp the collection asks for is written, but not passed off as timestamped.
    missing = bool(collection.config.timestamps.authorities) and not result.timestamped
    if as_json:
        print_json({"bundle": result.bundle_id, "path": str(output), "sha256": result.sha256, "claims": result.claims,
                    "captures": result.captures, "fingerprint": key.fingerprint, "timestamped": result.timestamped,
                    "timestamp_failures": result.timestamp_failures, "manifest": result.manifest_sequence,
                    "captures_stored_since": result.stored_since, "attested_by_revoked_keys": result.distrusted,
                    "custody_entries_by_keys_out_of_service": result.distrusted_entries,
                    "left_out_attested_by_revoked_keys": result.left_out,
                    "custody_entries_left_out": result.left_out_entries,
                    "cited_urls_not_bundled": result.not_bundled})
    else:
        echo(f"Wrote {output}: {result.claims} claim(s), {result.captures} capture(s)")
        echo(f"SHA-256 {result.sha256}")
        echo(f"Give the recipient this key fingerprint by another channel: {grouped(key.fingerprint)}")
        echo(f"They check it with: archiver verify-bundle {output.name} --fingerprint '{grouped(key.fingerprint)}'")
        if result.not_bundled:
            echo(f"{result.not_bundled} cited URL(s) have no capture in this bundle (never captured, or only since "
                 "the manifest was sealed): the report and verify-bundle name each", err=True)
        for failure in result.timestamp_failures:
            echo(f"Timestamp failed: {failure}", err=True)
        if result.stored_since:
            echo(f"{result.stored_since} capture(s) of the selection were stored after manifest "
                 f"{result.manifest_sequence} was sealed, and are not in this bundle: bundle again to include them",
                 err=True)
        if missing and not result.timestamp_failures:
            echo("Not timestamped: the manifest's checkpoint got no timestamp when it was sealed", err=True)
        if result.distrusted:
            echo(f"{len(result.distrusted)} capture(s) in this bundle are attested by a key revoked from before they were "
                 f"made ({', '.join(result.distrusted[:5])}{', …' if len(result.distrusted) > 5 else ''}): verify-bundle "
                 "fails them; capture their URLs again, then bundle again without --include-revoked", err=True)
        if result.left_out:
            echo(f"{len(result.left_out)} capture(s) left out, attested by a key revoked from before they were made "
                 f"({', '.join(result.left_out[:5])}{', …' if len(result.left_out) > 5 else ''}): the report and "
                 "verify-bundle name each; --include-revoked carries them (verify-bundle then fails them)", err=True)
        for why in result.left_out_entries:
            echo(f"Custody entry left out, signed by a revoked key: {why}", err=True)
        for why in result.distrusted_entries:  # in the collection's log for good: verify fails it too
            echo(f"Custody entry carried that verify-bundle fails: {why}", err=True)
    if missing or result.distrusted or result.distrusted_entries:  # written, but not passed off as a bundle that verifies
        raise SystemExit(1)
