"""The bad-input corpus for profiles: each file states the one-line error it must produce."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kbuild_py.errors import UserError
from kbuild_py.plan import make_plan

CORPUS = Path(__file__).parent / "bad_input" / "profiles"
CASES = sorted(CORPUS.glob("*.yaml"))


def expected(path: Path) -> str:
    first = path.read_text().splitlines()[0] if path.read_text() else ""
    if path.name == "empty.yaml":
        return "empty.yaml: the file is empty"
    assert first.startswith("# expect: "), f"{path.name}: first line must be '# expect: <regex>'"
    return first.removeprefix("# expect: ")


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 15


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_bad_profile_gives_one_line_error(path: Path, tmp_path: Path) -> None:
    if path.name == "empty.yaml":
        path = tmp_path / "empty.yaml"
        path.write_text("")
    with pytest.raises(UserError) as info:
        make_plan(str(path), tmp_path / "out")
    line = info.value.one_line()
    assert "\n" not in line
    assert re.search(expected(path) if path.parent == CORPUS else "the file is empty", line), line
    assert info.value.hint, "every error names the next step"
    assert not (tmp_path / "out").exists(), "bad input writes nothing"
