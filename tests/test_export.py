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

from kbtest import TARBALL_612, kbuild_py, shared_out
from kbuild_py import catalog, export
from kbuild_py.errors import UserError

PROFILE = "qemu-x86_64"


@pytest.mark.parametrize("value", ["foo=${@os.system(chr(105))}", "a;b", "x=$(id)", "`id`",
                                   "a{b}", "two words", "tab\there", "quote\"", "new\nline",
                                   "-rf", ""])
def test_values_other_tools_would_expand_are_refused(value: str) -> None:
    with pytest.raises(UserError, match=r"export: cmdline.x \(p.yaml:3\): .* is not one word"):
        export._word(value, "cmdline.x (p.yaml:3)", "hint")


def test_plain_words_pass() -> None:
    for word in ("init_on_free=1", "mitigations=auto,nosmt", "lsm=landlock,yama",
                 "iommu.strict=1", "0001-a_b+c.patch"):
        assert export._word(word, "w", "hint") == word


@pytest.mark.parametrize("entry,message", [
    ('{path: thepatch, content: patch}', "belongs in the path of content: patch"),
    ('{path: "x/{{patch}}", content: fragment}', "belongs in the path of content: patch"),
    ('{path: "sysctl.d//90-kbuild-py-{{profile}}.conf", content: fragment}', "is the path of"),
    ('{path: cmdline/x, content: fragment}', "a file is in its way"),
    ('{path: "{{cmdline}}", content: fragment}', "a placeholder a path cannot hold"),
    ('{path: "{{ profile }}", content: fragment}', "formats.plain.files.5.path:"),
    ('{path: x, template: ".."}', "formats.plain.files.5.template:"),
])
def test_a_bad_format_entry_is_one_line_naming_it(entry: str, message: str,
                                                   data_root: Path) -> None:
    formats = data_root / "export" / "formats.yaml"
    text = formats.read_text()
    anchor = "      - {path: README, template: README}\n"
    formats.write_text(text.replace(anchor, f"      - {entry}\n", 1))
    with pytest.raises(UserError, match=re.escape(message)) as e:
        export.formats()
    assert "export/formats.yaml:" in str(e.value)


def test_a_template_placeholder_not_written_as_one_is_refused() -> None:
    with pytest.raises(UserError, match="not written"):
        export._fill("a {{ profile }}\n", {"profile": "p"}, [], "t")


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


def _unmet(config: Path, tree: Path, out: Path) -> dict[str, str]:
    """What `kbuild-py check` with this tree finds unmet: {symbol: why}."""
    r = kbuild_py("check", "--profile", PROFILE, "--config", str(config), "--kernel", str(tree),
                  "--out", str(out))
    assert r.returncode in (0, 1), r.stderr
    return dict(re.findall(r"^UNMET\s+(\w+)\s+\S+\s+(?:not set|\S+)\s+(.*)$", r.stdout,
                           re.M))


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

    patched = _route(tree, fragment, tmp_path / "with")
    assert _unmet(patched, tree, out) == {}
    # Without the patches Kconfig drops what the header says, and nothing else; check says why,
    # on a tree without them and on one with them alike.
    unpatched = _route(pristine, fragment, tmp_path / "without")
    for kernel in (pristine, tree):
        dropped = _unmet(unpatched, kernel, out)
        assert sorted(dropped) == named, (kernel, dropped)
        assert all(why.startswith("not in the config: CONFIG_") and "exists only with the "
                   "profile's patches (hardening-defaults)" in why for why in dropped.values())
    # A config made with the patches but a wrong value is explained as any other (the tarball
    # is patched by kbuild-py), not sent to the patches.
    wrong = tmp_path / "wrong.config"
    wrong.write_text(patched.read_text().replace("CONFIG_SECURITY_KPTR_RESTRICT_DEFAULT=2",
                                                 "CONFIG_SECURITY_KPTR_RESTRICT_DEFAULT=1"))
    why = _unmet(wrong, TARBALL_612, out)
    assert list(why) == ["SECURITY_KPTR_RESTRICT_DEFAULT"], why
    assert "patches" not in why["SECURITY_KPTR_RESTRICT_DEFAULT"], why

    # Export reads the user's own tree, patched or not, and writes the same fragment.
    again = kbuild_py("export", "--profile", PROFILE, "--format", "plain", "--kernel", str(tree),
                      "--out", str(tmp_path / "out2"))
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "out2" / PROFILE / "export" / "plain" / f"{PROFILE}.config").read_text(
        ) == fragment.read_text()
