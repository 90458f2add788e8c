"""QEMU: the one command line a boot test runs (binary and machine from arches/<arch>.yaml,
the harness's own arguments from the LKDTM expectations), and one run of it to its end, its
console kept. A stop asked for (Ctrl-C, SIGTERM, another boot's failure) ends it at once."""

from __future__ import annotations

import os
import selectors
import shutil
import subprocess
import threading
import time
from pathlib import Path

from . import interrupt
from .errors import InfraError, UserError
from .fsutil import atomic_write
from .lkdtm import Expectations
from .plan import BuildPlan
from .verdict import Boot

GRACE = 3.0  # seconds QEMU gets to exit by itself after the init's "done" or a panic


def binary(plan: BuildPlan) -> str:
    """The arch's QEMU, installed (or the package that has it, named)."""
    qemu = plan.arch.qemu
    name = str(qemu.get("binary", ""))
    if not name:
        raise UserError(f"arches/{plan.arch.name}.yaml: no qemu.binary",
                        "add a qemu section (binary, args, console, package)")
    if shutil.which(name) is None:
        package = qemu.get("package")
        install = f"apt-get install {package}" if package else "install QEMU"
        raise InfraError(f"arch {plan.arch.name}: {name} not found on PATH",
                         f"{install}, then rerun")
    return name


def console_words(plan: BuildPlan, exp: Expectations) -> list[str]:
    """The kernel command line every boot starts with: the arch's console, the profile's own
    command line (as shipped in dist/), the harness's parameters."""
    console = str(plan.arch.qemu.get("console", ""))
    shipped = plan.paths.dist / "cmdline"
    words = [f"console={console}"] if console else []
    return [*words, *(shipped.read_text().split() if shipped.is_file() else []), *exp.cmdline]


def argv(plan: BuildPlan, exp: Expectations, image: Path, initramfs: Path) -> list[str]:
    """QEMU's command line, but for -append (the kernel command line of one boot)."""
    args = plan.arch.qemu.get("args", [])
    return [binary(plan), *(str(a) for a in (args if isinstance(args, list) else [])),
            *exp.qemu_args, "-kernel", str(image), "-initrd", str(initramfs)]


def run(command: list[str], timeout: float, log: Path,
        stop: threading.Event | None = None) -> Boot:
    """Run one QEMU to its end (or the timeout); the console goes to ``log`` and is returned.

    The init reboots and QEMU exits; if it lingers after the init's "done" marker or a panic,
    it is stopped after a short grace period. Setting ``stop`` ends it at once.
    """
    start = time.monotonic()
    buf = bytearray()
    timed_out = False
    finished_at: float | None = None
    try:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
    except OSError as e:
        raise InfraError(f"cannot start {command[0]}: {e}", "check the QEMU installation") from None
    try:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        os.set_blocking(fd, False)
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while True:
                now = time.monotonic()
                if now - start >= timeout:
                    timed_out = True
                    break
                if finished_at is not None and now - finished_at >= GRACE:
                    break
                if stop is not None and stop.is_set() or interrupt.STOP.is_set():
                    break
                if not sel.select(min(0.2, timeout - (now - start))):
                    continue
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    break
                buf += chunk
                if finished_at is None and (b"KBUILD-PY: done" in buf
                                            or b"Kernel panic - not syncing" in buf):
                    finished_at = time.monotonic()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    seconds = time.monotonic() - start
    console = buf.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
    header = (f"# kbuild-py boot: {' '.join(command)}\n# {seconds:.2f} s, "
              f"{'timed out' if timed_out else f'exit {proc.returncode}'}\n")
    atomic_write(log, header + console)
    return Boot(console, seconds, timed_out, None if timed_out else proc.returncode)

