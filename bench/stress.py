"""Crash stress: kill `archiver capture` with SIGKILL at random moments, many times over one
collection (each run captures pages no run captured before, so every kill lands mid-run);
after each kill `archiver doctor --fix` must repair it and `archiver verify` must pass; at
the end `archiver capture --resume` must finish every page the killed runs left.

    python bench/stress.py --kills 200     (the long run; the test suite kills once)
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import random
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from capture import _QuietHandler, archiver_command, new_collection, run_and_report, start_server, stop_server

PAGES_PER_RUN = 40


def _serve(ready, port_out) -> None:
    """One threaded HTTP/1.1 server answering every path with a small page after 100 ms."""
    class Handler(_QuietHandler):
        def do_GET(self) -> None:
            time.sleep(0.1)
            body = (self.path * 40).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    class Server(http.server.ThreadingHTTPServer):
        def handle_error(self, request, client_address) -> None:
            pass  # a killed client hangs up mid-response: expected here, not worth a traceback

    server = Server(("127.0.0.1", 0), Handler)
    server.protocol_version = "HTTP/1.1"
    port_out.value = server.server_address[1]
    ready.set()
    server.serve_forever()


def archiver(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*archiver_command(), *args], capture_output=True, text=True)


def stress(work: Path, kills: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    process, port = start_server(_serve)
    try:
        collection = new_collection(work / "collection")
        every_url: list[str] = []
        repaired = unhealthy = 0
        started = time.monotonic()
        for kill in range(kills):
            urls = [f"http://127.0.0.1:{port}/run/{kill}/page/{i}" for i in range(PAGES_PER_RUN)]
            every_url += urls
            run = subprocess.Popen([*archiver_command(), "capture", "-C", str(collection), "--concurrency", "4", *urls],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.5, 1.3))  # start-up takes ~0.3 s; 40 pages at 4 at once take ~1 s more
            finished_first = run.poll() is not None
            run.send_signal(signal.SIGKILL)
            run.wait()
            found = json.loads(archiver("doctor", "-C", str(collection), "--json").stdout)
            unhealthy += not found["healthy"]
            if archiver("doctor", "-C", str(collection), "--fix").returncode != 0:
                return [f"FAIL  doctor --fix failed after kill {kill + 1}"]
            repaired += not found["healthy"]
            verdict = json.loads(archiver("verify", "-C", str(collection), "--json", "--workers", "1").stdout)
            if not verdict["ok"]:
                return [f"FAIL  verify failed after kill {kill + 1}: {verdict['failures'][:3]}"]
            if finished_first:
                print(f"  run {kill + 1} finished before its kill")
        finish = archiver("capture", "-C", str(collection), "--resume", *every_url, "--json")
        verdict = json.loads(archiver("verify", "-C", str(collection), "--json").stdout)
        captured = {c["url"] for c in json.loads(archiver("captures", "-C", str(collection), "--json").stdout)
                    if c["outcome"] == "ok"}
        print(f"{kills} kills in {time.monotonic() - started:.0f} s, each mid-run; {unhealthy} left something to "
              f"repair ({repaired} repaired); resumed run exit {finish.returncode}; "
              f"{len(captured)}/{len(every_url)} pages captured; verify {'ok' if verdict['ok'] else 'FAILED'} "
              f"({sum(verdict['passed'].values())} checks)")
        return [("PASS" if verdict["ok"] else "FAIL") + f"  verify after {kills} SIGKILLs and their repairs",
                ("PASS" if len(captured) == len(every_url) else "FAIL")
                + f"  every page captured in the end ({len(captured)}/{len(every_url)})"]
    finally:
        stop_server(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="archiver-stress-", dir=os.environ.get("BENCH_TMP")))
    os.environ["ARCHIVER_KEY"] = str(work / "signing.ed25519.pem")
    run_and_report(work, args.keep, lambda: stress(work, args.kills, args.seed))


if __name__ == "__main__":
    main()
