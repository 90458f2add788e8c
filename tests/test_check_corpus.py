"""`kbuild-py check` on configs made elsewhere: a corpus made by Kbuild's own make with other
compilers (tests/corpus/generate: gcc without plugin headers, gcc 12, clang-14, clang-19; 6.1,
6.12 and 7.3; x86_64 and arm64) and Debian's own 6.12 and 7.3 amd64 configs.

Each is checked against the real target of its arch, with the tree of its own kernel version
parsed with the profile's toolchain (another compiler than the config's): the report must carry
the config's version and compiler, and every explanation must be true of the config: never
"X=v, wanted v", never a fix in "the Kconfig default", and every symbol it names as a cause
with the value the config records for it (so no answer of this machine's compiler leaks in).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kbuild_py.check import explained, read_checked
from kbuild_py.kbuild import interface
from kbuild_py.kconfig.dotconfig import read_config
from kbuild_py.profile import load_profile
from kbuild_py.verify import satisfied

CORPUS = Path(__file__).parent / "corpus"
DEBIAN = [Path(f"/usr/src/linux-config-{v}/config.amd64_none_amd64.xz") for v in ("6.12", "7.3")]
CONFIGS = sorted(CORPUS.glob("*.config.xz")) + [p for p in DEBIAN if p.is_file()]
PROFILES = {"x86_64": "server-x86_64", "arm64": "android-arm64"}
TREES: dict[tuple[int, ...], str] = {(6, 1): "tree61", (6, 12): "tree612", (7, 3): "tree73"}
# A symbol a .config leaves out: n, or empty (an int or hex is 0 from 6.9 on, "" before).
UNSET = {"n", "", "0", "0x0", "not set"}


def _name(path: Path) -> str:
    return path.name.removesuffix(".config.xz") if path.parent == CORPUS else (
        f"debian-{path.parent.name.removeprefix('linux-config-')}")


def test_the_corpus_covers_compilers_versions_and_arches() -> None:
    names = [_name(p) for p in CORPUS.glob("*.config.xz")]
    assert len(names) >= 8, names
    for part in ("6.1-", "6.12-", "7.3-", "x86_64-", "arm64-", "clang14", "clang19", "gcc12",
                 "noplugins"):
        assert any(part in n for n in names), part


@pytest.mark.kernel
@pytest.mark.parametrize("path", CONFIGS, ids=_name)
def test_a_config_made_elsewhere_is_explained_with_its_own_record(  # type: ignore[no-untyped-def]
        path: Path, request: pytest.FixtureRequest, model_for) -> None:
    config = read_checked(path)
    head = config.header
    assert head is not None and config.compiler, path
    arch = "arm64" if head.arch == "arm64" else "x86_64"
    profile = load_profile(PROFILES[arch])
    tree = request.getfixturevalue(TREES[head.version[:2]])
    model = model_for(tree, arch, profile.toolchain)
    report = explained(profile, config, model, head.version, head.version_text,
                       profile.toolchain)

    assert report.kernel == head.version_text
    assert report.toolchain == config.compiler
    kinds = model.symbol_table().kinds()
    values = read_config(path, kinds)  # as Kbuild's conf reads it

    def recorded(symbol: str, value: str) -> bool:
        return value == values[symbol] if symbol in values else value in UNSET

    unmet = [c for c in report.checks if c.status == "unmet"]
    for c in unmet:
        e = c.explanation
        assert e is not None, c.symbol
        where = f"{_name(path)}: {c.symbol}: {e.summary} / {e.fix}"
        assert not satisfied(c.requirement, e.value), where  # never "X=v, wanted v"
        assert recorded(c.symbol, e.value), where
        assert "Kconfig default" not in e.fix and "the profile" not in e.fix, where
        for line in re.finditer(r"CONFIG_([A-Z0-9_]+)=(\S+)", e.fix):  # as Kbuild reads them
            if kinds.get(line.group(1)) == "string":
                assert line.group(2).startswith('"'), where
        for b in e.chain:
            if b.symbol in kinds:
                assert recorded(b.symbol, b.value), f"{where}: {b}"
    # Where the profile's compiler is not the config's, what differs comes from the record.
    if model.value(interface().compiler_text) != config.compiler:
        assert interface().compiler_text in {r["symbol"] for r in report.recorded}, _name(path)
