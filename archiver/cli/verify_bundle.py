"""`archiver verify-bundle`: check an evidence bundle anywhere, offline, without a collection."""

from __future__ import annotations

from pathlib import Path

import click

from archiver.exchange.bundle_verify import verify_bundle
from archiver.cli.common import echo, json_option, print_json
from archiver.cli.verify import print_report
from archiver.errors import UsageProblem
from archiver.evidence.signing import PublicKey, grouped, parse_fingerprint


@click.command("verify-bundle")
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--fingerprint", help="The signing key's fingerprint, as the bundle's maker gave it to you.")
@click.option("--pubkey", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Or the maker's public key (PEM) itself.")
@click.option("--tsa-roots", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CA certificates (PEM) you trust for RFC 3161 timestamps: an archiver bundle's, and the time "
                   "signature of a WACZ signed with a domain certificate.")
@json_option
def verify_bundle_command(bundle: Path, fingerprint: str | None, pubkey: Path | None, tsa_roots: Path | None,
                          as_json: bool) -> None:
    """Check BUNDLE (a .wacz) offline, with no collection.

    It checks every file's hash, every WARC
    record's digests, the datapackage signature, and, for a bundle made by archiver, the
    signed statement against the fingerprint, the Merkle proofs that its captures are in the
    collection's signed manifest, the attestations, the custody entries and the timestamp.

    WACZ files made by other tools get the checks that apply to them, and the output says
    which. Exit 0 only when every check passed, 1 when any failed, 2 on bad usage."""
    if fingerprint and pubkey:
        raise click.UsageError("give --fingerprint or --pubkey, not both")
    if pubkey:
        given = pubkey.read_bytes()
        if b"PRIVATE KEY-----" in given:  # a signing key: the one file of a collection never to give away
            raise UsageProblem(f"{pubkey} is a private key, not the public key --pubkey checks against",
                               "pass the public key: the collection's keys/FINGERPRINT.pub.pem, or what "
                               "`archiver keys export -o FILE` writes (and keep the private key to yourself)")
        try:
            fingerprint = PublicKey.from_pem(given).fingerprint
        except ValueError:
            raise UsageProblem(f"{pubkey} is not an Ed25519 public key in PEM", "give the key `archiver keys export` wrote") from None
    elif fingerprint is not None:
        fingerprint = parse_fingerprint(fingerprint)
    roots = tsa_roots.read_bytes() if tsa_roots else None
    if roots is not None:
        from cryptography import x509

        try:
            x509.load_pem_x509_certificates(roots)
        except ValueError:
            raise UsageProblem(f"{tsa_roots} holds no PEM certificate", "give the TSA's CA certificates, in PEM") from None
    report = verify_bundle(bundle, fingerprint, roots)
    if as_json:
        print_json({**report.as_dict(), "bundle": str(bundle), "fingerprint": fingerprint})
    else:
        if fingerprint:
            echo(f"Checking {bundle.name} against key {grouped(fingerprint)}")
        print_report(report)
    if not report.ok:
        raise SystemExit(1)
