"""Patch queues: patches/<queue>/series (quilt format) beside the patches, pinned by sha256 in
patches/<queue>/sha256sums, optionally gated by kernel version in the patch header
(`Kbuild-Py-Kernel: 6.6..` or `6.1..6.12`).

Patches are applied to a copy of an owned (extracted) tree, never to the user's tree and never
through a shell: the copy shares unchanged files with the pristine tree by hard link, files a
patch touches are un-shared first, `git apply` runs patch by patch, and the result is renamed
into place only when every patch applied. A failure leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import catalog
from .errors import InfraError, UserError
from .fsutil import sha256_file, sha256_text
from .profile import Version, VersionRange
from .yamlio import read_text

MAX_PATCH = 16 << 20

_GATE = re.compile(r"^Kbuild-Py-Kernel:\s*(\S*)\s*$", re.M)
_HEADER = re.compile(r"^(?:---|\+\+\+) (\S+)", re.M)
_GIT_PATHS = re.compile(r"^(?:rename from|rename to|copy from|copy to) (\S+)", re.M)
_FAILED = re.compile(r"error: patch failed: (\S+):(\d+)")
_NEW_SYMBOL = re.compile(r"^\+\s*(?:menu)?config\s+([A-Za-z0-9_]+)\s*$", re.M)


@dataclass(frozen=True)
class Patch:
    queue: str
    name: str
    path: Path
    sha256: str
    files: tuple[str, ...]
    kernel: VersionRange | None = None

    @property
    def label(self) -> str:
        return f"patches/{self.queue}/{self.name}"


@dataclass(frozen=True)
class Skipped:
    patch: Patch
    reason: str


def _touched(text: str, label: str) -> tuple[str, ...]:
    paths: list[str] = []
    for raw in _HEADER.findall(text) + _GIT_PATHS.findall(text):
        if raw == "/dev/null":
            continue
        path = raw.split("/", 1)[1] if raw.startswith(("a/", "b/")) else raw
        parts = Path(path).parts
        if path.startswith("/") or ".." in parts or not parts:
            raise UserError(f"{label}: touches {raw!r}, outside the kernel tree",
                            "refusing the patch; fix its paths")
        paths.append(path)
    if not paths:
        raise UserError(f"{label}: not a patch (no ---/+++ file headers)",
                        "give a unified diff, e.g. from git format-patch")
    return tuple(dict.fromkeys(paths))


def _gate(text: str, label: str) -> VersionRange | None:
    m = _GATE.search(text.split("\n---\n", 1)[0] if "\n---\n" in text else text)
    if not m:
        return None
    lo, sep, hi = m.group(1).partition("..")
    ok = re.compile(r"^\d+\.\d+(\.\d+)?$")
    if not sep or (lo and not ok.match(lo)) or (hi and not ok.match(hi)):
        raise UserError(f"{label}: Kbuild-Py-Kernel: {m.group(1)!r} is not a range like 6.6.. "
                        "or 6.1..6.12", "fix the patch header")
    return VersionRange(lo or None, hi or None)


def load_queue(name: str) -> list[Patch]:
    folder = catalog.folder("patches") / name
    if not folder.is_dir():
        known = sorted(p.name for p in catalog.folder("patches").iterdir() if p.is_dir()) if (
            catalog.folder("patches").is_dir()) else []
        raise UserError(f"unknown patch queue '{name}'{catalog.suggest(name, known)}",
                        f"queues are folders in patches/: {', '.join(known) or 'none'}")
    series = folder / "series"
    if not series.is_file():
        raise UserError(f"patches/{name}/series: no such file",
                        "list the queue's patches, one per line, in patches/<queue>/series")
    pins: dict[str, str] = {}
    sums = folder / "sha256sums"
    if sums.is_file():
        for line in read_text(sums, f"patches/{name}/sha256sums").splitlines():
            if line.strip():
                digest, _, file = line.strip().partition("  ")
                pins[file.lstrip("*")] = digest
    patches: list[Patch] = []
    for lineno, line in enumerate(read_text(series, f"patches/{name}/series").splitlines(), 1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        fname = entry.split()[0]
        label = f"patches/{name}/series:{lineno}: {fname}"
        path = folder / fname
        if "/" in fname or not path.is_file():
            raise UserError(f"{label}: no such patch file", f"add it to patches/{name}/")
        if fname not in pins:
            raise UserError(f"patches/{name}/sha256sums: no pin for {fname}",
                            f"review it, then: (cd patches/{name} && sha256sum *.patch > "
                            "sha256sums)")
        got = sha256_file(path)
        if got != pins[fname]:
            raise UserError(f"patches/{name}/{fname}: sha256 {got} does not match the pin "
                            f"{pins[fname]}", "the patch changed: review it, then update "
                            f"patches/{name}/sha256sums")
        text = read_text(path, f"patches/{name}/{fname}", limit=MAX_PATCH, strict=False)
        patches.append(Patch(name, fname, path, got, _touched(text, f"patches/{name}/{fname}"),
                             _gate(text, f"patches/{name}/{fname}")))
    if not patches:
        raise UserError(f"patches/{name}/series: lists no patches",
                        "add patch file names, one per line, or drop the queue from the profile")
    return patches


def select(queues: tuple[str, ...], version: Version) -> tuple[list[Patch], list[Skipped]]:
    apply: list[Patch] = []
    skipped: list[Skipped] = []
    for q in queues:
        for p in load_queue(q):
            if p.kernel and not p.kernel.contains(version):
                skipped.append(Skipped(p, f"only for kernel {p.kernel}"))
            else:
                apply.append(p)
    return apply, skipped


def introduced(patches: list[Patch]) -> set[str]:
    """The Kconfig symbols the patches add: they exist only in a tree with the patches."""
    return {name for p in patches
            for name in _NEW_SYMBOL.findall(read_text(p.path, p.label, limit=MAX_PATCH,
                                                      strict=False))}


def added_symbols(queues: tuple[str, ...], version: Version) -> set[str]:
    """The symbols the queues' patches for this kernel add (none without queues)."""
    return introduced(select(queues, version)[0]) if queues else set()


def identity(patches: list[Patch]) -> str:
    return sha256_text(json.dumps([[p.queue, p.name, p.sha256] for p in patches]))


def queues_digest(queues: tuple[str, ...]) -> str:
    """Content signature of the queues' folders (series, pins, patches) for SCons."""
    parts = []
    for q in queues:
        folder = catalog.folder("patches") / q
        for f in sorted(folder.glob("*")) if folder.is_dir() else []:
            if f.is_file():
                parts.append(f"{q}/{f.name}:{sha256_file(f)}")
    return sha256_text("\n".join(parts))


def _check_tree_paths(tree: Path, patch: Patch) -> None:
    """A path whose folders are symlinks in the tree could lead outside it."""
    root = tree.resolve()
    for rel in patch.files:
        probe = tree
        for part in Path(rel).parts[:-1]:
            probe = probe / part
            if probe.is_symlink():
                raise UserError(f"{patch.label}: touches {rel} through the symlink "
                                f"{probe.relative_to(tree)}", "refusing the patch")
        target = (tree / rel).resolve() if (tree / rel).exists() else (tree / rel)
        if (tree / rel).is_symlink() or not str(target).startswith(str(root)):
            raise UserError(f"{patch.label}: {rel} is a symlink in the tree",
                            "refusing the patch")


def _git_apply(patch: Patch, cwd: Path) -> None:
    if shutil.which("git") is None:
        raise InfraError("git not found on PATH", "apt-get install git")
    env = dict(os.environ)
    env["GIT_CEILING_DIRECTORIES"] = str(cwd.parent)  # never find an enclosing repository
    env["LC_ALL"] = "C"
    r = subprocess.run(["git", "apply", "--whitespace=nowarn", "-p1", str(patch.path.resolve())],
                       cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        out = " ".join(r.stderr.split())
        m = _FAILED.search(r.stderr)
        where = f" at {m.group(1)}:{m.group(2)}" if m else ""
        raise UserError(f"{patch.label}: does not apply{where}: {out[:300]}",
                        "refresh the patch against this kernel, or gate it with "
                        "Kbuild-Py-Kernel:")


def _unshare(path: Path) -> None:
    """Give a hard-linked file its own inode before it is modified."""
    if path.is_file() and path.stat().st_nlink > 1:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.",
                                   suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(path.read_bytes())
        shutil.copymode(path, tmp)
        os.replace(tmp, path)


def apply(base: Path, dest: Path, patches: list[Patch], skipped: list[Skipped]) -> None:
    """Build dest = base + patches, atomically; base is never modified."""
    base = base.resolve()  # cp -a copies a symlink as a link: the copy must be of the tree
    for p in patches:
        _check_tree_paths(base, p)
    work = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    shutil.rmtree(work, ignore_errors=True)
    try:
        r = subprocess.run(["cp", "-al", str(base), str(work)], capture_output=True, text=True,
                           check=False)
        if r.returncode != 0 or work.is_symlink() or not work.is_dir():
            raise InfraError(f"cannot copy {base}: {r.stderr.strip()}", "check the disk space")
        (work / ".kbuild-py-complete").unlink(missing_ok=True)
        for p in patches:
            for rel in p.files:
                _unshare(work / rel)
            _git_apply(p, work)
        record = {"applied": [{"queue": p.queue, "patch": p.name, "sha256": p.sha256}
                              for p in patches],
                  "skipped": [{"queue": s.patch.queue, "patch": s.patch.name,
                               "reason": s.reason} for s in skipped]}
        (work / ".kbuild-py-patches.json").write_text(json.dumps(record, indent=2) + "\n")
        (work / ".kbuild-py-complete").write_text(f"{base.name} + {len(patches)} patches\n")
        os.rename(work, dest)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


@dataclass(frozen=True)
class CheckResult:
    patch: Patch
    status: str  # applies | fails | skipped
    detail: str = ""


def check(base: Path, queues: tuple[str, ...], version: Version) -> list[CheckResult]:
    """Would each patch apply to this tree, in order? Tried on a scratch copy of the files the
    queue touches, so it takes a second, not a tree copy."""
    patches, skipped = select(queues, version)
    out = [CheckResult(s.patch, "skipped", s.reason) for s in skipped]
    with tempfile.TemporaryDirectory(prefix="kbuild-py-patches-") as tmp:
        scratch = Path(tmp) / "tree"
        scratch.mkdir()
        for p in patches:
            for rel in p.files:
                src = base / rel
                if src.is_file() and not (scratch / rel).exists():
                    (scratch / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(src, scratch / rel)
        for p in patches:
            try:
                _check_tree_paths(base, p)
                _git_apply(p, scratch)
                out.append(CheckResult(p, "applies"))
            except UserError as e:
                out.append(CheckResult(p, "fails", e.message))
    return out
