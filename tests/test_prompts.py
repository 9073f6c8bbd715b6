"""A key's passphrase asked at a real terminal (a pseudo-terminal here): Ctrl-C there is an
interrupt (exit 130) and the end of input is no passphrase (exit 2), each told in one line."""

from __future__ import annotations

import os
import pty
import select
import sys

import pytest

from archiver.evidence.keys import create_signing_key
from archiver.store.collection import Collection


def _answer_the_prompt(root, keystroke: bytes) -> tuple[str, int]:
    """Run `archiver manifest` on a terminal, type `keystroke` at its passphrase prompt, and
    return what the terminal showed and the exit code."""
    pid, terminal = pty.fork()
    if pid == 0:  # the child: its stdin, stdout and stderr are the terminal
        os.execv(sys.executable, [sys.executable, "-m", "archiver", "manifest", "-C", str(root)])
    shown, typed = b"", False
    while True:
        # a bound against a hang should the prompt never come, never a measure of the command
        if not select.select([terminal], [], [], 120)[0]:
            os.kill(pid, 9)
            break
        try:
            chunk = os.read(terminal, 4096)
        except OSError:  # the child closed the terminal: it ended
            break
        if not chunk:
            break
        shown += chunk
        if not typed and b"Key passphrase:" in shown:
            os.write(terminal, keystroke)
            typed = True
    _, status = os.waitpid(pid, 0)
    os.close(terminal)
    return shown.decode(errors="replace"), os.waitstatus_to_exitcode(status)


@pytest.mark.parametrize("keystroke, code, said", [(b"\x03", 130, "error: interrupted"),
                                                   (b"\x04", 2, "error: no passphrase was given")],
                         ids=["ctrl-c", "ctrl-d"])
def test_a_passphrase_prompt_left_by_ctrl_c_or_ctrl_d_says_so_with_its_exit_code(tmp_path, keystroke, code, said):
    # click's own answer to both was "Aborted!" and exit 1, the code of a failed capture or check.
    collection = Collection.init(tmp_path / "c", name="test", operator="tester@example")
    create_signing_key(collection, None, b"secret")
    shown, exit_code = _answer_the_prompt(collection.root, keystroke)
    assert exit_code == code and said in shown and "Aborted" not in shown, shown
    assert not list((collection.root / "manifests").glob("manifest-*.json"))
