"""The one place that talks to the person running kbuild-py: progress and result lines on
standard output. (Errors are printed by cli.main and the SCons glue, one line on stderr.)"""

from __future__ import annotations

import sys


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
