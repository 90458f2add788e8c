"""kbuild-py's own identity: its version and, in a git checkout, its commit."""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def version(package: str = "kbuild-py") -> str:
    """An installed package's version (kbuild-py's own by default), or "unknown"."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


def commit() -> str | None:
    """The checkout's commit (12 hex digits), or None outside a git checkout."""
    if not (ROOT / ".git").exists():
        return None
    try:
        r = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"],
                           capture_output=True, text=True, check=False, timeout=10,
                           stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = r.stdout.strip()
    return text if r.returncode == 0 and text else None


def describe() -> str:
    """'kbuild-py 0.1.0 (commit 30feed1abc12)', or without the commit outside a checkout."""
    found = commit()
    return f"kbuild-py {version()}" + (f" (commit {found})" if found else "")
