"""Lint and type checks are part of the test run."""

from __future__ import annotations

import subprocess
import sys

from kbtest import REPO


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *argv], cwd=REPO, capture_output=True,
                          text=True, check=False)


def test_ruff() -> None:
    r = _run("ruff", "check", "kbuild_py", "tests", "bench")
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_strict() -> None:
    r = _run("mypy")
    assert r.returncode == 0, r.stdout + r.stderr


def test_only_the_adapter_imports_kconfiglib() -> None:
    importers = [p.name for p in (REPO / "kbuild_py").glob("*.py")
                 if "import kconfiglib" in p.read_text()]
    assert importers == ["kconfig.py"]


def test_no_config_symbols_in_python() -> None:
    """Knowledge is data: no CONFIG_ names hard-coded in kbuild_py/."""
    import re

    for path in (REPO / "kbuild_py").glob("*.py"):
        for line in path.read_text().splitlines():
            symbol = re.search(r"(?<![A-Za-z0-9_])CONFIG_[A-Z0-9]{3,}", line)
            assert not symbol, f"{path.name}: {line.strip()}"
