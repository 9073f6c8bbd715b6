"""Verify benchmark: `archiver verify` against warcio check and against the machine's limit.

Two collections, each captured by archiver itself from loopback servers (8 hosts, HTTP/1.1
with Content-Length), then `archiver manifest` exported:
  - small: about 160 MB in one WARC file, 400 text pages of 5-25 kB and 40 random bodies of
    4 MB (the size most collections a fact-checker verifies have);
  - large: about --size-mb MB (default 1000) of HTML-like pseudo-English pages of 20-80 kB
    and incompressible binaries of 1-5 MB, about half the bytes each, with
    warc_size = "200MB" so that it spans several WARC files.
Then, on each case's WARC files, each as its own process:
  a) archiver verify --workers 1 and --workers 2 (--json, which must say ok),
  b) warcio check (one process),
  c) the limit: one core doing nothing but inflating every gzip member and SHA-256 of every
     record's block and HTTP payload, with python-isal (and with zlib, for reference).
And `archiver verify` of an empty collection (median of several runs): its start-up.
Each case also prints its floor on this machine (floor()): the least time any verify can take,
and so whether the 2x target is within reach of the machine's cores at all.
Wall time, CPU time and peak RSS come from os.wait4() on each process (see capture.py).
Every process runs with its bytecode cached in the work folder (capture.measured_environment,
even where PYTHONDONTWRITEBYTECODE is set), as an installed program's is, and each contender
runs once unmeasured on each case first to write that cache: the figures are the steady state
a user sees, not Python compiling some 40 modules from source (0.05 s of an empty verify).

Run from the project's venv:
    python bench/verify.py [--case small|large|all] [--size-mb N] [--keep]
Work files go to a temporary folder under $BENCH_TMP (default: the system temp folder).
Sizes are printed in MB = 10^6 bytes. Exit status 0 when every target passes, else 1.
"""

from __future__ import annotations

import argparse
import http.server
import importlib.util
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from capture import (MB, MiB, Run, _QuietHandler, archiver_command, measure, new_collection, print_table,
                     pseudo_text, run_and_report, set_setting, start_server, stop_server, verdict, warc_bytes)

HOSTS = 8  # archiver captures at most 2 URLs of one host at once (per_host), so 8 hosts for 8 slots
CONCURRENCY = 8
WARC_SIZE = "200MB"  # the large case spans several WARC files
SMALL_WARC_SIZE = "1000MB"  # archiver init's default: the small case is one WARC file
PAGE_SIZES = (20_000, 80_000)
BINARY_SIZES = (1_000_000, 5_000_000)
SMALL_PAGES, SMALL_PAGE_SIZES = 400, (5_000, 25_000)
SMALL_BINARIES, SMALL_BINARY_SIZE = 40, 4_000_000
EMPTY_REPEATS = 9
TEXT_POOL = 8 * MiB  # pages are slices of this much pseudo-English, from seeded offsets
TARGET_VS_LIMIT = 0.80  # limit time ÷ archiver verify --workers 1 time
TARGET_VS_WARCIO = 2.0  # warcio check time ÷ archiver verify --workers 2 time
TARGET_RSS = 150 * MB
TARGET_EMPTY = 0.25  # seconds, median wall time of archiver verify on an empty collection

# The limit: inflate + SHA-256 and nothing else, in a process of its own. It is a script
# rather than a function of this module so that its process imports only what it uses.
LIMIT_SCRIPT = """\
import hashlib, importlib, json, sys

decompressobj = importlib.import_module(sys.argv[1]).decompressobj  # isal.isal_zlib or zlib
READ_SIZE = 1 << 16  # at each member's end the inflater copies the unread rest of its input


def inflated(path):
    \"\"\"The file's inflated bytes, member after member, in chunks; no chunk spans two members.\"\"\"
    with open(path, "rb") as file:
        inflater = decompressobj(31)
        while raw := file.read(READ_SIZE):
            while raw:
                if data := inflater.decompress(raw):
                    yield data
                if not inflater.eof:
                    break
                raw, inflater = inflater.unused_data, decompressobj(31)


def check_file(path, totals):
    \"\"\"Hash every record's block and HTTP payload and compare them with the declared digests.\"\"\"
    chunks = inflated(path)
    buffer = b""
    while True:
        while (end := buffer.find(b"\\r\\n\\r\\n")) < 0:
            if (chunk := next(chunks, None)) is None:
                assert not buffer.strip(), f"{path}: truncated record header"
                return
            buffer += chunk
        lines = buffer[:end].decode().split("\\r\\n")
        headers = dict(line.split(": ", 1) for line in lines[1:])
        http = headers.get("Content-Type", "").startswith("application/http")
        block = hashlib.sha256()
        payload = hashlib.sha256() if http and headers["WARC-Type"] != "revisit" else None
        head = bytearray() if payload else None  # the HTTP head, until its blank line is seen
        view, left = memoryview(buffer)[end + 4:], int(headers["Content-Length"])
        while True:
            piece = view[:left]
            block.update(piece)
            if head is not None:
                head += piece
                if (cut := head.find(b"\\r\\n\\r\\n")) >= 0:
                    payload.update(memoryview(head)[cut + 4:])
                    head = None
            elif payload is not None:
                payload.update(piece)
            left -= len(piece)
            if not left:
                break
            view = memoryview(next(chunks))
        buffer = bytes(view[len(piece):])
        while len(buffer) < 4:
            buffer += next(chunks)
        assert buffer[:4] == b"\\r\\n\\r\\n", f"{path}: record not followed by CRLF CRLF"
        buffer = buffer[4:]
        totals["records"] += 1
        for name, digest in (("WARC-Block-Digest", block), ("WARC-Payload-Digest", payload)):
            if digest and name in headers:
                totals["digests"] += 1
                totals["mismatches"] += headers[name] != "sha256:" + digest.hexdigest()


totals = {"records": 0, "digests": 0, "mismatches": 0}
for path in sys.argv[2:]:
    check_file(path, totals)
print(json.dumps(totals))
"""


# ---------------------------------------------------------------- the collection's content

@dataclass(frozen=True)
class Resource:
    """One URL of the corpus: what the server answers at `path` on 127.0.0.`host`."""

    host: int
    path: str
    length: int
    seed: int

    @property
    def binary(self) -> bool:
        return self.path.endswith(".bin")


def corpus(total: int) -> list[Resource]:
    """Pages (20-80 kB) and binaries (1-5 MB), each kind about half of `total` bytes, in a
    fixed shuffled order and spread over the hosts; the same list for the same `total`."""
    rng = random.Random(total)
    kinds: list[tuple[str, int]] = []
    for ext, (low, high), budget in (("html", PAGE_SIZES, total // 2), ("bin", BINARY_SIZES, total - total // 2)):
        while budget > 0:
            length = min(rng.randint(low, high), max(budget, low))
            kinds.append((ext, length))
            budget -= length
    rng.shuffle(kinds)
    return [Resource(i % HOSTS + 1, f"/{'files' if ext == 'bin' else 'pages'}/{i}.{ext}", length, i)
            for i, (ext, length) in enumerate(kinds)]


def small_corpus() -> list[Resource]:
    """The small case: SMALL_PAGES pages and SMALL_BINARIES binaries of SMALL_BINARY_SIZE bytes,
    in a fixed shuffled order spread over the hosts."""
    rng = random.Random(160)
    kinds = [("html", rng.randint(*SMALL_PAGE_SIZES)) for _ in range(SMALL_PAGES)]
    kinds += [("bin", SMALL_BINARY_SIZE)] * SMALL_BINARIES
    rng.shuffle(kinds)
    return [Resource(i % HOSTS + 1, f"/{'files' if ext == 'bin' else 'pages'}/{i}.{ext}", length, i)
            for i, (ext, length) in enumerate(kinds)]


def body(resource: Resource, text_pool: bytes) -> bytes:
    """The response body of `resource`: seeded random bytes, or an HTML page around a slice of
    the pseudo-English pool, exactly `resource.length` bytes either way."""
    rng = random.Random(resource.seed)
    if resource.binary:
        return rng.randbytes(resource.length)
    head = (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Page {resource.seed}</title></head>\n'
            f"<body><h1>Page {resource.seed}</h1>\n<p>").encode()
    tail = b"</p>\n</body></html>\n"
    start = rng.randrange(len(text_pool) - resource.length)
    text = text_pool[start:start + resource.length].replace(b"\n\n", b"</p>\n<p>")
    return head + text[:resource.length - len(head) - len(tail)] + tail


def _serve(ready, port_out, resources: list[Resource]) -> None:
    """Process body: one ThreadingHTTPServer per host on 127.0.0.1 .. 127.0.0.HOSTS, all on the
    port the first one picks, answering each resource's path with its body, until terminated."""
    text_pool = pseudo_text(random.Random(1), TEXT_POOL)
    by_path = {(r.host, r.path): r for r in resources}
    port = 0
    for host in range(1, HOSTS + 1):

        class Handler(_QuietHandler):
            def do_GET(self, host=host) -> None:
                resource = by_path.get((host, self.path))
                data = body(resource, text_pool) if resource else b""
                self.send_response(200 if resource else 404)
                self.send_header("Content-Type", "application/octet-stream" if resource and resource.binary
                                 else "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        server = http.server.ThreadingHTTPServer((f"127.0.0.{host}", port), Handler)
        port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
    port_out.value = port
    ready.set()
    threading.Event().wait()


def build_collection(work: Path, resources: list[Resource], warc_size: str) -> tuple[Path, list[Path]]:
    """Capture `resources` into a new collection with archiver, in WARC files of `warc_size`,
    and export its manifest. Returns the collection folder and its WARC files."""
    folder = new_collection(work / "collection")
    set_setting(folder, 'warc_size = "1000MB"', f'warc_size = "{warc_size}"')
    server, port = start_server(_serve, resources)
    try:
        url_file = work / "urls.txt"
        url_file.write_text("".join(f"http://127.0.0.{r.host}:{port}{r.path}\n" for r in resources))
        pages = sum(not r.binary for r in resources)
        print(f"capturing {len(resources)} URLs ({pages} pages, {len(resources) - pages} binaries, "
              f"{sum(r.length for r in resources) / MB:.0f} MB) with --concurrency {CONCURRENCY} ...", flush=True)
        run = measure("capture", [*archiver_command(), "capture", "-C", str(folder), "--concurrency",
                                  str(CONCURRENCY), "--json", str(url_file)], work)
    finally:
        stop_server(server)
    run.check()
    counts = json.loads(run.stdout.read_text())["counts"]
    if counts.get("ok") != len(resources):
        raise SystemExit(f"archiver capture did not capture every URL: {counts}")
    measure("manifest", [*archiver_command(), "manifest", "-C", str(folder)], work).check()
    warcs = sorted((folder / "warcs").glob("*.warc.gz"))
    print(f"  captured in {run.wall:.1f} s: {counts}; {len(warcs)} WARC files, {warc_bytes(warcs) / MB:.0f} MB")
    return folder, warcs


# ---------------------------------------------------------------- the contenders

def run_verify(folder: Path, workers: int, work: Path) -> tuple[Run, dict]:
    """archiver verify --json with `workers` processes; the run and its report, which must be ok."""
    run = measure(f"archiver-verify-{workers}", [*archiver_command(), "verify", "-C", str(folder),
                                                 "--workers", str(workers), "--json"], work)
    run.check(ok_codes=(0, 1))
    report = json.loads(run.stdout.read_text())
    if not report["ok"]:
        raise SystemExit(f"{run.name} found failures in a fresh collection: {report['failures'][:5]}")
    return run, report


def run_warcio(warcs: list[Path], work: Path) -> Run:
    """warcio check of every WARC file, in one process; it must report no problem."""
    run = measure("warcio-check", [sys.executable, "-c", "from warcio.cli import main; main()", "check",
                                   *map(str, warcs)], work)
    run.check()
    if run.stdout.read_text().strip():
        raise SystemExit(f"warcio check reported problems:\n{run.stdout.read_text()[:3000]}")
    return run


def run_limit(module: str, warcs: list[Path], work: Path) -> tuple[Run, dict]:
    """The inflate + SHA-256 loop with `module` (isal.isal_zlib or zlib); every digest must match."""
    name = "limit-" + module.split(".")[-1].replace("_zlib", "")
    run = measure(name, [sys.executable, "-c", LIMIT_SCRIPT, module, *map(str, warcs)], work)
    run.check()
    totals = json.loads(run.stdout.read_text())
    if totals["mismatches"]:
        raise SystemExit(f"{name}: {totals['mismatches']} digests differ from those declared")
    return run, totals


# ---------------------------------------------------------------- benchmark

SIGNATURE_CHECKS = ("custody signature", "attestation signature", "manifest signature", "checkpoint signature")


def bench_case(work: Path, case: str, resources: list[Resource], warc_size: str, start_up: float) -> list[str]:
    """Build one case's collection, run every contender on it, print the table; the verdict
    lines (the one-core limit is a target of the large case only). `start_up`: an empty
    verify's wall time, for the floor (see floor())."""
    work.mkdir()
    folder, warcs = build_collection(work, resources, warc_size)
    input_mb = warc_bytes(warcs) / MB
    print(f"\n== {case}: verifying {len(warcs)} WARC files, {input_mb:.0f} MB ({os.cpu_count()} CPUs)", flush=True)
    warm_up(folder, warcs, work)
    verify_1, report = run_verify(folder, 1, work)
    verify_2, _ = run_verify(folder, 2, work)
    warcio = run_warcio(warcs, work)
    limit_isal, totals = run_limit("isal.isal_zlib", warcs, work)
    limit_zlib, _ = run_limit("zlib", warcs, work)

    rows = [[run.name, f"{run.wall:.2f}", f"{input_mb / run.wall:.0f}", f"{run.cpu:.2f}", f"{run.peak_rss / MB:.0f}"]
            for run in (verify_1, verify_2, warcio, limit_isal, limit_zlib)]
    print_table(["process", "wall s", "MB/s", "cpu s", "peak RSS MB"], rows)
    checks = sum(report["passed"].values())
    print(f"  archiver verify: ok, {checks} checks passed; not checked: {report['not_checked'] or 'nothing'}")
    print(f"  limit: {totals['records']} records, {totals['digests']} digests recomputed, all as declared")
    signatures = sum(report["passed"].get(name, 0) for name in SIGNATURE_CHECKS)
    rate = signature_rate()
    signing_time = signatures / rate
    print(f"  signatures: {signatures} checked, about {signing_time:.2f} s on one core at {rate:,.0f}/s (measured now): "
          f"{signing_time / verify_1.wall:.0%} of verify --workers 1")

    cores = os.cpu_count() or 1
    lowest = floor(start_up, limit_isal.cpu, signing_time, cores)
    wanted = warcio.wall / TARGET_VS_WARCIO
    print(f"  floor on {cores} cores: start-up {start_up:.2f} s + (the limit's {limit_isal.cpu:.2f} s + the signatures' "
          f"{signing_time:.2f} s of CPU) / {cores} = {lowest:.2f} s; {TARGET_VS_WARCIO:g}x warcio check needs {wanted:.2f} s")

    vs_limit = limit_isal.wall / verify_1.wall
    vs_warcio = warcio.wall / verify_2.wall
    below = f"; that is below this machine's floor, {lowest:.2f} s" if wanted < lowest else ""
    lines = [verdict(vs_warcio >= TARGET_VS_WARCIO,
                     f"{case}: verify --workers 2 took {verify_2.wall:.2f} s, warcio check {warcio.wall:.2f} s: "
                     f"{vs_warcio:.1f}x as fast (target >= {TARGET_VS_WARCIO:g}x: {wanted:.2f} s{below})")]
    if case == "large":
        bound = "" if vs_limit >= TARGET_VS_LIMIT else \
            f"; signatures are {signing_time / verify_1.wall:.0%} of its time, the limit plus them {(limit_isal.wall + signing_time) / verify_1.wall:.0%}"
        lines.append(verdict(vs_limit >= TARGET_VS_LIMIT,
                             f"{case}: verify --workers 1 took {verify_1.wall:.2f} s, the limit {limit_isal.wall:.2f} s: "
                             f"{vs_limit:.0%} of the limit (target >= {TARGET_VS_LIMIT:.0%}){bound}"))
    for run in (verify_1, verify_2):
        lines.append(verdict(run.peak_rss < TARGET_RSS,
                             f"{case}: {run.name} peak RSS {run.peak_rss / MB:.0f} MB (target < {TARGET_RSS / MB:.0f} MB)"))
    return lines


def floor(start_up: float, limit_cpu: float, signing_time: float, cores: int) -> float:
    """The least time any verify of a case can take here: the work no check can skip (inflating
    and hashing every record as the limit does, which warcio check does too, and checking every
    signature), spread perfectly over every core, after a start-up as short as an empty verify's.
    It leaves out all else verify does (the file's own SHA-256, the log, catalog and manifest)."""
    return start_up + (limit_cpu + signing_time) / cores


def signature_rate() -> float:
    """Ed25519 checks per second of CPU time, made as verify makes them (PublicKey.verify)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from archiver.evidence.signing import PublicKey
    private = Ed25519PrivateKey.generate()
    data = b"x" * 400  # about a custody entry's size
    signature, public = private.sign(data), PublicKey(private.public_key())
    checks, start = 0, time.process_time()
    while (spent := time.process_time() - start) < 0.5:
        assert public.verify(signature, data)
        checks += 1
    return checks / spent


def warm_up(folder: Path, warcs: list[Path], work: Path) -> None:
    """Run each contender once, unmeasured, so that every module it imports has its bytecode
    cached (and the files are in the page cache) before the measured runs."""
    run_verify(folder, 2, work)  # its workers are forked: --workers 1 imports no module it does not
    run_warcio(warcs, work)
    for module in ("isal.isal_zlib", "zlib"):
        run_limit(module, warcs, work)


def bench_empty(work: Path) -> tuple[list[str], float]:
    """archiver verify of an empty collection, EMPTY_REPEATS times after a warm-up run: its
    start-up, as a verdict line, and its median wall time."""
    folder = new_collection(work / "empty")
    measure("archiver-verify-empty", [*archiver_command(), "verify", "-C", str(folder)], work).check()
    walls = [measure("archiver-verify-empty", [*archiver_command(), "verify", "-C", str(folder)], work)
             for _ in range(EMPTY_REPEATS)]
    for run in walls:
        run.check()
    median = statistics.median(run.wall for run in walls)
    cpu = statistics.median(run.cpu for run in walls)  # the part a busy machine does not inflate
    print(f"\n== empty collection: archiver verify took {median:.3f} s, {cpu:.3f} s of CPU (medians of {EMPTY_REPEATS})")
    return [verdict(median < TARGET_EMPTY, f"empty: verify took {median:.3f} s (target < {TARGET_EMPTY} s)")], median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", choices=("small", "large", "all"), default="all", help="which collections (default all)")
    parser.add_argument("--size-mb", type=int, default=1000, metavar="N",
                        help="MB of responses in the large case (default 1000)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    missing = [m for m in ("archiver", "warcio", "isal") if importlib.util.find_spec(m) is None]
    if missing:
        raise SystemExit(f"missing: {', '.join(missing)} (run with the project's venv: . .venv/bin/activate)")

    work = Path(tempfile.mkdtemp(prefix="archiver-bench-verify-", dir=os.environ.get("BENCH_TMP")))
    os.environ["ARCHIVER_KEY"] = str(work / "signing.ed25519.pem")  # the key stays in the work folder
    print(f"archiver verify benchmark: work folder {work}")

    def measure_all() -> list[str]:
        lines, start_up = bench_empty(work)
        if args.case in ("small", "all"):
            lines += bench_case(work / "small", "small", small_corpus(), SMALL_WARC_SIZE, start_up)
        if args.case in ("large", "all"):
            lines += bench_case(work / "large", "large", corpus(args.size_mb * MB), WARC_SIZE, start_up)
        return lines

    run_and_report(work, args.keep, measure_all)


if __name__ == "__main__":
    main()
