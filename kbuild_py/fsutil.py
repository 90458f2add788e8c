"""Small file-system helpers: atomic writes, hashing, locks. No kernel knowledge here."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from .errors import Busy, UserError

T = TypeVar("T")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def code_digest(folder: Path, suffixes: tuple[str, ...] = (".py", ".json")) -> str:
    """sha256 over the code and schemas under ``folder`` (names and contents, in order)."""
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.suffix in suffixes and "__pycache__" not in path.parts and path.is_file():
            h.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def atomic_write(path: Path, data: str | bytes, *, only_if_changed: bool = True) -> bool:
    """Write via a temp file in the same folder and rename. Returns True when the file changed.

    With only_if_changed, an identical file is left alone so its mtime (and every build tool
    that looks at it) stays still.
    """
    raw = data.encode() if isinstance(data, str) else data
    if only_if_changed and path.is_file() and path.read_bytes() == raw:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp",
                               dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return True


def atomic_copy(src: Path, dst: Path) -> None:
    atomic_write(dst, src.read_bytes())


@contextlib.contextmanager
def replaced_folder(dest: Path) -> Iterator[Path]:
    """Yield an empty work folder beside ``dest`` that replaces it whole when the block ends
    without error, and is removed when it raises: ``dest`` is never seen half-written (a
    killed run leaves only a partial that sweep_partials removes)."""
    work = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        yield work
        old = dest.with_name(f".{dest.name}.{os.getpid()}.old")
        if dest.exists():
            os.rename(dest, old)
        os.rename(work, dest)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def write_json(path: Path, obj: Any) -> bool:
    return atomic_write(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def recorded_seconds(record: Path) -> dict[str, float]:
    """The steps' seconds kept in ``record`` by timed() ({} when missing or not ours)."""
    try:
        seen = json.loads(record.read_text())
    except (OSError, ValueError):
        return {}
    return {k: float(v) for k, v in seen.items() if isinstance(v, int | float)} if (
        isinstance(seen, dict)) else {}


@contextlib.contextmanager
def timed(record: Path, step: str) -> Iterator[None]:
    """Time a step that ends without error and keep its seconds in ``record`` (a JSON object
    of step -> seconds, each step's last run), for the manifest."""
    start = time.monotonic()
    yield
    write_json(record, {**recorded_seconds(record),
                        step: round(time.monotonic() - start, 1)})


@contextlib.contextmanager
def exclusive_lock(path: Path, what: str, wait: bool = False) -> Iterator[None]:
    """Hold an exclusive flock on ``path``. A second holder is refused (Busy), or with
    ``wait`` waits for the first to finish (Ctrl-C still ends the wait)."""
    from . import interrupt

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0),
                 0o644)
    try:
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if not wait:
                    raise Busy(f"{what}: another kbuild-py run holds {path}",
                               "wait for it to finish, or stop it, then rerun") from None
                if not told:
                    from .ui import note

                    note(f"waiting for another kbuild-py run ({what})")
                    told = True
                interrupt.check()
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)


_PARTIAL = re.compile(r"^\..*\.(\d+)(\.[a-z0-9_]+)?\.(part|tmp|old)$")


def user_path(text: str, what: str) -> Path:
    """A path as given, with ~ and ~user expanded (a user without a home is bad input)."""
    try:
        return Path(text).expanduser()
    except RuntimeError:
        shown = f"{what}{text}" if what.endswith("=") else f"{what} {text}"
        raise UserError(f"{shown}: {text.split('/')[0]} names no home folder",
                        "give the path without ~, or with an existing user's") from None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # gone, or no pid a process could have
        return False
    except PermissionError:
        return True
    return True


def sweep_partials(folder: Path) -> list[Path]:
    """Remove temp files and folders left by a killed run (their writer's pid is gone)."""
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        m = _PARTIAL.match(entry.name)
        if not m or _alive(int(m.group(1))):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def in_thread(fn: Callable[[], T], name: str, stack_size: int = 0) -> Callable[[], T]:
    """Start ``fn`` on a thread of its own (optionally with a larger stack); the returned
    function joins it and gives its result, or raises its exception in the caller's thread."""
    box: dict[str, Any] = {}

    def body() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:
            box["error"] = e

    old = threading.stack_size(stack_size) if stack_size else 0
    try:
        thread = threading.Thread(target=body, name=name, daemon=True)
        thread.start()
    finally:
        if stack_size:
            threading.stack_size(old)

    def join() -> T:
        thread.join()
        if "error" in box:
            raise box["error"]
        return box["value"]  # type: ignore[no-any-return]

    return join
