"""The SCons chain end to end on the session's hardened qemu-x86_64 kernel (7.3): built,
verified and collected, a rerun that does not start make; a clean that removes a profile's
folder and only it; the kernel checked in every artifact; bad input fails in one line.

(How much of a clean rebuild ccache serves, GCC plugins rebuilt included, is a speed figure:
bench/bench_build.py measures it against a cold build.)
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from kbtest import REPO, TARBALL_73, TARBALL_612, TEST_OUT
from kbuild_py.fsutil import sha256_file


def scons(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["scons", "-Q", *args], cwd=REPO, capture_output=True, text=True,
                          check=False, timeout=3000)


@pytest.mark.kernel
@pytest.mark.build
@pytest.mark.uses_kernel("qemu-x86_64")
def test_the_chain_end_to_end_and_a_rerun_starts_nothing(session_kernel) -> None:  # type: ignore[no-untyped-def]
    """On the session's qemu-x86_64 kernel: what SCons built and collected, and a rerun that
    starts no step and no make."""
    folder = session_kernel("qemu-x86_64")
    args = ("profile=qemu-x86_64", f"source={TARBALL_73}", f"out={TEST_OUT}")
    dist = folder / "dist"
    image = dist / "bzImage"
    assert image.read_bytes()[0x202:0x206] == b"HdrS", "a real x86 boot image"
    manifest = json.loads((dist / "manifest.json").read_text())
    assert manifest["outputs"]["bzImage"] == sha256_file(image)
    assert manifest["kernel"]["version"].startswith("7.3.")
    assert manifest["kernel"]["identity"].startswith(sha256_file(TARBALL_73))
    assert manifest["reproduce"][0] == "scons"
    assert (dist / "config").read_bytes() == (folder / "build" / ".config").read_bytes()

    # Nothing changed: no step runs, make is not started.
    log = folder / "build.log"
    before = log.stat().st_mtime_ns
    again = scons(*args)
    assert again.returncode == 0
    assert "kbuild-py:" not in again.stdout, again.stdout
    assert log.stat().st_mtime_ns == before
    assert scons("-q", *args).returncode == 0, "up to date"

    # scons -n with another make variable: the steps that would run (the plan is part of each
    # step's signature, so all of them) with the make lines of configure and build; nothing runs.
    dry = scons("-n", *args, "make_vars=W=1")
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert "kbuild-py: build" in lines, lines
    olddefconfig = lines[lines.index("kbuild-py: configure + verify") + 2]
    assert olddefconfig.startswith("  make -C ") and olddefconfig.endswith(" olddefconfig"), lines
    make = lines[lines.index("kbuild-py: build") + 1]
    assert f"make -C {folder.parent / 'src'}" in make and " W=1 " in make, make
    assert make.endswith(" bzImage vmlinux") and "KBUILD_BUILD_TIMESTAMP=" in make, make
    assert log.stat().st_mtime_ns == before
    assert scons("-q", *args).returncode == 0, "still up to date"


def test_clean_removes_the_profiles_folder_and_only_it(tmp_path: Path) -> None:
    """`scons -c` removes the folder a run marked as the profile's, and keeps the shared
    source trees, the cache and the other profiles' folders."""
    out = tmp_path / "out"
    mine, other = out / "qemu-x86_64", out / "qemu-arm64"
    for folder in (mine, other):
        (folder / "build").mkdir(parents=True)
        (folder / ".kbuild-py-profile").write_text(f"{folder.name}\n")
        (folder / "build" / ".config").write_text("CONFIG_BUG=y\n")
    for shared in ("src", "cache"):
        (out / shared).mkdir()
        (out / shared / "keep").write_text("shared\n")
    cleaned = scons("-c", "profile=qemu-x86_64", f"out={out}")
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert not mine.exists()
    assert (other / "build" / ".config").is_file()
    assert (out / "src" / "keep").is_file() and (out / "cache" / "keep").is_file()


@pytest.mark.kernel
@pytest.mark.build
@pytest.mark.uses_kernel("qemu-x86_64")
def test_the_hardened_qemu_kernel_in_every_artifact(session_kernel) -> None:  # type: ignore[no-untyped-def]
    """The session's qemu-x86_64 kernel (7.3, built by SCons): image, manifest, SBOM, the
    configure report and the binary checks; asking SCons again starts nothing."""
    profile_dir = session_kernel("qemu-x86_64")
    dist = profile_dir / "dist"
    manifest = json.loads((dist / "manifest.json").read_text())
    assert manifest["kernel"]["version"].startswith("7.3.")
    # The tree is the tarball plus the profile's patch queues.
    assert manifest["kernel"]["identity"].startswith(sha256_file(TARBALL_73) + "+")
    assert "profiles/qemu-x86_64.yaml" in manifest["inputs"]
    assert manifest["reproduce"][:2] == ["scons", "profile=qemu-x86_64"]
    from kbtest import manifest_errors
    from kbuild_py import about

    assert manifest_errors(dist / "manifest.json") == []
    assert manifest["kbuild_py"]["version"] == about.version()
    # The commit that built the kernel: this one from a fresh clone; with out/.test kept across
    # commits (nothing the build reads changed, so it was not rebuilt), an earlier one of HEAD's
    # history, which is what really built it.
    built_by = manifest["kbuild_py"]["commit"]
    assert built_by == about.commit() or subprocess.run(
        ["git", "-C", str(REPO), "merge-base", "--is-ancestor", built_by, "HEAD"],
        check=False).returncode == 0, built_by
    assert manifest["tools"]["make"].startswith("GNU Make ")
    assert manifest["tools"]["ccache"].startswith("ccache version ")
    assert manifest["timestamp"]["from"] == "the source's date"  # no SOURCE_DATE_EPOCH given
    modes = {p.relative_to(dist).as_posix(): p.stat().st_mode & 0o777
             for p in [dist, *dist.rglob("*")]}
    assert modes == {name: 0o755 if (dist / name).is_dir() else 0o644 for name in modes}, (
        "dist/ is data: files 0644, folders 0755")
    from test_sbom import validate

    assert validate(dist / "sbom.spdx.json") == [], "an SPDX 2.3 SBOM the SPDX tools accept"
    bom = json.loads((dist / "sbom.spdx.json").read_text())
    image = next(f for f in bom["files"] if f["fileName"] == "./bzImage")
    assert {"algorithm": "SHA256", "checksumValue": manifest["outputs"]["bzImage"]} in (
        image["checksums"])
    assert manifest["outputs"]["sbom.spdx.json"] == sha256_file(dist / "sbom.spdx.json")

    report = json.loads((profile_dir / "report.json").read_text())
    assert report["passed"] is True
    assert report["prediction_mismatches"] == [], "kconfiglib and Kbuild agree"
    statuses = {c["status"] for c in report["checks"]}
    assert statuses <= {"ok", "waived", "n/a"}
    assert report["counts"]["ok"] >= 40
    for check in report["checks"]:
        if check["status"] != "ok":
            assert check["note"], f"{check['symbol']}: every non-ok status says why"
    binary = json.loads((dist / "binary-report.json").read_text())
    status = {c["name"]: c["status"] for c in binary["checks"]}
    assert status["no-wx-segment"] == "ok"
    assert [n for n, st in status.items() if st == "unmet"] == []
    assert sum(1 for st in status.values() if st == "ok") >= 4, status
    assert status["ibt-endbr64"] == status["stack-protector"] == "ok"

    final = (dist / "config").read_text()
    assert "CONFIG_STACKPROTECTOR_STRONG=y" in final
    assert "CONFIG_SLAB_FREELIST_HARDENED=y" in final
    assert (dist / "config").read_bytes() == (profile_dir / "build" / ".config").read_bytes()

    from conftest import kbuild_log

    log_text = kbuild_log("qemu-x86_64").read_text() if kbuild_log("qemu-x86_64").is_file() else ""
    if "kbuild-py: build\n" in log_text:  # the session's background run built it, in a log
        steps = re.findall(r"^kbuild-py: build qemu-x86_64: (\d+) steps .*, (\d+):(\d\d)",
                           log_text, re.M)
        assert len(steps) >= 3, log_text[-3000:]
        assert [int(n) for n, _, _ in steps] == sorted(int(n) for n, _, _ in steps)
    args = ("profile=qemu-x86_64", f"out={TEST_OUT}", f"source={TARBALL_73}")
    log = profile_dir / "build.log"
    before = log.stat().st_mtime_ns
    again = scons(*args)
    assert again.returncode == 0 and "kbuild-py:" not in again.stdout, again.stdout
    assert log.stat().st_mtime_ns == before
    assert scons("-q", *args).returncode == 0, "up to date"


def test_help_lists_variables() -> None:
    out = scons("-h")
    assert out.returncode == 0
    for var in ("profile:", "source:", "jobs:", "out:", "strict:"):
        assert var in out.stdout


def _bad(tmp_path: Path, *args: str) -> str:
    out = f"out={tmp_path / 'out'}"
    r = scons(*args, out)
    assert r.returncode != 0
    assert "Traceback" not in r.stdout + r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("kbuild-py:")]
    assert len(errors) == 1, r.stderr
    out_dir = tmp_path / "out"
    written = [p for p in (out_dir.iterdir() if out_dir.exists() else [])
               if not p.name.startswith(".sconsign") and p.name != "cache"]
    assert written == [], "nothing written for bad input"
    return errors[0]


def test_unknown_profile(tmp_path: Path) -> None:
    line = _bad(tmp_path, "profile=qemu-x86-64")
    assert "unknown profile 'qemu-x86-64' (did you mean 'qemu-x86_64'?)" in line


def test_missing_source(tmp_path: Path) -> None:
    line = _bad(tmp_path, "profile=qemu-x86_64", f"source={tmp_path}/linux.tar.xz")
    assert f"source={tmp_path}/linux.tar.xz: no such file or directory" in line


def test_unparsable_yaml(tmp_path: Path) -> None:
    bad = tmp_path / "vendor.yaml"
    bad.write_text("schema_version: 1\nname: vendor\noptions: [\n")
    line = _bad(tmp_path, f"profile={bad}")
    assert f"{bad}:4: invalid YAML" in line


def test_checksum_mismatch(tmp_path: Path) -> None:
    if not TARBALL_612.is_file():
        pytest.skip("linux-source-6.12 not installed")
    vendor = tmp_path / "vendor.yaml"
    vendor.write_text(
        "schema_version: 1\nname: vendor\nextends: [qemu-x86_64]\n"
        f"source: {{tarball: {TARBALL_612}, sha256: '{'0' * 64}'}}\n")
    line = _bad(tmp_path, f"profile={vendor}")
    assert "does not match the pin " + "0" * 64 in line
