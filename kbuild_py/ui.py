"""The one place that talks to the person running kbuild-py: progress and result lines on
standard output. (Errors are printed by cli.main and the SCons glue, one line on stderr.)"""

from __future__ import annotations

import sys
import time
from typing import Any


def note(text: str) -> None:
    """One line of progress or result."""
    print(text, flush=True)


def block(text: str) -> None:
    """A rendered report, as it is."""
    sys.stdout.write(text)
    sys.stdout.flush()


def warn(text: str) -> None:
    """A warning: stderr, prefixed, one line."""
    print(f"kbuild-py: warning: {' '.join(text.split())}", file=sys.stderr, flush=True)


class Progress:
    """How far one long step is: a tqdm bar on a terminal; elsewhere (a CI log) a plain line
    at most every ``Progress.every`` seconds and one at the end, each with the elapsed time,
    e.g. ``kbuild-py: build qemu-x86_64: 412 compiles, 3:20``. ``total`` when known."""

    every = 30.0  # seconds between two lines in a log

    def __init__(self, what: str, unit: str, total: int | None = None,
                 binary: bool = False) -> None:
        self.what, self.unit, self.total, self.binary = what, unit, total, binary
        self.done = 0
        self.bar: Any = None
        self.started = self.last = time.monotonic()

    def __enter__(self) -> Progress:
        if sys.stdout.isatty():
            from tqdm import tqdm

            self.bar = tqdm(desc=self.what, unit=" " + self.unit if not self.binary else "B",
                            total=self.total, unit_scale=self.binary, leave=False)
        return self

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            note(self._line(now))

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()
        elif exc[0] is None and time.monotonic() - self.started >= self.every:
            note(self._line(time.monotonic()) + " (done)")

    def _amount(self, n: int) -> str:
        return f"{n >> 20} MiB" if self.binary else str(n)

    def _line(self, now: float) -> str:
        seconds = int(now - self.started)
        of = f" of {self._amount(self.total)}" if self.total else ""
        return (f"kbuild-py: {self.what}: {self._amount(self.done)}{of} {self.unit}, "
                f"{seconds // 60}:{seconds % 60:02d}")
