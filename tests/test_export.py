"""`kbuild-py export`: what another build system needs to apply a profile, and the
merge_config.sh route (docs/INTEGRATION.md) run for real on the 6.12 tree: with the exported
patches every requirement sticks; without them Kconfig drops exactly the options the
fragment's header names."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from kbtest import kbuild_py, shared_out
from kbuild_py import catalog, export
from kbuild_py.errors import UserError

PROFILE = "qemu-x86_64"


@pytest.mark.parametrize("value", ["foo=${@os.system(chr(105))}", "a;b", "x=$(id)", "`id`",
                                   "a{b}", "two  spaces", "tab\there", "quote\"", "new\nline"])
def test_values_other_tools_would_expand_are_refused(value: str) -> None:
    with pytest.raises(UserError, match="not plain words"):
        export._safe(value, "kernel command line")


def test_plain_words_pass() -> None:
    line = "init_on_free=1 mitigations=auto,nosmt lsm=landlock,yama iommu.strict=1"
    assert export._safe(line, "kernel command line") == line
    assert export._safe("", "kernel command line") == ""


def test_templates_fill_and_repeat_patch_lines() -> None:
    text = "a {{profile}}\npatch {{patch}}\nend\n"
    got = export._fill(text, {"profile": "p"}, ["x.patch", "y.patch"], "t")
    assert got == "a p\npatch x.patch\npatch y.patch\nend\n"
    assert export._fill(text, {"profile": "p"}, [], "t") == "a p\nend\n"
    with pytest.raises(UserError, match=r"t: unknown placeholder \{\{nope\}\}"):
        export._fill("{{nope}}\n", {"profile": "p"}, [], "t")


def test_every_format_names_its_templates() -> None:
    root = catalog.folder("export")
    for fmt, (_, specs) in export.formats().items():
        for spec in specs:
            assert not spec.template or (root / "templates" / fmt / spec.template).is_file()


def test_unknown_format_is_one_line_before_any_work(tmp_path: Path) -> None:
    r = kbuild_py("export", "--profile", PROFILE, "--format", "yoctoo", "--out",
                  str(tmp_path / "out"))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "kbuild-py: error: export: unknown format 'yoctoo' (did you mean 'yocto'?) "
        "(formats: kleaf, plain, yocto (export/formats.yaml))"]
    assert not (tmp_path / "out").exists()


def _make(tree: Path, obj: Path, *goals: str) -> None:
    r = subprocess.run(["make", "-s", "-C", str(tree), f"O={obj}", "ARCH=x86_64", *goals],
                       capture_output=True, text=True, check=False, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]


def _route(tree: Path, fragment: Path, obj: Path) -> Path:
    """The merge_config.sh route of the plain export's README: base, fragment, olddefconfig."""
    _make(tree, obj, "tinyconfig")
    r = subprocess.run([str(tree / "scripts/kconfig/merge_config.sh"), "-m", "-O", str(obj),
                        str(obj / ".config"), str(fragment)], cwd=tree, capture_output=True,
                       text=True, check=False, timeout=120, env={**os.environ, "ARCH": "x86_64"})
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    _make(tree, obj, "olddefconfig")
    return obj / ".config"


def _unmet(config: Path, tree: Path) -> dict[str, str]:
    """What `kbuild-py check` on the tree the config was made from finds unmet: {symbol: why}."""
    r = kbuild_py("check", "--profile", PROFILE, "--config", str(config), "--kernel", str(tree))
    assert r.returncode in (0, 1), r.stderr
    return dict(re.findall(r"^UNMET\s+(\w+)\s+\S+\s+not set\s+(.*)$", r.stdout, re.M))


@pytest.mark.kernel
def test_merge_config_route_with_the_exported_patches_keeps_every_requirement(  # type: ignore[no-untyped-def]
        tree612, tmp_path: Path) -> None:
    out = shared_out(tmp_path / "out", [tree612.path])
    r = kbuild_py("export", "--profile", PROFILE, "--format", "plain", "--out", str(out))
    assert r.returncode == 0, r.stderr
    folder = out / PROFILE / "export" / "plain"
    fragment = folder / f"{PROFILE}.config"
    header = [line for line in fragment.read_text().splitlines() if line.startswith("#")]
    needs = next(line for line in header if "needs the profile's patches" in line)
    named = sorted(re.findall(r"CONFIG_(\w+)", needs))
    assert named == ["SECURITY_KPTR_RESTRICT_DEFAULT", "SECURITY_YAMA_PTRACE_SCOPE_DEFAULT"]
    assert all(os.stat(p).st_mode & 0o777 == 0o644 for p in folder.rglob("*") if p.is_file())

    # The user's own tree: a copy of the pristine one (files a patch touches are its own).
    pristine = tree612.path.resolve()
    tree = tmp_path / "linux"
    subprocess.run(["cp", "-al", str(pristine), str(tree)], check=True)
    series = (folder / "patches" / "series").read_text().split()
    assert series and all((folder / "patches" / name).is_file() for name in series)
    for name in series:
        patch = (folder / "patches" / name).read_text()
        for rel in re.findall(r"^\+\+\+ b/(\S+)", patch, re.M):
            (tree / rel).unlink()
            shutil.copyfile(pristine / rel, tree / rel)
        r = subprocess.run(["patch", "-p1", "-s", "-i", str(folder / "patches" / name)],
                           cwd=tree, capture_output=True, text=True, check=False)
        assert r.returncode == 0, r.stdout + r.stderr

    assert _unmet(_route(tree, fragment, tmp_path / "with"), tree) == {}
    # Without the patches Kconfig drops what the header says, and nothing else; check says why.
    dropped = _unmet(_route(pristine, fragment, tmp_path / "without"), pristine)
    assert sorted(dropped) == named
    assert all("exists only with the profile's patches (hardening-defaults)" in why
               for why in dropped.values()), dropped
