"""Artifacts beyond the image: modules (the signing key a build uses, the tarball of what
modules_install left) and device trees.

The qemu kernels have no modules: the session's tiny-arm64 kernel (tests/profiles/) has two,
signed with the tests' vendor key, and the real targets' full builds ship theirs
(bench/RESULTS.md). The qemu-arm64 build ships a real device tree (tests/test_boot.py), and
the small tiny-arm64 test kernel one with its modules, compared across two builds by
tests/test_distcc.py.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import lzma
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from kbtest import VENDOR_KEY_NAME, vendor_key
from kbuild_py.build import MODULE_KEY_ENV, secrets_digest, signing_key
from kbuild_py.collect import modules_tarball
from kbuild_py.errors import UserError

LONG = "lib/modules/6.12.0/kernel/drivers/" + "a-very-long-directory-name/" * 4 + "e.ko"
SIGNED = b"\x7fELF...module text...~Module signature appended~\n"
UNSIGNED = b"\x7fELF...module text..."


def _modules(root: Path, order: list[str], mode: int) -> None:
    """An INSTALL_MOD_PATH tree like modules_install's, files written in the given order."""
    files = {
        "lib/modules/6.12.0/kernel/drivers/a.ko": SIGNED,
        "lib/modules/6.12.0/kernel/fs/b.ko.xz": lzma.compress(UNSIGNED),
        "lib/modules/6.12.0/kernel/net/c.ko.gz": gzip.compress(SIGNED, mtime=0),  # same bytes
        "lib/modules/6.12.0/kernel/net/d.ko.zst": b"(zstd)",
        "lib/modules/6.12.0/modules.dep": b"kernel/drivers/a.ko:\n",
        LONG: b"a name longer than ustar's 100 bytes takes a PAX header",
    }
    for name in order:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(files[name])
        path.chmod(mode)
    (root / "lib/modules/6.12.0/build").symlink_to("/somewhere/on/this/machine/build")


def test_modules_tarball_depends_only_on_contents(tmp_path: Path) -> None:
    names = ["lib/modules/6.12.0/kernel/drivers/a.ko", "lib/modules/6.12.0/kernel/fs/b.ko.xz",
             "lib/modules/6.12.0/kernel/net/c.ko.gz", "lib/modules/6.12.0/kernel/net/d.ko.zst",
             "lib/modules/6.12.0/modules.dep", LONG]
    one, two = tmp_path / "one", tmp_path / "two"
    _modules(one, names, 0o644)
    _modules(two, list(reversed(names)), 0o600)  # another order, umask and time
    os.utime(two / names[0], (1, 1))
    counts = modules_tarball(one, tmp_path / "one.tar.gz", 1_700_000_000)
    assert modules_tarball(two, tmp_path / "two.tar.gz", 1_700_000_000) == counts
    first, second = (tmp_path / "one.tar.gz").read_bytes(), (tmp_path / "two.tar.gz").read_bytes()
    assert hashlib.sha256(first).digest() == hashlib.sha256(second).digest()
    assert first[4:8] == b"\0\0\0\0" and first[3] & 0x08 == 0  # gzip: no time, no name
    assert counts == {"count": 5, "signed": 2, "unknown": 1}

    with tarfile.open(tmp_path / "one.tar.gz") as tar:
        members = tar.getmembers()
    listed = [m.name for m in members]
    assert listed == sorted(listed, key=lambda n: n.split("/"))  # parents before children
    assert "lib/modules/6.12.0/build" not in listed  # the link to this machine is left out
    assert {(m.uid, m.gid, m.uname, m.mtime) for m in members} == {(0, 0, "root", 1_700_000_000)}
    assert {m.mode for m in members if m.isfile()} == {0o644}
    assert LONG in listed


def _config(key: str = "certs/signing_key.pem") -> dict[str, str]:
    return {"MODULES": "y", "MODULE_SIG": "y", "MODULE_SIG_KEY": key}


def test_without_a_vendor_key_kbuild_generates_one_and_the_manifest_says_so(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MODULE_KEY_ENV, raising=False)
    key = signing_key(_config())
    assert key.variables == {} and "not reproducible" in key.origin
    assert "profile's MODULE_SIG_KEY" in signing_key(_config("pkcs11:token=hsm")).origin
    assert signing_key({"MODULES": "y"}).origin == ""  # unsigned modules: nothing to say


def _vendor_key(pem: Path, name: str = "vendor test key") -> Path:
    subprocess.run(["openssl", "req", "-new", "-nodes", "-utf8", "-sha512", "-days", "1",
                    "-batch", "-x509", "-subj", f"/CN={name}", "-newkey", "rsa:2048",
                    "-outform", "PEM", "-out", str(pem), "-keyout", str(pem)],
                   check=True, capture_output=True)
    return pem


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
def test_a_vendor_key_reaches_kbuild_on_the_command_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pem = _vendor_key(tmp_path / "vendor.pem")
    monkeypatch.setenv(MODULE_KEY_ENV, str(pem))
    before = secrets_digest_of(pem)
    key = signing_key(_config())
    assert key.variables == {"CONFIG_MODULE_SIG_KEY": str(pem.resolve())}
    assert key.digest[:16] in key.origin and str(pem) not in key.origin
    # Another key, or another seed secret, is another build: SCons rebuilds.
    pem.write_text(pem.read_text().replace("A", "B", 1))
    changed = secrets_digest_of(pem)
    assert changed != before
    monkeypatch.setenv("KBUILD_PY_RANDSTRUCT_SECRET", "s3cret")
    assert secrets_digest_of(pem) not in (before, changed)


def secrets_digest_of(pem: Path) -> str:
    from kbuild_py.plan import make_plan

    return secrets_digest(make_plan("qemu-x86_64", pem.parent / "out"))


@pytest.mark.parametrize("name, content, says", [
    ("vendor.pem", None, "no such file"),
    ("fifo.pem", "FIFO", "not a regular file"),
    ("vendor.pem", "-----BEGIN PRIVATE KEY-----\nMII\n-----END PRIVATE KEY-----\n",
     "X.509 certificate"),
    ("my key.pem", "", "cannot carry"),
    ("key$(shell id).pem", "", "cannot carry"),
])
def test_a_bad_vendor_key_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      name: str, content: str | None, says: str) -> None:
    pem = tmp_path / name
    if content == "FIFO":
        os.mkfifo(pem)
    elif content is not None:
        pem.write_text(content)
    monkeypatch.setenv(MODULE_KEY_ENV, str(pem))
    with pytest.raises(UserError) as e:
        signing_key(_config())
    assert MODULE_KEY_ENV in str(e.value) and says in str(e.value)
    assert "\n" not in str(e.value) and e.value.hint


def _profile(tmp_path: Path, arch_lines: str) -> Path:
    path = tmp_path / "board.yaml"
    path.write_text("schema_version: 1\nname: board\nextends: [kspp-base]\n" + arch_lines
                    + "base: defconfig\n")
    return path


def test_dtbs_on_an_arch_without_device_trees_is_one_line(tmp_path: Path) -> None:
    from kbuild_py.plan import make_plan

    path = _profile(tmp_path, "arch: x86_64\ntoolchain: gcc\ndtbs: [vendor/board.dtb]\n")
    with pytest.raises(UserError, match=r"board.yaml: dtbs: arch x86_64 has no device trees"):
        make_plan(str(path), tmp_path / "out")


def test_a_dtb_missing_from_the_tree_is_named_before_make(tmp_path: Path) -> None:
    from kbuild_py.build import check_dtbs
    from kbuild_py.plan import make_plan
    from kbuild_py.source import KernelTree

    path = _profile(tmp_path, "arch: arm64\ntoolchain: aarch64-gcc\n"
                    "dtbs: [vendor/board.dtb, vendor/gone.dtb]\n")
    plan = make_plan(str(path), tmp_path / "out")
    src = tmp_path / "linux"
    (src / "arch/arm64/boot/dts/vendor").mkdir(parents=True)
    (src / "arch/arm64/boot/dts/vendor/board.dts").write_text("/dts-v1/;\n/ { };\n")
    tree = KernelTree(src, (6, 12), "6.12.0", "test", owned=False)
    with pytest.raises(UserError) as e:
        check_dtbs(plan, tree)
    # A composite device tree (a base and overlays) has no .dts of its own: its Makefile line.
    (src / "arch/arm64/boot/dts/vendor/Makefile").write_text(
        "dtb-y += board.dtb\ngone-dtbs := board.dtb gone-overlay.dtbo\n")
    check_dtbs(plan, tree)
    (src / "arch/arm64/boot/dts/vendor/Makefile").write_text("dtb-y += gone-other.dtb\n")
    assert "dtbs: vendor/gone.dtb: no arch/arm64/boot/dts/vendor/gone.dts in linux 6.12.0" in str(
        e.value)
    with pytest.raises(UserError):
        check_dtbs(plan, tree)


@pytest.mark.parametrize("name", ["../../../../etc/board.dtb", "vendor/../../board.dtb",
                                  "/etc/board.dtb", "vendor/board.dts", "-ikf/x/y.dtb"])
def test_a_dtb_name_outside_the_dts_folder_is_refused_by_the_schema(tmp_path: Path,
                                                                     name: str) -> None:
    from kbuild_py.profile import load_profile

    path = _profile(tmp_path, f"arch: arm64\ntoolchain: aarch64-gcc\ndtbs: [{name}]\n")
    with pytest.raises(UserError, match=r"board.yaml.*dtbs"):
        load_profile(str(path))


@pytest.mark.kernel
@pytest.mark.build
@pytest.mark.uses_kernel("tiny-arm64")
def test_modules_are_built_signed_with_the_vendor_key_and_packed(session_kernel,  # type: ignore[no-untyped-def]
                                                                tmp_path: Path) -> None:
    """The session's tiny-arm64 kernel (tinyconfig, two modules, the module-signing layer) is
    built with the tests' vendor key (KBUILD_PY_MODULE_SIG_KEY, tests/conftest.py). That the
    tarball is the same bytes when built again (signatures included) is checked on the same
    kernel by tests/test_distcc.py."""
    for tool in ("openssl", "modinfo"):
        assert shutil.which(tool), f"{tool} is installed by ./setup"
    pem = vendor_key()
    folder = session_kernel("tiny-arm64")
    dist = folder / "dist"
    manifest = json.loads((dist / "manifest.json").read_text())
    from kbtest import manifest_errors

    assert manifest_errors(dist / "manifest.json") == [], "the manifest is what its schema says"
    # What reached make: the kept and fixed variables (kbuild/interface.yaml) and the build's
    # own (reproducible identity, ccache), never the key's path or anything else of the caller's.
    from kbuild_py import kbuild

    env, iface = manifest["environment"], kbuild.interface()
    assert env["LC_ALL"] == "C" and env["KBUILD_BUILD_TIMESTAMP"], env
    assert all(name in iface.keep or name in dict(iface.fixed)
               or name.startswith(("KBUILD_BUILD_", "CCACHE_")) for name in env), sorted(env)
    assert str(pem) not in json.dumps(env)
    durations = manifest["durations"]  # each step's last run (a rerun's make is quick)
    assert set(durations) == {"tree", "config", "build", "collect"}, durations
    assert durations["build"] > 0 and min(durations.values()) >= 0, durations
    modules = manifest["modules"]
    assert modules["count"] == 2 and modules["signed"] == 2, modules
    assert MODULE_KEY_ENV in modules["signing_key"] and modules["depmod"].startswith("kmod")
    assert str(pem) not in (dist / "manifest.json").read_text()  # where the key lies stays here
    assert f"CONFIG_MODULE_SIG_KEY=${MODULE_KEY_ENV}" in manifest["build_command"]
    assert manifest["outputs"]["modules.tar.gz"] == hashlib.sha256(
        (dist / "modules.tar.gz").read_bytes()).hexdigest()
    assert not list(folder.glob(".modules.*"))  # no partial left

    unpacked = tmp_path / "unpacked"
    with tarfile.open(dist / "modules.tar.gz") as tar:  # ours: regular files and folders only
        for m in tar.getmembers():
            assert m.isfile() or m.isdir(), m.name
            assert not m.name.startswith("/") and ".." not in m.name.split("/"), m.name
            target = unpacked / m.name
            if m.isdir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(tar.extractfile(m).read())  # type: ignore[union-attr]
    kos = sorted(unpacked.glob("lib/modules/*/kernel/**/*.ko"))
    assert [k.name for k in kos] == ["crc-ccitt.ko", "crc7.ko"]
    assert (kos[0].parents[2] / "modules.dep").is_file()  # depmod ran
    for ko in kos:  # signed by the vendor's key, not one Kbuild made up
        signer = subprocess.run(["modinfo", "-F", "signer", str(ko)], capture_output=True,
                                text=True, check=True).stdout.strip()
        assert signer == VENDOR_KEY_NAME, (ko, signer)
    # vmlinux trusts that key: its certificate is in the built-in keyring.
    der = subprocess.run(["openssl", "x509", "-in", str(pem), "-outform", "DER"],
                         capture_output=True, check=True).stdout
    assert der in (dist / "vmlinux").read_bytes()
