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
