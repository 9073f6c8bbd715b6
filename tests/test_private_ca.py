"""A page served behind a private CA: captured with --ca-bundle, checked live again the same way
(verify --live takes the same --ca-bundle and --insecure, or archiver.toml's ca_bundle), and a
certificate not trusted fails saying how to trust the CA. A real HTTPS server on 127.0.0.1
whose certificate a test CA signed."""

from __future__ import annotations

import json
import shutil

from archiver.cli.capture import capture as capture_command
from archiver.cli.verify import verify as verify_command
from tests.conftest import http_response, send_bytes

PRIVATE_CA_HINT = "if the site uses a private CA, pass --ca-bundle FILE or set ca_bundle under [capture] in archiver.toml"


def _live(run_cli, collection, *options: str) -> tuple[str, str]:
    result = run_cli("verify", "-C", collection.root, "--live", "--json", *options)
    assert result.exit_code == 0, result.output
    [drift] = json.loads(result.stdout)["live"]
    return drift["state"], drift["detail"]


def test_a_page_captured_with_a_ca_bundle_is_checked_live_with_it(run_cli, collection, raw_server, test_ca):
    server = raw_server({"/": send_bytes(http_response(b"<p>behind a private CA</p>"))}, tls=test_ca.server_context)
    captured = run_cli("capture", "-C", collection.root, server.url("/"), "--ca-bundle", test_ca.ca_pem, "--json")
    assert [c["outcome"] for c in json.loads(captured.stdout)["captures"]] == ["ok"], captured.output

    state, detail = _live(run_cli, collection)  # the system's CAs do not know it: the message says what to do
    assert state == "unreachable" and "CERTIFICATE_VERIFY_FAILED" in detail and detail.endswith(PRIVATE_CA_HINT), detail
    assert _live(run_cli, collection, "--ca-bundle", test_ca.ca_pem)[0] == "unchanged"
    assert _live(run_cli, collection, "--insecure")[0] == "unchanged"
    refused = run_cli("verify", "-C", collection.root, "--ca-bundle", test_ca.ca_pem)
    assert refused.exit_code == 2 and "--ca-bundle needs --live" in refused.output

    # archiver.toml's ca_bundle, relative to the collection folder wherever the command runs, serves both.
    shutil.copyfile(test_ca.ca_pem, collection.root / "private-ca.pem")
    config = collection.root / "archiver.toml"
    assert '# ca_bundle = "private-ca.pem"' in config.read_text()  # the template names the setting
    config.write_text(config.read_text().replace('# ca_bundle = "private-ca.pem"', 'ca_bundle = "private-ca.pem"'))
    assert _live(run_cli, collection)[0] == "unchanged"


def test_a_certificate_not_trusted_fails_a_capture_naming_how_to_trust_a_private_ca(run_cli, collection, raw_server,
                                                                                      test_ca):
    server = raw_server({"/": send_bytes(http_response(b"secure"))}, tls=test_ca.server_context)
    [failed] = json.loads(run_cli("capture", "-C", collection.root, server.url("/"), "--json").stdout)["captures"]
    assert failed["outcome"] == "failed" and failed["error"].startswith("TLS failure: ")
    assert failed["error"].endswith(PRIVATE_CA_HINT), failed["error"]


def test_capture_and_verify_share_their_trust_options():
    """One definition: the same names, flags and help text."""
    def trust(command):
        return {p.name: (p.opts, p.help, p.is_flag) for p in command.params if p.name in ("insecure", "ca_bundle")}
    assert trust(verify_command) == trust(capture_command) and len(trust(capture_command)) == 2
