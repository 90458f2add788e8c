"""Builds: reproducible to the bit, spread over distcc, and failures that leave dist/ alone."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kbtest import REPO, TEST_OUT

OUT = str(TEST_OUT)


def scons(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["scons", "-Q", *args], cwd=REPO, capture_output=True, text=True,
                          check=False, timeout=3000, env={**os.environ, **(env or {})})


def manifest(out: Path, profile: str) -> dict:  # type: ignore[type-arg]
    return json.loads((out / profile / "dist" / "manifest.json").read_text())  # type: ignore[no-any-return]


@contextlib.contextmanager
def distccd(log: Path) -> Iterator[int]:
    """A real distccd on 127.0.0.1 that accepts only 127.0.0.1; yields its port."""
    if shutil.which("distccd") is None:
        pytest.skip("distccd not installed (apt-get install distcc)")
    log.touch()
    log.chmod(0o666)  # distccd drops root for an unprivileged user
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(["distccd", "--daemon", "--no-detach", "--allow", "127.0.0.1",
                             "--listen", "127.0.0.1", "--port", str(port), "--jobs", "2",
                             "--log-file", str(log), "--log-level", "info", "--user", "nobody"])
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            time.sleep(0.1)
        else:
            pytest.fail("distccd did not start listening")
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.kernel
@pytest.mark.build
def test_distcc_build_is_bit_identical_to_a_local_one(tree612) -> None:  # type: ignore[no-untyped-def]
    """The arm64 qemu kernel cross-compiled on a distccd (in another out/ folder, so another
    source path, ccache off, no local fallback) is byte for byte the one compiled here through
    ccache. (arm64: distccd 3.4 refuses -fplugin=, and the x86_64 profile uses GCC plugins;
    its reproducibility is shown by tests/test_faults.py.)"""
    local = scons("profile=qemu-arm64", f"out={OUT}")
    assert local.returncode == 0, local.stdout[-2000:] + local.stderr[-2000:]
    other = REPO / "out" / ".test-distcc"  # readable by distccd's unprivileged user
    shutil.rmtree(other, ignore_errors=True)
    other.mkdir(parents=True)
    log = other / "distccd.log"
    with distccd(log) as port:
        remote = scons("profile=qemu-arm64", f"out={other}", "ccache=0", "jobs=2",
                       f"hosts=127.0.0.1:{port}/2", env={"DISTCC_FALLBACK": "0"})
    assert remote.returncode == 0, remote.stdout[-2000:] + remote.stderr[-2000:]
    served = log.read_text().count("COMPILE_OK")
    assert served > 300, f"distccd compiled only {served} files"
    a, b = manifest(TEST_OUT, "qemu-arm64"), manifest(other, "qemu-arm64")
    assert b["distcc_hosts"] == f"127.0.0.1:{port}/2"
    assert a["kernel"]["identity"] == b["kernel"]["identity"]
    for name in ("Image.gz", "vmlinux", "System.map", "config"):
        assert a["outputs"][name] == b["outputs"][name], f"{name} differs between the builds"
    shutil.rmtree(other)


@pytest.mark.kernel
@pytest.mark.build
def test_failing_compile_is_one_line_and_leaves_dist_alone(tree612, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A compiler that rejects the build: exit != 0, the failing line named, the previous
    dist/ untouched, no half-written files."""
    data = tmp_path / "data"
    for name in ("profiles", "toolchains", "arches", "patches", "checks", "lkdtm"):
        shutil.copytree(REPO / name, data / name)
    gcc = data / "toolchains" / "gcc.yaml"
    gcc.write_text(gcc.read_text().replace("make_vars: {}",
                                           "make_vars: {KCFLAGS: -fno-such-option}"))
    before = manifest(TEST_OUT, "qemu-x86_64") if (
        TEST_OUT / "qemu-x86_64" / "dist" / "manifest.json").is_file() else None
    r = scons("profile=qemu-x86_64", f"out={OUT}", "ccache=0",
              env={"KBUILD_PY_DATA": str(data)})
    assert r.returncode != 0
    errors = [line for line in r.stderr.splitlines() if line.startswith("kbuild-py:")]
    assert len(errors) == 1, r.stderr
    assert "build of qemu-x86_64 failed" in errors[0]
    assert "-fno-such-option" in errors[0], errors[0]
    assert "Traceback" not in r.stderr
    if before is not None:
        assert manifest(TEST_OUT, "qemu-x86_64") == before, "dist/ is left as it was"
    leftovers = [p for p in (TEST_OUT / "qemu-x86_64").iterdir() if p.name.startswith(".dist")]
    assert leftovers == []
