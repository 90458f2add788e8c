"""Builds: a failing compile is one line and leaves dist/ alone."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from kbtest import REPO, TEST_OUT, TINY, kbuild_py, shared_out
from kbuild_py.catalog import DATA_FOLDERS

OUT = str(TEST_OUT)


def scons(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["scons", "-Q", *args], cwd=REPO, capture_output=True, text=True,
                          check=False, timeout=3000, env={**os.environ, **(env or {})})


def manifest(out: Path, profile: str) -> dict:  # type: ignore[type-arg]
    return json.loads((out / profile / "dist" / "manifest.json").read_text())  # type: ignore[no-any-return]


@pytest.mark.kernel
@pytest.mark.build
@pytest.mark.uses_kernel("tiny-arm64")
def test_failing_compile_is_one_line_and_leaves_dist_alone(session_kernel, tree612,  # type: ignore[no-untyped-def]
                                                           tmp_path: Path) -> None:
    """A compiler that rejects the build: exit != 0, the failing line named, the previous
    dist/ (the session's tiny kernel's, copied) untouched, no half-written files."""
    out = shared_out(tmp_path / "out", [tree612.path])
    shutil.copytree(session_kernel("tiny-arm64") / "dist", out / "tiny-arm64" / "dist")
    before = manifest(out, "tiny-arm64")
    # The caller's KCFLAGS are appended to kbuild-py's own (and are part of the signature).
    r = scons(f"profile={TINY / 'tiny-arm64.yaml'}", f"out={out}", "ccache=0",
              "make_vars=LOCALVERSION=-acme W=1", env={"KCFLAGS": "-fno-such-option"})
    assert r.returncode == 3, "an infrastructure failure, as kbuild-py's own exit code says"
    errors = [line for line in r.stderr.splitlines() if line.startswith("kbuild-py:")]
    assert len(errors) == 1, r.stderr
    assert "build of tiny-arm64 failed (exit 2), a compiler error: " in errors[0], errors[0]
    assert "-fno-such-option" in errors[0], errors[0]
    assert "Traceback" not in r.stderr
    assert manifest(out, "tiny-arm64") == before, "dist/ is left as it was"
    command = (out / "tiny-arm64" / "build.log").read_text().splitlines()[0].split()
    assert {"LOCALVERSION=-acme", "W=1"} <= set(command), "make_vars= reach make"
    leftovers = [p for p in (out / "tiny-arm64").iterdir() if p.name.startswith(".dist")]
    assert leftovers == []


@pytest.mark.kernel
def test_a_compiler_too_old_for_a_requested_option_fails_before_the_build(  # type: ignore[no-untyped-def]
        tree612, tmp_path: Path) -> None:
    """android-arm64 built with Debian's default clang 14: kCFI needs clang 16, PAC-to-SCS
    patching clang 15. `kbuild-py build` stops after configure with one line naming each
    option and the compiler's shortfall (exit 1), Kbuild's own .config agrees, and nothing
    is built or collected."""
    data = tmp_path / "data"
    for name in DATA_FOLDERS:
        shutil.copytree(REPO / name, data / name)
    android = (data / "profiles" / "android-arm64.yaml").read_text()
    (data / "profiles" / "android-clang14.yaml").write_text(
        android.replace("name: android-arm64", "name: android-clang14")
        .replace("toolchain: clang-19", "toolchain: clang-14"))
    r = kbuild_py("build", "--profile", "android-clang14", "--out", OUT,
                  env={"KBUILD_PY_DATA": str(data)})
    assert r.returncode == 1, r.stderr  # requirements unmet
    errors = [line for line in r.stderr.splitlines() if line.startswith("kbuild-py:")]
    assert len(errors) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "did not stick with Debian clang version 14" in errors[0]
    assert ("CFI_CLANG (CFI_CLANG=n, decided by the toolchain: depends on "
            "$(cc-option,-fsanitize=kcfi))") in errors[0]
    assert ("UNWIND_PATCH_PAC_INTO_SCS (the toolchain gives CLANG_VERSION=140006, >= 150000 "
            "needed)") in errors[0]
    assert ("ZERO_CALL_USED_REGS (the toolchain gives CLANG_VERSION=140006, > 150006 "
            "needed)") in errors[0]
    # SCons ends with kbuild-py's own code and the same one line.
    through = scons("profile=android-clang14", f"out={OUT}", "config",
                    env={"KBUILD_PY_DATA": str(data)})
    assert through.returncode == 1, through.stderr
    assert [line for line in through.stderr.splitlines() if line.strip()] == errors
    out = TEST_OUT / "android-clang14"
    config = (out / "build" / ".config").read_text()
    assert "CONFIG_CFI_CLANG=y" not in config and "CONFIG_UNWIND_PATCH_PAC_INTO_SCS=y" not in config
    assert "CONFIG_CLANG_VERSION=140006" in config
    assert not (out / "dist").exists() and not (out / "build" / "vmlinux").exists()


def test_a_seed_kbuild_replaced_fails_the_build(tmp_path: Path) -> None:
    """Had Kbuild drawn its own randstruct seed, the build would not be reproducible: an
    error naming the file and the next step, not a silent success."""
    from kbuild_py.build import check_seed
    from kbuild_py.errors import InfraError

    seed_file = tmp_path / "scripts" / "basic" / "randstruct.seed"
    seed_file.parent.mkdir(parents=True)
    seed_file.write_text("ours\n")
    check_seed(tmp_path, "ours")
    seed_file.write_text("drawn-by-kbuild\n")
    with pytest.raises(InfraError) as e:
        check_seed(tmp_path, "ours")
    assert str(seed_file) in e.value.one_line() and "not reproducible" in e.value.one_line()


def test_source_date_epoch_and_build_timestamp_are_honoured(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Kbuild's reproducible-builds knobs: SOURCE_DATE_EPOCH dates the build (and what
    kbuild-py packs), KBUILD_BUILD_TIMESTAMP is the kernel's own text; without them, the
    source's date. The make environment gets what was chosen, and says where it came from."""
    import os

    from kbuild_py.build import build_time, reproducible_env
    from kbuild_py.source import KernelTree

    (tmp_path / "Makefile").write_text("")
    os.utime(tmp_path / "Makefile", (1_700_000_000, 1_700_000_000))
    tree = KernelTree(tmp_path, (7, 3, 4), "7.3.4", "sha", True)
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    monkeypatch.delenv("KBUILD_BUILD_TIMESTAMP", raising=False)
    assert build_time(tree).date.timestamp() == 1_700_000_000
    assert reproducible_env(tree)["KBUILD_BUILD_TIMESTAMP"] == "Tue Nov 14 22:13:20 UTC 2023"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    when = build_time(tree)
    assert when.date.timestamp() == 1_767_225_600 and when.origin == "SOURCE_DATE_EPOCH"
    assert reproducible_env(tree)["KBUILD_BUILD_TIMESTAMP"] == "Thu Jan 01 00:00:00 UTC 2026"
    monkeypatch.setenv("KBUILD_BUILD_TIMESTAMP", "Fri Jan 2 12:00:00 CET 2026")
    env = reproducible_env(tree)
    assert env["KBUILD_BUILD_TIMESTAMP"] == "Fri Jan 2 12:00:00 CET 2026"
    assert env["KBUILD_BUILD_USER"] == env["KBUILD_BUILD_HOST"] == "kbuild-py"
    assert build_time(tree).date.timestamp() == 1_767_225_600, "packing keeps the epoch"


@pytest.mark.parametrize("target, kind, says", [
    ("missing", "a tool is missing", "make: no-such-tool-kbuild-py: No such file or directory"),
    ("missing-sh", "a tool is missing", "/bin/sh: 1: no-such-tool-kbuild-py: not found"),
    ("link", "a linker error", "undefined reference to `not_defined_anywhere'"),
    ("compile", "a compiler error", "error: expected"),
])
def test_a_failed_make_names_its_cause(tmp_path: Path, target: str, kind: str,
                                        says: str) -> None:
    """make's own "*** Error 2" hides why it failed: the one line says what kind of failure
    it was (kbuild/interface.yaml make_failures), with the tool's own words and the log."""
    from kbuild_py.errors import InfraError
    from kbuild_py.kmake import run_make

    (tmp_path / "Makefile").write_text(
        "missing:\n\tno-such-tool-kbuild-py --version\n"
        "missing-sh:\n\ttrue && no-such-tool-kbuild-py --version\n"
        "link:\n\tprintf 'int not_defined_anywhere(void);\\n"
        "int main(void) { return not_defined_anywhere(); }\\n' > t.c && gcc t.c -o t\n"
        "compile:\n\tprintf 'int main(void) { return }\\n' > u.c && gcc -c u.c\n")
    log = tmp_path / "make.log"
    with pytest.raises(InfraError) as e:
        run_make(["make", "-C", str(tmp_path), target], log, what=f"make {target}")
    line = e.value.one_line()
    assert line.startswith(f"make {target} failed (exit 2), {kind}: "), line
    assert says in line and str(log) in line, line
