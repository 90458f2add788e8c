"""Shared fixtures. Hermetic: HOME is a temp folder, no network beyond 127.0.0.1.

Tests that need the real kernel tree use the Debian linux-source-6.12 tarball, extracted once
into out/.test/src (kept between runs, keyed by the tarball's sha256 like any other tree).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TARBALL_612 = Path("/usr/src/linux-source-6.12.tar.xz")
TARBALL_61 = Path("/usr/src/linux-source-6.1.tar.xz")
TEST_OUT = REPO / "out" / ".test"


@pytest.fixture(autouse=True)
def _hermetic(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("KBUILD_PY_DEBUG", raising=False)
    monkeypatch.delenv("KBUILD_PY_DATA", raising=False)
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


@pytest.fixture
def data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the project's data folders, for tests that write profiles."""
    import shutil

    for name in ("profiles", "toolchains", "arches", "patches"):
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, tmp_path / name)
    monkeypatch.setenv("KBUILD_PY_DATA", str(tmp_path))
    return tmp_path


def jobs() -> int:
    return os.cpu_count() or 1
