"""Kernel source providers: a pinned URL, a local tarball, or a local tree (read-only).

The only I/O here is fetching, hashing and extracting; every write goes to a temp path that is
renamed into place once complete, so a killed run never leaves something that looks finished.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from .errors import InfraError, UserError
from .fsutil import atomic_write, sha256_file, sweep_partials
from .profile import SourcePin, Version

COMPLETE = ".kbuild-py-complete"


@dataclass(frozen=True)
class KernelTree:
    path: Path
    version: Version
    version_text: str
    identity: str  # content identity: sha256 of the tarball, or "tree:<path>" for a local tree
    owned: bool  # extracted by us (immutable) or the user's tree (may change under us)


def parse_source_arg(text: str) -> SourcePin:
    """The `source=` variable: a tarball path, a tree path, or URL#sha256=<hex>."""
    if re.match(r"https?://", text):
        url, _, frag = text.partition("#sha256=")
        if not re.fullmatch(r"[0-9a-f]{64}", frag):
            raise UserError(f"source={text}: a URL needs its pin, as URL#sha256=<64 hex digits>",
                            "add the sha256 of the tarball")
        return SourcePin("url", url, frag)
    path = Path(text).expanduser()
    if path.is_dir():
        return SourcePin("tree", str(path.resolve()))
    if path.is_file():
        return SourcePin("tarball", str(path.resolve()))
    raise UserError(f"source={text}: no such file or directory",
                    "give a kernel tarball, a kernel tree, or URL#sha256=<hex>")


def kernel_version(tree: Path) -> tuple[Version, str]:
    try:
        text = (tree / "Makefile").read_text(errors="replace")[:2000]
    except OSError:
        raise UserError(f"{tree}: not a kernel tree (no Makefile)",
                        "point source= at the top of a Linux source tree") from None
    fields = dict(re.findall(r"^(VERSION|PATCHLEVEL|SUBLEVEL|EXTRAVERSION)[ \t]*=[ \t]*(\S*)", text,
                             re.M))
    if not (tree / "Kconfig").is_file() or "VERSION" not in fields:
        raise UserError(f"{tree}: not a kernel tree (no Kconfig or VERSION)",
                        "point source= at the top of a Linux source tree")
    nums = (int(fields["VERSION"]), int(fields.get("PATCHLEVEL") or 0),
            int(fields.get("SUBLEVEL") or 0))
    return nums, "{}.{}.{}{}".format(*nums, fields.get("EXTRAVERSION", ""))


class HashCache:
    """sha256 of big local files, remembered by (path, size, mtime) so a no-op stays cheap."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.data: dict[str, str] = json.loads(path.read_text())
        except (OSError, ValueError):
            self.data = {}

    def sha256(self, file: Path) -> str:
        st = file.stat()
        key = f"{file.resolve()}|{st.st_size}|{st.st_mtime_ns}"
        if key not in self.data:
            self.data = {k: v for k, v in self.data.items() if not k.startswith(f"{file}|")}
            self.data[key] = sha256_file(file)
            atomic_write(self.path, json.dumps(self.data, indent=1, sort_keys=True))
        return self.data[key]


def fetch(url: str, sha256: str, cache_dir: Path) -> Path:
    """Download into the cache keyed by sha256; verify on every use; temp file + rename."""
    suffix = "".join(Path(url.split("?")[0]).suffixes[-2:]) or ".tar"
    dest = cache_dir / f"{sha256}{suffix}"
    if dest.is_file():
        if sha256_file(dest) == sha256:
            return dest
        dest.unlink()  # corrupt or tampered: never reuse
    import requests  # only a download needs it (and its import is slow)
    from tqdm import tqdm

    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    try:
        with requests.get(url, stream=True, timeout=(10, 60)) as r:
            if r.status_code != 200:
                raise InfraError(f"download {url}: HTTP {r.status_code}",
                                 "check the URL, or use a local tarball with source=")
            total = int(r.headers.get("content-length") or 0) or None
            with open(tmp, "wb") as f, tqdm(total=total, unit="B", unit_scale=True,
                                            desc=f"fetch {Path(url).name}", leave=False,
                                            disable=None) as bar:
                for chunk in r.iter_content(1 << 20):
                    f.write(chunk)
                    bar.update(len(chunk))
        got = sha256_file(tmp)
        if got != sha256:
            raise UserError(
                f"download {url}: sha256 mismatch: got {got}, pinned {sha256}",
                "the file was deleted; check the pin, or the server serves something else")
        os.replace(tmp, dest)
    except requests.RequestException as e:
        raise InfraError(f"download {url}: {type(e).__name__}: {e}",
                         "check the network, or use a local tarball with source=") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return dest


def _safe_members(tar: tarfile.TarFile, label: str) -> list[tarfile.TarInfo]:
    members = []
    for m in tar:
        name = m.name
        if name.startswith("/") or ".." in Path(name).parts:
            raise UserError(f"{label}: member {name!r} escapes the destination",
                            "refusing a hostile or broken archive")
        if m.isdev() or m.isfifo():
            raise UserError(f"{label}: member {name!r} is a device or fifo",
                            "refusing a hostile or broken archive")
        if m.issym() or m.islnk():
            target = m.linkname
            base = Path(name).parent if m.issym() else Path()
            resolved = os.path.normpath(base / target)
            if target.startswith("/") or resolved.startswith(".."):
                raise UserError(f"{label}: link {name!r} -> {target!r} points outside",
                                "refusing a hostile or broken archive")
        members.append(m)
    return members


def extract(tarball: Path, dest: Path, label: str) -> None:
    """Safe extraction into dest (which must not exist), stripping the single top folder."""
    work = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        with tarfile.open(tarball) as tar:
            members = _safe_members(tar, label)
            tar.extractall(work, members=members, filter="data")
    except (tarfile.TarError, EOFError, OSError, ValueError) as e:
        shutil.rmtree(work, ignore_errors=True)
        raise UserError(f"{label}: cannot extract: {type(e).__name__}: {e}",
                        "the tarball is truncated or not a tar archive; fetch it again") from None
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
    (top / COMPLETE).write_text(label + "\n")
    if top is not work:
        os.rename(top, dest)
        shutil.rmtree(work, ignore_errors=True)
    else:
        os.rename(work, dest)


def materialise(pin: SourcePin, out_dir: Path) -> KernelTree:
    """Return a kernel tree for the pin, fetching and extracting when needed."""
    if pin.kind == "tree":
        tree = Path(pin.location)
        if not tree.is_dir():
            raise UserError(f"source tree {tree}: no such directory", "check source=")
        version, text = kernel_version(tree)
        return KernelTree(tree, version, text, f"tree:{tree.resolve()}", owned=False)
    cache = out_dir / "cache"
    if pin.kind == "url":
        assert pin.sha256 is not None
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
    sweep_partials(dest.parent)
    sweep_partials(cache)
    if not (dest / COMPLETE).is_file():
        shutil.rmtree(dest, ignore_errors=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        extract(tarball, dest, str(tarball))
    version, text = kernel_version(dest)
    return KernelTree(dest, version, text, sha, owned=True)
