"""Cache files that only this user's own kbuild-py runs can have written.

Everything kbuild-py keeps in out/cache/ to skip work (parsed Kconfig models, probe hints,
Kbuild's conf results, tarball hashes) is signed with HMAC-SHA256 under a key that lives beside
it, readable and writable by its owner only. A file that is not signed with that key, or whose
content does not match its signature, is treated as absent: the work is done again. So a
planted probe answer or result is never believed, whoever could write the folder.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import hmac
import os
import stat
from pathlib import Path

from .errors import UserError
from .fsutil import atomic_write

MAGIC = b"kbuild-py signed 1\n"
KEY_NAME = ".kbuild-py-key"
_KEY_BYTES = 32


def _read_key(path: Path) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise UserError(f"{path}: the cache key is a symbolic link",
                            f"remove it; the cache in {path.parent} is rebuilt") from None
        raise
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if (not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid()
                or st.st_mode & 0o077 or st.st_size != _KEY_BYTES):
            raise UserError(f"{path}: the cache key is not a private file of this user "
                            "(owner, mode 0600, 32 bytes)",
                            f"remove it; the cache in {path.parent} is rebuilt")
        return f.read()


def _new_key(path: Path) -> bytes:
    """A fresh key, created once even when runs race: written privately, then linked."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    key = os.urandom(_KEY_BYTES)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another run made one first: use that
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    found = _read_key(path)
    assert found is not None
    return found


class Signer:
    """Signed reads and writes of the files under one cache folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._key: bytes | None = None

    def key(self) -> bytes:
        if self._key is None:
            path = self.root / KEY_NAME
            self._key = _read_key(path) or _new_key(path)
        return self._key

    def _mac(self, data: bytes) -> bytes:
        return hmac.new(self.key(), data, hashlib.sha256).digest()

    def dump(self, path: Path, data: bytes | str) -> None:
        raw = data.encode() if isinstance(data, str) else data
        atomic_write(path, MAGIC + self._mac(raw) + raw)

    def load(self, path: Path) -> bytes | None:
        """The content, or None when the file is missing, unsigned or altered."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return None
            head = f.read(len(MAGIC) + 32)
            raw = f.read()
        if len(head) != len(MAGIC) + 32 or not head.startswith(MAGIC):
            return None
        if not hmac.compare_digest(head[len(MAGIC):], self._mac(raw)):
            return None
        return raw

    def load_text(self, path: Path) -> str | None:
        raw = self.load(path)
        if raw is None:
            return None
        try:
            return raw.decode()
        except UnicodeDecodeError:
            return None
