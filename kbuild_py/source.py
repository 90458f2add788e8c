"""Kernel source providers: a pinned URL, a local tarball, or a local tree (read-only).

The only I/O here is fetching, hashing and extracting; every write goes to a temp path that is
renamed into place once complete, so a killed run never leaves something that looks finished.
Everything is bounded: downloads (size, connect and read timeouts, a total deadline, retries
that resume with Range), tarballs (member count, total size against the compressed size and
the free disk, member names and types) and the identity of a pinned file (re-hashed whenever
its device, inode, size, mtime or ctime changed; an extracted tree records its tarball's hash,
which is checked against the pin before every use).
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import stat
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from . import interrupt
from .errors import InfraError, UserError, redact
from .fsutil import exclusive_lock, sha256_file, sweep_partials, user_path
from .profile import SourcePin, Version
from .signed import Signer
from .ui import Progress

COMPLETE = ".kbuild-py-complete"

# Limits. A Linux source tarball: ~90,000 members, ~1.5 GB unpacked from ~150 MB of xz (10x).
MAX_MEMBERS = 400_000
MAX_UNPACKED = 12 << 30
MAX_RATIO = 40  # unpacked bytes per compressed byte (beyond a 1 GiB allowance)
KEEP_FREE = 256 << 20  # never fill the disk to its last bytes
MAX_DOWNLOAD = 4 << 30
CONNECT_TIMEOUT, READ_TIMEOUT, DEADLINE, ATTEMPTS = 15.0, 60.0, 3600.0, 4
MIN_RATE = 1024  # bytes/s averaged over READ_TIMEOUT, or the transfer is dropped and resumed


@dataclass(frozen=True)
class KernelTree:
    path: Path
    version: Version
    version_text: str
    identity: str  # content identity: sha256 of the tarball, or "tree:<path>" for a local tree
    owned: bool  # extracted by us (immutable) or the user's tree (may change under us)


def parse_source_arg(text: str) -> SourcePin:
    """The `source=` variable: a tarball path, a tree path, or URL#sha256=<hex>."""
    if not text.strip():
        raise UserError("source is empty", "give a kernel tarball, a kernel tree, or "
                        "URL#sha256=<hex>, or leave it out for the profile's source")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise UserError(f"source {text!r}: holds a control character", "check the value")
    if re.match(r"https?://", text):
        url, _, frag = text.partition("#sha256=")
        if not re.fullmatch(r"[0-9a-f]{64}", frag):
            raise UserError(f"source={text}: a URL needs its pin, as URL#sha256=<64 hex digits>",
                            "add the sha256 of the tarball")
        if not re.fullmatch(r"https?://[!-~]+", url):
            raise UserError(f"source={url}: not a plain URL", "check the URL")
        return SourcePin("url", url, frag)
    path = user_path(text, "source=")
    try:
        if path.is_dir():
            return SourcePin("tree", str(path.resolve()))
        if path.is_file():
            return SourcePin("tarball", str(path.resolve()))
    except OSError as e:
        raise UserError(f"source={text}: {e.strerror}", "check the path") from None
    raise UserError(f"source={text}: no such file or directory",
                    "give a kernel tarball, a kernel tree, or URL#sha256=<hex>")


def kernel_version(tree: Path) -> tuple[Version, str]:
    try:
        with open(tree / "Makefile", "rb") as f:
            text = f.read(4000).decode("utf-8", errors="replace")
    except OSError:
        raise UserError(f"{tree}: not a kernel tree (no Makefile)",
                        "point source= at the top of a Linux source tree") from None
    fields = dict(re.findall(r"^(VERSION|PATCHLEVEL|SUBLEVEL|EXTRAVERSION)[ \t]*=[ \t]*(\S*)", text,
                             re.M))
    if not (tree / "Kconfig").is_file() or "VERSION" not in fields:
        raise UserError(f"{tree}: not a kernel tree (no Kconfig or VERSION)",
                        "point source= at the top of a Linux source tree")
    numbers = [fields.get(k) or "0" for k in ("VERSION", "PATCHLEVEL", "SUBLEVEL")]
    if not all(re.fullmatch(r"[0-9]{1,4}", n) for n in numbers):
        raise UserError(f"{tree}/Makefile: VERSION, PATCHLEVEL and SUBLEVEL must be numbers, "
                        f"not {'.'.join(numbers)!r}", "point source= at a Linux source tree")
    extra = fields.get("EXTRAVERSION", "")
    if not re.fullmatch(r"[A-Za-z0-9._+-]{0,64}", extra):
        raise UserError(f"{tree}/Makefile: EXTRAVERSION {extra!r} is not a plain version suffix",
                        "point source= at a Linux source tree")
    nums = tuple(int(n) for n in numbers)
    return nums, "{}.{}.{}{}".format(*nums, extra)


def _identity(st: os.stat_result) -> str:
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"


class HashCache:
    """sha256 of big local files, remembered by the file's identity (device, inode, size,
    mtime and ctime: a file changed in place, even with its size and mtime put back, has a new
    ctime) in a signed file, so a no-op stays cheap and a planted entry is never believed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.signer = Signer(path.parent)
        text = self.signer.load_text(path)
        try:
            data = json.loads(text) if text else {}
        except ValueError:
            data = {}
        self.data: dict[str, str] = data if isinstance(data, dict) else {}

    def sha256(self, file: Path) -> str:
        st = file.stat()
        if not stat.S_ISREG(st.st_mode):
            raise UserError(f"{file}: not a regular file", "give a kernel source tarball")
        real = str(file.resolve())
        key = f"{real}|{_identity(st)}"
        if key not in self.data:
            self.data = {k: v for k, v in self.data.items() if not k.startswith(f"{real}|")}
            self.data[key] = sha256_file(file)
            self.signer.dump(self.path, json.dumps(self.data, indent=1, sort_keys=True))
        return self.data[key]


def fetch(url: str, sha256: str, cache_dir: Path) -> Path:
    """Download into the cache keyed by sha256; verify on every use; temp file + rename.

    Bounded: connect and read timeouts, a minimum rate, a total deadline, at most
    MAX_DOWNLOAD bytes; a dropped transfer is resumed with Range, a few times."""
    suffix = "".join(Path(url.split("?")[0].split("#")[0]).suffixes[-2:])
    suffix = suffix if re.fullmatch(r"(\.[A-Za-z0-9]{1,8}){1,2}", suffix) else ".tar"
    dest = cache_dir / f"{sha256}{suffix}"
    shown = redact(url)
    if dest.is_file():
        if sha256_file(dest) == sha256:
            return dest
        dest.unlink()  # corrupt or tampered: never reuse
    import requests  # only a download needs it (and its import is slow)
    import urllib3

    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    started = time.monotonic()
    try:
        with open(tmp, "wb") as f:
            for attempt in range(ATTEMPTS):
                try:
                    if _transfer(url, f, started, shown):
                        break
                except (requests.RequestException, urllib3.exceptions.HTTPError) as e:
                    if attempt == ATTEMPTS - 1:
                        raise InfraError(f"download {shown}: {type(e).__name__} after "
                                         f"{ATTEMPTS} attempts",
                                         "check the network, or use a local tarball with "
                                         "source=") from None
                time.sleep(min(2 ** attempt, 8))
            else:
                raise InfraError(f"download {shown}: the server kept dropping the transfer",
                                 "try again later, or use a local tarball with source=")
        got = sha256_file(tmp)
        if got != sha256:
            raise UserError(
                f"download {shown}: sha256 mismatch: got {got}, pinned {sha256}",
                "the file was deleted; check the pin, or the server serves something else")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _transfer(url: str, f: BinaryIO, started: float, shown: str) -> bool:
    """One GET, resuming at what ``f`` holds; True when the whole body arrived, False when
    the transfer was too slow and should be resumed."""
    import requests

    done = f.tell()
    headers = {"Range": f"bytes={done}-"} if done else {}
    with requests.get(url, stream=True, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                      headers=headers) as r:
        if done and r.status_code == 200:  # no Range support: start over
            f.seek(0)
            f.truncate()
            done = 0
        elif r.status_code not in (200, 206):
            raise InfraError(f"download {shown}: HTTP {r.status_code}",
                             "check the URL, or use a local tarball with source=")
        start = done
        length = int(r.headers.get("content-length") or 0)
        if start + length > MAX_DOWNLOAD:
            raise InfraError(f"download {shown}: {start + length} bytes, over the "
                             f"{MAX_DOWNLOAD >> 30} GiB a kernel tarball may have",
                             "check the URL")
        bar = Progress(f"download {shown}", "downloaded", total=start + length or None,
                       binary=True)
        bar.done = start
        with bar:
            return _receive(r, f, bar, started, start, length, shown)


def _receive(r: Any, f: BinaryIO, bar: Progress, started: float, start: int, length: int,
             shown: str) -> bool:
    """The body of one GET into ``f``; False when it came too slowly (to be resumed)."""
    done = start
    window_start, window_bytes = time.monotonic(), 0
    while chunk := r.raw.read1(1 << 16, decode_content=True):  # whatever has arrived
        interrupt.check()
        f.write(chunk)
        bar.update(len(chunk))
        done += len(chunk)
        window_bytes += len(chunk)
        now = time.monotonic()
        if done > MAX_DOWNLOAD:
            raise InfraError(f"download {shown}: over the {MAX_DOWNLOAD >> 30} GiB a kernel "
                             "tarball may have", "check the URL")
        if now - started > DEADLINE:
            raise InfraError(f"download {shown}: not finished after {DEADLINE:.0f} s",
                             "try again later, or use a local tarball with source=")
        if now - window_start >= READ_TIMEOUT:
            if window_bytes < MIN_RATE * READ_TIMEOUT:
                return False  # too slow: drop it and resume
            window_start, window_bytes = now, 0
    return not length or done - start >= length


def _check_member(m: tarfile.TarInfo, label: str) -> str:
    """The member's path inside the destination, after the checks; '' to skip it."""
    name = m.name
    parts = PurePosixPath(name).parts
    if name.startswith("/") or ".." in parts:
        raise UserError(f"{label}: member {name!r} escapes the destination",
                        "refusing a hostile or broken archive")
    if any(ord(c) < 32 for c in name) or len(name) > 4096 or any(len(p) > 255 for p in parts):
        raise UserError(f"{label}: member {name[:80]!r} has an impossible name",
                        "refusing a hostile or broken archive")
    if m.isdev() or m.isfifo():
        raise UserError(f"{label}: member {name!r} is a device or fifo",
                        "refusing a hostile or broken archive")
    if m.issym() or m.islnk():
        target = m.linkname
        base = PurePosixPath(name).parent if m.issym() else PurePosixPath()
        resolved = os.path.normpath(str(base / target))
        if target.startswith("/") or resolved.startswith("..") or any(
                ord(c) < 32 for c in target):
            raise UserError(f"{label}: link {name!r} -> {target!r} points outside",
                            "refusing a hostile or broken archive")
    if not (m.isfile() or m.isdir() or m.issym() or m.islnk()):
        return ""  # pax headers and the like carry no file
    return str(PurePosixPath(*parts)) if parts else ""


def extract(tarball: Path, dest: Path, label: str, sha256: str = "") -> None:
    """Safe extraction into dest (which must not exist), stripping the single top folder.

    One streaming pass: each member is checked before anything is written for it (name, type,
    links), and the running totals against the limits and the free disk; regular files get
    modes 0644/0755, no owner or special bits, and the archive's mtime."""
    work = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        _unpack(tarball, work, label)
    except tarfile.TarError as e:
        shutil.rmtree(work, ignore_errors=True)
        raise UserError(f"{label}: cannot extract: {type(e).__name__}: {e}",
                        "the tarball is truncated or not a tar archive; fetch it again") from None
    except (EOFError, ValueError) as e:
        shutil.rmtree(work, ignore_errors=True)
        raise UserError(f"{label}: cannot extract: the archive is truncated or damaged ({e})",
                        "fetch it again") from None
    except OSError as e:
        shutil.rmtree(work, ignore_errors=True)
        if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM):
            from .errors import from_os_error

            raise from_os_error(e, f"extracting {label} into {dest.parent}") from None
        raise UserError(f"{label}: cannot extract: {e.strerror or e}",
                        "the tarball is truncated or damaged; fetch it again") from None
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    entries = [p for p in work.iterdir()]
    top = entries[0] if len(entries) == 1 and entries[0].is_dir() else work
    try:
        kernel_version(top)
    except UserError:
        shutil.rmtree(work, ignore_errors=True)
        raise UserError(f"{label}: not a Linux source tarball (no Makefile/Kconfig at its top)",
                        "give a kernel source tarball") from None
    (top / COMPLETE).write_text(json.dumps({"tarball": label, "sha256": sha256}) + "\n")
    if top is not work:
        os.rename(top, dest)
        shutil.rmtree(work, ignore_errors=True)
    else:
        os.rename(work, dest)


def _unpack(tarball: Path, work: Path, label: str) -> None:
    compressed = tarball.stat().st_size
    allowance = min(MAX_UNPACKED, max(compressed * MAX_RATIO, 1 << 30))
    total = members = 0
    free = shutil.disk_usage(work).free
    dirs: list[tuple[Path, int]] = []
    links: list[tuple[Path, str]] = []
    root = os.path.realpath(work)
    with tarfile.open(tarball, mode="r|*") as tar, \
            Progress(f"extract {label}", "extracted", binary=True) as shown:
        for m in tar:
            interrupt.check()
            shown.update(max(m.size, 0))
            members += 1
            if members > MAX_MEMBERS:
                raise UserError(f"{label}: over {MAX_MEMBERS} members",
                                "refusing an archive that is not a kernel source tarball")
            rel = _check_member(m, label)
            if not rel:
                continue
            total += max(m.size, 0)
            if total > allowance:
                raise UserError(f"{label}: unpacks to over {allowance >> 20} MiB "
                                f"({compressed >> 20} MiB packed)",
                                "refusing a decompression bomb; check the tarball")
            if total + KEEP_FREE > free:
                raise InfraError(f"extracting {label}: the disk holding {work.parent} has "
                                 f"{free >> 20} MiB free, not enough",
                                 "free some space, then rerun")
            path = work / rel
            _check_inside(root, path.parent, m.name, label)  # links already made are followed
            if m.isdir():
                path.mkdir(parents=True, exist_ok=True)
                dirs.append((path, int(m.mtime)))
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.is_symlink() or path.exists():
                if path.is_dir() and not path.is_symlink():
                    raise UserError(f"{label}: member {m.name!r} replaces a folder",
                                    "refusing a hostile or broken archive")
                path.unlink()
            if m.issym():
                _check_inside(root, path.parent / m.linkname, m.name, label)
                os.symlink(m.linkname, path)
                links.append((path, m.name))
                continue
            if m.islnk():
                source = work / str(PurePosixPath(m.linkname))
                if source.is_symlink() or not source.is_file():
                    raise UserError(f"{label}: hard link {m.name!r} to {m.linkname!r}, which "
                                    "is not a file extracted before it",
                                    "refusing a hostile or broken archive")
                os.link(source, path)
                continue
            data = tar.extractfile(m)
            if data is None:
                continue
            mode = 0o755 if m.mode & 0o111 else 0o644
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(data, out, 1 << 20)
            os.utime(path, (m.mtime, m.mtime))
    for path, name in links:  # a later member may have made an earlier link point outside
        _check_inside(root, path, name, label)
    for path, mtime in reversed(dirs):
        os.utime(path, (mtime, mtime))


def _check_inside(root: str, path: Path, name: str, label: str) -> None:
    """``path``, with every link on its way followed as the system would, stays in root."""
    real = os.path.realpath(path)
    if real != root and not real.startswith(root + os.sep):
        raise UserError(f"{label}: member {name!r} leads outside the tree through a link",
                        "refusing a hostile or broken archive")


def _tree_sha(tree: Path) -> str:
    try:
        return str(json.loads((tree / COMPLETE).read_text()).get("sha256", ""))
    except (OSError, ValueError, AttributeError):
        return ""


def materialise(pin: SourcePin, out_dir: Path) -> KernelTree:
    """Return a kernel tree for the pin, fetching and extracting when needed (one run at a
    time per tree: another run extracting the same tarball is waited for)."""
    if pin.kind == "tree":
        tree = Path(pin.location)
        if not tree.is_dir():
            raise UserError(f"source tree {tree}: no such directory", "check source=")
        from .kmake import require_plain_path

        require_plain_path(tree, "kernel tree", "move the tree to a plain path")
        version, text = kernel_version(tree)
        return KernelTree(tree, version, text, f"tree:{tree.resolve()}", owned=False)
    cache = out_dir / "cache"
    if pin.kind == "url":
        assert pin.sha256 is not None
        with exclusive_lock(out_dir / ".locks" / f"download-{pin.sha256[:16]}", "download",
                            wait=True):
            tarball = fetch(pin.location, pin.sha256, cache)
        sha = pin.sha256
    else:
        tarball = Path(pin.location)
        if not tarball.is_file():
            raise UserError(f"source tarball {tarball}: no such file",
                            "install it (apt-get install linux-source-6.12) or set source=")
        sha = HashCache(cache / "hashes.json").sha256(tarball)
        if pin.sha256 and sha != pin.sha256:
            raise UserError(f"source tarball {tarball}: sha256 {sha} does not match the pin "
                            f"{pin.sha256}", "update the pin if the new tarball is trusted")
    dest = out_dir / "src" / sha[:16]
    with exclusive_lock(out_dir / ".locks" / f"src-{dest.name}", "kernel tree", wait=True):
        sweep_partials(dest.parent)
        sweep_partials(cache)
        if not (dest / COMPLETE).is_file() or _tree_sha(dest) != sha:
            shutil.rmtree(dest, ignore_errors=True)
            dest.parent.mkdir(parents=True, exist_ok=True)
            extract(tarball, dest, str(tarball), sha)
    version, text = kernel_version(dest)
    return KernelTree(dest, version, text, sha, owned=True)
