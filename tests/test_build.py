"""Builds: a failing compile is one line and leaves dist/ alone."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from kbtest import REPO, TEST_OUT

OUT = str(TEST_OUT)


def scons(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["scons", "-Q", *args], cwd=REPO, capture_output=True, text=True,
                          check=False, timeout=3000, env={**os.environ, **(env or {})})


def manifest(out: Path, profile: str) -> dict:  # type: ignore[type-arg]
    return json.loads((out / profile / "dist" / "manifest.json").read_text())  # type: ignore[no-any-return]


@pytest.mark.kernel
@pytest.mark.build
def test_failing_compile_is_one_line_and_leaves_dist_alone(tree612, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A compiler that rejects the build: exit != 0, the failing line named, the previous
    dist/ untouched, no half-written files."""
    data = tmp_path / "data"
    for name in ("profiles", "toolchains", "arches", "patches", "checks", "lkdtm"):
        shutil.copytree(REPO / name, data / name)
    gcc = data / "toolchains" / "gcc.yaml"
    gcc.write_text(gcc.read_text().replace("make_vars: {",
                                           "make_vars: {KCFLAGS: -fno-such-option, "))
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
