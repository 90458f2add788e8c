"""The bad-input corpus: every case runs the real command line and must give one line, the
right exit code, no traceback, nothing half-written in out/, no process left running, and
nothing written where it must not be.

Cases: each profile in tests/bad_input/profiles/ (its first line says what it must produce),
each entry of tests/bad_input/corpus.yaml (layers, toolchain files, patch series, tarballs,
command-line arguments, SCons variables) and of tests/bad_input/hostile.yaml (hostile data,
paths and environment; see its header for the extra keys). Cases that need threads, signals or
a small file system are in tests/test_hostile.py.
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

from kbtest import REPO, TARBALL_612, TEST_OUT, processes_in
from kbuild_py.catalog import DATA_FOLDERS

CORPUS = Path(__file__).parent / "bad_input"
DATA_DIRS = DATA_FOLDERS
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


def _corpus_cases(name: str) -> list[dict[str, Any]]:
    cases = yaml.safe_load((CORPUS / name).read_text())
    assert isinstance(cases, list)
    return cases


HOSTILE = _corpus_cases("hostile.yaml")
CASES = _profile_cases() + _corpus_cases("corpus.yaml") + HOSTILE


def test_corpus_is_large_and_wide() -> None:
    assert len(CASES) >= 40
    kinds = {c["id"].split("-")[0] for c in CASES}
    assert {"profile", "layer", "toolchain", "series", "tarball", "cli", "scons"} <= kinds, kinds
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)), "case ids are unique"
    classes = {c["class"] for c in HOSTILE}
    assert classes == {"exec", "bypass", "inject", "loss", "exhaust", "pin", "fault",
                       "codes"}, classes


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


def _setup(kind: str, arg: str) -> None:
    """Make what a case needs besides files: ``kind path`` or ``kind number:path``."""
    sized = kind in ("zeros", "nested", "chain", "padded")
    number, _, rest = arg.partition(":") if sized else ("", "", arg)
    path = Path(rest)
    if kind != "link":
        path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "xzbomb":  # 64 MiB of zeros in a few KB
        import lzma

        with lzma.open(path, "wb", preset=9) as f:
            for _ in range(64):
                f.write(b"\0" * (1 << 20))
    elif kind == "big":  # a YAML file of 2 MB (a comment)
        path.write_text("schema_version: 1\nname: big\n" + "#" + "x" * (2 << 20) + "\n")
    elif kind == "aliasbomb":  # ~600 bytes that expand to 9**10 items
        lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
        for i in range(1, 10):
            name, prev = chr(97 + i), chr(96 + i)
            lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
        path.write_text("schema_version: 1\nname: bomb\n" + "\n".join(lines) + "\n")
    elif kind == "zeros":  # size:path — a file of that many zero bytes
        path.write_bytes(b"\0" * int(number))
    elif kind == "nested":  # depth:path
        path.write_text("schema_version: 1\nname: deep\ndescription: "
                        + "[" * int(number) + "]" * int(number) + "\n")
    elif kind == "chain":  # n:folder — layers l0..l<n-1>, each extending the next
        path.mkdir(parents=True, exist_ok=True)
        for i in range(int(number)):
            extends = f"extends: [l{i + 1}]\n" if i + 1 < int(number) else ""
            (path / f"l{i}.yaml").write_text(
                f"schema_version: 1\nkind: layer\nname: l{i}\n{extends}")
    elif kind == "padded":  # size:path — a comment of that many bytes added to the file
        with open(path, "a") as f:
            f.write("#" + "x" * int(number) + "\n")
    elif kind == "link":  # target=>path — a symbolic link at path
        target, _, where = rest.partition("=>")
        Path(where).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, where)
    elif kind == "header-bomb":  # a tar whose first member claims 64 GiB
        info = tarfile.TarInfo("linux/huge")
        info.size = 64 << 30
        path.write_bytes(info.tobuf(format=tarfile.GNU_FORMAT))
    else:
        raise AssertionError(f"unknown setup {kind}")


def _then(check: str, values: dict[str, str], where: Path) -> None:
    kind, _, rest = check.partition(" ")
    rest = _expand(rest, values, where)
    if kind == "absent":
        assert not Path(rest).exists(), f"{rest} exists"
    elif kind == "exists":
        assert Path(rest).exists(), f"{rest} is missing"
    elif kind in ("has", "lacks"):
        path, _, pattern = rest.partition(" ")
        text = Path(path).read_text()
        found = re.search(pattern, text, re.M)
        assert bool(found) == (kind == "has"), f"{path}: {kind} {pattern!r}:\n{text[:2000]}"
    else:
        raise AssertionError(f"unknown check {kind}")


def _shared_out(where: Path) -> Path:
    from kbtest import shared_out
    from kbuild_py.profile import SourcePin
    from kbuild_py.source import materialise

    if not TARBALL_612.is_file():
        pytest.skip(f"{TARBALL_612} not installed")
    materialise(SourcePin("tarball", str(TARBALL_612)), TEST_OUT)
    return shared_out(where / "shared-out", sorted(p for p in (TEST_OUT / "src").iterdir()
                                                    if not p.name.startswith(".")))


def _words(case: dict[str, Any]) -> str:
    return " ".join(str(a) for a in [*case.get("run", []), *case.get("scons", []),
                                     *case.get("files", {}), *case.get("then", [])])


def _param(case: dict[str, Any]) -> Any:
    """A case that reads the extracted 6.12 tree is a `kernel` test (docs/TESTING.md)."""
    kernel = any(f"{{{name}}}" in _words(case) for name in ("shared_out", "src612", "tree_out"))
    return pytest.param(case, id=case["id"], marks=[pytest.mark.kernel] if kernel else [])


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_bad_input(case: dict[str, Any], tmp_path: Path) -> None:
    data = tmp_path / "data"
    for name in DATA_DIRS:
        shutil.copytree(REPO / name, data / name)
    out = tmp_path / "out"
    words = _words(case)
    values = {"out": str(out), "tree_out": str(TEST_OUT), "data": str(data),
              "tmp": str(tmp_path), "repo": str(REPO)}
    if "{shared_out}" in words or "{src612}" in words:
        shared = _shared_out(tmp_path)
        values["shared_out"] = str(shared)
        values["src612"] = str(next(p for p in (shared / "src").iterdir()
                                    if "-" not in p.name).resolve())
    for rel, text in (case.get("files") or {}).items():
        target = Path(_expand(rel, values, tmp_path)) if rel.startswith("{") else (
            data / rel.lstrip("/"))
        if text is None:
            target.unlink(missing_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if text == "{sha256sums}":
            import hashlib

            text = "".join(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}\n"
                           for p in sorted(target.parent.glob("*.patch")))
        if isinstance(text, str) and text.startswith("{bytes}"):
            target.write_bytes(text.removeprefix("{bytes}").encode("latin-1"))
        else:
            target.write_text(_expand(text, values, tmp_path))
    for step in case.get("setup", []):
        kind, _, arg = step.partition(" ")
        _setup(kind, _expand(arg, values, tmp_path))
    uses_tree = "{tree_out}" in words
    if uses_tree:
        if not TARBALL_612.is_file():
            pytest.skip(f"{TARBALL_612} not installed")
        from kbuild_py.profile import SourcePin
        from kbuild_py.source import materialise

        materialise(SourcePin("tarball", str(TARBALL_612)), TEST_OUT)
        shutil.rmtree(TEST_OUT / "t", ignore_errors=True)
    env = {**os.environ, "KBUILD_PY_DATA": str(data)}
    if case.get("class") in ("bypass", "exec"):
        # Kbuild must really run in the hostile environment: no configure answered from the
        # session's shared Kconfig cache (tests/conftest.py), only from this out/'s own.
        env.pop("KBUILD_PY_CACHE", None)
    env.update({k: _expand(str(v), values, tmp_path) for k, v in (case.get("env") or {}).items()})
    if "scons" in case:
        argv = ["scons", "-Q", "-C", str(REPO)] + [_expand(a, values, tmp_path)
                                                   for a in case["scons"]]
    else:
        argv = [sys.executable, "-m", "kbuild_py.cli"] + [_expand(a, values, tmp_path)
                                                          for a in case["run"]]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=tmp_path, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=case.get("timeout", 300))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.communicate()
        raise AssertionError(f"hung: no end after {case.get('timeout', 300)} s") from None
    errors = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr + stdout, stderr
    if case.get("forbid"):
        assert case["forbid"] not in stderr + stdout
    if case.get("expect") is None:
        assert errors == [], f"no error expected:\n{stderr}"
    else:
        assert len(errors) == 1, f"one line on stderr, got:\n{stderr}"
        assert re.search(case["expect"], errors[0]), errors[0]
        assert re.search(r"\(.+\)$", errors[0]), f"the message names the next step: {errors[0]}"
    assert proc.returncode == case["exit"], (proc.returncode, errors[:1], stdout[-2000:])
    assert not Path("/tmp/kbuild-py-pwned").exists()
    assert not Path("/tmp/kbuild-py-absolute").exists()
    assert processes_in(tmp_path) == [], "a process was left running"
    written = out if out.exists() else None
    if written is not None:
        assert _half_written(written) == []
    if uses_tree:
        assert _half_written(TEST_OUT / "t") == []
    for check in case.get("then", []):
        _then(check, values, tmp_path)
