"""The section of evidence/report.html that tells a reader how to verify the bundle with
ordinary tools (unzip, OpenSSL, sha256sum, warcio) and then with archiver itself, as
commands to paste. Strings placed in those commands are quoted, or left out when quoting
cannot make them safe."""

from __future__ import annotations

import re
import shlex

from archiver.evidence.signing import grouped
from archiver.exchange.report_markup import escape, key_link, literal, prose

# Placeholders for values that are missing or malformed, so a command never carries them.
NO_FINGERPRINT = "FINGERPRINT"
NO_KEY_FILE = "PUBLIC-KEY.pem"


def sha256_hex(value: object) -> str | None:
    """`value` in lower case if it is 64 hex digits, else None: only such strings enter commands unquoted."""
    text = str(value).lower()
    return text if re.fullmatch(r"[0-9a-f]{64}", text) else None


def _shell_word(value: str, placeholder: str) -> str:
    """`value` quoted for a POSIX shell. Non-printable characters (newlines, escapes,
    direction overrides) could break a pasted command or hide part of it, so such a value
    is replaced by a placeholder the reader must fill in."""
    return shlex.quote(value) if value.isprintable() else placeholder


def verification_section(view: dict) -> str:
    """"How to verify this bundle independently": numbered steps, each with the command to paste."""
    bundle, manifest = view["bundle"], view["manifest"]
    keys = {key["fingerprint"]: key for key in view["keys"]}
    signer = bundle["signed_by"]
    fingerprint = sha256_hex(signer)
    key_path = public_key_path(fingerprint, view["files"]) if fingerprint else None
    key_file = _shell_word(key_path, NO_KEY_FILE) if key_path else NO_KEY_FILE
    wacz = _shell_word(bundle["file"], "BUNDLE.wacz")
    fingerprint_option = shlex.quote(grouped(fingerprint)) if fingerprint else NO_FINGERPRINT
    tsa_option = " --tsa-roots TSA-ROOTS.pem" if manifest["timestamp"] is not None else ""
    missing_key = ("" if key_file != NO_KEY_FILE else
                   f"<p class=\"warn\">This bundle lists no public key file for that key: put the key the sender "
                   f"gave you in place of <code>{NO_KEY_FILE}</code>.</p>")
    steps = [
        ("Unpack the bundle into a new folder and go into it.",
         f"unzip -d bundle {wacz}\ncd bundle", ""),
        (f"Check the signing key. This bundle says it was signed by the key {key_link(signer, keys)}.",
         f"openssl pkey -pubin -in {key_file} -outform DER | sha256sum",
         missing_key + "<p>The 64 hex digits printed must be the fingerprint you were given by the sender. "
         "If they differ, stop: the bundle was not signed by the key you expect.</p>"),
        ("Check the signature over <code>evidence/bundle.json</code>, the signed statement that names every file of "
         "this bundle with its SHA-256.",
         f"openssl pkeyutl -verify -pubin -inkey {key_file} -rawin "
         "-in evidence/bundle.json -sigfile evidence/bundle.json.sig",
         "<p>It must print <code>Signature Verified Successfully</code>.</p>"),
        _file_hash_step(view["files"]),
        _timestamp_step(manifest),
        ("Check every WARC record's digests (needs <code>pip install warcio</code>).",
         "warcio check archive/*.warc.gz",
         "<p>It prints nothing when every record is intact, and names each record that is not.</p>"),
        ("Or do all of the above in one go with <code>archiver</code>, from the folder holding the bundle file. "
         "Check that the fingerprint in the command is the one you were given; if not, type yours instead.",
         f"cd ..\narchiver verify-bundle {wacz} --fingerprint {fingerprint_option}{tsa_option}", ""),
    ]
    items = "".join(f"<li><p>{intro}</p>\n<pre>{escape(command)}</pre>\n{after}</li>\n" if command
                    else f"<li><p>{intro}</p>\n{after}</li>\n" for intro, command, after in steps)
    return (
        "<h2 id=\"verify\">How to verify this bundle independently</h2>\n"
        "<p>This page is inside the bundle it describes, so whoever could alter the bundle could alter this page "
        "too, these commands included: read each before you run it (each only reads the bundle's files and prints "
        "what it computes; none prints a verdict it did not compute, as <code>echo OK</code> would), or run "
        "<code>archiver verify-bundle</code> from your own copy of archiver, which takes nothing from this page. "
        "The one fact to take from outside it is the fingerprint of the key that signed it, which the sender "
        "should give you separately (on paper, or read out over the phone). The commands need OpenSSL 3 and GNU "
        "coreutils, as on any current Linux; type them in a terminal in the folder holding the bundle file.</p>\n"
        f"<ol>\n{items}</ol>\n{REPLAYWEBPAGE}")


# What ReplayWeb.page shows of a bundle, seen with its npm package in Chromium: it verifies
# the datapackage signature (its stored verdict is `signature: matched true`), yet it counts every
# file whose hash it did not check as invalid, and checks none unless an option is set.
REPLAYWEBPAGE = (
    "<h3 id=\"replaywebpage\">If you open this bundle in ReplayWeb.page</h3>\n"
    "<p>ReplayWeb.page replays the pages this bundle holds, and it checks and accepts the bundle's ECDSA P-384 "
    "signature over <code>datapackage.json</code> (its key is listed with the other <a href=\"#keys\">signing keys</a> below). "
    "Its summary of file hashes, such as “1 hashes verified, 2 invalid”, is not a sign of tampering: "
    "ReplayWeb.page checks a file's hash only when an option is turned on, and counts each file it did not check "
    "as invalid, so it shows the same for an intact bundle. Do not rely on that summary either way. Check the files "
    "instead with the <code>sha256sum -c</code> step above, or all of this bundle with the "
    "<code>archiver verify-bundle</code> step.</p>\n")


def public_key_path(fingerprint: str, files: list[dict]) -> str | None:
    """The bundle's file holding the public key with this fingerprint: public keys are
    `*.pub.pem` files named after their fingerprint."""
    for entry in files:
        name = entry["path"].rsplit("/", 1)[-1]
        if fingerprint in name and name.endswith(".pub.pem"):
            return entry["path"]
    return None


# This page's digest as the signed statement (canonical JSON) holds it, checked by sha256sum.
REPORT_CHECK = ("grep -o '\"evidence/report.html\":\"[0-9a-f]*\"' evidence/bundle.json "
                "| sed 's|.*:\"\\(.*\\)\"|\\1  evidence/report.html|' | sha256sum -c")


def _file_hash_step(files: list[dict]) -> tuple[str, str, str]:
    """`sha256sum -c` fed the listed hashes. A line with a malformed hash or a path that is
    not printable is left out, since a newline in a path could end the here-document and
    run whatever follows; such files are named for a check by hand."""
    lines, by_hand = [], []
    for entry in files:
        digest = sha256_hex(entry["sha256"])
        if digest is not None and entry["path"].isprintable():
            lines.append(f"{digest}  {entry['path']}")
        else:
            by_hand.append(entry["path"])
    command = ("sha256sum -c <<'END'\n" + "".join(f"{line}\n" for line in lines) + "END\n"
               f"{REPORT_CHECK}\nsha256sum datapackage.json\ncat datapackage-digest.json")
    after = ("<p>Every line the first two commands print must end in <code>OK</code>. The digest the third command "
             "prints must equal the one after <code>sha256:</code> in the fourth.</p>"
             "<p>That shows only that the two WACZ files agree with each other: <code>datapackage.json</code> and "
             "<code>datapackage-digest.json</code> are the two files <code>evidence/bundle.json</code> does not list "
             "(<code>datapackage.json</code> lists it, so it cannot list them), and these steps do not check the "
             "ECDSA signature in <code>datapackage-digest.json</code>. <strong>The authenticity of "
             "<code>datapackage.json</code> itself is checked only by <code>archiver verify-bundle</code></strong> "
             "(the last step). None of the other checks here relies on it.</p>")
    if by_hand:
        after += ("<p class=\"warn\">Not in the command because its name or listed hash is malformed; compare by hand "
                  "with the <a href=\"#files\">file list</a>: " + ", ".join(literal(path) for path in by_hand) + ".</p>")
    return ("Check that every file is the one listed under <a href=\"#files\">Files</a>: these are the digests "
            "<code>evidence/bundle.json</code> lists, and <code>archiver verify-bundle</code> (the last step) compares "
            "the files with that signed list itself. This page cannot hold its own digest, so the second command "
            "checks it against the one <code>evidence/bundle.json</code> holds.", command, after)


def _timestamp_step(manifest: dict) -> tuple[str, str, str]:
    timestamp = manifest["timestamp"]
    if timestamp is None:
        return ("There is <strong>no RFC 3161 timestamp in this bundle</strong>, so no independent authority vouches "
                "for when its manifest existed: the times on this page rest on the signer's own clock.", "", "")
    return (f"Check the RFC 3161 timestamp that {prose(timestamp['tsa'])} issued at "
            f"{literal(timestamp['gen_time'])} over {literal(timestamp['data'])}, for manifest number "
            f"{literal(manifest['sequence'])}. <code>TSA-ROOTS.pem</code> is that authority's root "
            "certificate, obtained from the authority itself and not from this bundle, saved beside the bundle file "
            "(the last step reads it there too).",
            f"openssl ts -verify -data {_shell_word(timestamp['data'], 'TIMESTAMPED-FILE')} "
            f"-in {_shell_word(timestamp['file'], 'TIMESTAMP.tsr')} -CAfile ../TSA-ROOTS.pem",
            "<p>It must print <code>Verification: OK</code>. If it cannot find the authority's certificate, add "
            "<code>-untrusted ../TSA-CERT.pem</code> with that certificate, also from the authority and saved beside "
            "the bundle file.</p>")
