"""Start-up benchmark: how long `archiver --help` and a listing take, as whole processes.

Makes a small collection (one document of 10 claims, each citing a loopback URL that the
collection refuses, so nothing leaves the machine), then runs each command below as its own
process, REPEATS times in turns, and reports the median wall time:
  - `python -c pass`: the interpreter's own start-up, the floor for any Python command;
  - `warcio --help`: a peer, another Python WARC tool's command line;
  - `git --version`: a peer in C, what a user's fingers compare with;
  - `archiver --help` and `archiver claims` (piped, as a script reads it), the measured ones.
The ratio of each to `python -c pass` puts a busy machine's figures in scale.

Run from the project's venv:
    python bench/startup.py [--repeats N] [--keep]
Work files go to a temporary folder under $BENCH_TMP (default: the system temp folder).
Exit status 0 when both archiver commands meet the target, else 1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 0.200  # seconds, median wall time of `archiver --help` and of `archiver claims`
REPEATS = 30


def wall(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def make_collection(folder: Path) -> None:
    """Ten claims, each citing its own loopback URL, captured (refused: loopback) once."""
    (folder / "doc.md").write_text("\n\n".join(f"Claim {i} cites http://127.0.0.1:9/page{i}" for i in range(10)) + "\n")
    # Exit 1: every URL is refused, as loopback addresses are by default; the claims are read.
    subprocess.run([sys.executable, "-m", "archiver", "capture", "doc.md"], cwd=folder, stdout=subprocess.DEVNULL,
                   env={**os.environ, "ARCHIVER_CHROMIUM": ""})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=REPEATS, help=f"runs of each command (default {REPEATS})")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="archiver-startup-", dir=os.environ.get("BENCH_TMP")))
    os.environ["ARCHIVER_KEY"] = str(work / "key.pem")  # the bench's own key, never the user's
    try:
        make_collection(work)
        bin_dir = Path(sys.executable).parent
        commands = {"python -c pass": [sys.executable, "-c", "pass"],
                    "archiver --help": [sys.executable, "-m", "archiver", "--help"],
                    "archiver claims": [sys.executable, "-m", "archiver", "claims"]}
        if (bin_dir / "warcio").exists():
            commands["warcio --help"] = [str(bin_dir / "warcio"), "--help"]
        if shutil.which("git"):
            commands["git --version"] = ["git", "--version"]
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.repeats):  # in turns, so that a busy spell weighs on every command alike
            for name, command in commands.items():
                times[name].append(wall(command, work))
        floor = statistics.median(times["python -c pass"])
        print(f"Median wall time of {args.repeats} runs each ({os.cpu_count()} CPUs):")
        for name, measured in times.items():
            median = statistics.median(measured)
            print(f"  {name:<16} {median * 1000:6.0f} ms   {median / floor:4.1f}x python -c pass   "
                  f"(fastest {min(measured) * 1000:.0f} ms)")
        results = [(name, statistics.median(times[name])) for name in ("archiver --help", "archiver claims")]
        for name, median in results:
            print(f"{'PASS' if median < TARGET else 'FAIL'}  {name} median {median * 1000:.0f} ms < {TARGET * 1000:.0f} ms")
        return 0 if all(median < TARGET for _, median in results) else 1
    finally:
        if args.keep:
            print(f"Work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
