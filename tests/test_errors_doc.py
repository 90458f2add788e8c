"""docs/ERRORS.md says what the code does: each exit code's kind is the error class's, every
command of kbuild-py and every scons target has its row, and every test a row names exists."""

from __future__ import annotations

import argparse
import re

from kbtest import REPO
from kbuild_py import cli, errors, sconsglue

DOC = (REPO / "docs" / "ERRORS.md").read_text()


def _table(header: str) -> list[list[str]]:
    """The rows of the Markdown table whose header row starts with ``header``."""
    lines = DOC.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = re.split(r"(?<!\\)\|", line.strip()[1:-1])
        rows.append([c.strip() for c in cells])
    return rows


def test_every_exit_code_is_its_error_class() -> None:
    codes = {row[0]: set(re.findall(r"`([a-z]+)`", row[1])) for row in _table("| exit |")}
    classes = [errors.RequirementsUnmet, errors.UserError, errors.InfraError, errors.Busy,
               errors.Interrupted]
    for cls in classes:
        assert cls.kind in codes[str(cls.exit_code)], (cls.__name__, codes)
    assert str(cli.EXIT_BROKEN_PIPE) in codes
    assert (cli.EXIT_OK, cli.EXIT_UNMET, cli.EXIT_USER, cli.EXIT_INFRA) == (0, 1, 2, 3)


def test_every_command_and_target_has_its_row() -> None:
    documented = " ".join(row[0] for row in _table("| entry point |"))
    sub = next(a for a in cli.parser()._actions if isinstance(a, argparse._SubParsersAction))
    for command in sub.choices:
        assert re.search(rf"`(kbuild-py )?{command}`|`kbuild-py {command}\b", documented), (
            f"kbuild-py {command} has no row in docs/ERRORS.md")
    assert "`--version`" in documented
    for target in sconsglue.TARGETS:
        assert target in documented, f"scons target {target} has no row in docs/ERRORS.md"


def test_every_test_a_row_names_exists() -> None:
    named = set(re.findall(r"\b(test_[a-z_]+)\b", DOC))
    assert named, "the table names the tests that check its codes"
    for name in named:
        assert (REPO / "tests" / f"{name}.py").is_file() or (REPO / "tests" / name).is_dir(), (
            f"docs/ERRORS.md names {name}, which is not a test file")
