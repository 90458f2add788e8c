"""Invoking Kbuild: argv lists only, never a shell; output to a log; failures summarised."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from .errors import InfraError

_ERROR_LINE = re.compile(r"(error|Error \d+|undefined reference|fatal|\*\*\*)", re.I)
# The cause, as the compiler, linker or a script says it (not make's "*** [...] Error 1" echo).
_CAUSE = re.compile(r"(\berror\b:|fatal error|undefined reference|No rule to make target)")


def make_argv(tree: Path, objdir: Path, variables: dict[str, str], targets: list[str],
              jobs: int | None = None) -> list[str]:
    argv = ["make", "-C", str(tree), f"O={objdir}"]
    if jobs:
        argv.append(f"-j{jobs}")
    argv += [f"{k}={v}" for k, v in sorted(variables.items())]
    return argv + targets


def run_make(argv: list[str], log: Path, env: dict[str, str] | None = None,
             on_line: Callable[[str], None] | None = None, what: str = "make",
             inherit: dict[str, str] | None = None) -> None:
    """Run make, streaming its output to ``log``; on failure raise with the failing lines.

    The environment is ``inherit`` (default: this process's) plus ``env``.
    """
    if shutil.which("make") is None:
        raise InfraError("make not found on PATH", "apt-get install make (build-essential)")
    log.parent.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ if inherit is None else inherit)
    full_env.update(env or {})
    full_env["LC_ALL"] = "C"
    tail: list[str] = []
    causes: list[str] = []
    with open(log, "a", encoding="utf-8") as f:
        f.write("$ " + " ".join(argv) + "\n")
        f.flush()
        try:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    env=full_env, text=True, errors="replace")
        except OSError as e:
            raise InfraError(f"cannot start make: {e}", "check that make is installed") from None
        with proc:
            assert proc.stdout is not None
            try:
                for line in proc.stdout:
                    f.write(line)
                    if _ERROR_LINE.search(line):
                        tail.append(line.rstrip())
                        tail = tail[-12:]
                        if _CAUSE.search(line) and len(causes) < 2:
                            causes.append(line.strip())
                    if on_line:
                        on_line(line)
                rc = proc.wait()
            except BaseException:
                proc.kill()
                proc.wait()
                raise
    if rc != 0:
        shown = "; ".join(causes or tail[-3:]) if tail else "no error line recognised"
        raise InfraError(f"{what} failed (exit {rc}): {shown}", f"full log: {log}")
