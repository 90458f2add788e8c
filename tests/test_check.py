"""`kbuild-py check` on a real vendor config (Debian's own 6.12 amd64 config), report schema and
JUnit output, and the CLI's exit codes."""

from __future__ import annotations

import json
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
    r = cli("check", "--profile", _profile(), "--config", str(debian), "--reports", str(tmp_path))
    assert r.returncode == 1, r.stderr  # Debian's generic config misses some requirements
    assert "Traceback" not in r.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    jsonschema.validate(report, SCHEMA)
    assert report["counts"]["unmet"] >= 1 and report["passed"] is False
    assert all(c["explanation"] is None for c in report["checks"])


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
    # The table on the terminal carries the reasons too.
    assert "fix: " in r.stdout and "UNMET" in r.stdout

    xml = JUnitXml.fromfile(str(tmp_path / "report.xml"))
    cases = [case for suite in xml for case in suite]
    assert len(cases) == len(report["checks"])
    failed = [case.name for case in cases if case.result and case.result[0]._tag == "failure"]
    assert sorted(failed) == sorted(c["symbol"] for c in unmet if c["severity"] == "required")


def test_report_only_exits_zero(debian: Path) -> None:
    r = cli("check", "--profile", _profile(), "--config", str(debian), "--report-only")
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
