"""kbuild-py as a user installs it from a wheel: not the checkout, not an editable install.
The wheel is built from this checkout, installed into a new virtual environment with its
dependencies, and run from a folder outside the project with no KBUILD_PY_DATA: the profiles,
layers, toolchains, patches and the rest come from inside the package."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kbtest import REPO, TARBALL_612, shared_out

CORPUS = REPO / "tests" / "corpus"


def _run(argv: list[str | Path], cwd: Path,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True,
                          check=False, timeout=900, env=env)


@pytest.mark.kernel
def test_a_wheel_installed_in_a_new_venv_has_its_data(tmp_path: Path, tree612) -> None:  # type: ignore[no-untyped-def]
    wheels = tmp_path / "wheels"
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", wheels, REPO],
                 tmp_path)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = wheels.glob("kbuild_py-*.whl")
    venv = tmp_path / "venv"
    made = _run([sys.executable, "-m", "venv", venv], tmp_path)
    assert made.returncode == 0, made.stderr
    installed = _run([venv / "bin" / "python", "-m", "pip", "install", "-q",
                      "--disable-pip-version-check", wheel], tmp_path)
    assert installed.returncode == 0, installed.stderr[-2000:]

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "KBUILD_PY_DATA"}
    tool = venv / "bin" / "kbuild-py"
    where = _run([venv / "bin" / "python", "-c",
                  "import kbuild_py.catalog as c; print(c.PACKAGE_DIR, c.data_root())"],
                 elsewhere, env=env)
    package, data = where.stdout.split()
    assert Path(package).is_relative_to(venv) and Path(data) == Path(package) / "data", (
        "the wheel's own copy of the data, not the checkout's")

    listed = _run([tool, "profiles"], elsewhere, env=env)
    assert listed.returncode == 0, listed.stderr
    names = {line.split()[0] for line in listed.stdout.splitlines() if line.strip()}
    assert names == {p.stem for p in (REPO / "profiles").glob("*.yaml")}

    version = _run([tool, "--version"], elsewhere, env=env)
    assert version.returncode == 0 and version.stdout.startswith("kbuild-py 0."), version

    out = shared_out(elsewhere / "out", [tree612.path])  # the session's extracted 6.12
    resolved = _run([tool, "resolve", "--profile", "qemu-x86_64", "--kernel", TARBALL_612,
                     "--out", out], elsewhere, env=env)
    assert resolved.returncode == 0, resolved.stderr
    fragment = (out / "qemu-x86_64" / "fragment.config").read_text()
    assert "CONFIG_SECURITY_YAMA_PTRACE_SCOPE_DEFAULT=3" in fragment, (
        "an option of the profile's patch queue: the patches came with the wheel")
    exported = _run([tool, "export", "--profile", "qemu-x86_64", "--kernel", TARBALL_612,
                     "--format", "yocto", "--out", out], elsewhere, env=env)
    assert exported.returncode == 0, exported.stderr
    scc = out / "qemu-x86_64" / "export" / "yocto" / "recipes-kernel" / "linux" / "files"
    assert "patch 0002-yama-build-time-default-for-ptrace_scope.patch" in (
        scc / "kbuild-py-qemu-x86_64.scc").read_text(), "the export templates came along"

    checked = _run([tool, "check", "--profile", "server-x86_64", "--no-find-kernel", "--config",
                    CORPUS / "x86_64-6.12-gcc12-tiny-hardening.config.xz"], elsewhere, env=env)
    assert checked.returncode == 1, checked.stderr  # a tiny config does not meet the server's
    assert "kernel 6.12." in checked.stdout and "UNMET" in checked.stdout
