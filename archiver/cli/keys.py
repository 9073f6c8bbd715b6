"""`archiver keys`: the collection's Ed25519 signing keys."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import click
from archiver.cli.common import (CONTEXT_SETTINGS, collection_option, echo, json_option, key_option, output_option, passphrase,
                                 print_json, print_table, remark, signing_key)
from archiver.store.collection import Collection
from archiver.evidence.custody import now
from archiver.errors import UsageProblem
from archiver.evidence.keys import create_signing_key, key_path, key_statuses, published_keys, revoke_key, rotate_key
from archiver.evidence.signing import grouped, parse_fingerprint
from archiver.evidence.worker_keys import this_machines_worker_key


@click.group(context_settings=CONTEXT_SETTINGS)
def keys() -> None:
    """Manage the collection's signing keys (Ed25519).

    The private key lives outside the collection (default: ~/.config/archiver/keys/,
    mode 0600; --key or $ARCHIVER_KEY elsewhere), encrypted when $ARCHIVER_PASSPHRASE is
    set or a passphrase is typed at the prompt. Public keys and fingerprints sit in the
    collection's keys/ folder; every key event is signed into the custody log."""


@keys.command()
@collection_option
@key_option
@click.option("--encrypt", is_flag=True, help="Protect the key with a passphrase ($ARCHIVER_PASSPHRASE, else asked).")
@json_option
def generate(collection_dir: Path, key_file: Path | None, encrypt: bool, as_json: bool) -> None:
    """Create the collection's key (or adopt the existing key file at --key).

    Exit 0 when done; 2 on bad usage or a key that cannot be used (named in one line), 3 when
    the machine refused (a disk full, no permission)."""
    collection = Collection.open(collection_dir)
    secret = passphrase(confirm=True) if encrypt else None
    if encrypt and not secret:
        raise UsageProblem("no passphrase given", "set ARCHIVER_PASSPHRASE or type one at the prompt")
    announced_before = set(key_statuses(collection))
    key, created = create_signing_key(collection, key_file, secret)
    adopted = not created and key.fingerprint not in announced_before
    if as_json:
        print_json({"fingerprint": key.fingerprint, "path": str(key.path), "created": created, "adopted": adopted,
                    "encrypted": bool(secret)})
        return
    done = "Generated" if created else "Adopted" if adopted else "Already the collection's key:"
    echo(f"{done} {key.path}{' (encrypted)' if secret else ''}")
    echo(f"Fingerprint: {grouped(key.fingerprint)}")


@keys.command()
@collection_option
@key_option
@json_option
def show(collection_dir: Path, key_file: Path | None, as_json: bool) -> None:
    """List the collection's public keys with fingerprints and status (active, rotated out, revoked),
    the bundle key (ECDSA P-384, which signs WACZ bundles for ReplayWeb.page) each announced, which
    lives and dies with it, and the worker keys of the machines writing to a shared collection: each
    by the name it was announced with (`worker --machine`, else the host name, which machines may
    share), the one this folder holds marked "(this machine)".

    Exit 0 when done; 2 on bad usage or a key that cannot be used (named in one line), 3 when
    the machine refused (a disk full, no permission)."""
    collection = Collection.open(collection_dir)
    published = published_keys(collection)
    statuses = key_statuses(collection)
    local = key_path(collection, key_file)
    listed = []
    for fingerprint in published:
        status = statuses.get(fingerprint)
        listed.append({"fingerprint": fingerprint, "status": status.state if status else "not announced in the custody log",
                       "announced_at": status.announced_at if status else None,
                       "rotated_out_at": status.rotated_out_at if status else None,
                       "revoked_from": status.revoked_from if status else None,
                       "public_key": str(collection.root / "keys" / f"{fingerprint}.pub.pem")})
    here = this_machines_worker_key(collection)
    workers = [{"fingerprint": status.fingerprint, "machine": status.machine, "status": status.state,
                "announced_at": status.announced_at, "revoked_from": status.revoked_from,
                "this_machine": here is not None and here.fingerprint == status.fingerprint}
               for status in statuses.values() if status.machine is not None]
    bundle_keys = [{"fingerprint": status.fingerprint, "of_key": status.bundle_key_of,
                    "status": statuses[status.bundle_key_of].state if status.bundle_key_of in statuses
                    else "its collection key not announced in the custody log",
                    "announced_at": status.announced_at,
                    "public_key": str(collection.root / "keys" / f"{status.fingerprint}.p384.pub.pem")}
                   for status in statuses.values() if status.bundle_key_of is not None]
    if as_json:
        print_json({"keys": listed, "bundle_keys": bundle_keys, "worker_keys": workers, "private_key_path": str(local)})
        return
    print_table(("fingerprint (SHA-256 of the public key)", "status", "since"),
                [[grouped(key["fingerprint"]), key["status"], key["revoked_from"] or key["rotated_out_at"] or key["announced_at"]]
                 for key in listed])
    if bundle_keys:
        print_table(("bundle key fingerprint (ECDSA P-384)", "of key", "status", "since"),
                    [[grouped(key["fingerprint"]), grouped(key["of_key"][:16]), key["status"], key["announced_at"]]
                     for key in bundle_keys])
    if workers:
        print_table(("worker key fingerprint", "machine", "status", "since"),
                    [[grouped(key["fingerprint"]), key["machine"] + (" (this machine)" if key["this_machine"] else ""),
                      key["status"], key["revoked_from"] or key["announced_at"]] for key in workers])
    remark(f"Private key path: {local}{'' if local.exists() else ' (not on this machine)'}")


@keys.command()
@collection_option
@click.option("--fingerprint", help="Which key (default: the one the local private key matches).")
@output_option("Write the PEM here instead of printing it.")
@key_option
@json_option
def export(collection_dir: Path, fingerprint: str | None, output: Path | None, key_file: Path | None,
           as_json: bool) -> None:
    """Print a public key (PEM) to hand to whoever will verify this collection's evidence.

    Exit 0 when done; 2 on bad usage or a key that cannot be used (named in one line), 3 when
    the machine refused (a disk full, no permission)."""
    collection = Collection.open(collection_dir)
    published = published_keys(collection)
    if fingerprint:
        wanted = parse_fingerprint(fingerprint)
    else:
        wanted = signing_key(collection, key_file, revoked_ok=True).fingerprint
    if wanted not in published:
        raise UsageProblem(f"no public key {grouped(wanted)} in this collection", "list them with `archiver keys show`")
    pem = published[wanted].pem()
    if output:
        output.write_bytes(pem)
    if as_json:
        print_json({"fingerprint": wanted, "pem": pem.decode(), "path": str(output) if output else None})
    elif output:
        echo(f"Wrote {output} (fingerprint {grouped(wanted)})")
    else:
        click.echo(pem.decode(), nl=False)


@keys.command()
@collection_option
@key_option
@click.option("--encrypt", is_flag=True, help="Protect the new key with a passphrase.")
@json_option
def rotate(collection_dir: Path, key_file: Path | None, encrypt: bool, as_json: bool) -> None:
    """Replace the signing key; the custody log announces the new key, signed by the old one.

    Exit 0 when done; 2 on bad usage or a key that cannot be used (named in one line), 3 when
    the machine refused (a disk full, no permission)."""
    collection = Collection.open(collection_dir)
    old = signing_key(collection, key_file, revoked_ok=True)
    new = rotate_key(collection, old, passphrase(confirm=True) if encrypt else None)
    if as_json:
        print_json({"from": old.fingerprint, "to": new.fingerprint, "path": str(new.path)})
        return
    echo(f"Rotated {grouped(old.fingerprint)}")
    echo(f"     to {grouped(new.fingerprint)} ({new.path})")


@keys.command()
@click.argument("fingerprint")
@click.option("--from", "revoked_from", help="When the key stopped being trustworthy (ISO time, UTC; default: now).")
@click.option("--reason", default="", help="Why, in a few words (e.g. 'laptop stolen').")
@collection_option
@key_option
@json_option
def revoke(fingerprint: str, revoked_from: str | None, reason: str, collection_dir: Path, key_file: Path | None,
           as_json: bool) -> None:
    """Revoke a key (the collection's, or one machine's worker key): anything it signed at or
    after --from fails verification.

    Exit 0 when done; 2 on bad usage or a key that cannot be used (named in one line), 3 when
    the machine refused (a disk full, no permission)."""
    collection = Collection.open(collection_dir)
    wanted = parse_fingerprint(fingerprint)
    status = key_statuses(collection).get(wanted)  # a worker key has no file in keys/
    if status is None and wanted not in published_keys(collection):
        raise UsageProblem(f"no public key {grouped(wanted)} in this collection", "list them with `archiver keys show`")
    moment = _utc(revoked_from) if revoked_from else now()
    # The earliest revocation holds: a later one would change nothing but the log's length.
    already = status.revoked_from if status is not None and status.revoked_from and status.revoked_from <= moment else None
    if already is None:
        revoke_key(collection, signing_key(collection, key_file, revoked_ok=True), wanted, moment, reason)
    if as_json:
        print_json({"fingerprint": wanted, "revoked_from": already or moment,
                    "reason": "; ".join(status.reasons) if already else reason, "already_revoked": already is not None})
        return
    echo(f"Already revoked from {already}: nothing changed" if already else f"Revoked {grouped(wanted)} from {moment}")


def _utc(text: str) -> str:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageProblem(f"not a time: {text!r}", "write it like 2026-11-24T17:00:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
