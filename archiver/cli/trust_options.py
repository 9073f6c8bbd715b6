"""--insecure and --ca-bundle: which TLS certificates a fetch trusts, the same for `capture`,
`cite` and `verify --live`, so that a page captured from behind a private CA can be fetched
again the way it was captured."""

from __future__ import annotations

import click

insecure_option = click.option(
    "--insecure", is_flag=True, help="Do not verify TLS certificates; recorded in every capture's metadata.")

ca_bundle_option = click.option(
    "--ca-bundle", type=click.Path(exists=True, dir_okay=False),
    help="Trust these CA certificates (PEM) instead of the system's (also ca_bundle in [capture] of archiver.toml).")

