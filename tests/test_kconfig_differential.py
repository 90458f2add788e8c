"""kconfiglib (through our adapter) against Kbuild's own conf, on the real 6.12 and 7.3 trees.

For each input, Kbuild's `make olddefconfig` and the adapter's resolution must give the same
value for every symbol ('is not set' and absent both mean n). This is what lets kconfiglib
explain Kbuild's results: if they ever disagree, these tests say where.
"""

from __future__ import annotations

import lzma
import shutil
from pathlib import Path

import pytest

from kbuild_py.configure import compare
from kbuild_py.kconfig.dotconfig import read_config
from kbuild_py.kconfig.model import KconfigModel
from kbuild_py.kmake import make_argv, run_make
from kbuild_py.toolchain import load_arch, load_toolchain, make_variables

pytestmark = pytest.mark.kernel

DEBIAN_AMD64 = "/usr/src/linux-config-{kernel}/config.amd64_none_amd64.xz"

# (kernel, arch, toolchain, case id, parts): a part is a path in the tree, "@<target>" (Kbuild's
# own `make <target>` output, e.g. @tinyconfig), "@debian" or "@debian-<kernel>" (Debian's
# shipped amd64 config of this or another kernel) or a literal CONFIG_ line.
CASES_612 = [
    ("x86_64", "gcc", "x86_64_defconfig", ["arch/x86/configs/x86_64_defconfig"]),
    ("x86_64", "gcc", "tinyconfig", ["@tinyconfig"]),
    ("x86_64", "gcc", "tinyconfig+hardening",
     ["@tinyconfig", "kernel/configs/hardening.config", "arch/x86/configs/hardening.config"]),
    ("x86_64", "gcc", "defconfig+hardening",
     ["arch/x86/configs/x86_64_defconfig", "kernel/configs/hardening.config",
      "arch/x86/configs/hardening.config"]),
    ("x86_64", "gcc", "tinyconfig+kvm_guest", ["@tinyconfig", "kernel/configs/kvm_guest.config"]),
    # tinyconfig writes NR_CPUS=1; with SMP its range is 2..512 and Kbuild clamps the 1 to 2
    # (kconfiglib 14.1 dropped it for the default, 64).
    ("x86_64", "gcc", "tinyconfig-config+smp", ["@tinyconfig", "CONFIG_SMP=y"]),
    ("x86_64", "gcc", "debian-amd64", ["@debian"]),
    ("arm64", "aarch64-gcc", "defconfig", ["arch/arm64/configs/defconfig"]),
    ("arm64", "aarch64-gcc", "tinyconfig", ["@tinyconfig"]),
    ("arm64", "aarch64-gcc", "tinyconfig+hardening",
     ["@tinyconfig", "kernel/configs/hardening.config", "arch/arm64/configs/hardening.config"]),
    ("arm64", "clang-19", "defconfig+hardening",
     ["arch/arm64/configs/defconfig", "kernel/configs/hardening.config",
      "arch/arm64/configs/hardening.config"]),
    # FS_ENCRYPTION_ALGS=y implies CRYPTO_XTS, which defconfig's .config has at m: Kbuild keeps
    # the m (kconfiglib 14.1 promoted it to y), as android-arm64 showed.
    ("arm64", "clang-19", "defconfig-config+fs-encryption",
     ["@defconfig", "CONFIG_FS_ENCRYPTION=y"]),
]
HARDENING_73 = ["kernel/configs/hardening.config"]
CASES_73 = [
    ("x86_64", "gcc", "defconfig+hardening",
     ["arch/x86/configs/x86_64_defconfig", *HARDENING_73, "arch/x86/configs/hardening.config"]),
    ("x86_64", "clang-19", "defconfig+hardening",
     ["arch/x86/configs/x86_64_defconfig", *HARDENING_73, "arch/x86/configs/hardening.config"]),
    ("x86_64", "gcc", "tinyconfig+hardening",
     ["@tinyconfig", *HARDENING_73, "arch/x86/configs/hardening.config"]),
    ("x86_64", "gcc", "debian-amd64", ["@debian"]),
    # A 6.12 .config taken to 7.3: the transitional CFI_CLANG and RANDOM_KMALLOC_CACHES carry
    # their values over to CFI and KMALLOC_PARTITION_CACHES, and are not written.
    ("x86_64", "clang-19", "migration-from-6.12",
     ["@debian-6.12", "CONFIG_CFI_CLANG=y", "CONFIG_RANDOM_KMALLOC_CACHES=y"]),
    ("arm64", "aarch64-gcc", "defconfig+hardening",
     ["arch/arm64/configs/defconfig", *HARDENING_73, "arch/arm64/configs/hardening.config"]),
    ("arm64", "clang-19", "defconfig+hardening",
     ["arch/arm64/configs/defconfig", *HARDENING_73, "arch/arm64/configs/hardening.config"]),
    ("arm64", "aarch64-gcc", "tinyconfig+hardening",
     ["@tinyconfig", *HARDENING_73, "arch/arm64/configs/hardening.config"]),
]
# 6.1's conf drops the out-of-range NR_CPUS=1 for the default (64) where 6.12 clamps it.
CASES_61 = [("x86_64", "gcc", "tinyconfig-config+smp-6.1", ["@tinyconfig", "CONFIG_SMP=y"])]
CASES = ([("6.12", *c) for c in CASES_612] + [("7.3", *c) for c in CASES_73]
         + [("6.1", *c) for c in CASES_61])


# Values both sides must give in a case, so that it exercises what it was added for.
EXPECT: dict[str, dict[str, str | None]] = {
    "defconfig-config+fs-encryption": {"FS_ENCRYPTION_ALGS": "y", "CRYPTO_XTS": "m"},
    "tinyconfig-config+smp": {"SMP": "y", "NR_CPUS": "2"},
    "tinyconfig-config+smp-6.1": {"SMP": "y", "NR_CPUS": "64"},
    "migration-from-6.12": {"CFI": "y", "KMALLOC_PARTITION_CACHES": "y", "CFI_CLANG": None,
                            "RANDOM_KMALLOC_CACHES": None},
}


class Side:
    """One arch + toolchain: a parsed model and a Kbuild object dir, reused across inputs."""

    def __init__(self, tree, arch_name: str, tc_name: str, objdir: Path,  # type: ignore[no-untyped-def]
                 model: KconfigModel) -> None:
        self.tree = tree
        self.arch = load_arch(arch_name)
        self.tc = load_toolchain(tc_name)
        self.model = model  # the session's parse (conftest.model_for), shared with other tests
        self.objdir = objdir
        self._made: dict[str, Path] = {}

    def make(self, target: str) -> None:
        argv = make_argv(self.tree.path, self.objdir, make_variables(self.tc, self.arch),
                         [target])
        run_make(argv, self.objdir.parent / f"{self.objdir.name}.log", what=f"make {target}")

    def made(self, target: str) -> Path:
        """The .config of Kbuild's `make <target>`, made once."""
        if target not in self._made:
            self.make(target)
            self._made[target] = self.objdir.parent / f"{self.objdir.name}-{target}.config"
            shutil.copy(self.objdir / ".config", self._made[target])
        return self._made[target]


@pytest.fixture(scope="module")
def sides(request, tmp_path_factory):  # type: ignore[no-untyped-def]
    cache: dict[tuple[str, str, str], Side] = {}
    fixtures = {"6.1": "tree61", "6.12": "tree612", "7.3": "tree73"}

    def get(kernel: str, arch: str, tc: str) -> Side:
        if (kernel, arch, tc) not in cache:
            objdir = tmp_path_factory.mktemp(f"o-{kernel}-{arch}-{tc}")
            tree = request.getfixturevalue(fixtures[kernel])
            model = request.getfixturevalue("model_for")(tree, arch, tc)
            cache[(kernel, arch, tc)] = Side(tree, arch, tc, objdir, model)
        return cache[(kernel, arch, tc)]

    return get


def _input(side: Side, parts: list[str], dest: Path) -> Path:
    text = []
    kernel = ".".join(map(str, side.tree.version[:2]))
    for part in parts:
        if part.startswith("@debian"):
            path = Path(DEBIAN_AMD64.format(kernel=part.partition("-")[2] or kernel))
            if not path.is_file():
                pytest.skip(f"{path} not installed (./setup installs it)")
            text.append(lzma.open(path, "rt").read())
        elif part.startswith("@"):
            text.append(side.made(part[1:]).read_text())
        elif part.startswith("CONFIG_"):
            text.append(part + "\n")
        else:
            text.append((side.tree.path / part).read_text())
    dest.write_text("\n".join(text))
    return dest


@pytest.mark.parametrize("kernel,arch,tc,case,parts", CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[2]}-{c[3]}" for c in CASES])
def test_kconfiglib_matches_kbuild(sides, kernel: str, arch: str, tc: str, case: str,  # type: ignore[no-untyped-def]
                                   parts: list[str], tmp_path: Path) -> None:
    side = sides(kernel, arch, tc)
    src = _input(side, parts, tmp_path / "input.config")
    shutil.copy(src, side.objdir / ".config")
    side.make("olddefconfig")
    kbuild = read_config(side.objdir / ".config")

    side.model.load(src)
    predicted = side.model.values()

    for symbol, value in EXPECT.get(case, {}).items():
        assert (kbuild.get(symbol), predicted.get(symbol)) == (value, value), symbol
    diffs = compare(predicted, kbuild)
    assert diffs == [], f"{case}: kconfiglib and Kbuild disagree on {len(diffs)}: {diffs[:10]}"
    # The comparison is not vacuous: Kbuild resolved a real config.
    assert len(kbuild) > 200
