"""`kbuild-py check` on a real vendor config (Debian's own 6.12 amd64 config), report schema and
JUnit output, and the CLI's exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from junitparser import JUnitXml

from kbtest import REPO, TARBALL_612

DEBIAN = Path("/usr/src/linux-config-6.12/config.amd64_none_amd64.xz")
SCHEMA = json.loads((REPO / "kbuild_py" / "schema" / "report.schema.json").read_text())


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kbuild_py.cli", *args], cwd=REPO,
                          capture_output=True, text=True, check=False, timeout=600)


def _profile() -> str:
    return "server-x86_64" if (REPO / "profiles" / "server-x86_64.yaml").is_file() else (
        "qemu-x86_64")


@pytest.fixture(scope="module")
def debian() -> Path:
    if not DEBIAN.is_file():
        pytest.skip("linux-config-6.12 not installed")
    return DEBIAN


def test_check_without_tree_gives_statuses(debian: Path, tmp_path: Path) -> None:
    r = cli("check", "--profile", _profile(), "--config", str(debian), "--reports", str(tmp_path),
            "--no-find-kernel")
    assert r.returncode == 1, r.stderr  # Debian's generic config misses some requirements
    assert "Traceback" not in r.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    jsonschema.validate(report, SCHEMA)
    assert report["counts"]["unmet"] >= 1 and report["passed"] is False
    assert all(c["explanation"] is None for c in report["checks"])
    # The config's own version and compiler, and how to get explanations.
    assert report["kernel"] == "6.12.118" or report["kernel"].startswith("6.12.")
    assert report["toolchain"].startswith("x86_64-linux-gnu-gcc-12 ")
    assert any("give --kernel" in n for n in report["notes"]), report["notes"]
    assert "give --kernel" in r.stdout


def _edited(debian: Path, tmp_path: Path, header: str, drop: str = "") -> Path:
    import lzma

    lines = lzma.decompress(debian.read_bytes()).decode().splitlines()
    lines[2] = header
    config = tmp_path / "vendor.config"
    config.write_text("\n".join(ln for ln in lines if not drop or not ln.startswith(drop)) + "\n")
    return config


@pytest.mark.parametrize("header,drop,message", [
    ("# Linux/arm64 6.12.5 Kernel Configuration", "",
     "a Linux/arm64 config (its header), and profile {p} is for x86_64"),
    ("# Linux/x86 6.12.5 Kernel Configuration", "CONFIG_X86_64=",
     "CONFIG_X86_64 is not set, so this is not an x86_64 config"),
    ("# Linux/x86 5.10.226 Kernel Configuration", "",
     "Linux 5.10.226, outside the kernels profile {p} supports (6.1..7.3)"),
    ("# Linux/x86 7.4.1 Kernel Configuration", "",
     "Linux 7.4.1, outside the kernels profile {p} supports (6.1..7.3)"),
])
def test_a_config_of_another_arch_or_kernel_is_one_line(debian: Path, tmp_path: Path,
                                                        header: str, drop: str,
                                                        message: str) -> None:
    """The config's header decides: exit 2 and one line, before any tree is read."""
    config = _edited(debian, tmp_path, header, drop)
    r = cli("check", "--profile", _profile(), "--config", str(config))
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message.format(p=_profile()) in lines[0], lines


def test_version_may_only_repeat_the_header(debian: Path) -> None:
    r = cli("check", "--profile", _profile(), "--config", str(debian), "--version", "6.1")
    assert r.returncode == 2 and "leave --version out" in r.stderr, r.stderr


@pytest.mark.kernel
def test_check_with_tree_explains_every_miss(tree612, debian: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = cli("check", "--profile", _profile(), "--config", str(debian), "--kernel",
            str(TARBALL_612), "--out", str(REPO / "out" / ".test"), "--reports", str(tmp_path))
    assert r.returncode == 1, r.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    jsonschema.validate(report, SCHEMA)
    unmet = [c for c in report["checks"] if c["status"] == "unmet"]
    assert unmet
    for c in unmet:
        assert c["explanation"] and c["explanation"]["fix"], c["symbol"]
        assert "Kconfig default" not in c["explanation"]["fix"], c
        assert "in the profile" not in c["explanation"]["fix"], c  # the config is what changes
    # The table on the terminal carries the reasons too.
    assert "fix: " in r.stdout and "UNMET" in r.stdout
    # Debian's gcc had no plugin headers: its config hides GCC_PLUGINS, which this machine's
    # gcc would show; the explanation is the config's compiler's, never "on by default".
    compiler = "x86_64-linux-gnu-gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0"
    assert report["toolchain"] == compiler
    checks = {c["symbol"]: c for c in report["checks"]}
    plugins = checks["GCC_PLUGINS"]["explanation"]
    assert "hidden in this config" in plugins["summary"] and compiler in plugins["summary"]
    assert {"symbol": "GCC_PLUGINS", "here": "y", "recorded": None} in report["recorded_answers"]
    # COMPAT has no prompt: both ABIs that keep it on go off.
    fix = checks["COMPAT"]["explanation"]["fix"]
    assert "# CONFIG_IA32_EMULATION is not set" in fix and "# CONFIG_X86_X32_ABI is not set" in fix

    xml = JUnitXml.fromfile(str(tmp_path / "report.xml"))
    cases = [case for suite in xml for case in suite]
    assert len(cases) == len(report["checks"])
    failed = [case.name for case in cases if case.result and case.result[0]._tag == "failure"]
    assert sorted(failed) == sorted(c["symbol"] for c in unmet if c["severity"] == "required")


@pytest.mark.kernel
def test_check_finds_the_installed_tree_of_the_configs_kernel(tree73, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Debian's 7.3 config without --kernel: the installed linux-source-7.3 explains it, with
    Debian's own compiler named."""
    config = Path("/usr/src/linux-config-7.3/config.amd64_none_amd64.xz")
    if not config.is_file():
        pytest.skip("linux-config-7.3 not installed")
    r = cli("check", "--profile", _profile(), "--config", str(config), "--out",
            str(REPO / "out" / ".test"), "--reports", str(tmp_path))
    assert r.returncode == 1, r.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["kernel"].startswith("7.3.") and "Debian" in report["toolchain"]
    assert any("found installed for the config's Linux 7.3" in n for n in report["notes"])
    unmet = [c for c in report["checks"] if c["status"] == "unmet"]
    assert unmet and all(c["explanation"] for c in unmet)
    assert not any("Kconfig default" in c["explanation"]["fix"] for c in unmet)


@pytest.mark.parametrize("kernel", [False, pytest.param(True, marks=pytest.mark.kernel)])
@pytest.mark.parametrize("written,reads_as", [
    ('"y"', "n"),      # a quoted value of a bool: conf says invalid, the symbol is not set
    ("yes", "y"),      # conf takes the first character of a bool
    ('"4096"', None),  # a quoted number is invalid
    ("4_096", None), ("+4096", None), ("04096", None),  # Python's syntax, not Kbuild's
])
def test_check_reads_values_as_kbuild_does(kernel: bool, written: str, reads_as: str | None,
                                           debian: Path, tmp_path: Path) -> None:
    """A value Kbuild's conf would reject or read otherwise never satisfies a requirement."""
    import lzma

    text = lzma.decompress(debian.read_bytes()).decode()
    if reads_as is None:  # an int requirement: min 4096 (server-x86_64: none; add one)
        symbol, line = "LOG_BUF_SHIFT", "CONFIG_LOG_BUF_SHIFT="
    else:
        symbol, line = "HARDENED_USERCOPY", "CONFIG_HARDENED_USERCOPY="
    lines = [ln for ln in text.splitlines() if not ln.startswith((line, f"# {line[:-1]} is"))]
    config = tmp_path / "vendor.config"
    config.write_text("\n".join([*lines, line + written]) + "\n")
    profile = tmp_path / "p.yaml"
    req = "{min: 4096, why: test}" if reads_as is None else "{value: y, why: test}"
    profile.write_text(f"schema_version: 1\nname: p\nextends: [{_profile()}]\n"
                       f"options:\n  {symbol}: {req}\n")
    args = ["check", "--profile", str(profile), "--config", str(config), "--reports",
            str(tmp_path / "r")]
    if kernel:
        args += ["--kernel", str(TARBALL_612), "--out", str(REPO / "out" / ".test")]
    else:
        args.append("--no-find-kernel")
    r = cli(*args)
    assert r.returncode in (0, 1), r.stderr
    checks = {c["symbol"]: c for c in json.loads((tmp_path / "r" / "report.json").read_text())
              ["checks"]}
    assert checks[symbol]["status"] == ("ok" if reads_as == "y" else "unmet"), checks[symbol]


@pytest.mark.parametrize("kernel", [False, pytest.param(True, marks=pytest.mark.kernel)])
def test_negative_and_hex_numbers_are_read_as_written(kernel: bool, debian: Path,
                                                      tmp_path: Path) -> None:
    """Kbuild writes an int or hex unquoted (-1, 0xb0): without the tree's types, a value
    wanted as a number is read as written, never as a string that lacks its quotes."""
    import lzma

    wanted = {"PANIC_TIMEOUT": "-1", "MAGIC_SYSRQ_DEFAULT_ENABLE": "0xb0"}
    text = lzma.decompress(debian.read_bytes()).decode()
    lines = [ln for ln in text.splitlines()
             if not any(ln.startswith(f"CONFIG_{s}=") for s in wanted)]
    config = tmp_path / "vendor.config"
    config.write_text("\n".join([*lines, *(f"CONFIG_{s}={v}" for s, v in wanted.items())])
                      + "\n")
    profile = tmp_path / "p.yaml"
    profile.write_text(f"schema_version: 1\nname: p\nextends: [{_profile()}]\noptions:\n"
                       + "".join(f"  {s}: {{value: \"{v}\", why: test}}\n"
                                 for s, v in wanted.items()))
    args = ["check", "--profile", str(profile), "--config", str(config), "--reports",
            str(tmp_path / "r")]
    args += (["--kernel", str(TARBALL_612), "--out", str(REPO / "out" / ".test")] if kernel
             else ["--no-find-kernel"])
    r = cli(*args)
    assert r.returncode in (0, 1), r.stderr
    checks = {c["symbol"]: c for c in json.loads((tmp_path / "r" / "report.json").read_text())
              ["checks"]}
    for symbol, value in wanted.items():
        assert (checks[symbol]["status"], checks[symbol]["final"]) == ("ok", value)


def test_control_characters_and_odd_bytes_never_reach_terminal_or_reports(
        tmp_path: Path) -> None:
    """A value holding an escape sequence, and a path that is not UTF-8: the table, the
    one-line error and the three reports show escapes; report.xml stays XML."""
    import xml.etree.ElementTree as ET

    config = Path(os.fsdecode(bytes(tmp_path) + b"/vendor\xff.config"))
    config.write_text('CONFIG_DEFAULT_HOSTNAME="\x1b[2J\x1b[1;32mALL OK"\n')
    profile = tmp_path / "p.yaml"
    profile.write_text("schema_version: 1\nname: p\nextends: [qemu-x86_64]\noptions:\n"
                       "  DEFAULT_HOSTNAME: {value: box, why: test}\n")
    r = cli("check", "--profile", str(profile), "--config", str(config), "--reports",
            str(tmp_path / "r"), "--version", "6.12")
    assert r.returncode == 1, r.stderr
    assert "\x1b" not in r.stdout and "\\x1b[2J" in r.stdout and "\\xff" in r.stdout
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == [
        "report.json", "report.txt", "report.xml"]
    ET.parse(tmp_path / "r" / "report.xml")
    assert "\x1b" not in (tmp_path / "r" / "report.txt").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text('schema_version: 1\nname: bad\nextends: [qemu-x86_64]\noptions:\n'
                   '  "\\e[2JX": {value: y, why: x}\n')
    r = cli("check", "--profile", str(bad), "--config", str(config), "--version", "6.12")
    assert r.returncode == 2 and "\x1b" not in r.stderr and "\\x1b[2JX" in r.stderr, r.stderr


def test_report_only_exits_zero(debian: Path) -> None:
    r = cli("check", "--profile", _profile(), "--config", str(debian), "--report-only",
            "--no-find-kernel")
    assert r.returncode == 0


@pytest.mark.parametrize("args,code,message", [
    (["check", "--profile", "nope", "--config", "x"], 2, "unknown profile 'nope'"),
    (["check", "--profile", "qemu-x86_64", "--config", "/nonexistent/.config"], 2,
     "/nonexistent/.config: no such file"),
    (["explain", "--profile", "qemu-x86_64", "--out", "/nonexistent-out", "BUG"], 2,
     "no configured kernel for qemu-x86_64"),
    (["config", "--profile", "qemu-x86_64", "--kernel", "/nonexistent.tar.xz"], 2,
     "no such file or directory"),
])
def test_cli_errors_are_one_line(args: list[str], code: int, message: str) -> None:
    r = cli(*args)
    assert r.returncode == code, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kbuild-py: error: ") and message in lines[0]


def test_debug_shows_the_traceback() -> None:
    r = cli("--debug", "check", "--profile", "nope", "--config", "x")
    assert r.returncode != 0 and "Traceback" in r.stderr
