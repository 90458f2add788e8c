"""Hostile input that a YAML case cannot set up (tests/bad_input/hostile.yaml holds the rest):
planted cache files, changed pins, two runs at once, signals, full and read-only disks, and
network peers that stall or never stop. Every case goes through the real command line or SCons
where the property is about them, and checks that no process is left running."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kbtest import REPO, processes_in, shared_out
from kbuild_py import source
from kbuild_py.errors import InfraError, UserError
from kbuild_py.profile import SourcePin

PWNED = Path("/tmp/kbuild-py-pwned")
# qemu-x86_64 without its patch queue: configures in seconds on the session's 6.12 tree.
PROFILE_T = ("schema_version: 1\nname: t\nextends: [qemu-x86_64]\npatches: []\noptions:\n"
             "  SECURITY_KPTR_RESTRICT_DEFAULT: {waive: needs the patch queue}\n"
             "  SECURITY_YAMA_PTRACE_SCOPE_DEFAULT: {waive: needs the patch queue}\n")


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "kbuild_py.cli", *args]


def run(argv: list[str], env: dict[str, str] | None = None, timeout: float = 600
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False,
                          timeout=timeout, env={**os.environ, **(env or {})})


def one_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def no_processes_left(folder: Path, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while (left := processes_in(folder)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left == [], "left running"


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The project's data with a profile t (see PROFILE_T), for the subprocesses too."""
    from kbuild_py.catalog import DATA_FOLDERS

    root = tmp_path / "data"
    for name in DATA_FOLDERS:
        shutil.copytree(REPO / name, root / name)
    (root / "profiles" / "t.yaml").write_text(PROFILE_T)
    monkeypatch.setenv("KBUILD_PY_DATA", str(root))
    return root


@pytest.fixture
def out(tmp_path: Path, tree612) -> Path:  # type: ignore[no-untyped-def]
    """A new out/ sharing the session's extracted (unpatched) 6.12 tree."""
    return shared_out(tmp_path / "out", [tree612.path])


def kernel_tarball(path: Path, payload: int = 0, top: str = "linux-6.12.3") -> Path:
    """A tiny 'kernel' (Makefile, Kconfig) with an incompressible file of ``payload`` bytes."""
    with tarfile.open(path, "w:xz" if path.suffix == ".xz" else "w") as tar:
        members = [("Makefile", b"VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 3\n"),
                   ("Kconfig", b"config X\n\tbool\n")]
        if payload:
            members.append(("blob", os.urandom(payload)))
        for name, body in members:
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return path


# ---------------------------------------------------------------- exec: planted cache files


class _Planted:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (PWNED,))


@pytest.mark.kernel
@pytest.mark.own_cache
def test_planted_cache_files_are_never_used(data: Path, out: Path) -> None:
    """A model pickle (code), a probe hint (commands), a conf result and a symbol table planted
    in out/cache/ by someone else are not signed with this out/'s key: never loaded, never
    run, never believed; the next run configures as if they were absent."""
    first = run(cli("config", "-p", "t", "--out", str(out)))
    assert first.returncode == 0, first.stderr
    good = (out / "t" / "build" / ".config").read_text()
    planted = 0
    for path in (out / "cache").rglob("*"):
        if not path.is_file() or path.name.startswith("."):
            continue
        if path.suffix == ".pickle":
            path.write_bytes(pickle.dumps(_Planted()))
        elif path.name.startswith("probes-"):
            path.write_text(f'["touch {PWNED}"]')
        elif path.name == "kbuild.config":
            path.write_text(good.replace("CONFIG_STACKPROTECTOR_STRONG=y",
                                         "# CONFIG_STACKPROTECTOR_STRONG is not set"))
        elif path.suffix == ".json":
            path.write_text("{}")
        else:
            continue
        planted += 1
    assert planted >= 4
    PWNED.unlink(missing_ok=True)
    shutil.rmtree(out / "t")
    again = run(cli("config", "-p", "t", "--out", str(out)))
    assert again.returncode == 0, again.stderr
    assert not PWNED.exists(), "a planted cache file ran"
    assert (out / "t" / "build" / ".config").read_text() == good


# ---------------------------------------------------------------- pin


def test_a_pinned_tarball_changed_in_place_is_hashed_again(tmp_path: Path) -> None:
    """Same size, same mtime, new content: the hash cache sees a new ctime and re-hashes."""
    tarball = kernel_tarball(tmp_path / "k.tar")
    pin = hashlib.sha256(tarball.read_bytes()).hexdigest()
    out = tmp_path / "out"
    assert source.materialise(SourcePin("tarball", str(tarball), pin), out).identity == pin
    st = tarball.stat()
    data = bytearray(tarball.read_bytes())
    data[600] ^= 0xFF  # inside the Makefile's data: same size
    time.sleep(0.01)
    tarball.write_bytes(bytes(data))
    os.utime(tarball, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert tarball.stat().st_size == st.st_size and tarball.stat().st_mtime_ns == st.st_mtime_ns
    with pytest.raises(UserError, match="does not match the pin"):
        source.materialise(SourcePin("tarball", str(tarball), pin), out)


def test_an_extracted_tree_of_another_tarball_is_extracted_again(tmp_path: Path) -> None:
    tarball = kernel_tarball(tmp_path / "k.tar")
    out = tmp_path / "out"
    tree = source.materialise(SourcePin("tarball", str(tarball)), out)
    (tree.path / source.COMPLETE).write_text('{"sha256": "' + "0" * 64 + '"}\n')
    (tree.path / "planted").write_text("not from the tarball\n")
    again = source.materialise(SourcePin("tarball", str(tarball)), out)
    assert again.path == tree.path and not (again.path / "planted").exists()


# ---------------------------------------------------------------- fault: concurrency


@pytest.mark.kernel
def test_two_profiles_sharing_a_patched_tree_resolve_at_once(tmp_path: Path, tree612) -> None:  # type: ignore[no-untyped-def]
    """qemu-x86_64 and qemu-arm64 patch the same tree: started together, both make (or wait
    for) the one patched copy."""
    for trial in range(2):
        out = shared_out(tmp_path / f"out{trial}", [tree612.path])
        procs = [subprocess.Popen(cli("resolve", "-p", p, "--out", str(out)), cwd=REPO,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for p in ("qemu-x86_64", "qemu-arm64")]
        results = [p.communicate(timeout=600) for p in procs]
        for proc, (_, err) in zip(procs, results, strict=True):
            assert proc.returncode == 0, err
        patched = [p for p in (out / "src").iterdir() if "-" in p.name]
        assert len(patched) == 1 and (patched[0] / source.COMPLETE).is_file()
        assert not [p for p in (out / "src").iterdir() if p.name.startswith(".")]


def test_two_runs_extracting_one_tarball_share_it(tmp_path: Path) -> None:
    tarball = kernel_tarball(tmp_path / "k.tar.xz", payload=8 << 20)
    out = tmp_path / "out"
    code = ("import sys; from pathlib import Path; from kbuild_py.profile import SourcePin; "
            "from kbuild_py.source import materialise; "
            f"print(materialise(SourcePin('tarball', {str(tarball)!r}), Path({str(out)!r})).path)")
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    paths = [stdout.splitlines()[-1] for stdout, _ in outputs]   # one may have waited first
    assert paths[0] == paths[1]
    assert [p.name for p in (out / "src").iterdir()] == [Path(paths[0]).name]


# ---------------------------------------------------------------- fault: signals


def _wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _make_running(log: Path) -> bool:
    return log.is_file() and log.read_text(errors="replace").count("\n") > 30


@pytest.mark.kernel
@pytest.mark.build
@pytest.mark.parametrize("how", ["scons-sigint", "cli-sigterm"])
def test_a_signal_stops_the_build_at_once(how: str, data: Path, out: Path) -> None:
    """Ctrl-C under SCons (SIGINT to its process group, as a terminal sends it) or SIGTERM to
    kbuild-py: make and every compiler stop within seconds, one line says so, exit 4."""
    argv = (["scons", "-Q", "profile=t", f"out={out}", "ccache=0", "build"]
            if how == "scons-sigint" else cli("build", "-p", "t", "--out", str(out),
                                              "--no-ccache"))
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        _wait_for(lambda: _make_running(out / "t" / "build.log"), 300, "make to compile")
        started = time.monotonic()
        if how == "scons-sigint":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        took = time.monotonic() - started
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 4, err
    assert "kbuild-py: interrupted:" in one_line(err)
    assert took < 15, f"stopped after {took:.1f} s"
    no_processes_left(out)


def test_scons_clean_waits_for_no_one_and_deletes_nothing_while_a_run_holds_the_lock(
        tmp_path: Path) -> None:
    from kbuild_py.fsutil import exclusive_lock

    out = tmp_path / "out"
    folder = out / "qemu-x86_64"
    folder.mkdir(parents=True)
    (folder / ".kbuild-py-profile").write_text("qemu-x86_64\n")
    (folder / "report.txt").write_text("a run in progress\n")
    with exclusive_lock(folder / ".lock", "test"):
        r = run(["scons", "-Q", "-c", "profile=qemu-x86_64", f"out={out}"], timeout=120)
    assert r.returncode == 4, r.stderr
    assert "another kbuild-py run holds" in one_line(r.stderr)
    assert (folder / "report.txt").is_file()


# ---------------------------------------------------------------- fault: full and read-only disks


@contextlib.contextmanager
def tmpfs(where: Path, size: str, *options: str) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join([f"size={size}", *options]),
                        "tmpfs", str(where)], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(folder: Path) -> None:
    with contextlib.suppress(OSError), open(folder / "filler", "wb") as f:
        while True:
            f.write(b"\0" * (1 << 16))


@pytest.mark.parametrize("front", ["cli", "scons"])
def test_a_full_disk_says_so(front: str, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "2m") as disk:
        out = disk / "out"
        (out / "qemu-x86_64").mkdir(parents=True)
        _fill(disk)
        argv = (cli("resolve", "-p", "qemu-x86_64", "--out", str(out)) if front == "cli"
                else ["scons", "-Q", "profile=qemu-x86_64", f"out={out}", "config"])
        r = run(argv, timeout=120)
        line = one_line(r.stderr)
        assert r.returncode == 3, r.stderr
        assert "no space left on the device" in line, line


def test_a_full_disk_during_extraction_says_so_and_keeps_nothing(tmp_path: Path) -> None:
    tarball = kernel_tarball(tmp_path / "k.tar", payload=24 << 20)
    with tmpfs(tmp_path / "disk", "16m") as disk:
        r = run(cli("resolve", "-p", "qemu-x86_64", "--out", str(disk / "out"), "--kernel",
                    str(tarball)), timeout=120)
        line = one_line(r.stderr)
        assert r.returncode == 3, r.stderr
        assert "free, not enough" in line or "no space left" in line, line
        assert not [p for p in (disk / "out" / "src").rglob("*") if p.is_file()]


@pytest.mark.parametrize("front", ["cli", "scons"])
def test_a_read_only_out_says_so(front: str, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "1m", "ro") as ro:
        argv = (cli("resolve", "-p", "qemu-x86_64", "--out", str(ro / "out")) if front == "cli"
                else ["scons", "-Q", "profile=qemu-x86_64", f"out={ro / 'out'}", "config"])
        r = run(argv, timeout=120)
        assert r.returncode == 3, r.stderr
        assert "read-only" in one_line(r.stderr)


# ---------------------------------------------------------------- exhaust: downloads and archives


@contextlib.contextmanager
def peer(behaviour: str) -> Iterator[str]:
    """A TCP server on 127.0.0.1 that answers every connection as ``behaviour`` says:
    silent (accepts, never answers), trickle (a byte now and then), endless (zeros forever)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            with contextlib.suppress(OSError):
                conn.recv(65536)
                if behaviour == "silent":
                    stop.wait(60)
                    return
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                             + (b"Content-Length: 1000000\r\n" if behaviour == "trickle" else b"")
                             + b"\r\n")
                while not stop.is_set():
                    conn.sendall(b"\0" * (1 if behaviour == "trickle" else 65536))
                    if behaviour == "trickle":
                        stop.wait(0.3)

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/linux.tar.xz"
    finally:
        stop.set()
        thread.join()
        server.close()


@pytest.mark.parametrize("behaviour, says", [
    ("silent", "ReadTimeout after 2 attempts"),
    ("trickle", "kept dropping the transfer"),
    ("endless", "over the 0 GiB a kernel tarball may have"),
])
def test_a_download_is_bounded(behaviour: str, says: str, tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Timeouts, a minimum rate (with resumption) and a size limit: a peer that never answers,
    one that trickles, one that streams forever all end in one line, nothing kept."""
    monkeypatch.setattr(source, "READ_TIMEOUT", 1.0)
    monkeypatch.setattr(source, "CONNECT_TIMEOUT", 1.0)
    monkeypatch.setattr(source, "ATTEMPTS", 2)
    monkeypatch.setattr(source, "MAX_DOWNLOAD", 4 << 20)
    started = time.monotonic()
    with peer(behaviour) as url, pytest.raises(InfraError, match=says):
        source.fetch(url, "0" * 64, tmp_path / "cache")
    assert time.monotonic() - started < 30
    assert not [p for p in (tmp_path / "cache").iterdir()]


@pytest.mark.parametrize("links", [
    [("a", ".."), ("b", "a/.."), ("c", "b/..")],         # each link harmless alone, the chain not
    [("a", "x/.."), ("x", ".."), ("b", "a/..")],         # a later link makes an earlier one escape
])
def test_a_chain_of_links_cannot_lead_outside(links: list[tuple[str, str]],
                                              tmp_path: Path) -> None:
    tarball = tmp_path / "chain.tar"
    with tarfile.open(tarball, "w") as tar:
        for name, data in (("linux/Makefile", b"VERSION = 6\n"), ("linux/Kconfig", b"")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in links:
            info = tarfile.TarInfo(f"linux/{name}")
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
        info = tarfile.TarInfo(f"linux/{links[-1][0]}/escaped")
        tar.addfile(info, io.BytesIO(b""))
    out = tmp_path / "deep" / "er" / "out"
    with pytest.raises(UserError, match="leads outside the tree through a link"):
        source.materialise(SourcePin("tarball", str(tarball)), out)
    assert not list(tmp_path.rglob("escaped"))
    assert not [p for p in (out / "src").iterdir() if p.is_dir()]


def test_an_archive_with_too_many_members_is_refused(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(source, "MAX_MEMBERS", 10)
    tarball = tmp_path / "many.tar"
    with tarfile.open(tarball, "w") as tar:
        for i in range(20):
            info = tarfile.TarInfo(f"linux/f{i}")
            tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(UserError, match="over 10 members"):
        source.materialise(SourcePin("tarball", str(tarball)), tmp_path / "out")
    assert not [p for p in (tmp_path / "out" / "src").iterdir() if p.is_dir()]

