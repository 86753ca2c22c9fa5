"""Children that die with the test process.

Fixtures clean up in ``finally``, but a test runner that is itself killed
(SIGKILL, a hard timeout) runs no ``finally``: the fake platforms and the bot
would live on. On Linux the kernel can SIGKILL a child when its parent dies.
"""

from __future__ import annotations

import ctypes
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """``preexec_fn`` for subprocesses: best effort, Linux only."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
