"""Shared fixtures. Hermetic: HOME is a temp folder, no network beyond 127.0.0.1.

Tests that need a real kernel tree use Debian's linux-source-6.12 (and 6.1, 7.3) tarballs, each
extracted once into out/.test/src (kept between runs, keyed by the tarball's sha256 like any other
tree).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from kbtest import REPO, TARBALL_61, TARBALL_73, TARBALL_612, TEST_OUT


@pytest.fixture(scope="session")
def session_started() -> float:
    return time.time()


@pytest.fixture(scope="session")
def session_ccache(tmp_path_factory: pytest.TempPathFactory, session_started: float) -> Path:
    """One ccache for the test session (empty at its start): a profile built twice in the same
    folder, as the boot suite and the SCons end-to-end test do, compiles only once."""
    return tmp_path_factory.mktemp("ccache")


@pytest.fixture(autouse=True)
def _hermetic(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch,
              session_ccache: Path) -> None:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("CCACHE_DIR", str(session_ccache))
    monkeypatch.delenv("KBUILD_PY_DEBUG", raising=False)
    monkeypatch.delenv("KBUILD_PY_DATA", raising=False)
    monkeypatch.delenv("KBUILD_PY_RANDSTRUCT_SECRET", raising=False)
    monkeypatch.delenv("KBUILD_PY_MODULE_SIG_KEY", raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def _tree(tarball: Path):  # type: ignore[no-untyped-def]
    from kbuild_py.profile import SourcePin
    from kbuild_py.source import materialise

    if not tarball.is_file():
        pytest.skip(f"{tarball} not installed (apt-get install {tarball.stem.split('.tar')[0]})")
    return materialise(SourcePin("tarball", str(tarball)), TEST_OUT)


@pytest.fixture(scope="session")
def tree612():  # type: ignore[no-untyped-def]
    return _tree(TARBALL_612)


@pytest.fixture(scope="session")
def tree61():  # type: ignore[no-untyped-def]
    return _tree(TARBALL_61)


@pytest.fixture(scope="session")
def tree73():  # type: ignore[no-untyped-def]
    return _tree(TARBALL_73)


@pytest.fixture
def data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the project's data folders, for tests that write profiles."""
    import shutil

    from kbuild_py.catalog import DATA_FOLDERS

    for name in DATA_FOLDERS:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, tmp_path / name)
    monkeypatch.setenv("KBUILD_PY_DATA", str(tmp_path))
    return tmp_path


def jobs() -> int:
    return os.cpu_count() or 1


@pytest.fixture(scope="session")
def kbuild_base(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Kbuild's own output for a config target (tinyconfig, defconfig, ...), cached per session."""
    from kbuild_py.kmake import make_argv, run_make
    from kbuild_py.toolchain import load_arch, load_toolchain, make_variables

    made: dict[tuple[str, str, str, str], Path] = {}

    def get(tree, arch: str, tc: str, target: str) -> Path:  # type: ignore[no-untyped-def]
        key = (str(tree.path), arch, tc, target)
        if key not in made:
            objdir = tmp_path_factory.mktemp(f"base-{arch}-{target}")
            a, t = load_arch(arch), load_toolchain(tc)
            run_make(make_argv(tree.path, objdir, make_variables(t, a), [target]),
                     objdir / "make.log")
            made[key] = objdir / ".config"
        return made[key]

    return get


@pytest.fixture(scope="session")
def model_for():  # type: ignore[no-untyped-def]
    """A parsed KconfigModel per (tree, arch, toolchain), cached per session."""
    from kbuild_py.kconfig.model import KconfigModel
    from kbuild_py.toolchain import detect, kconfig_environment, load_arch, load_toolchain

    models: dict[tuple[str, str, str], KconfigModel] = {}

    def get(tree, arch: str, tc: str) -> KconfigModel:  # type: ignore[no-untyped-def]
        key = (str(tree.path), arch, tc)
        if key not in models:
            a, t = load_arch(arch), load_toolchain(tc)
            env = kconfig_environment(t, detect(t, arch), a, str(tree.path), tree.version_text)
            models[key] = KconfigModel.parse(tree.path, env, tree.version)
        return models[key]

    return get
