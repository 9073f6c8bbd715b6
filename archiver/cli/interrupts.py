"""Ctrl-C and an operator's `kill`: for every command, SIGTERM is taken as Ctrl-C is (one line,
exit 130); during a capture, the first asks the run to stop and store what is whole, a second
stops the process at once."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from typing import Callable, Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
INTERRUPTED = 130  # the exit code of a run stopped by a signal, as shells report one


@contextlib.contextmanager
def terminating_as_interrupted() -> Iterator[None]:
    """Within the block, SIGTERM (a `kill`, a service manager stopping the job) raises
    KeyboardInterrupt as Ctrl-C does, so every command told so ends as an interrupted one: "error:
    interrupted" and exit 130, never a silent 143. What the stop leaves is repaired by the next
    command that changes the collection, as after Ctrl-C. Only in the main thread, where Python
    runs signal handlers (a test may run a command in another)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def stopping_on_signals(stop: Callable[[], None], as_json: bool = False) -> Iterator[None]:
    """Within the block, the first SIGINT or SIGTERM calls `stop`; a second ends the process
    with exit 130 there and then. What that leaves (a WARC still `.open`) is never taken for
    whole: the next command that changes the collection repairs it. Each is said on stderr,
    under --json as JSON (a notice, then an error)."""
    told = False
    stopping = "stopping: no new captures start; storing what is whole (interrupt again to stop at once)"
    stopped = "stopped at once; the next command that changes the collection repairs what was left"
    said = ([json.dumps({"notice": stopping}), json.dumps({"error": stopped, "exit_code": INTERRUPTED})] if as_json
            else [stopping, stopped])
    first, second = (f"{line}\n".encode() for line in said)  # made now: a signal handler must not build them

    def handle(signum: int, frame) -> None:
        nonlocal told
        # os.write: a signal handler must not re-enter buffered streams another line may be using.
        if told:
            os.write(2, second)
            os._exit(INTERRUPTED)
        told = True
        os.write(2, first)
        stop()

    previous = {number: signal.signal(number, handle) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
