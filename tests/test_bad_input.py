"""The bad-input corpus: every case runs the real command line and must give one line, the
right exit code, no traceback, and nothing half-written in out/.

Cases: each profile in tests/bad_input/profiles/ (its first line says what it must produce) and
each entry of tests/bad_input/corpus.yaml (layers, toolchain files, patch series, tarballs,
command-line arguments, SCons variables).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from kbtest import REPO, TARBALL_612, TEST_OUT

CORPUS = Path(__file__).parent / "bad_input"
DATA_DIRS = ("profiles", "toolchains", "arches", "patches", "checks", "lkdtm")
HALF_WRITTEN = re.compile(r"(\.tmp|\.part|\.partial)$|^\..*\.\d+\..*tmp")


def _profile_cases() -> list[dict[str, Any]]:
    cases = []
    for path in sorted((CORPUS / "profiles").glob("*.yaml")):
        text = path.read_text()
        expect = ("the file is empty" if not text else
                  text.splitlines()[0].removeprefix("# expect: "))
        cases.append({"id": f"profile-{path.stem}", "run": ["resolve", "-p", str(path),
                      "--out", "{out}"], "exit": 2, "expect": expect})
    return cases


def _corpus_cases() -> list[dict[str, Any]]:
    cases = yaml.safe_load((CORPUS / "corpus.yaml").read_text())
    assert isinstance(cases, list)
    return cases


CASES = _profile_cases() + _corpus_cases()


def test_corpus_is_large_and_wide() -> None:
    assert len(CASES) >= 40
    kinds = {c["id"].split("-")[0] for c in CASES}
    assert {"profile", "layer", "toolchain", "series", "tarball", "cli", "scons"} <= kinds, kinds
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)), "case ids are unique"


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = 1 if kind == tarfile.REGTYPE else 0
    return info


_HOSTILE = {
    "dotdot": _member("../escape"),
    "absolute": _member("/tmp/kbuild-py-absolute"),
    "symlink-out": _member("linux/evil", tarfile.SYMTYPE, "../../../etc/passwd"),
    "hardlink-out": _member("linux/evil", tarfile.LNKTYPE, "../../etc/passwd"),
    "device": _member("linux/null", tarfile.CHRTYPE),
}


def make_tarball(kind: str, where: Path) -> Path:
    """A generated bad tarball of the given kind."""
    if kind == "truncated":
        if not TARBALL_612.is_file():
            pytest.skip(f"{TARBALL_612} not installed")
        path = where / "truncated.tar.xz"
        with open(TARBALL_612, "rb") as f:
            path.write_bytes(f.read(1 << 20))
        return path
    if kind == "text":
        path = where / "text.tar.xz"
        path.write_text("this is not an archive\n")
        return path
    if kind == "not-kernel":
        path = where / "not-kernel.tar.xz"
        with tarfile.open(path, "w:xz") as tar:
            tar.addfile(_member("photos/cat.jpg"), io.BytesIO(b"x"))
        return path
    path = where / f"{kind}.tar"
    with tarfile.open(path, "w") as tar:
        tar.addfile(_member("linux/Makefile"), io.BytesIO(b"x"))
        member = _HOSTILE[kind]
        tar.addfile(member, io.BytesIO(b"x") if member.isfile() else None)
    return path


def _expand(arg: str, values: dict[str, str], where: Path) -> str:
    arg = re.sub(r"\{tarball:([a-z-]+)\}", lambda m: str(make_tarball(m.group(1), where)), arg)
    for key, value in values.items():
        arg = arg.replace("{" + key + "}", value)
    return arg


def _half_written(root: Path) -> list[str]:
    bad = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + dirnames:
            if HALF_WRITTEN.search(name):
                bad.append(os.path.join(dirpath, name))
        if "dist" in dirnames:
            bad.append(os.path.join(dirpath, "dist"))
    return bad


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_bad_input(case: dict[str, Any], tmp_path: Path) -> None:
    data = tmp_path / "data"
    for name in DATA_DIRS:
        shutil.copytree(REPO / name, data / name)
    for rel, text in (case.get("files") or {}).items():
        target = data / rel.lstrip("/")
        if text is None:
            target.unlink(missing_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if text == "{sha256sums}":
            import hashlib

            text = "".join(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}\n"
                           for p in sorted(target.parent.glob("*.patch")))
        target.write_text(text)
    out = tmp_path / "out"
    uses_tree = any("{tree_out}" in a for a in case.get("run", []))
    if uses_tree:
        if not TARBALL_612.is_file():
            pytest.skip(f"{TARBALL_612} not installed")
        from kbuild_py.profile import SourcePin
        from kbuild_py.source import materialise

        materialise(SourcePin("tarball", str(TARBALL_612)), TEST_OUT)
        shutil.rmtree(TEST_OUT / "t", ignore_errors=True)
    values = {"out": str(out), "tree_out": str(TEST_OUT), "data": str(data)}
    env = {**os.environ, "KBUILD_PY_DATA": str(data)}
    if "scons" in case:
        argv = ["scons", "-Q", "-C", str(REPO)] + [_expand(a, values, tmp_path)
                                                   for a in case["scons"]]
    else:
        argv = [sys.executable, "-m", "kbuild_py.cli"] + [_expand(a, values, tmp_path)
                                                          for a in case["run"]]
    r = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path,
                       check=False, timeout=600)
    errors = [line for line in r.stderr.splitlines() if line.strip()]
    assert "Traceback" not in r.stderr + r.stdout, r.stderr
    assert len(errors) == 1, f"one line on stderr, got:\n{r.stderr}"
    assert re.search(case["expect"], errors[0]), errors[0]
    assert r.returncode == case["exit"], (r.returncode, errors[0])
    assert re.search(r"\(.+\)$", errors[0]), f"the message names the next step: {errors[0]}"
    assert not Path("/tmp/kbuild-py-pwned").exists()
    assert not Path("/tmp/kbuild-py-absolute").exists()
    written = out if out.exists() else None
    if written is not None:
        assert _half_written(written) == []
    if uses_tree:
        assert _half_written(TEST_OUT / "t") == []
