"""`scons matrix`: profiles x kernels configured and verified by SCons, one table.

The real run uses two profiles (one per arch family of toolchain) on the 6.12 and 7.3 trees the
session extracted, through SCons with -j2, plus a "kernel" that is no archive: its pairs become
error cells and the run still prints the table.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from kbtest import REPO, TARBALL_73, TARBALL_612, shared_out
from kbuild_py.matrix import Cell, kernel_label, render
from kbuild_py.profile import SourcePin


def test_the_table_names_every_pair_and_counts_the_clean_ones() -> None:
    cells = [Cell("qemu-x86_64", "linux-source-7.3", "7.3.4", (120, 0, 15, 9), 0),
             Cell("server-x86_64", "linux-source-7.3", "7.3.4", (140, 2, 6, 11), 1),
             Cell("qemu-x86_64", "linux-9.9", error="error: /x: no such file")]
    table = render(cells)
    assert table.splitlines()[0] == "linux-source-7.3 (7.3.4)"
    assert "unmet 2" in table and "kconfiglib != Kbuild 1" in table
    assert "  qemu-x86_64    error: /x: no such file" in table
    assert table.endswith("1 of 3 profile x kernel pairs: 0 unmet, kconfiglib == Kbuild\n")
    assert [c.good for c in cells] == [True, False, False]


def test_kernel_labels_are_plain_folder_names() -> None:
    assert kernel_label(SourcePin("tarball", "/usr/src/linux-source-7.3.tar.xz")) == \
        "linux-source-7.3"
    assert kernel_label(SourcePin("tree", "/home/me/linux/")) == "linux"
    assert kernel_label(SourcePin("url", "https://h/linux-6.6.tgz", "0" * 64)) == "linux-6.6"
    assert kernel_label(SourcePin("tree", "/a/b c$(x)")) == "b_c__x_"


@pytest.mark.kernel
def test_scons_matrix_configures_every_pair_in_parallel(tree612, tree73, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    for tree, tarball in ((tree612, TARBALL_612), (tree73, TARBALL_73)):
        shared_out(out / "matrix" / kernel_label(SourcePin("tarball", str(tarball))), [tree.path])
    missing = tmp_path / "linux-source-9.9.tar.xz"
    missing.write_bytes(b"not an archive\n")  # fails at the tree step, pair by pair
    r = subprocess.run(
        ["scons", "-Q", "-j2", "matrix", f"out={out}", "profiles=qemu-arm64 server-x86_64",
         f"kernels={TARBALL_612} {TARBALL_73} {missing}"],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=1800)
    assert r.returncode == 1, r.stdout + r.stderr  # the missing kernel's pairs are not clean
    assert "Traceback" not in r.stdout + r.stderr
    assert "matrix: 2 of 6 pairs are not clean" in r.stderr
    table = (out / "matrix" / "matrix.txt").read_text()
    assert table in r.stdout
    cells = json.loads((out / "matrix" / "matrix.json").read_text())
    assert len(cells) == 6
    real = [c for c in cells if c["kernel"] != "linux-source-9.9"]
    assert {(c["profile"], c["version"][:4]) for c in real} == {
        ("qemu-arm64", "6.12"), ("server-x86_64", "6.12"),
        ("qemu-arm64", "7.3."), ("server-x86_64", "7.3.")}
    for c in real:
        assert c["error"] == "" and c["counts"]["unmet"] == 0, c
        assert c["counts"]["ok"] > 100 and c["kconfiglib_vs_kbuild"] == 0, c
    for c in cells:
        if c["kernel"] == "linux-source-9.9":
            assert c["error"].startswith(("error: ", "failure: ")), c
            assert "linux-source-9.9.tar.xz" in c["error"], c
    # A second run with nothing changed runs no pair again: only the table is printed.
    again = subprocess.run(r.args, cwd=REPO, capture_output=True, text=True, check=False,
                           timeout=600)
    assert again.returncode == 1 and "configure + verify" not in again.stdout, again.stdout
    assert table in again.stdout
    # The trees were shared, not extracted again: each kernel's src/ holds the link to the
    # session's tree, and beside it only qemu-arm64's patched copy (<tree>-<queue digest>).
    for label in ("linux-source-6.12", "linux-source-7.3"):
        entries = list((out / "matrix" / label / "src").iterdir())
        assert [e.is_symlink() for e in entries if "-" not in e.name] == [True]
        assert len(entries) == 2
