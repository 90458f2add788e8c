"""Shared fixtures. Hermetic: HOME is a temp folder, no network beyond 127.0.0.1.

Tests that need a real kernel tree use Debian's linux-source-6.12 (and 6.1, 7.3) tarballs, each
extracted once into out/.test/src (kept between runs, keyed by the tarball's sha256 like any other
tree).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from kbtest import (
    REPO,
    TARBALL_61,
    TARBALL_73,
    TARBALL_612,
    TEST_OUT,
    TINY,
    scons_build,
    vendor_key,
)


@pytest.fixture(scope="session")
def session_started() -> float:
    return time.time()


def hermetic_environment(home: Path) -> dict[str, str | None]:
    """The environment every test runs in, as a vendor's CI would (None: unset): a HOME of its
    own, the session's ccache (out/.test/ccache, kept between runs: ccache keys every object by
    its inputs, compiler and plugins by content, so a kept cache makes a rerun fast and never
    hides a change; the builds whose property is "compiled from scratch" run without it), and
    the session's module-signing key (the tests of a missing or bad key set their own), and
    the tools of the Python that runs the tests (.venv/bin, by ./setup) first on PATH."""
    ccache = TEST_OUT / "ccache"
    ccache.mkdir(parents=True, exist_ok=True)
    here = str(Path(sys.executable).parent)  # this Python's scons and kbuild-py come first
    return {"HOME": str(home), "CCACHE_DIR": str(ccache), "KBUILD_PY_CACHE": str(SHARED_CACHE),
            "PATH": os.pathsep.join([here, *(p for p in os.environ.get("PATH", "").split(
                os.pathsep) if p and p != here)]),
            "KBUILD_PY_MODULE_SIG_KEY": str(vendor_key()), "KBUILD_PY_DEBUG": None,
            "KBUILD_PY_DATA": None, "KBUILD_PY_RANDSTRUCT_SECRET": None,
            "no_proxy": "127.0.0.1,localhost"}


# kbuild-py's Kconfig caches (probe answers, conf results, probe hints) for every out/ folder
# of the session, as a vendor's CI shares one between jobs (KBUILD_PY_CACHE): content-keyed and
# signed, so a change of tree, toolchain, environment or kbuild-py's code parses anew. Tests of
# the cache itself keep their out/'s own (@pytest.mark.own_cache).
SHARED_CACHE = TEST_OUT / "kbuild-cache"


@pytest.fixture(autouse=True)
def _hermetic(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch,
              request: pytest.FixtureRequest) -> None:
    for name, value in hermetic_environment(tmp_path_factory.mktemp("home")).items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    if request.node.get_closest_marker("own_cache"):
        monkeypatch.delenv("KBUILD_PY_CACHE")


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


# The kernels the session builds once, in out/.test, with the real SCons chain, and that tests
# share read-only (nothing rebuilds, cleans or edits them): name -> (profile, source or None for
# the profile's own), in the order they are built. The tiny one (tests/profiles/) is the
# reference of the test that builds a second time; the qemu kernels are the newest kernel's,
# booted by the LKDTM suite.
SESSION_KERNELS = {
    "tiny-arm64": (str(TINY / "tiny-arm64.yaml"), None),
    "qemu-x86_64": ("qemu-x86_64", TARBALL_73),
    "qemu-arm64-clang": ("qemu-arm64-clang", TARBALL_73),
}


def kbuild_log(name: str) -> Path:
    """What the session's background SCons run printed for a kernel, as in a CI log."""
    return TEST_OUT / f"{name}.scons.log"


def _scons_argv(name: str) -> tuple[str, list[str]]:
    profile, source = SESSION_KERNELS[name]
    return profile, [f"source={source}"] if source else []


class _Builds:
    """The session kernels the selected tests use, built by SCons one after another in a
    background thread from the start of the session, while the tests that need none run (they
    go first, pytest_collection_modifyitems): those are mostly one process on one core, and a
    build takes every core there is. A test that asks for a kernel waits for its background
    build, or builds it itself if the background has not started it yet."""

    def __init__(self) -> None:
        self.queue: list[str] = []
        self.done: dict[str, threading.Event] = {}
        self.lock = threading.Lock()
        self.proc: subprocess.Popen[bytes] | None = None
        self.stopping = False
        self.thread: threading.Thread | None = None
        self.env: dict[str, str] = {}
        self.home: Path | None = None

    def start(self, names: list[str]) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="kbuild-py-builds-"))
        self.env = dict(os.environ)
        for name, value in hermetic_environment(self.home).items():
            if value is None:
                self.env.pop(name, None)
            else:
                self.env[name] = value
        self.queue = [n for n in names if (SESSION_KERNELS[n][1] or TARBALL_612).is_file()]
        self.done = {n: threading.Event() for n in self.queue}
        if self.queue:
            self.thread = threading.Thread(target=self._run, name="session-kernels", daemon=True)
            self.thread.start()

    def _run(self) -> None:
        while True:
            with self.lock:
                if self.stopping or not self.queue:
                    return
                name = self.queue.pop(0)
                profile, variables = _scons_argv(name)
                # The log is a CI log of the chain (kbuild_log); the test that asks for the
                # kernel runs SCons again and gets the whole story (a failure again, or
                # nothing left to do).
                with open(kbuild_log(name), "wb") as log:
                    self.proc = subprocess.Popen(
                        ["scons", "-Q", f"profile={profile}", f"out={TEST_OUT}", *variables],
                        cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                        start_new_session=True)
            try:
                self.proc.wait(timeout=3600)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            self.done[name].set()

    def wait(self, name: str) -> None:
        with self.lock:
            if name in self.queue:  # not started: the caller builds it
                self.queue.remove(name)
                self.done[name].set()
        if name in self.done:
            self.done[name].wait()

    def stop(self) -> None:
        """At the session's end (also after -x or ^C): the build under way is interrupted
        like a user's ^C, which kbuild-py turns into a clean stop."""
        with self.lock:
            self.stopping = True
            proc = self.proc
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if self.home is not None:
            shutil.rmtree(self.home, ignore_errors=True)


_BUILDS = _Builds()


def _kernels_of(item: pytest.Item) -> list[str]:
    """The session kernels a test says it uses: its uses_kernel marker, or a parameter that
    names one."""
    names = [n for mark in item.iter_markers("uses_kernel") for n in mark.args]
    callspec = getattr(item, "callspec", None)
    if callspec is not None:
        names += [v for v in callspec.params.values()
                  if isinstance(v, str) and v in SESSION_KERNELS]
    return names


@pytest.fixture
def session_kernel(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """name -> out/.test/<name>, built by SCons once (in the background, _Builds). Every use
    asks SCons again (a no-op of seconds when up to date), so a test that cleaned and rebuilt
    one (test_scons) or failed half-way leaves no later test with a missing kernel: order does
    not matter. A test names the kernels it uses (uses_kernel, or a parameter) so that the
    session builds those, and only those, ahead of time."""
    declared = _kernels_of(request.node)

    def get(name: str) -> Path:
        assert name in declared, f"{request.node.nodeid}: add @pytest.mark.uses_kernel({name!r})"
        profile, variables = _scons_argv(name)
        tarball = SESSION_KERNELS[name][1] or TARBALL_612
        if not tarball.is_file():
            pytest.skip(f"{tarball} not installed (./setup installs it)")
        _BUILDS.wait(name)
        return scons_build(profile, TEST_OUT, *variables)

    return get


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
    """A parsed KconfigModel per (tree, arch, toolchain), parsed once and shared by the
    session's explanation, profile and differential tests. Kept in memory: kbuild-py's own
    cache on disk holds only a parse's probe answers (data), and parses again with them."""
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


# Fixtures that mean a real kernel tree (extracted, parsed or made) or a built kernel: a test
# that uses one carries the marker, so the fast tier (-m "not kernel and not build") is what
# its name says whatever a test's own decorators forgot.
_KERNEL_FIXTURES = {"tree61", "tree612", "tree73", "model_for", "kbuild_base", "session_kernel"}
_BUILD_FIXTURES = {"session_kernel"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Markers from the fixtures a test uses; the tests that need a session kernel run last,
    in the order the kernels are built (_Builds)."""
    order = list(SESSION_KERNELS)

    def needs(item: pytest.Item) -> int:
        names = _kernels_of(item)
        return 1 + min(order.index(n) for n in names) if names else 0

    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if used & _KERNEL_FIXTURES:
            item.add_marker(pytest.mark.kernel)
        if used & _BUILD_FIXTURES:
            item.add_marker(pytest.mark.build)
    items.sort(key=needs)


def pytest_collection_finish(session: pytest.Session) -> None:
    """The tests are chosen (-m, -k and the like applied): build what they use."""
    if session.config.option.collectonly:
        return
    wanted = {n for item in session.items if "session_kernel" in getattr(item, "fixturenames", ())
              for n in _kernels_of(item)}
    if wanted:
        _BUILDS.start([n for n in SESSION_KERNELS if n in wanted])


def pytest_sessionfinish(session: pytest.Session) -> None:
    _BUILDS.stop()


def pytest_configure(config: pytest.Config) -> None:
    """A SIGTERM to pytest (a CI job cancelled) ends the session like ^C, so the background
    build is stopped too (it runs in its own process group, to be stopped as a whole)."""
    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        _PREVIOUS_SIGTERM.append(signal.signal(signal.SIGTERM, interrupted))


_PREVIOUS_SIGTERM: list[Any] = []


def pytest_unconfigure(config: pytest.Config) -> None:
    """After the session, a SIGTERM is what it was (pytest's own clean-up runs at exit)."""
    if _PREVIOUS_SIGTERM and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _PREVIOUS_SIGTERM.pop())
