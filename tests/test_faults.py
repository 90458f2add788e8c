"""Faults: kill -9 at random points of fetch, extract, patch and configure; every rerun completes
with the same result and nothing half-written is left or reused. A second run on the same
profile at once is refused by a lock. Kills during a kernel's build and collect are
tests/test_distcc.py's, on its second build of a small real kernel."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kbtest import REPO, TARBALL_612, partials, run_and_kill, serve, shared_out
from kbuild_py.fsutil import exclusive_lock, sha256_file

RNG = random.Random(20261125)


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "kbuild_py.cli", *args]


@pytest.fixture
def out_sharing_tree(tmp_path: Path, tree612) -> Path:  # type: ignore[no-untyped-def]
    """A fresh out/ that shares the extracted 6.12 tree of the test session (read-only)."""
    return shared_out(tmp_path / "out", [tree612.path])


@pytest.mark.kernel
@pytest.mark.own_cache
def test_configure_killed_at_random_points(out_sharing_tree: Path) -> None:
    out = out_sharing_tree
    argv = cli("config", "--profile", "qemu-x86_64", "--out", str(out))
    killed = 0
    for trial in range(10):
        if trial % 3 == 0:  # sometimes cold, so the kill lands in parse, base config or make
            for name in ("kconfig", "conf"):
                subprocess.run(["rm", "-rf", str(out / "cache" / name)], check=True)
            subprocess.run(["rm", "-rf", str(out / "qemu-x86_64" / "base")], check=True)
        if run_and_kill(argv, RNG.uniform(0.3, 6.0)) is None:
            killed += 1
    assert killed >= 5, "the trials must actually interrupt runs"
    final = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)
    assert final.returncode == 0, final.stderr
    profile = out / "qemu-x86_64"
    assert partials(profile) == [] and partials(out / "cache") == []
    report = json.loads((profile / "report.json").read_text())
    assert report["passed"] and report["prediction_mismatches"] == []
    # Same result as an uninterrupted run from scratch.
    again = out.parent / "again"
    (again / "src").mkdir(parents=True)
    for p in (out / "src").iterdir():
        (again / "src" / p.name).symlink_to(p.resolve())
    ref = subprocess.run(cli("config", "--profile", "qemu-x86_64", "--out", str(again)),
                         cwd=REPO, capture_output=True, text=True, check=False)
    assert ref.returncode == 0, ref.stderr
    assert (profile / "build" / ".config").read_bytes() == (
        again / "qemu-x86_64" / "build" / ".config").read_bytes()


@pytest.mark.kernel
def test_extraction_killed_is_never_reused(tmp_path: Path) -> None:
    if not TARBALL_612.is_file():
        pytest.skip("linux-source-6.12 not installed")
    out = tmp_path / "out"
    # A progress line every second: the extraction's length depends on the machine and its page
    # cache (under 30 s, the default interval, on a fast one), the property does not.
    code = ("import sys; from pathlib import Path; from kbuild_py.profile import SourcePin; "
            "from kbuild_py.source import materialise; from kbuild_py.ui import Progress; "
            "Progress.every = 1.0; "
            f"print(materialise(SourcePin('tarball', '{TARBALL_612}'), Path(sys.argv[1])).path)")
    argv = [sys.executable, "-c", code, str(out)]
    for after in (2.0, 9.0):
        assert run_and_kill(argv, after) is None
        src = out / "src"
        complete = [p for p in src.iterdir() if not p.name.startswith(".")]
        assert complete == [], "an interrupted extraction never looks finished"
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=True)
    assert "kbuild-py: extract " in done.stdout, "progress for a log while it extracts"
    tree = Path(done.stdout.splitlines()[-1])
    assert (tree / "Makefile").is_file() and (tree / ".kbuild-py-complete").is_file()
    assert partials(out / "src") == [], "the killed runs' leftovers were swept"


@pytest.fixture
def slow_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()
    with serve(root, delay=0.01) as url:
        yield url, root


def test_download_killed_is_never_reused(slow_server: tuple[str, Path], tmp_path: Path) -> None:
    url, root = slow_server
    blob = root / "linux.tar.xz"
    blob.write_bytes(os.urandom(8 * 1024 * 1024))  # ~1.3 s at the throttled rate
    sha = sha256_file(blob)
    cache = tmp_path / "cache"
    code = ("import sys; from pathlib import Path; from kbuild_py.source import fetch; "
            "print(fetch(sys.argv[1], sys.argv[2], Path(sys.argv[3])))")
    argv = [sys.executable, "-c", code, f"{url}/linux.tar.xz", sha, str(cache)]
    for _ in range(4):
        assert run_and_kill(argv, RNG.uniform(0.4, 1.0)) is None
        assert not (cache / f"{sha}.tar.xz").exists(), "a partial download is never final"
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=True)
    assert sha256_file(Path(done.stdout.splitlines()[-1])) == sha
    # The next run sweeps what the killed ones left behind.
    from kbuild_py.fsutil import sweep_partials

    sweep_partials(cache)
    assert sorted(p.name for p in cache.iterdir()) == [f"{sha}.tar.xz"]


def test_second_run_on_a_profile_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with exclusive_lock(out / "qemu-x86_64" / ".lock", "test"):
        r = subprocess.run(cli("resolve", "--profile", "qemu-x86_64", "--out", str(out)),
                           cwd=REPO, capture_output=True, text=True, check=False)
    assert r.returncode == 4, "busy, not bad input"
    assert "kbuild-py: busy: profile qemu-x86_64: another kbuild-py run holds" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.kernel
def test_patching_killed_at_random_points(out_sharing_tree: Path) -> None:
    """The patched copy of the tree is made and patched under a temp name, renamed when done.
    Each trial starts without a patched copy, and is killed within the first seconds, while
    the copy is made and patched (~1.7 s here; the resolution after it takes ~1.5 s)."""
    out = out_sharing_tree
    argv = cli("resolve", "--profile", "qemu-x86_64", "--out", str(out))
    killed = 0
    for _ in range(6):
        if run_and_kill(argv, RNG.uniform(0.2, 2.0)) is None:
            killed += 1
        finished = [p for p in (out / "src").iterdir()
                    if "-" in p.name and not p.name.startswith(".")]
        for tree in finished:
            assert (tree / ".kbuild-py-complete").is_file(), f"{tree} looks finished but is not"
            shutil.rmtree(tree)  # the next trial patches again
    assert killed >= 3, "the trials must actually interrupt runs"
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert partials(out / "src") == []
    patched = Path(json.loads((out / "qemu-x86_64" / "stamps" / "tree.json").read_text())["path"])
    pristine = (out / "src").resolve()
    for rel in ("security/Kconfig", "security/yama/yama_lsm.c", "io_uring/io_uring.c"):
        assert (patched / rel).read_bytes() != (patched.parent / patched.name.split("-")[0]
                                                / rel).read_bytes(), f"{rel}: patched once"
    assert "SECURITY_KPTR_RESTRICT_DEFAULT" in (patched / "security" / "Kconfig").read_text()
    assert not list(pristine.glob("*/security/*.rej")) and not list(patched.rglob("*.orig"))
