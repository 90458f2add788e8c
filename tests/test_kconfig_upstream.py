"""The adapter on Kconfig's own self-tests (scripts/kconfig/tests of the 7.3 tree): the
Kconfig, input and expected .config the kernel's maintainers wrote for the syntax kconfiglib
14.1 does not know (`transitional`, `depends on X if Y`), read from the real tree.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kbuild_py.errors import InfraError
from kbuild_py.kconfig.dotconfig import read_config
from kbuild_py.kconfig.model import KconfigModel

pytestmark = pytest.mark.kernel

# (self-test folder, input .config, expected .config): each run as `make olddefconfig` would.
CASES = [
    ("transitional", "initial_config", "expected_config"),
    ("conditional_dep", "test_config1", "expected_config1"),
    ("conditional_dep", "test_config2", "expected_config2"),
    ("conditional_dep", "test_config3", "expected_config3"),
]


def _model(folder: Path, tree) -> KconfigModel:  # type: ignore[no-untyped-def]
    return KconfigModel.parse(folder, {"srctree": str(folder)}, tree.version)


@pytest.mark.parametrize("name,given,expected", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_kconfig_selftest_gives_the_expected_config(tree73, tmp_path: Path, name: str,  # type: ignore[no-untyped-def]
                                                    given: str, expected: str) -> None:
    folder = tree73.path / "scripts" / "kconfig" / "tests" / name
    model = _model(folder, tree73)
    model.load(folder / given)
    model.write(tmp_path / ".config")
    got, want = read_config(tmp_path / ".config"), read_config(folder / expected)
    assert got == want
    if name == "transitional":  # the old names are read, carried over, and never written
        assert want["NEW_STRING"] == "test string" and "OLD_STRING" not in got
        assert "OLD_BOOL" not in (tmp_path / ".config").read_text()


def test_transitional_symbols_with_other_properties_are_refused_as_kbuild_refuses_them(  # type: ignore[no-untyped-def]
        tree73, tmp_path: Path) -> None:
    folder = tmp_path / "err"
    shutil.copytree(tree73.path / "scripts" / "kconfig" / "tests" / "err_transitional", folder)
    with pytest.raises(InfraError, match="transitional symbol BAD_DEFAULT can only have"):
        _model(folder, tree73)


def test_only_a_config_symbol_can_be_transitional(tree73, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "Kconfig").write_text('choice\n\tprompt "pick"\n\ttransitional\n'
                                      'config A\n\tbool "a"\nendchoice\n')
    with pytest.raises(InfraError, match="only a config symbol can be transitional"):
        _model(tmp_path, tree73)
