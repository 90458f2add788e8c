"""The boot tests' initramfs: initramfs/init.c built as a static binary for the profile's arch
by the profile's own compiler (flags from the toolchain file), against the tree's nolibc and
UAPI headers, and packed as a newc archive written here (no cpio tool). Both are cached by
content in out/<p>/boot/."""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
import subprocess
from pathlib import Path

from . import catalog
from .errors import InfraError, UserError
from .fsutil import atomic_write
from .kmake import make_argv, run_make
from .plan import BuildPlan
from .toolchain import detect, make_variables
from .tree import load_tree


def init_source() -> Path:
    return catalog.data_root() / "initramfs" / "init.c"


def _uapi_headers(plan: BuildPlan, tree_path: Path, identity: str) -> Path:
    """The tree's UAPI headers for the arch (make headers), once per tree and arch."""
    objdir = plan.paths.boot / "uapi"
    include = objdir / "usr" / "include"
    stamp = objdir / ".kbuild-py-headers"
    key = f"{identity} {plan.arch.name}\n"
    if stamp.is_file() and stamp.read_text() == key and include.is_dir():
        return include
    objdir.mkdir(parents=True, exist_ok=True)
    argv = make_argv(tree_path, objdir.resolve(), make_variables(plan.toolchain, plan.arch),
                     ["headers"], jobs=2)
    run_make(argv, plan.paths.boot / "uapi.log", what="make headers (for the test init)")
    atomic_write(stamp, key)
    return include


def _compile_argv(plan: BuildPlan, nolibc: Path, include: Path, source: Path,
                  output: Path) -> list[str]:
    """The toolchain's CC with its init: flags and libs (toolchains/*.yaml)."""
    tc = plan.toolchain
    return [tc.tools["CC"], *(tc.expand(w, plan.arch) for w in tc.init_flags),
            "-I", str(include), "-include", str(nolibc), str(source), "-o", str(output),
            *tc.init_libs]


def build_init(plan: BuildPlan) -> Path:
    """initramfs/init.c as a static binary for the profile's arch, built by its compiler."""
    if not plan.toolchain.init_flags:
        name = plan.toolchain.name
        raise UserError(f"toolchains/{name}.yaml: no init: flags, so the boot tests' init "
                        "cannot be built", "add init: {flags: [...]} as toolchains/gcc.yaml has")
    ident = detect(plan.toolchain, plan.arch.name)  # names the package of a missing compiler
    tree = load_tree(plan)
    nolibc = tree.path / "tools" / "include" / "nolibc" / "nolibc.h"
    if not nolibc.is_file():
        raise UserError(f"kernel {tree.version_text} at {tree.path}: no "
                        "tools/include/nolibc/nolibc.h", "boot tests need a kernel with nolibc "
                        "(5.1 or later; the expectations are for 6.12)")
    source = init_source()
    include = _uapi_headers(plan, tree.path, tree.identity)
    probe = _compile_argv(plan, nolibc, include, source, Path("init"))
    key = hashlib.sha256("\0".join([source.read_text(), ident.key(), tree.identity,
                                    *probe]).encode()).hexdigest()[:16]
    out = plan.paths.boot / f"init-{key}"
    if out.is_file():
        return out
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    argv = _compile_argv(plan, nolibc, include, source, tmp)
    try:
        r = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
    except OSError as e:
        raise InfraError(f"cannot run {argv[0]}: {e}",
                         f"install toolchains/{plan.toolchain.name}.yaml's compiler") from None
    if r.returncode != 0:
        tmp.unlink(missing_ok=True)
        first = next((ln for ln in r.stderr.splitlines() if "error" in ln), r.stderr.strip())
        raise InfraError(f"{source}: {argv[0]} failed to build the test init: {first[:300]}",
                         "run the command by hand: " + " ".join(argv))
    os.replace(tmp, out)
    return out


# --------------------------------------------------------------------------- the initramfs


def _cpio_entry(name: str, mode: int, ino: int, data: bytes = b"",
                rdev: tuple[int, int] = (0, 0), nlink: int = 1) -> bytes:
    """One newc ("070701") record: 110-byte ASCII header, name, data, each padded to 4 bytes."""
    encoded = name.encode() + b"\0"
    fields = [ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0]
    out = b"070701" + "".join(f"{v:08x}" for v in fields).encode() + encoded
    out += b"\0" * (-len(out) % 4)
    return out + data + b"\0" * (-len(data) % 4)


def cpio_newc(init: bytes) -> bytes:
    """The whole initramfs: /init, /dev/console, /dev/kmsg, /debug (debugfs mount point)."""
    entries = [
        _cpio_entry("dev", stat.S_IFDIR | 0o755, 1, nlink=2),
        _cpio_entry("dev/console", stat.S_IFCHR | 0o600, 2, rdev=(5, 1)),
        _cpio_entry("dev/kmsg", stat.S_IFCHR | 0o644, 3, rdev=(1, 11)),
        _cpio_entry("debug", stat.S_IFDIR | 0o755, 4, nlink=2),
        _cpio_entry("init", stat.S_IFREG | 0o755, 5, init),
        _cpio_entry("TRAILER!!!", 0, 0),
    ]
    return b"".join(entries)


def build_initramfs(plan: BuildPlan, init: Path) -> Path:
    """gzip'd newc archive named by its content in out/<p>/boot/; reused when unchanged."""
    data = gzip.compress(cpio_newc(init.read_bytes()), compresslevel=9, mtime=0)
    out = plan.paths.boot / f"initramfs-{hashlib.sha256(data).hexdigest()[:16]}.cpio.gz"
    if not out.is_file():
        atomic_write(out, data)
    return out

