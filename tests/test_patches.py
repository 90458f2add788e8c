"""Patch queues on the real trees: version gates, pins, safety, atomic application."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from kbuild_py import patches
from kbuild_py.errors import UserError
from kbuild_py.plan import make_plan
from kbuild_py.source import KernelTree

QUEUE = ("hardening-defaults",)


@pytest.mark.kernel
def test_queue_applies_on_73_612_and_61_with_its_version_gates(tree73, tree612, tree61) -> None:  # type: ignore[no-untyped-def]
    def statuses(tree) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
        found = sorted(patches.check(tree.path, QUEUE, tree.version),
                       key=lambda r: r.patch.name.replace(".patch", ""))
        return [(r.status, r.detail if r.status == "skipped" else "") for r in found]

    # 0001 (for ..6.12), 0001 refreshed (6.13..), 0002, 0003 (6.6..)
    old, new = ("skipped", "only for kernel any..6.12"), ("skipped", "only for kernel 6.13..any")
    assert statuses(tree73) == [old, ("applies", ""), ("applies", ""), ("applies", "")]
    assert statuses(tree612) == [("applies", ""), new, ("applies", ""), ("applies", "")]
    assert statuses(tree61) == [("applies", ""), new, ("applies", ""),
                                ("skipped", "only for kernel 6.6..any")]


@pytest.mark.kernel
def test_application_is_a_new_tree_and_the_base_stays_pristine(tree612, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    base_file = tree612.path / "lib" / "vsprintf.c"
    before = hashlib.sha256(base_file.read_bytes()).hexdigest()
    todo, skipped = patches.select(QUEUE, tree612.version)
    dest = tmp_path / "patched"
    patches.apply(tree612.path, dest, todo, skipped)
    assert "CONFIG_SECURITY_KPTR_RESTRICT_DEFAULT" in (dest / "lib" / "vsprintf.c").read_text()
    assert hashlib.sha256(base_file.read_bytes()).hexdigest() == before
    assert (dest / "lib" / "vsprintf.c").stat().st_ino != base_file.stat().st_ino
    assert (dest / ".kbuild-py-complete").is_file()
    assert [e.name for e in tmp_path.iterdir()] == ["patched"]


PATCH = """From: t <t@t>
Subject: [PATCH] test

---
--- a/{path}
+++ b/{path}
@@ -1,3 +1,3 @@
{context}
"""


def _queue(root: Path, name: str, files: dict[str, str], series: str | None = None,
           pin: bool = True) -> None:
    folder = root / "patches" / name
    folder.mkdir(parents=True)
    for fname, text in files.items():
        (folder / fname).write_text(text)
    (folder / "series").write_text(series if series is not None else "\n".join(files) + "\n")
    if pin:
        (folder / "sha256sums").write_text("".join(
            f"{hashlib.sha256((folder / f).read_bytes()).hexdigest()}  {f}\n" for f in files))


BROKEN = "\n".join([
    "--- a/lib/vsprintf.c",
    "+++ b/lib/vsprintf.c",
    "@@ -847,7 +847,7 @@",
    " \treturn ptr_to_id(buf, end, ptr, spec);",
    " }",
    " ",
    "-int kptr_restrict __read_mostly = 42;",
    "+int kptr_restrict __read_mostly = 2;",
    " ",
    " static noinline_for_stack",
    " char *restricted_pointer(char *buf, char *end, const void *ptr,",
    "",
])

ESCAPE = """--- a/../../etc/passwd
+++ b/../../etc/passwd
@@ -1 +1 @@
-root
+evil
"""


@pytest.mark.kernel
def test_broken_patch_names_file_and_line_and_leaves_nothing(tree612, data_root: Path,  # type: ignore[no-untyped-def]
                                                             tmp_path: Path) -> None:
    _queue(data_root, "broken", {"0001-broken.patch": BROKEN})
    todo, skipped = patches.select(("broken",), tree612.version)
    trees = tmp_path / "trees"
    trees.mkdir()
    with pytest.raises(UserError) as info:
        patches.apply(tree612.path, trees / "patched", todo, skipped)
    assert info.value.message.startswith(
        "patches/broken/0001-broken.patch: does not apply at lib/vsprintf.c:847")
    assert list(trees.iterdir()) == [], "nothing half-applied is left"


@pytest.mark.parametrize("case,files,series,pin,message", [
    ("escape", {"0001-x.patch": ESCAPE}, None, True,
     "patches/q/0001-x.patch: touches 'a/../../etc/passwd', outside the kernel tree"),
    ("absolute", {"0001-x.patch": ESCAPE.replace("a/../../", "/").replace("b/../../", "/")},
     None, True, "patches/q/0001-x.patch: touches '/etc/passwd', outside the kernel tree"),
    ("malformed", {"0001-x.patch": "just some text\n"}, None, True,
     "patches/q/0001-x.patch: not a patch"),
    ("empty-series", {"0001-x.patch": BROKEN}, "# nothing\n", True,
     "patches/q/series: lists no patches"),
    ("missing-file", {"0001-x.patch": BROKEN}, "0002-y.patch\n", True,
     "patches/q/series:1: 0002-y.patch: no such patch file"),
    ("no-pin", {"0001-x.patch": BROKEN}, None, False,
     "patches/q/sha256sums: no pin for 0001-x.patch"),
    ("bad-gate", {"0001-x.patch": "Kbuild-Py-Kernel: six\n---\n" + BROKEN}, None, True,
     "Kbuild-Py-Kernel: 'six' is not a range"),
])
def test_bad_queues(case: str, files: dict[str, str], series: str | None, pin: bool,
                    message: str, data_root: Path) -> None:
    _queue(data_root, "q", files, series, pin)
    with pytest.raises(UserError) as info:
        patches.load_queue("q")
    assert message in info.value.one_line()


def test_changed_patch_is_refused(data_root: Path) -> None:
    _queue(data_root, "q", {"0001-x.patch": BROKEN})
    (data_root / "patches" / "q" / "0001-x.patch").write_text(BROKEN.replace("= 2", "= 1"))
    with pytest.raises(UserError, match=r"patches/q/0001-x.patch: sha256 [0-9a-f]{64} does not "
                       r"match the pin [0-9a-f]{64}"):
        patches.load_queue("q")


def test_unknown_queue(data_root: Path) -> None:
    with pytest.raises(UserError, match="unknown patch queue 'hardening-defualts' \\(did you "
                       "mean 'hardening-defaults'\\?\\)"):
        patches.load_queue("hardening-defualts")


def test_local_tree_is_never_patched(tmp_path: Path, data_root: Path) -> None:
    from kbuild_py.tree import patched

    vendor = data_root / "profiles" / "vendor.yaml"
    vendor.write_text("schema_version: 1\nname: vendor\nextends: [qemu-x86_64]\n"
                      "patches: [hardening-defaults]\n")
    plan = make_plan(str(vendor), tmp_path / "out")
    user_tree = KernelTree(tmp_path, (6, 12, 0), "6.12.0", f"tree:{tmp_path}", owned=False)
    with pytest.raises(UserError, match="kbuild-py never modifies"):
        patched(plan, user_tree)
    shutil.rmtree(tmp_path / "out", ignore_errors=True)


@pytest.mark.kernel
def test_a_symlinked_base_is_copied_not_written(tree612, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """out/src entries may be symlinks to a shared tree: the copy must never write through."""
    link = tmp_path / "linked"
    link.symlink_to(tree612.path)
    base_file = tree612.path / "security" / "Kconfig"
    before = hashlib.sha256(base_file.read_bytes()).hexdigest()
    todo, skipped = patches.select(QUEUE, tree612.version)
    patches.apply(link, tmp_path / "patched", todo, skipped)
    assert hashlib.sha256(base_file.read_bytes()).hexdigest() == before
    assert not (tmp_path / "patched").is_symlink()
    assert not (tree612.path / ".kbuild-py-patches.json").exists()
