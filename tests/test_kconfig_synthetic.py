"""The adapter on small Kconfig trees written here: toolchain version gates in every shape the
kernel writes them, and `imply` valued as the kernel's own conf values it.

The probes are real `$(shell,...)` calls standing in for `$(cc-version)` and friends; the imply
cases are checked against scripts/kconfig/conf built from the 6.12 tree.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from kbuild_py.kbuild import interface
from kbuild_py.kconfig.dotconfig import read_config
from kbuild_py.kconfig.model import KconfigModel
from kbuild_py.kconfig.results import ExplainContext

# gcc 12.2 as the compiler: CC_IS_GCC=y, GCC_VERSION=120200, CLANG_VERSION=0, no pahole.
GATES = """
# As scripts/Kconfig.include defines them
if-success = $(shell,{ $(1); } >/dev/null 2>&1 && echo "$(2)" || echo "$(3)")
success = $(if-success,$(1),y,n)

config CC_IS_CLANG
	def_bool $(success,false)

config CC_IS_GCC
	def_bool $(success,true)

config CLANG_VERSION
	int
	default $(shell,echo 140006) if CC_IS_CLANG
	default 0

config GCC_VERSION
	int
	default $(shell,echo 120200) if CC_IS_GCC
	default 0

config PAHOLE_VERSION
	int
	default $(shell,echo 0)

config LOG_SHIFT
	int
	default 12

config CLANG_ONLY
	bool "needs clang 15"
	depends on CC_IS_CLANG && CLANG_VERSION >= 150000

config EITHER
	bool "needs clang 15 or gcc 13"
	depends on (CC_IS_CLANG && CLANG_VERSION >= 150000) || (CC_IS_GCC && GCC_VERSION >= 130000)

config NOT_BROKEN
	bool "broken before gcc 13"
	depends on !(CC_IS_GCC && GCC_VERSION < 130000)

config MIRRORED
	bool "needs gcc 13, written the other way round"
	depends on 130000 <= GCC_VERSION

config OLD_GCC_ONLY
	bool "needs gcc before 11"
	depends on GCC_VERSION < 110000

config BTF
	bool "needs pahole 1.16"
	depends on PAHOLE_VERSION >= 116

config BIG_LOG
	bool "needs a big log"
	depends on LOG_SHIFT >= 17
"""


def _model(tmp_path: Path, kconfig: str) -> KconfigModel:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "Kconfig").write_text(kconfig)
    model = KconfigModel.parse(tree, {"srctree": str(tree)}, (6, 12))
    empty = tmp_path / "empty.config"
    empty.write_text("")
    model.load(empty)
    return model


@pytest.mark.parametrize("symbol,root,needed,fix", [
    # gcc, not an old clang: the family probe is the cause, and CLANG_VERSION=0 is not "too old"
    ("CLANG_ONLY", "CC_IS_CLANG", "y", "CC_IS_CLANG: build with clang (the toolchain is not"),
    # of two alternatives, the one a newer gcc would satisfy
    ("EITHER", "GCC_VERSION", ">= 130000", "the toolchain is too old: GCC_VERSION is 120200"),
    ("NOT_BROKEN", "GCC_VERSION", ">= 130000", "the toolchain is too old"),
    ("MIRRORED", "GCC_VERSION", ">= 130000", "the toolchain is too old"),
    ("OLD_GCC_ONLY", "GCC_VERSION", "< 110000", "the toolchain is too new"),
    # 0 is a missing tool, not an old one
    ("BTF", "PAHOLE_VERSION", ">= 116", "the toolchain lacks the tool PAHOLE_VERSION measures"),
    ("BIG_LOG", "LOG_SHIFT", ">= 17", "LOG_SHIFT has no prompt and cannot be set"),
])
def test_version_gates_name_the_real_cause(tmp_path: Path, symbol: str, root: str, needed: str,
                                           fix: str) -> None:
    model = _model(tmp_path, GATES)
    model.context = ExplainContext(families=interface().families)  # as configure gives it
    assert model.value(symbol) == "n"
    exp = model.explain(symbol, "y")
    assert exp.chain, exp
    cause = next(b for b in exp.chain if b.symbol == root)
    assert cause.needed == needed, exp.chain
    assert exp.fix.startswith(fix), exp.fix
    assert root in exp.cause


def test_a_comparison_of_two_tristates_asks_for_a_value(tmp_path: Path) -> None:
    """`depends on TCG_TPM >= TRUSTED_KEYS`: with the keys built in and the TPM a module,
    the TPM driver is asked to be y (not ">= y")."""
    model = _model(tmp_path, """
config MODULES
	bool "modules"
	modules
	default y

config KEYS
	tristate "keys"

config TPM
	tristate "tpm"

config TRUSTED
	bool "trusted keys"
	depends on TPM >= KEYS
""")
    given = tmp_path / "given.config"
    given.write_text("CONFIG_MODULES=y\nCONFIG_KEYS=y\nCONFIG_TPM=m\nCONFIG_TRUSTED=y\n")
    model.load(given)
    assert model.value("TRUSTED") == "n"
    exp = model.explain("TRUSTED", "y")
    assert (exp.chain[0].symbol, exp.chain[0].needed) == ("TPM", "y"), exp.chain
    assert exp.fix == "set TPM: y in the profile (now m, from base config)"


IMPLY = """
config MODULES
	bool "modules"
	modules
	default y

config DEPM
	tristate "a driver built as a module"

config USERM
	tristate "implied by y, set to m by the user"

config IMPLIED_DEPM
	tristate "implied by y, depends on an m"
	depends on DEPM

config PLAIN
	tristate "implied by y, nothing else"

config BOOLEAN
	bool "a bool implied by an m"

config IMPLIER
	tristate "implies them"
	imply USERM
	imply IMPLIED_DEPM
	imply PLAIN

config M_IMPLIER
	tristate "implies at m"
	imply BOOLEAN
"""


@pytest.mark.kernel
def test_imply_is_valued_as_kbuilds_conf_values_it(tmp_path: Path, tree612,  # type: ignore[no-untyped-def]
                                                   kbuild_base) -> None:
    conf = kbuild_base(tree612, "x86_64", "gcc", "tinyconfig").parent / "scripts/kconfig/conf"
    given = ("CONFIG_MODULES=y\nCONFIG_IMPLIER=y\nCONFIG_M_IMPLIER=m\nCONFIG_USERM=m\n"
             "CONFIG_DEPM=m\n")
    model = _model(tmp_path, IMPLY)
    (tmp_path / "given.config").write_text(given)
    model.load(tmp_path / "given.config")

    kbuild = tmp_path / "tree" / ".config"
    kbuild.write_text(given)
    subprocess.run([str(conf), "--olddefconfig", "Kconfig"], cwd=tmp_path / "tree", check=True,
                   capture_output=True, env={**os.environ, "srctree": str(tmp_path / "tree"),
                                             "KCONFIG_CONFIG": str(kbuild)})
    values = read_config(kbuild)
    assert (values["USERM"], values["IMPLIED_DEPM"], values["PLAIN"], values["BOOLEAN"]) == (
        "m", "m", "y", "y")
    assert {k: v for k, v in model.values().items() if v != "n"} == {
        k: v for k, v in values.items() if v != "n"}


ENGINE = """
config MODULES
	bool "modules"
	modules
	default y

config IPC
	tristate "an IPC driver"

config IPC_FS
	bool "its filesystem, a bool under a tristate"
	depends on IPC

config IA32
	bool "32-bit emulation"

config X32
	bool "x32 ABI"

config COMPAT
	def_bool y
	depends on IA32 || X32

# Selected by arches that have it (none here).
config OLD_FEATURE
	bool

config NEEDS_OLD
	bool "needs a feature this kernel's arch does not select"
	depends on OLD_FEATURE
"""


def _given(tmp_path: Path, model: KconfigModel, text: str) -> None:
    given = tmp_path / "given.config"
    given.write_text(text)
    model.load(given)


def test_a_bool_under_an_m_dependency_can_be_y(tmp_path: Path) -> None:
    """Kbuild shows a bool whose dependency is m as y-able: IPC=m is no reason IPC_FS is n
    (ANDROID_BINDERFS under ANDROID_BINDER_IPC=m); the config's own n is."""
    model = _model(tmp_path, ENGINE)
    _given(tmp_path, model, "CONFIG_IPC=m\n# CONFIG_IPC_FS is not set\n")
    exp = model.explain("IPC_FS", "y")
    assert exp.chain == () and "IPC" not in exp.cause, exp
    assert exp.fix == "set IPC_FS: y in the profile"
    _given(tmp_path, model, "CONFIG_IPC=m\nCONFIG_IPC_FS=y\n")
    assert model.value("IPC_FS") == "y"  # as Kbuild's conf has it


def test_a_promptless_symbol_names_each_dependency_that_keeps_it_on(tmp_path: Path) -> None:
    """COMPAT: def_bool y, depends on IA32_EMULATION || X86_X32_ABI: turning it off means
    turning both off, never "set COMPAT: n" (it has no prompt)."""
    model = _model(tmp_path, ENGINE)
    _given(tmp_path, model, "CONFIG_IA32=y\nCONFIG_X32=y\n")
    exp = model.explain("COMPAT", "n")
    assert exp.fix.startswith("set IA32: n") and "X32: n" in exp.fix and exp.fix.endswith(
        "in the profile"), exp.fix
    assert "COMPAT:" not in exp.fix, exp.fix


def test_what_this_kernels_arch_lacks_may_be_a_version_gate(tmp_path: Path) -> None:
    """Nothing selects OLD_FEATURE here; another kernel version may (HARDLOCKUP_DETECTOR on
    arm64 before 6.4): the fix offers when: kernel as well as when: arch."""
    model = _model(tmp_path, ENGINE)
    exp = model.explain("NEEDS_OLD", "y")
    assert "in Linux 6.12" in exp.fix and "when: kernel" in exp.fix, exp.fix


def test_an_empty_string_requirement_is_explained_as_empty() -> None:
    """STATIC_USERMODEHELPER_PATH: "" is wanted as "", not as y."""
    from kbuild_py.kconfig.results import Explanation
    from kbuild_py.profile import Origin, Profile, Requirement, SourcePin, VersionRange
    from kbuild_py.resolve import Resolved
    from kbuild_py.verify import verify

    asked: list[str] = []

    def explain(symbol: str, wanted: str) -> Explanation:
        asked.append(wanted)
        return Explanation(symbol, "/sbin/helper", wanted, "s", "f")

    req = Requirement("HELPER", "why", Origin("p.yaml", 1), value="")
    profile = Profile("p", Path("p.yaml"), "x86_64", "defconfig", "gcc", VersionRange(),
                      SourcePin("tarball", "x"))
    report = verify(profile, [Resolved(req, "HELPER", True, kind="string")],
                    {"HELPER": "/sbin/helper"}, explain, kernel="6.12", toolchain="gcc",
                    config="c")
    assert asked == [""] and report.checks[0].status == "unmet"


RECORDED = """
if-success = $(shell,{ $(1); } >/dev/null 2>&1 && echo "$(2)" || echo "$(3)")
success = $(if-success,$(1),y,n)

config CC_VERSION_TEXT
	string
	default "$(shell,echo here-cc 1.0)"

config CC_HAS_GUARD
	def_bool $(success,true)

config GUARD
	bool "a protection the compiler must support"
	depends on CC_HAS_GUARD

config PLUGINS
	bool "compiler plugins"
	depends on $(success,true)
	default y

config PLUGIN_A
	bool "a plugin"
	depends on PLUGINS

config SANITIZER
	bool "needs a flag this machine's compiler lacks"
	depends on $(success,false)
"""


def test_a_config_made_elsewhere_is_explained_with_its_own_answers(tmp_path: Path) -> None:
    """This machine's compiler has the guard and plugins; the config's did not, and its
    record says so (CC_HAS_GUARD not written, PLUGINS hidden): the explanations name the
    config's compiler and its answers, and the model is as parsed afterwards."""
    from kbuild_py.kconfig.results import ExplainContext

    model = _model(tmp_path, RECORDED)
    _given(tmp_path, model, '#\n# Linux/x86 6.12.1 Kernel Configuration\n#\n'
           'CONFIG_CC_VERSION_TEXT="there-cc 9.9"\n# CONFIG_GUARD is not set\n'
           '# CONFIG_SANITIZER is not set\n')
    model.context = ExplainContext("the config's compiler (there-cc 9.9)", "config")
    assert (model.value("PLUGINS"), model.value("CC_HAS_GUARD")) == ("y", "y")  # this machine
    with model.recorded(complete=True) as taken:
        assert {t.symbol: (t.here, t.recorded) for t in taken} == {
            "CC_VERSION_TEXT": ("here-cc 1.0", "there-cc 9.9"), "CC_HAS_GUARD": ("y", None),
            "PLUGINS": ("y", None), "SANITIZER": (None, "n")}
        assert (model.value("PLUGINS"), model.value("CC_HAS_GUARD")) == ("n", "n")
        guard = model.explain("GUARD", "y")
        plugin = model.explain("PLUGIN_A", "y")
        # Shown there (its "is not set" line says so), hidden here: the config's own choice.
        sanitizer = model.explain("SANITIZER", "y")
    assert sanitizer.chain == () and sanitizer.fix.startswith(
        "write CONFIG_SANITIZER=y in the config"), sanitizer
    assert guard.chain[-1].symbol == "CC_HAS_GUARD" and "there-cc 9.9" in guard.chain[-1].detail
    assert "(with this machine's compiler: y)" in guard.chain[-1].detail
    assert "there-cc 9.9" in guard.fix
    assert plugin.chain[-1].symbol == "PLUGINS" and "hidden in this config" in plugin.summary
    assert (model.value("PLUGINS"), model.value("CC_HAS_GUARD")) == ("y", "y")  # put back
