"""Browser capture benchmark: archiver against the ArchiveBox way and against warcprox + Playwright.

60 pages (`--pages`) over 12 loopback hosts (127.0.0.1 .. 127.0.0.12), each page with 20
subresources from 3 origins (its own host and the next two: stylesheets, scripts, images, a
CSS background image and a JSON file a script fetch()es), every response after 50 ms. Captured by
  a) archiver capture --browser --concurrency 4,
  b) the ArchiveBox way, one URL after another: wget -p --warc-file, then chromium --headless
     three times, for --screenshot, --print-to-pdf and --dump-dom,
  c) Chromium through warcprox, driven by Playwright one page at a time with a full-page
     screenshot written into the WARC, as brozzler does.

Every tool runs as its own process: wall-clock time and CPU time (os.wait4(), children
included) of that process; memory is the PSS of its process tree (Pss of
/proc/PID/smaps_rollup, summed), sampled every 0.2 s: of the Chromium processes (the target)
and of the whole tree (Python, Playwright's node driver, wget; warcprox for c).

Run from the project's venv:
    python bench/browser.py [--pages N] [--concurrency N] [--warcprox-python PATH] [--keep]
Needs wget and Chromium; warcprox in a venv of its own (it pins cryptography<46, which the
project's venv cannot take): see bench/README.md. Exit status 0 when every target passes, else 1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from archiver.capture.browser.chromium import VIEWPORT, find_chromium
from browser_site import HOSTS, LATENCY, serve_site, page_urls, site  # bench/browser_site.py
from capture import (archiver_command, measured_environment, new_collection, print_table, run_and_report,  # bench/capture.py
                     start_server, stop_server, verdict)

CONCURRENCY = 4
TARGET_VS_ARCHIVEBOX = 5.0
TARGET_VS_WARCPROX = 3.0
TARGET_PSS = 1.2 * 10**9  # bytes: the browser's peak PSS allowed to archiver
SAMPLE_EVERY = 0.2  # seconds between memory samples
MB = 10**6

# Chromium's switches for the peers, as archiver's Browser starts it (Playwright adds --headless,
# --disable-gpu and its automation switches for b).
PEER_FLAGS = ["--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run",
              "--disable-sync", "--hide-scrollbars", f"--window-size={VIEWPORT['width']},{VIEWPORT['height']}"]
if os.geteuid() == 0:
    PEER_FLAGS.append("--no-sandbox")  # as root Chromium cannot use its sandbox

ARCHIVEBOX_SCRIPT = """\
import os, subprocess, sys
# ArchiveBox's wget switches (WGET_ARGS, with its SAVE_WARC and page requisites on)
WGET = ["wget", "--no-verbose", "--adjust-extension", "--convert-links", "--force-directories",
        "--backup-converted", "--span-hosts", "--no-parent", "-e", "robots=off", "--timeout=60",
        "--restrict-file-names=windows", "--page-requisites"]
urls, out, chromium, flags = open(sys.argv[1]).read().split(), sys.argv[2], sys.argv[3], sys.argv[4:]
quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
for i, url in enumerate(urls):
    snapshot = os.path.join(out, str(i))
    os.makedirs(snapshot)
    subprocess.run([*WGET, "--warc-file=" + os.path.join(snapshot, "warc"), "-P", snapshot, url], **quiet)
    browser = [chromium, "--headless", "--user-data-dir=" + os.path.join(out, "profile"), *flags]
    subprocess.run([*browser, "--screenshot=" + os.path.join(snapshot, "screenshot.png"), url], **quiet)
    subprocess.run([*browser, "--print-to-pdf=" + os.path.join(snapshot, "output.pdf"), url], **quiet)
    with open(os.path.join(snapshot, "output.html"), "wb") as dom:
        subprocess.run([*browser, "--dump-dom", url], stdout=dom, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
"""

BROZZLER_SCRIPT = """\
import http.client, sys
from playwright.sync_api import sync_playwright
urls, proxy, chromium = open(sys.argv[1]).read().split(), sys.argv[2], sys.argv[3]
host, port = proxy.rsplit(":", 1)
with sync_playwright() as playwright:
    browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=sys.argv[5:],
                                         chromium_sandbox=sys.argv[4] == "sandbox",
                                         proxy={"server": "http://" + proxy, "bypass": "<-loopback>"})
    context = browser.new_context(viewport={"width": %d, "height": %d}, ignore_https_errors=True)
    for url in urls:
        page = context.new_page()
        page.goto(url, wait_until="load")
        page.wait_for_load_state("networkidle")
        png = page.screenshot(full_page=True)
        page.close()
        # brozzler hands its screenshot to warcprox, which writes it as a resource record
        proxy_connection = http.client.HTTPConnection(host, int(port))
        proxy_connection.request("WARCPROX_WRITE_RECORD", "screenshot:" + url, body=png,
                                 headers={"Content-Type": "image/png", "WARC-Type": "resource"})
        if proxy_connection.getresponse().status != 204:
            sys.exit("warcprox refused the screenshot of " + url)
        proxy_connection.close()
    browser.close()
""" % (VIEWPORT["width"], VIEWPORT["height"])

# warcprox refuses 127.0.0.1 (and only it) as an origin; the benchmark's first host is there.
WARCPROX_LAUNCHER = ("import sys, warcprox.warcproxy, warcprox.main; "
                     "warcprox.warcproxy.WarcProxyHandler.allow_localhost = True; warcprox.main.main(sys.argv)")


# ---------------------------------------------------------------- measuring a process tree

@dataclass
class Run:
    """One measured process (and its children)."""

    name: str
    exit_code: int
    wall: float  # seconds
    cpu: float  # user + system seconds, children included
    browser_pss: int  # bytes: peak of the Chromium processes' summed PSS
    all_pss: int  # bytes: peak of the whole tree's summed PSS
    stdout: Path
    stderr: Path

    def check(self, ok_codes=(0,)) -> None:
        if self.exit_code not in ok_codes:
            raise SystemExit(f"{self.name} exited with {self.exit_code}:\n"
                             f"{self.stderr.read_text(errors='replace')[-3000:]}")


def _tree(roots: list[int]) -> list[int]:
    """`roots` and every process descending from them."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        ppid = int(text[text.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def _pss(pid: int) -> tuple[int, bool]:
    """A process's PSS in bytes, and whether it is Chromium (0, False once it has gone)."""
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return 0, False
    kib = next((int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:")), 0)
    return kib * 1024, "chrom" in Path(exe).name


class Sampler:
    """Samples the summed PSS of some processes' trees every SAMPLE_EVERY s, keeping the peaks."""

    def __init__(self, roots: list[int]) -> None:
        self.roots, self.browser_peak, self.all_peak = roots, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY):
            sizes = [_pss(pid) for pid in _tree(self.roots)]
            self.browser_peak = max(self.browser_peak, sum(size for size, chromium in sizes if chromium))
            self.all_peak = max(self.all_peak, sum(size for size, _ in sizes))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def measure(name: str, command: list[str], work: Path, also: list[int] = ()) -> Run:
    """Run `command` as a process, sampling the memory of its tree (and of the `also` processes'
    trees); wall time, CPU time from os.wait4(). Output to `work`/NAME.stdout and .stderr."""
    stdout, stderr = work / f"{name}.stdout", work / f"{name}.stderr"
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                   env=measured_environment(work), cwd=work)
        sampler = Sampler([process.pid, *also])
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        sampler.stop()
    return Run(name, os.waitstatus_to_exitcode(status), wall, usage.ru_utime + usage.ru_stime,
               sampler.browser_peak, sampler.all_peak, stdout, stderr)


# ---------------------------------------------------------------- the three tools

def run_archiver(work: Path, url_file: Path, concurrency: int) -> tuple[Run, dict, list[Path]]:
    collection = new_collection(work / "archiver-collection")  # not "archiver": the package name
    run = measure("archiver", [*archiver_command(), "capture", "-C", str(collection), "--json", "--browser",
                               "--concurrency", str(concurrency), str(url_file)], work)
    run.check(ok_codes=(0, 1))  # 1: some pages failed, which the targets report
    unfinished = sorted(p.name for p in (collection / "warcs").glob("*.open"))
    if unfinished:
        raise SystemExit(f"archiver left unfinished WARC files: {unfinished}")
    return run, json.loads(run.stdout.read_text()), sorted((collection / "warcs").glob("*.warc.gz"))


def run_archivebox(work: Path, url_file: Path, chromium: str) -> tuple[Run, list[Path], dict[str, int]]:
    out = work / "archivebox"
    out.mkdir()
    run = measure("archivebox-way", [sys.executable, "-c", ARCHIVEBOX_SCRIPT, str(url_file), str(out), chromium,
                                     *PEER_FLAGS], work)
    run.check()
    made = {name: sum(1 for f in out.glob(f"*/{name}") if f.stat().st_size) for name in
            ("screenshot.png", "output.pdf", "output.html")}
    return run, sorted(out.glob("*/warc.warc.gz")), made


def run_warcprox(work: Path, url_file: Path, chromium: str, warcprox_python: str) -> tuple[Run, list[Path]]:
    """warcprox as a service (started first, as brozzler's is), then the Playwright driver, measured;
    warcprox's CPU time is added once it has written its last record and exited."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    warcs = work / "warcprox-warcs"
    log = open(work / "warcprox.log", "wb")
    service = subprocess.Popen([warcprox_python, "-c", WARCPROX_LAUNCHER, "-b", "127.0.0.1", "-p", str(port), "-z",
                                "-d", str(warcs), "-c", str(work / "warcprox-ca.pem"),
                                "--certs-dir", str(work / "warcprox-certs")],
                               stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=work)
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if service.poll() is not None:
                    raise SystemExit(f"warcprox exited: {(work / 'warcprox.log').read_text()[-2000:]}")
                time.sleep(0.1)
        sandbox = "nosandbox" if os.geteuid() == 0 else "sandbox"
        run = measure("warcprox-playwright", [sys.executable, "-c", BROZZLER_SCRIPT, str(url_file),
                                              f"127.0.0.1:{port}", chromium, sandbox, *PEER_FLAGS],
                      work, also=[service.pid])
        run.check()
    finally:
        service.send_signal(signal.SIGTERM)  # warcprox finishes its queue and closes its WARC
        _, _, usage = os.wait4(service.pid, 0)
        service.returncode = 0
        log.close()
    run.cpu += usage.ru_utime + usage.ru_stime
    return run, sorted(warcs.glob("*.warc.gz"))


# ---------------------------------------------------------------- reading what they stored

def stored(paths: list[Path]) -> tuple[set[str], int]:
    """URIs with a 200 response record in the WARCs, and how many screenshot records they hold."""
    from warcio.archiveiterator import ArchiveIterator

    ok, screenshots = set(), 0
    for path in paths:
        with open(path, "rb") as stream:
            for record in ArchiveIterator(stream):
                uri = record.rec_headers.get_header("WARC-Target-URI") or ""
                if record.rec_type == "response" and record.http_headers.get_statuscode() == "200":
                    ok.add(uri)
                elif record.rec_type == "resource" and "screenshot:" in uri:
                    screenshots += 1
    return ok, screenshots


# ---------------------------------------------------------------- the benchmark

def bench(work: Path, pages: int, concurrency: int, chromium: str, warcprox_python: str) -> list[str]:
    server, port = start_server(serve_site, pages)
    try:
        urls = page_urls(pages, port)
        wanted = set(site(pages, port))
        url_file = work / "urls.txt"
        url_file.write_text("\n".join(urls) + "\n")
        print(f"\n== {pages} pages over {HOSTS} loopback hosts, {len(wanted) // pages - 1} subresources each "
              f"from 3 origins, {LATENCY * 1000:.0f} ms per response: {len(wanted)} URLs")
        archiver, summary, archiver_warcs = run_archiver(work, url_file, concurrency)
        archivebox, archivebox_warcs, made = run_archivebox(work, url_file, chromium)
        warcprox, warcprox_warcs = run_warcprox(work, url_file, chromium, warcprox_python)
    finally:
        stop_server(server)

    counts = summary["counts"]
    print(f"  archiver JSON counts: {counts}")
    print(f"  ArchiveBox way, files made: {made}")
    rows, complete = [], {}
    for run, warcs in ((archiver, archiver_warcs), (archivebox, archivebox_warcs), (warcprox, warcprox_warcs)):
        ok, screenshots = stored(warcs)
        complete[run.name] = len(wanted & ok)
        rows.append([run.name, f"{run.wall:.1f}", f"{pages * 60 / run.wall:.1f}", f"{run.cpu:.1f}",
                     f"{run.browser_pss / MB:.0f}", f"{run.all_pss / MB:.0f}",
                     f"{complete[run.name]}/{len(wanted)}", str(screenshots)])
    print_table(["tool", "wall s", "pages/min", "cpu s", "browser PSS MB", "all PSS MB", "200s in WARC",
                 "screenshots in WARC"], rows)
    vs_archivebox, vs_warcprox = archivebox.wall / archiver.wall, warcprox.wall / archiver.wall
    print(f"  archiver pages/min vs the ArchiveBox way: {vs_archivebox:.2f}x")
    print(f"  archiver pages/min vs warcprox + Playwright: {vs_warcprox:.2f}x")
    print(f"  CPU s per page: archiver {archiver.cpu / pages:.2f}, ArchiveBox way {archivebox.cpu / pages:.2f}, "
          f"warcprox + Playwright {warcprox.cpu / pages:.2f}")
    missing = sorted(wanted - stored(archiver_warcs)[0])
    if missing:
        print(f"  archiver has no 200 response for {len(missing)} URLs, e.g. {missing[:3]}")
    return [
        verdict(counts.get("ok") == pages and complete[archiver.name] == len(wanted),
                f"archiver captured {counts.get('ok')}/{pages} pages ok; its WARCs hold a 200 response for "
                f"{complete[archiver.name]}/{len(wanted)} URLs (every page and subresource)"),
        verdict(vs_archivebox >= TARGET_VS_ARCHIVEBOX,
                f"archiver pages/min is {vs_archivebox:.2f}x the ArchiveBox way's (target >= {TARGET_VS_ARCHIVEBOX:g}x)"),
        verdict(vs_warcprox >= TARGET_VS_WARCPROX,
                f"archiver pages/min is {vs_warcprox:.2f}x warcprox + Playwright's (target >= {TARGET_VS_WARCPROX:g}x)"),
        verdict(archiver.browser_pss < TARGET_PSS,
                f"archiver's browser peak PSS {archiver.browser_pss / MB:.0f} MB at concurrency {concurrency} "
                f"(target < {TARGET_PSS / MB:.0f} MB; whole tree {archiver.all_pss / MB:.0f} MB)"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=60, metavar="N", help="pages to capture (default 60)")
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY, metavar="N",
                        help=f"archiver's --concurrency (default {CONCURRENCY})")
    parser.add_argument("--warcprox-python", default=os.environ.get("WARCPROX_PYTHON", sys.executable),
                        metavar="PATH", help="a Python that can import warcprox (default $WARCPROX_PYTHON, else this one)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    chromium = find_chromium()
    if not chromium or not shutil.which("wget"):
        raise SystemExit("needs Chromium (apt-get install chromium) and wget on the PATH")
    if subprocess.run([args.warcprox_python, "-c", "import warcprox"], capture_output=True).returncode:
        raise SystemExit(f"{args.warcprox_python} cannot import warcprox; make a venv for it "
                         "(python3 -m venv /tmp/warcprox-venv && /tmp/warcprox-venv/bin/pip install warcprox) "
                         "and pass --warcprox-python /tmp/warcprox-venv/bin/python")

    work = Path(tempfile.mkdtemp(prefix="archiver-bench-browser-", dir=os.environ.get("BENCH_TMP")))
    print(f"archiver browser benchmark: {os.cpu_count()} CPUs, shared by the servers and the tool measured; "
          f"Chromium {chromium}; work folder {work}")
    run_and_report(work, args.keep, lambda: bench(work, args.pages, args.concurrency, chromium, args.warcprox_python))


if __name__ == "__main__":
    main()
