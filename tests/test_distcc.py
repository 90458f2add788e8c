"""The second build of a kernel in the suite: a small real arm64 kernel
(tests/profiles/tiny-arm64.yaml, with modules and a device tree), built through a real distccd
on 127.0.0.1 (allowing only 127.0.0.1) and killed -9 at random points of configure, make and
collect on the way, is the kernel of the session's uninterrupted local build, byte for byte.

That also makes it the reproducibility check: two clean builds, in two out/ folders, one
compiled locally through ccache, the other compiled by distccd without ccache, in pieces, the
second one run by the first one's dist/reproduce.sh.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kbtest import REPO, partials, run_and_kill, shared_out
from kbuild_py.fsutil import sha256_file

PROFILE = "tiny-arm64"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def distccd(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A distccd listening on 127.0.0.1 only, for 127.0.0.1 only → (DISTCC_HOSTS entry, log)."""
    port, log = _free_port(), tmp_path / "distccd.log"
    slots = os.cpu_count() or 2
    # --log-stderr: run by root, distccd drops to its own user, which cannot write in tmp_path.
    with open(log, "w") as sink:
        proc = subprocess.Popen(
            ["distccd", "--daemon", "--no-detach", "--listen", "127.0.0.1", "--port",
             str(port), "--allow", "127.0.0.1", "--jobs", str(slots), "--log-stderr",
             "--log-level", "info"], stderr=sink, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, "distccd exited at start"
                assert time.monotonic() < deadline, "distccd does not listen"
                time.sleep(0.1)
        yield f"127.0.0.1:{port}/{slots}", log
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


@pytest.fixture
def fresh_out(tmp_path: Path, tree612) -> Path:  # type: ignore[no-untyped-def]
    """A new out/ folder sharing the session's extracted 6.12 tree, read-only."""
    return shared_out(tmp_path / "out", [tree612.path])


@pytest.mark.kernel
@pytest.mark.build
@pytest.mark.uses_kernel("tiny-arm64")
def test_kernel_built_through_distccd_and_killed_is_the_local_kernel(session_kernel,  # type: ignore[no-untyped-def]
                                                                     distccd: tuple[str, Path],
                                                                     fresh_out: Path) -> None:
    reference = session_kernel(PROFILE) / "dist" / "manifest.json"
    hosts, log = distccd
    # The reference's own dist/reproduce.sh builds it again (kbuild-py build with the recorded
    # profile, source and variables), here through distccd and without ccache, and compares.
    argv = ["sh", str(reference.parent / "reproduce.sh"), str(fresh_out), "--no-ccache",
            "--hosts", hosts]
    rng = random.Random(20261203)
    killed = 0
    for _ in range(4):  # during configure and the build (make, distcc, compilers, host tools)
        if run_and_kill(argv, rng.uniform(3.0, 25.0)) is None:
            killed += 1
    assert killed >= 3
    r = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False, timeout=3600)
    assert r.returncode == 0, r.stderr[-3000:]
    dist = fresh_out / PROFILE / "dist"
    distcc = json.loads((dist / "manifest.json").read_text())["distcc"]
    for _ in range(4):  # with the build up to date: the kill lands in make's no-op or collect
        run_and_kill(argv, rng.uniform(0.5, 8.0))
        if (dist / "manifest.json").is_file():
            got = json.loads((dist / "manifest.json").read_text())["outputs"]
            assert all(sha256_file(dist / name) == digest for name, digest in got.items()), (
                "dist/ is always whole: every file matches its manifest")
    final = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)
    assert final.returncode == 0, final.stderr[-2000:]
    assert final.stdout.splitlines()[-1].startswith("reproduced: Image.gz is byte for byte"), (
        final.stdout[-2000:])
    assert partials(fresh_out / PROFILE) == []

    ours = json.loads((dist / "manifest.json").read_text())
    assert distcc["hosts"] == hosts  # the run that compiled (the last one only collected)
    # The compiles really went to distccd: its log has one COMPILE_OK summary per remote job.
    remote = sum("COMPILE_OK" in line for line in log.read_text().splitlines())
    assert remote >= 0.9 * distcc["compiles"], (remote, distcc)
    assert distcc["compiles"] > 200
    assert distcc["ran_locally"] <= 0.1 * distcc["compiles"], distcc

    ref = json.loads(reference.read_text())
    for name in ("Image.gz", "vmlinux", "System.map", "config", "modules.tar.gz",
                 "dtbs/arm/fvp-base-revc.dtb"):
        assert ours["outputs"][name] == ref["outputs"][name], (
            f"{name} built through distccd differs from the local build")
