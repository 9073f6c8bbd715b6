"""Capture benchmark: archiver against GNU wget and warcio, on loopback servers.

Part 1, many small pages: 50 servers (127.0.0.1 .. 127.0.0.50) each answer after 100 ms
with a 5-15 kB HTML page; 500 URLs (10 per host) are captured by
  a) archiver capture --concurrency 32,
  b) wget --warc-file (one URL after another),
  c) warcio's capture_http around requests (one URL after another).
Part 2, one large response (default 1 GiB: half pseudo-English text, half random bytes),
captured by archiver and by wget.

Every tool runs as its own process; its wall-clock time, CPU time and peak RSS come from
os.wait4() on that process. The servers run in another process, on the same machine: on a
2-core box they compete with the tool being measured for CPU.

Run from the project's venv:
    python bench/capture.py [--small-only | --large-only] [--size-mb N] [--keep]
Work files go to a temporary folder under $BENCH_TMP (default: the system temp folder).
Sizes are printed in MB = 10^6 bytes. Exit status 0 when every target passes, else 1.
"""

from __future__ import annotations

import argparse
import http.server
import importlib.util
import json
import multiprocessing
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

HOSTS = 50
PATHS_PER_HOST = 10
LATENCY = 0.1  # seconds each small-page server waits before answering
CONCURRENCY = 32
TARGET_VS_WGET = 20.0  # archiver's pages/s at least this many times wget's
TARGET_EFFICIENCY = 0.80  # latency bound ÷ archiver's wall time
TARGET_LARGE_RSS = 150 * 10**6  # bytes of peak RSS allowed to archiver on the large response
MB = 10**6
MiB = 2**20

WORDS = ("the of and to in is was for that with as on by at from this be are which it an or have "
         "has not were but their its more one also been other new first after when who than two into "
         "these some there time would only most between many over such then during those before "
         "under about where through while they may evidence archive record claim source page report "
         "citation witness preserve history public court statement article document version").split()

WARCIO_SCRIPT = """\
import sys
from warcio.capture_http import capture_http  # must come before requests, or nothing is recorded
import requests

urls = open(sys.argv[1]).read().split()
with capture_http(sys.argv[2]), requests.Session() as session:
    session.trust_env = False
    for url in urls:
        session.get(url).raise_for_status()
"""


# ---------------------------------------------------------------- content and servers

def pseudo_text(rng: random.Random, size: int) -> bytes:
    """`size` bytes of word salad in sentences and paragraphs, drawn from `rng`."""
    parts: list[str] = []
    length = 0
    while length < size:
        words = rng.choices(WORDS, k=rng.randint(6, 24))
        sentence = " ".join(words).capitalize() + rng.choice(".....?!") + rng.choice("   \n\n")
        parts.append(sentence)
        length += len(sentence)
    return "".join(parts).encode("ascii")[:size]


def small_page(host: str, path: str) -> bytes:
    """The HTML page served at `path` on `host`: 5-15 kB, always the same for the same URL."""
    rng = random.Random(zlib.crc32(f"{host}{path}".encode()))
    paragraphs = pseudo_text(rng, rng.randint(5000, 15000) - 200).decode().split("\n\n")
    body = "\n".join(f"<p>{p.strip()}</p>" for p in paragraphs if p.strip())
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{host}{path}</title></head>\n"
            f"<body><h1>{path}</h1>\n{body}\n</body></html>\n").encode()


def small_paths(count: int = PATHS_PER_HOST) -> list[str]:
    return [f"/articles/{i}.html" for i in range(count)]


def small_urls(port: int) -> list[str]:
    """The 500 URLs of part 1, host by host."""
    return [f"http://127.0.0.{h}:{port}{path}" for h in range(1, HOSTS + 1) for path in small_paths()]


def large_body_parts(size: int):
    """Yield the large body in views of at most 1 MiB: the first half pseudo-English text
    (4 MiB of words, replayed from shifting offsets), the second half random bytes (a 64 MiB
    buffer, likewise). The repeats lie far beyond deflate's 32 kB window, so they do not
    make the body any more compressible than fresh text or noise would be."""
    chunk = MiB
    text = pseudo_text(random.Random(1), 4 * MiB)
    noise = os.urandom(64 * MiB)
    half = size // 2
    for buffer, length in ((text, half), (noise, size - half)):
        source = memoryview(buffer + buffer[:chunk])  # so that any slice may wrap around
        for i, offset in enumerate(range(0, length, chunk)):
            start = (i * 1_234_567) % len(buffer)
            yield source[start:start + min(chunk, length - offset)]


class _QuietHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every response carries Content-Length
    # Headers and body go out in two writes; with Nagle on, the body would wait for the
    # client's delayed ACK (40 ms), a server artifact that would slow every request.
    disable_nagle_algorithm = True

    def log_message(self, format, *args) -> None:
        pass


def _serve_small(ready, port_out, hosts: int = HOSTS, paths_per_host: int = PATHS_PER_HOST) -> None:
    """Process body: the small-page servers (50 by default), each with its own thread, until
    terminated. The first binds a free port; the others, on 127.0.0.2 …, use the same one."""
    port = 0
    for h in range(1, hosts + 1):
        host = f"127.0.0.{h}"
        pages = {path: small_page(host, path) for path in small_paths(paths_per_host)}

        class Handler(_QuietHandler):
            def do_GET(self, pages=pages) -> None:
                time.sleep(LATENCY)
                page = pages.get(self.path, b"")
                self.send_response(200 if page else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

        server = http.server.ThreadingHTTPServer((host, port), Handler)
        port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
    port_out.value = port
    ready.set()
    threading.Event().wait()


def _serve_large(ready, port_out, size: int) -> None:
    """Process body: one server on 127.0.0.1 answering every GET with the large body."""
    parts = list(large_body_parts(size))  # generated once, before any client starts

    class Handler(_QuietHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            for part in parts:
                self.wfile.write(part)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_out.value = server.server_address[1]
    ready.set()
    server.serve_forever()


def start_server(target, *args) -> tuple[multiprocessing.Process, int]:
    """Run `target(ready, port, *args)` in a daemon process; once it is ready, the process
    and the port it listens on."""
    ready, port = multiprocessing.Event(), multiprocessing.Value("i", 0)
    process = multiprocessing.Process(target=target, args=(ready, port, *args), daemon=True)
    process.start()
    if not ready.wait(120):
        process.terminate()
        raise SystemExit(f"benchmark server {target.__name__} did not start")
    return process, port.value


def stop_server(process: multiprocessing.Process) -> None:
    process.terminate()
    process.join()


# ---------------------------------------------------------------- running and measuring

@dataclass
class Run:
    """One measured process."""

    name: str
    exit_code: int
    wall: float  # seconds
    cpu: float  # user + system seconds
    peak_rss: int  # bytes
    stdout: Path
    stderr: Path

    def check(self, ok_codes=(0,)) -> None:
        """Stop the benchmark, showing the tool's stderr, if it exited unexpectedly."""
        if self.exit_code not in ok_codes:
            tail = self.stderr.read_text(errors="replace")[-3000:]
            raise SystemExit(f"{self.name} exited with {self.exit_code}:\n{tail}")


def measure(name: str, command: list[str], work: Path) -> Run:
    """Run `command` as a process; its wall time, and its CPU time and peak RSS from os.wait4().
    Its output goes to `work`/NAME.stdout and .stderr; its environment is measured_environment()."""
    stdout, stderr = work / f"{name}.stdout", work / f"{name}.stderr"
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                   env=measured_environment(work), cwd=work)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    return Run(name, process.returncode, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024,
               stdout, stderr)


def measured_environment(work: Path) -> dict[str, str]:
    """The environment of a measured process: this one's without proxies, temporary files in
    `work`, and Python bytecode cached in `work`/pycache even where PYTHONDONTWRITEBYTECODE is
    set, as an installed program's is (pip compiles on install): a process that compiles its
    modules from source would be measuring Python's compiler. The first run of a program
    writes that cache; a benchmark whose runs are short warms it up first (verify.py)."""
    env = {k: v for k, v in os.environ.items()
           if not k.lower().endswith("_proxy") and k != "PYTHONDONTWRITEBYTECODE"}
    env["TMPDIR"] = str(work)  # wget spools responses to temporary files
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    return env


def archiver_command() -> list[str]:
    return [sys.executable, "-m", "archiver"]


def new_collection(folder: Path, *init_options: str) -> Path:
    """`archiver init` (with `init_options`) a collection whose settings allow capturing 127.0.0.0/8,
    capturing over HTTP (as the peers these benchmarks measure do) unless told `--browser`, even
    where Chromium is installed."""
    subprocess.run([*archiver_command(), "init", str(folder), *init_options], check=True, stdout=subprocess.DEVNULL)
    set_setting(folder, "allow_networks = []", 'allow_networks = ["127.0.0.0/8"]')
    set_setting(folder, 'capture_mode = "auto"', 'capture_mode = "http"')
    return folder


def set_setting(folder: Path, line: str, replacement: str) -> None:
    """Replace `line` of the collection's archiver.toml, as `archiver init` wrote it."""
    config = folder / "archiver.toml"
    text = config.read_text()
    if line not in text:
        raise SystemExit(f"{config} has no `{line}` line to replace")
    config.write_text(text.replace(line, replacement, 1))


def run_archiver(name: str, work: Path, targets: list[str], options: list[str],
                 command: list[str] | None = None) -> tuple[Run, dict, list[Path]]:
    """archiver capture --json into a fresh collection: the run, its JSON summary, its WARCs.
    `command` runs archiver (default archiver_command())."""
    collection = new_collection(work / name)
    run = measure(name, [*(command or archiver_command()), "capture", "-C", str(collection), "--json", *options, *targets], work)
    run.check(ok_codes=(0, 1))  # 1: some URLs failed, which the targets report
    summary = json.loads(run.stdout.read_text())
    unfinished = sorted(p.name for p in (collection / "warcs").glob("*.open"))
    if unfinished:
        raise SystemExit(f"{name} left unfinished WARC files: {unfinished}")
    return run, summary, sorted((collection / "warcs").glob("*.warc.gz"))


def run_wget(name: str, work: Path, url_file: Path) -> tuple[Run, list[Path]]:
    """wget of every URL in `url_file`, one after another, into its own WARC."""
    prefix = work / name
    run = measure(name, ["wget", f"--warc-file={prefix}", "--no-warc-keep-log", "--no-verbose", "--tries=1",
                         "--timeout=600", "-O", "/dev/null", "-i", str(url_file)], work)
    run.check()
    return run, [work / f"{name}.warc.gz"]


def run_warcio(name: str, work: Path, url_file: Path) -> tuple[Run, list[Path]]:
    """warcio capture_http around a requests Session, one URL after another."""
    warc = work / f"{name}.warc.gz"
    run = measure(name, [sys.executable, "-c", WARCIO_SCRIPT, str(url_file), str(warc)], work)
    run.check()
    return run, [warc]


def stored_ok_responses(paths: list[Path]) -> dict[str, int]:
    """Target URI → payload bytes stored, for every response record with HTTP status 200."""
    from warcio.archiveiterator import ArchiveIterator

    found = {}
    for path in paths:
        with open(path, "rb") as stream:
            for record in ArchiveIterator(stream):
                if record.rec_type != "response" or record.http_headers.get_statuscode() != "200":
                    continue
                length = 0
                while block := record.raw_stream.read(MiB):
                    length += len(block)
                found[record.rec_headers.get_header("WARC-Target-URI")] = length
    return found


def warc_bytes(paths: list[Path]) -> int:
    return sum(p.stat().st_size for p in paths)


def startup_time(work: Path) -> float:
    """Wall time of `archiver --version`, which imports the whole CLI: a fixed cost of every run."""
    return measure("archiver-startup", [*archiver_command(), "--version"], work).wall


# ---------------------------------------------------------------- reporting

def verdict(passed: bool, text: str) -> str:
    return f"{'PASS' if passed else 'FAIL'}  {text}"


def print_table(header: list[str], rows: list[list[str]]) -> None:
    """Rows under a header, the first column left-aligned and the others right-aligned."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = [cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        print("  " + "  ".join(cells))


# ---------------------------------------------------------------- the two parts

def bench_small(work: Path) -> list[str]:
    """Part 1: 500 small pages behind 100 ms of latency. Returns the verdict lines."""
    server, port = start_server(_serve_small)
    try:
        urls = small_urls(port)
        url_file = work / "urls.txt"
        url_file.write_text("\n".join(urls) + "\n")
        print(f"\n== Part 1: {len(urls)} pages of 5-15 kB from {HOSTS} loopback servers, "
              f"{LATENCY * 1000:.0f} ms latency each")
        startup = startup_time(work)
        archiver, summary, archiver_warcs = run_archiver("archiver-small", work, [str(url_file)],
                                                         ["--concurrency", str(CONCURRENCY)])
        wget, wget_warcs = run_wget("wget-small", work, url_file)
        warcio, warcio_warcs = run_warcio("warcio-small", work, url_file)
    finally:
        stop_server(server)

    counts = summary["counts"]
    print(f"  archiver JSON counts: {counts}")
    rows, complete = [], {}
    for run, warcs, digest in ((archiver, archiver_warcs, "sha256"), (wget, wget_warcs, "sha1"),
                               (warcio, warcio_warcs, "sha1")):
        complete[run.name] = len(set(urls) & set(stored_ok_responses(warcs)))
        rows.append([run.name, f"{run.wall:.2f}", f"{len(urls) / run.wall:.1f}", f"{run.cpu:.2f}",
                     f"{run.peak_rss / MB:.0f}", f"{warc_bytes(warcs) / MB:.2f}",
                     f"{complete[run.name]}/{len(urls)}", digest])
    print_table(["tool", "wall s", "pages/s", "cpu s", "peak RSS MB", "WARC MB", "200s in WARC", "digests"], rows)
    for run in (wget, warcio):
        if complete[run.name] != len(urls):
            raise SystemExit(f"{run.name} did not store every page; the comparison would be meaningless")

    bound = len(urls) * LATENCY / CONCURRENCY
    efficiency = bound / archiver.wall
    vs_wget, vs_warcio = wget.wall / archiver.wall, warcio.wall / archiver.wall
    print(f"  archiver pages/s vs wget:   {vs_wget:.1f}x")
    print(f"  archiver pages/s vs warcio: {vs_warcio:.1f}x")
    print(f"  latency bound: {len(urls)} URLs x {LATENCY:g} s / {CONCURRENCY} = {bound:.3f} s; "
          f"archiver efficiency {efficiency:.0%} (its process start-up alone takes {startup:.2f} s)")
    return [
        verdict(counts["ok"] == complete[archiver.name] == len(urls),
                f"archiver captured {counts['ok']}/{len(urls)} pages ok, "
                f"{complete[archiver.name]} with status 200 in its WARCs"),
        verdict(vs_wget >= TARGET_VS_WGET,
                f"archiver pages/s is {vs_wget:.1f}x wget's (target >= {TARGET_VS_WGET:g}x)"),
        verdict(efficiency >= TARGET_EFFICIENCY,
                f"archiver took {archiver.wall:.2f} s, {efficiency:.0%} of latency-bound speed "
                f"(target >= {TARGET_EFFICIENCY:.0%}, i.e. <= {bound / TARGET_EFFICIENCY:.2f} s)"),
    ]


def bench_large(work: Path, size: int) -> list[str]:
    """Part 2: one response of `size` bytes. Returns the verdict lines."""
    print(f"\n== Part 2: one response of {size / MiB:.0f} MiB ({size / MB:.0f} MB): "
          "half pseudo-English text, half random bytes")
    server, port = start_server(_serve_large, size)
    try:
        url = f"http://127.0.0.1:{port}/large.bin"
        url_file = work / "large.txt"
        url_file.write_text(url + "\n")
        archiver, summary, archiver_warcs = run_archiver(
            "archiver-large", work, [url], ["--max-size", str(max(2 * 10**9, 2 * size)), "--timeout", "600"])
        wget, wget_warcs = run_wget("wget-large", work, url_file)
    finally:
        stop_server(server)

    print(f"  archiver JSON counts: {summary['counts']}")
    rows, whole = [], {}
    for run, warcs in ((archiver, archiver_warcs), (wget, wget_warcs)):
        whole[run.name] = stored_ok_responses(warcs).get(url) == size
        rows.append([run.name, f"{run.wall:.2f}", f"{size / MB / run.wall:.0f}", f"{run.cpu:.2f}",
                     f"{run.peak_rss / MB:.0f}", f"{warc_bytes(warcs) / MB:.0f}", "yes" if whole[run.name] else "NO"])
    print_table(["tool", "wall s", "MB/s", "cpu s", "peak RSS MB", "WARC MB", "whole body in WARC"], rows)
    if not whole[wget.name]:
        raise SystemExit("wget did not store the whole body; the comparison would be meaningless")
    return [
        verdict(summary["counts"]["ok"] == 1 and whole[archiver.name],
                f"archiver captured the {size}-byte response whole (JSON counts {summary['counts']})"),
        verdict(archiver.wall < wget.wall,
                f"archiver took {archiver.wall:.2f} s, wget {wget.wall:.2f} s "
                f"(archiver {wget.wall / archiver.wall:.2f}x as fast; target: faster than wget)"),
        verdict(archiver.peak_rss < TARGET_LARGE_RSS,
                f"archiver peak RSS {archiver.peak_rss / MB:.0f} MB (target < {TARGET_LARGE_RSS / MB:.0f} MB)"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--small-only", action="store_true", help="run part 1 only (500 small pages)")
    only.add_argument("--large-only", action="store_true", help="run part 2 only (one large response)")
    parser.add_argument("--size-mb", type=int, default=1024, metavar="N",
                        help="size of the large response in MiB (default 1024)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    missing = [m for m in ("archiver", "warcio", "requests") if importlib.util.find_spec(m) is None]
    missing += [] if shutil.which("wget") else ["wget"]
    if missing:
        raise SystemExit(f"missing: {', '.join(missing)} (run with the project's venv: . .venv/bin/activate)")

    work = Path(tempfile.mkdtemp(prefix="archiver-bench-", dir=os.environ.get("BENCH_TMP")))
    print(f"archiver capture benchmark: {os.cpu_count()} CPUs, shared by the servers and the tool measured; "
          f"work folder {work}")
    def measure() -> list[str]:
        return ((bench_small(work) if not args.large_only else [])
                + (bench_large(work, args.size_mb * MiB) if not args.small_only else []))

    run_and_report(work, args.keep, measure)


def run_and_report(work: Path, keep: bool, measure: Callable[[], list[str]]) -> None:
    """Run `measure`, remove the work folder unless kept, print the verdicts, and exit 0
    only when every target passed. Shared by every benchmark in bench/."""
    try:
        verdicts = measure()
    finally:
        if keep:
            print(f"\nkept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print("\n== Targets")
    for line in verdicts:
        print("  " + line)
    sys.exit(0 if all(line.startswith("PASS") for line in verdicts) else 1)


if __name__ == "__main__":
    main()
