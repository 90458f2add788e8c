"""The $(shell ...) probes of a Kconfig parse (compiler tests: over half of its time), run in
parallel ahead of the parse that needs them, in an environment and a working directory of
their own: the process's environment and working directory are never changed.

kconfiglib reads environment variables through its module's ``os``; during a parse that name
is bound to a view whose environment is the Kconfig environment kbuild-py computed, and every
probe runs with exactly that environment in a scratch folder ($(cc-option) makes .tmp_$$
folders there, as it does under O=).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import kconfiglib

_PARSE = threading.Lock()  # kconfiglib's module state is shared: one parse at a time


class _OsView:
    """kconfiglib's ``os`` during a parse: the real module, but for the environment."""

    def __init__(self, env: dict[str, str]) -> None:
        self.environ = env

    def getenv(self, key: str, default: str | None = None) -> str | None:
        return self.environ.get(key, default)

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)


def run_probe(command: str, env: dict[str, str], cwd: str) -> str:
    """One probe as kconfiglib's $(shell) runs it (its output, newlines made spaces), with an
    explicit environment and working directory. The command is the kernel's own Kconfig text
    (make's $(shell) hands it to sh -c too); values from toolchain files in it are one word."""
    r = subprocess.run(["/bin/sh", "-c", command], capture_output=True, env=env, cwd=cwd,
                       check=False, stdin=subprocess.DEVNULL)
    stdout = r.stdout.decode("utf-8", errors="replace")
    return "\n".join(stdout.splitlines()).rstrip("\n").replace("\n", " ")


class ProbeRunner:
    """Within ``with``: kconfiglib sees ``env`` as its environment, and each $(shell ...)
    command runs once, in parallel where foreseen, in a scratch folder.

    Which probes a parse will run is only known by parsing, so two sources guess them: the
    commands ``hint`` names (an earlier parse with the same arch and toolchain; any tree: the
    source path is a placeholder) and a prescan (_Prescan) that reads the Kconfig files ahead of
    kconfiglib and expands only their macros. Only commands are guessed, never a result: every
    probe runs afresh, a result is used only for the very command the parse asks for, and a
    command nobody foresaw runs when the parse meets it, as without any of this.
    """

    SRC = "@SRCTREE@"

    def __init__(self, env: dict[str, str], srctree: str, hint: list[str],
                 answers: dict[str, str] | None = None) -> None:
        self.env, self.srctree, self.hint = dict(env), srctree, hint
        self.answers = answers  # an earlier parse's results: no probe runs (model.py's cache)
        self.seen: list[str] = []
        self.results: dict[str, str] = {}
        self.ahead: dict[str, Future[str]] = {}

    def __enter__(self) -> ProbeRunner:
        _PARSE.acquire()
        try:
            self._scratch = tempfile.TemporaryDirectory(prefix="kbuild-py-kconfig-")
            self.cwd = self._scratch.name
            self.lock = threading.Lock()
            self.pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 2)
            self._os = kconfiglib.os
            self._shell = kconfiglib._shell_fn
            kconfiglib.os = _OsView(self.env)
            kconfiglib._shell_fn = self._parse_shell
            if self.answers is None:  # nothing known: start what can be foreseen
                for command in self.hint:
                    self.submit(command.replace(self.SRC, self.srctree))
                self.prescan = _Prescan(self.srctree, self.submit)
                self.prescan.start()
        except BaseException:
            self._restore()
            raise
        return self

    def _parse_shell(self, kconf: Any, name: Any, command: str) -> str:
        self.seen.append(command)
        key = command.replace(self.srctree, self.SRC)
        if self.answers is not None and key in self.answers:
            self.results[key] = self.answers[key]
            return self.answers[key]
        result = self._run(command)
        self.results[key] = result
        return result

    def _run(self, command: str) -> str:
        with self.lock:
            future = self.ahead.get(command)
            mine = future is None
            if future is None:  # nobody foresaw it: run it here (not behind the queue)
                future = self.ahead[command] = Future()
        if not mine:
            return str(future.result())
        try:
            result = run_probe(command, self.env, self.cwd)
        except BaseException as e:
            future.set_exception(e)
            raise
        future.set_result(result)
        return result

    def submit(self, command: str) -> Future[str]:
        """Start ``command`` unless it runs already; its future."""
        with self.lock:
            future = self.ahead.get(command)
            if future is None:
                future = self.ahead[command] = self.pool.submit(
                    run_probe, command, self.env, self.cwd)
            return future

    def answered(self) -> dict[str, str]:
        """Every command the parse asked (the source path a placeholder) and its output."""
        return dict(self.results)

    def commands(self) -> list[str]:
        """The commands the parse ran, the source path made a placeholder (the next hint)."""
        return [c.replace(self.srctree, self.SRC) for c in self.seen]

    def _restore(self) -> None:
        kconfiglib.os = getattr(self, "_os", kconfiglib.os)
        kconfiglib._shell_fn = getattr(self, "_shell", kconfiglib._shell_fn)
        if hasattr(self, "prescan"):
            self.prescan.stop()
        if hasattr(self, "pool"):
            self.pool.shutdown(wait=True, cancel_futures=True)
        if hasattr(self, "_scratch"):
            self._scratch.cleanup()
        _PARSE.release()

    def __exit__(self, *_: object) -> None:
        self._restore()


_RELATIVE_SOURCE = ("rsource", "orsource", "grsource")


class _PrescanLineError(Exception):
    pass


class _Prescan:
    """Reads the Kconfig files in kconfiglib's order, in a thread, only to start their probes.

    It follows ``source`` lines and preprocessor assignments and expands the macros of the
    other lines with kconfiglib's own expander; everything else (symbols, menus, help text) is
    skipped. A ``:=`` assignment waits for its probes, as kconfiglib would; any other line's
    probes are only started. Whatever it gets wrong costs a wasted probe, never a wrong value:
    the parse uses a probe's result only for the command it asks for itself.
    """

    # kconfiglib's macro machinery, borrowed: it needs only the attributes set in __init__.
    _expand_whole = kconfiglib.Kconfig._expand_whole
    _expand_macro = kconfiglib.Kconfig._expand_macro
    _fn_val = kconfiglib.Kconfig._fn_val
    _parse_assignment = kconfiglib.Kconfig._parse_assignment

    _SOURCE = re.compile(r'\s*(source|rsource|osource|orsource|gsource|grsource)\s+"([^"]*)"')
    _ASSIGN = re.compile(r"[A-Za-z0-9_$()-]+\s*(=|:=|\+=)")

    def __init__(self, srctree: str, submit: Callable[[str], Future[str]]) -> None:
        self.srctree, self.submit = srctree, submit
        self.variables: dict[str, Any] = {}
        self.env_vars: set[str] = set()
        self._encoding = "utf-8"
        self.filename: str | None = None
        self.linenr: int | None = None
        self.wait = False
        self.stopped = False
        self._functions = {
            "info": (lambda *_: "", 1, 1), "warning-if": (lambda *_: "", 2, 2),
            "error-if": (lambda *_: "", 2, 2), "filename": (lambda *_: "", 0, 0),
            "lineno": (lambda *_: "", 0, 0), "shell": (self._shell, 1, 1)}

    def _shell(self, _kconf: Any, _name: Any, command: str) -> str:
        future = self.submit(command)
        return str(future.result()) if self.wait else ""

    def _parse_error(self, msg: str) -> None:
        raise _PrescanLineError(msg)

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="kconfig-prescan", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopped = True
        self.thread.join()

    def _run(self) -> None:
        self.nested: list[str] = []
        with contextlib.suppress(Exception):  # a guess that fails costs nothing
            self._file(os.path.join(self.srctree, "Kconfig"))
            # Lines whose probes take another probe's output: again, now with that output.
            self.wait = True
            for line in self.nested:
                if self.stopped:
                    return
                with contextlib.suppress(Exception):
                    self._expand_whole(line, ())

    def _file(self, path: str) -> None:
        import glob

        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                lines = f.read().split("\n")
        except OSError:
            return
        help_indent: int | None = None
        in_help = False
        pending = ""
        for raw in lines:
            if self.stopped:
                return
            if in_help:  # kconfiglib's rule: it ends at the first line indented less
                expanded = raw.expandtabs()
                stripped = expanded.lstrip()
                if not stripped:
                    continue
                indent = len(expanded) - len(stripped)
                if help_indent is None:
                    help_indent = indent
                if indent >= help_indent:
                    continue
                in_help = False
            if raw.endswith("\\"):
                pending += raw[:-1]
                continue
            line, pending = pending + raw, ""
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            if text in ("help", "---help---"):
                in_help, help_indent = True, None
                continue
            source = self._SOURCE.match(line)
            try:
                if source:
                    pattern = self._expand_whole(source.group(2), ())
                    base = (os.path.dirname(path) if source.group(1) in _RELATIVE_SOURCE
                            else self.srctree)
                    for name in sorted(glob.iglob(os.path.join(base, pattern))):
                        self._file(name)
                elif self._ASSIGN.match(line) and not line[0].isspace():
                    self.wait = True
                    try:
                        self._parse_assignment(line)
                    finally:
                        self.wait = False
                elif "$(" in line:
                    self._expand_whole(line, ())
                    if line.find("$(shell,") > line.find("$("):  # a probe inside a probe
                        self.nested.append(line)
            except Exception:  # noqa: S112 - the parse proper reports real errors
                continue
