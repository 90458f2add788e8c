"""Kernel source providers: pinned download over real HTTP (127.0.0.1), local tarballs, trees,
and extraction that refuses hostile archives."""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kbtest import serve
from kbuild_py.errors import InfraError, UserError
from kbuild_py.profile import SourcePin
from kbuild_py.source import COMPLETE, fetch, materialise, parse_source_arg

MAKEFILE = b"VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 3\nEXTRAVERSION = -test\nNAME = x\n"


def make_tarball(path: Path, extra: list[tarfile.TarInfo] | None = None,
                 top: str = "linux-6.12.3") -> Path:
    with tarfile.open(path, "w:xz") as tar:
        for name, data in ((f"{top}/Makefile", MAKEFILE), (f"{top}/Kconfig", b"# empty\n"),
                           (f"{top}/init/Kconfig", b"config X\n\tbool\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra or []:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()
    with serve(root) as url:
        yield url, root


def test_pinned_download_extracts_and_is_cached(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url, root = server
    tarball = make_tarball(root / "linux-6.12.3.tar.xz")
    pin = SourcePin("url", f"{url}/linux-6.12.3.tar.xz", sha(tarball))
    out = tmp_path / "out"
    tree = materialise(pin, out)
    assert tree.version == (6, 12, 3) and tree.version_text == "6.12.3-test"
    assert (tree.path / "init" / "Kconfig").is_file() and (tree.path / COMPLETE).is_file()
    cached = out / "cache" / f"{sha(tarball)}.tar.xz"
    assert cached.is_file()
    # No leftovers from the temp-file + rename dance.
    assert [p.name for p in (out / "cache").iterdir()] == [cached.name]
    tarball.unlink()  # the server no longer has it: the verified cache serves
    assert fetch(pin.location, pin.sha256 or "", out / "cache") == cached


def test_corrupt_cache_is_never_reused(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url, root = server
    tarball = make_tarball(root / "k.tar.xz")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / f"{sha(tarball)}.tar.xz").write_bytes(b"truncated")
    got = fetch(f"{url}/k.tar.xz", sha(tarball), cache)
    assert sha(got) == sha(tarball)


def test_checksum_mismatch_is_refused_and_deleted(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url, root = server
    make_tarball(root / "k.tar.xz")
    with pytest.raises(UserError, match=r"k.tar.xz: sha256 mismatch: got [0-9a-f]{64}, "
                       r"pinned 0{64}"):
        fetch(f"{url}/k.tar.xz", "0" * 64, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_http_error_is_an_infrastructure_error(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url, _ = server
    with pytest.raises(InfraError, match="HTTP 404"):
        fetch(f"{url}/missing.tar.xz", "0" * 64, tmp_path / "cache")
    with pytest.raises(InfraError, match="ConnectionError"):
        fetch("http://127.0.0.1:9/none.tar.xz", "0" * 64, tmp_path / "cache")


def test_local_tarball_and_its_pin(tmp_path: Path) -> None:
    tarball = make_tarball(tmp_path / "k.tar.xz")
    tree = materialise(SourcePin("tarball", str(tarball)), tmp_path / "out")
    assert tree.owned and tree.identity == sha(tarball)
    with pytest.raises(UserError, match="does not match the pin"):
        materialise(SourcePin("tarball", str(tarball), "1" * 64), tmp_path / "out")


def test_local_tree_is_used_in_place(tmp_path: Path) -> None:
    tree_dir = tmp_path / "linux"
    (tree_dir / "init").mkdir(parents=True)
    (tree_dir / "Makefile").write_bytes(MAKEFILE)
    (tree_dir / "Kconfig").write_text("")
    tree = materialise(parse_source_arg(str(tree_dir)), tmp_path / "out")
    assert tree.path == tree_dir and not tree.owned
    assert not (tmp_path / "out").exists(), "a user's tree is never copied or written"


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", size: int = 1
            ) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = size if kind == tarfile.REGTYPE else 0
    return info


HOSTILE = {
    "dotdot": (_member("linux-6.12.3/../../evil"), "escapes the destination"),
    "absolute": (_member("/tmp/evil"), "escapes the destination"),
    "symlink-out": (_member("linux-6.12.3/etc", tarfile.SYMTYPE, "../../../etc"), "points outside"),
    "symlink-abs": (_member("linux-6.12.3/x", tarfile.SYMTYPE, "/etc/passwd"), "points outside"),
    "hardlink-out": (_member("linux-6.12.3/h", tarfile.LNKTYPE, "../../etc/passwd"),
                     "points outside"),
    "device": (_member("linux-6.12.3/dev/sda", tarfile.BLKTYPE), "device or fifo"),
    "fifo": (_member("linux-6.12.3/p", tarfile.FIFOTYPE), "device or fifo"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archives_are_refused(case: str, tmp_path: Path) -> None:
    member, message = HOSTILE[case]
    tarball = make_tarball(tmp_path / "k.tar.xz", [member])
    with pytest.raises(UserError, match=message):
        materialise(SourcePin("tarball", str(tarball)), tmp_path / "out")
    assert not list((tmp_path / "out" / "src").iterdir()), "nothing half-extracted is left"


def test_truncated_tarball(tmp_path: Path) -> None:
    good = make_tarball(tmp_path / "good.tar.xz")
    bad = tmp_path / "bad.tar.xz"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(UserError, match="cannot extract: .*(end of data|truncated)"):
        materialise(SourcePin("tarball", str(bad)), tmp_path / "out")
    assert not list((tmp_path / "out" / "src").iterdir())


def test_wrong_tarball(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.tar.xz"
    with tarfile.open(wrong, "w:xz") as tar:
        info = tarfile.TarInfo("photos/cat.jpg")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(UserError, match="not a Linux source tarball"):
        materialise(SourcePin("tarball", str(wrong)), tmp_path / "out")
    assert not list((tmp_path / "out" / "src").iterdir())


def test_source_argument_forms(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="a URL needs its pin"):
        parse_source_arg("https://example.invalid/linux.tar.xz")
    pin = parse_source_arg("https://example.invalid/l.tar.xz#sha256=" + "a" * 64)
    assert pin.kind == "url" and pin.sha256 == "a" * 64
    with pytest.raises(UserError, match="no such file or directory"):
        parse_source_arg(str(tmp_path / "nope"))
