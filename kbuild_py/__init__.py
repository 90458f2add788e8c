"""kbuild-py: declarative kernel hardening profiles in, verified hardened kernels out."""

import sys

__version__ = "0.1.0"
REQUIRES_PYTHON = (3, 11)  # as pyproject.toml's requires-python (StrEnum, datetime.UTC, ...)

if sys.version_info < REQUIRES_PYTHON:  # before any module that would fail to import
    sys.stderr.write(
        f"kbuild-py: error: Python {'.'.join(map(str, REQUIRES_PYTHON))} or newer is needed, and "
        f"this is {sys.version.split()[0]} ({sys.executable}) (run ./setup and use .venv/bin/, "
        "or another Python)\n")
    raise SystemExit(2)
