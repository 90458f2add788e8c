"""Ctrl-C and SIGTERM: every long-running loop (make, QEMU, extraction, download) watches one
process-wide event and stops at once, cleaning up what it started (make runs in a process group
of its own, killed whole), then the run ends with one line and exit code 4."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

from .errors import Interrupted

STOP = threading.Event()
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def interrupted(signum: int | None = None) -> Interrupted:
    name = signal.Signals(signum).name if signum else "a signal"
    return Interrupted(f"interrupted by {name}: stopped, and what was half done removed",
                       "rerun to continue (finished steps are kept)")


def check() -> None:
    """Raise Interrupted when a stop was asked for (call it in long loops)."""
    if STOP.is_set():
        raise interrupted(_received[0] if _received else None)


_received: list[int] = []


@contextlib.contextmanager
def handled() -> Iterator[None]:
    """For the command line: SIGINT, SIGTERM and SIGHUP set STOP and raise Interrupted in the
    main thread, wherever it waits."""
    def handler(signum: int, _frame: FrameType | None) -> None:
        _received.append(signum)
        STOP.set()
        raise interrupted(signum)

    old = {s: signal.signal(s, handler) for s in _SIGNALS}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def chained(original: object) -> Callable[[int, FrameType | None], Any]:
    """A signal handler that sets STOP, then calls ``original`` (SCons's own handler, which
    stops scheduling new steps: STOP ends the running one)."""
    def handler(signum: int, frame: FrameType | None) -> Any:
        _received.append(signum)
        STOP.set()
        if callable(original):
            return original(signum, frame)
        return None
    return handler
