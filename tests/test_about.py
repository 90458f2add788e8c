"""kbuild-py --version: the package's version and, in a git checkout, the commit it runs."""

from __future__ import annotations

import re
import subprocess

from kbtest import REPO, kbuild_py


def test_version_names_the_version_and_the_commit() -> None:
    r = kbuild_py("--version")
    assert r.returncode == 0, r.stderr
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short=12", "HEAD"],
                          capture_output=True, text=True, check=False).stdout.strip()
    m = re.fullmatch(r"kbuild-py (\d+\.\d+\.\d+)( \(commit ([0-9a-f]{12})\))?\n", r.stdout)
    assert m, r.stdout
    assert m[3] == (head or None)  # a checkout (CI clones one): the very commit


def test_the_python_it_checks_for_is_the_one_pyproject_requires() -> None:
    """kbuild_py/__init__.py refuses an older Python in one line, before any module that would
    fail on it is imported; its minimum is pyproject.toml's requires-python."""
    import tomllib

    import kbuild_py

    wanted = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert wanted == ">=" + ".".join(map(str, kbuild_py.REQUIRES_PYTHON))
