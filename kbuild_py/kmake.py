"""Invoking Kbuild: argv lists only, never a shell; a controlled environment; output to a log;
failures summarised; Ctrl-C and SIGTERM stop make and every compiler it started.

Nothing that make would expand reaches its command line: every variable value is checked for
``$`` and control characters, and every path given to make (the tree, O=, install paths) must
be plain (no whitespace, ``:``, ``$``, quotes ...), as Kbuild itself requires of its folders.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from . import interrupt, kbuild
from .errors import InfraError, UserError

_ERROR_LINE = re.compile(r"(error|Error \d+|undefined reference|fatal|\*\*\*)", re.I)
# The cause, as the compiler, linker or a script says it (not make's "*** [...] Error 1" echo).
_CAUSE = re.compile(r"(\berror\b:|fatal error|undefined reference|No rule to make target|"
                    r"not found|No such file or directory)")
_PLAIN_PATH = re.compile(r"[\w.+@/~-]+")


def plain_path(path: Path | str) -> bool:
    """Whether make, Kbuild's makefiles and their shell recipes take this path as it is."""
    return bool(_PLAIN_PATH.fullmatch(str(path)))


def require_plain_path(path: Path | str, what: str, hint: str) -> None:
    if not plain_path(path):
        raise UserError(f"{what} {str(path)!r}: make would misread it (it holds a space, "
                        "a line break or one of $:#%\"'\\;|&*?()[]{}<>=,!`)", hint)


def make_argv(tree: Path, objdir: Path, variables: dict[str, str], targets: list[str],
              jobs: int | None = None) -> list[str]:
    require_plain_path(tree, "kernel tree", "move the tree to a plain path")
    require_plain_path(objdir, "output folder", "give a plain --out / out= path")
    argv = ["make", "-C", str(tree), f"O={objdir}"]
    if jobs:
        argv.append(f"-j{jobs}")
    for name, value in sorted(variables.items()):
        kbuild.require_safe_value(name, value)
        argv.append(f"{name}={value}")
    for target in targets:
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_./+,-]*", target):
            raise UserError(f"make target {target!r}: not a plain target name",
                            "check the profile's base and dtbs")
    return argv + targets


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End make and everything it started (its own process group)."""
    for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    # stragglers of the group (compilers whose make died first)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _lines(fd: int) -> Iterator[str]:
    """The lines a pipe carries until it closes, watching for a stop between reads."""
    os.set_blocking(fd, False)
    pending = b""
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while True:
            interrupt.check()
            if not sel.select(0.25):
                continue
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:
                continue
            if not chunk:
                break
            *lines, pending = (pending + chunk).split(b"\n")
            for raw in lines:
                yield raw.decode("utf-8", "replace") + "\n"
    if pending:
        yield pending.decode("utf-8", "replace") + "\n"


def run_make(argv: list[str], log: Path, env: dict[str, str] | None = None,
             on_line: Callable[[str], None] | None = None, what: str = "make") -> None:
    """Run make, streaming its output to ``log``; on failure raise with the failing lines.

    The environment is Kbuild's controlled one (kbuild.environment) plus ``env``.
    """
    if shutil.which("make") is None:
        raise InfraError("make not found on PATH", "apt-get install make (build-essential)")
    log.parent.mkdir(parents=True, exist_ok=True)
    full_env = kbuild.environment()
    full_env.update(env or {})
    tail: list[str] = []
    causes: list[str] = []
    with open(log, "a", encoding="utf-8") as f:
        f.write("$ " + " ".join(argv) + "\n")
        f.flush()
        interrupt.check()
        try:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=full_env,
                                    start_new_session=True)
        except OSError as e:
            raise InfraError(f"cannot start make: {e}", "check that make is installed") from None
        try:
            assert proc.stdout is not None
            for line in _lines(proc.stdout.fileno()):
                f.write(line)
                error = _ERROR_LINE.search(line)
                if error:
                    tail.append(line.rstrip())
                    tail = tail[-12:]
                # the line that says why: a tool's own error, or a command make could not run
                if len(causes) < 2 and ((error and _CAUSE.search(line)) or failure_kind([line])):
                    causes.append(line.strip())
                if on_line:
                    on_line(line)
            while proc.poll() is None:
                interrupt.check()
                time.sleep(0.05)
            rc = proc.wait()
        except BaseException:
            _stop(proc)
            raise
        finally:
            if proc.stdout is not None:
                proc.stdout.close()
    if rc != 0:
        shown = "; ".join(causes or tail[-3:]) if tail else "no error line recognised"
        kind = failure_kind(causes or tail)
        raise InfraError(f"{what} failed (exit {rc}){', ' + kind if kind else ''}: {shown}",
                         f"full log: {log}")


def failure_kind(lines: list[str]) -> str:
    """What a failed make met, in words (kbuild/interface.yaml make_failures), or ''."""
    for kind, pattern in kbuild.interface().make_failures:
        if any(re.search(pattern, line) for line in lines):
            return kind
    return ""
