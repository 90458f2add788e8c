"""Explanations of options that did not stick, computed with kconfiglib on the real 6.12 tree.

Each case is a real blocked option: the chain must name the true root cause, where its value
came from, and a fix that works.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.kernel


def _fragment(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "fragment.config"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_slub_tiny_from_tinyconfig_blocks_freelist_hardening(tree612, model_for, kbuild_base,  # type: ignore[no-untyped-def]
                                                              tmp_path: Path) -> None:
    model = model_for(tree612, "x86_64", "gcc")
    base = kbuild_base(tree612, "x86_64", "gcc", "tinyconfig")
    model.load(base, _fragment(tmp_path, ["CONFIG_SLAB_FREELIST_HARDENED=y"]))
    assert model.value("SLAB_FREELIST_HARDENED") == "n"
    exp = model.explain("SLAB_FREELIST_HARDENED", "y")
    root = exp.chain[-1]
    assert (root.symbol, root.value, root.needed, root.source) == (
        "SLUB_TINY", "y", "n", "base config")
    assert "SLUB_TINY" in exp.summary
    assert exp.fix == "set SLUB_TINY: n in the profile (now y, from base config)"


def test_toolchain_probe_kcfi_with_gcc(tree612, model_for, kbuild_base) -> None:  # type: ignore[no-untyped-def]
    model = model_for(tree612, "x86_64", "gcc")
    model.load(kbuild_base(tree612, "x86_64", "gcc", "x86_64_defconfig"))
    exp = model.explain("CFI_CLANG", "y")
    assert exp.chain[-1].kind == "toolchain"
    assert "$(cc-option,-fsanitize=kcfi)" in exp.summary
    assert "use a compiler for which it succeeds" in exp.fix


def test_kcfi_sticks_with_clang(tree612, model_for, kbuild_base, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    model = model_for(tree612, "arm64", "clang-19")
    model.load(kbuild_base(tree612, "arm64", "clang-19", "defconfig"),
               _fragment(tmp_path, ["CONFIG_CFI_CLANG=y", "CONFIG_SHADOW_CALL_STACK=y"]))
    assert model.value("CFI_CLANG") == "y"
    assert model.value("SHADOW_CALL_STACK") == "y"


def test_arch_gated_shadow_call_stack_on_x86(tree612, model_for, kbuild_base) -> None:  # type: ignore[no-untyped-def]
    model = model_for(tree612, "x86_64", "gcc")
    model.load(kbuild_base(tree612, "x86_64", "gcc", "x86_64_defconfig"))
    exp = model.explain("SHADOW_CALL_STACK", "y")
    root = exp.chain[-1]
    assert (root.symbol, root.kind) == ("ARCH_SUPPORTS_SHADOW_CALL_STACK", "arch")
    assert "this arch does not support it" in root.detail
    assert exp.fix.startswith("not available on x86 in Linux 6.12")


def test_choice_gated_optimisation_level(tree612, model_for, kbuild_base) -> None:  # type: ignore[no-untyped-def]
    model = model_for(tree612, "x86_64", "gcc")
    model.load(kbuild_base(tree612, "x86_64", "gcc", "x86_64_defconfig"))
    exp = model.explain("CC_OPTIMIZE_FOR_SIZE", "y")
    assert exp.chain[0].kind == "choice"
    assert exp.chain[0].symbol == "CC_OPTIMIZE_FOR_PERFORMANCE"
    assert "Compiler optimization level" in exp.summary
    assert exp.fix.startswith("set CC_OPTIMIZE_FOR_SIZE: y")


def test_select_forced_relocatable(tree612, model_for, kbuild_base, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    model = model_for(tree612, "x86_64", "gcc")
    model.load(kbuild_base(tree612, "x86_64", "gcc", "x86_64_defconfig"),
               _fragment(tmp_path, ["# CONFIG_RELOCATABLE is not set"]))
    assert model.value("RELOCATABLE") == "y"
    exp = model.explain("RELOCATABLE", "n")
    assert exp.chain[0].kind == "select" and exp.chain[0].symbol == "EFI_STUB"
    assert exp.chain[0].source == "base config"
    assert exp.fix == "set EFI_STUB: n in the profile (now y, from base config)"


def test_arch_select_cannot_be_undone(tree612, model_for, kbuild_base) -> None:  # type: ignore[no-untyped-def]
    model = model_for(tree612, "x86_64", "gcc")
    model.load(kbuild_base(tree612, "x86_64", "gcc", "x86_64_defconfig"))
    exp = model.explain("PERF_EVENTS", "n")
    assert exp.chain[0].kind == "arch" and exp.chain[0].symbol == "X86"
    assert exp.fix.startswith("cannot be turned off on x86 in Linux 6.12")


def test_dependency_on_disabled_subsystem(tree612, model_for, kbuild_base, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    model = model_for(tree612, "x86_64", "gcc")
    model.load(kbuild_base(tree612, "x86_64", "gcc", "tinyconfig"),
               _fragment(tmp_path, ["CONFIG_SECCOMP=y", "CONFIG_SECCOMP_FILTER=y"]))
    exp = model.explain("SECCOMP_FILTER", "y")
    assert exp.chain[0].symbol == "NET" and exp.chain[0].source == "base config"
    assert exp.fix == "set NET: y in the profile (now n, from base config)"


def test_version_missing_symbol(tree61, model_for) -> None:  # type: ignore[no-untyped-def]
    model = model_for(tree61, "x86_64", "gcc")
    exp = model.explain("SLAB_BUCKETS", "y")
    assert exp.value == "(missing)"
    assert "does not exist in this kernel" in exp.summary


def test_promptless_default_condition(tree612, model_for, kbuild_base) -> None:  # type: ignore[no-untyped-def]
    model = model_for(tree612, "x86_64", "gcc")
    model.load(kbuild_base(tree612, "x86_64", "gcc", "tinyconfig"))
    exp = model.explain("SCHED_CORE", "y")
    assert "defaults to y only if SMP" in exp.summary
    assert exp.fix == "set SMP: y in the profile (now n, from base config)"


def test_hidden_prompt_keeps_the_default(tree612, model_for, kbuild_base, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    model = model_for(tree612, "x86_64", "gcc")
    model.load(kbuild_base(tree612, "x86_64", "gcc", "x86_64_defconfig"),
               _fragment(tmp_path, ["# CONFIG_FHANDLE is not set"]))
    assert model.value("FHANDLE") == "y"
    exp = model.explain("FHANDLE", "n")
    assert "prompt is hidden unless EXPERT" in exp.summary
    assert exp.fix.startswith("set EXPERT: y")


def test_selected_only_by_a_choice_member(tree612, model_for, kbuild_base) -> None:  # type: ignore[no-untyped-def]
    model = model_for(tree612, "x86_64", "gcc")
    model.load(kbuild_base(tree612, "x86_64", "gcc", "x86_64_defconfig"))
    exp = model.explain("GCC_PLUGIN_STRUCTLEAK", "y")
    assert exp.chain[0].kind == "choice"
    assert "INIT_STACK_ALL_ZERO=y" in exp.summary
    assert exp.fix.startswith("set GCC_PLUGIN_STRUCTLEAK_")


def test_version_gate_names_the_compiler_version(tree612, model_for, kbuild_base,  # type: ignore[no-untyped-def]
                                                 tmp_path: Path) -> None:
    """clang 14 is older than the kernel's gates: `CLANG_VERSION >= 150000` (PAC-to-SCS
    patching) and `!CC_IS_CLANG || CLANG_VERSION > 150006` (ZERO_CALL_USED_REGS). The root is
    the compiler's version, with the number it needs, not the fragment or the compiler family."""
    model = model_for(tree612, "arm64", "clang-14")
    model.load(kbuild_base(tree612, "arm64", "clang-14", "tinyconfig"),
               _fragment(tmp_path, ["CONFIG_SHADOW_CALL_STACK=y", "CONFIG_ARM64_PTR_AUTH=y",
                                    "CONFIG_ARM64_PTR_AUTH_KERNEL=y",
                                    "CONFIG_UNWIND_PATCH_PAC_INTO_SCS=y",
                                    "CONFIG_ZERO_CALL_USED_REGS=y"]))
    for symbol, needed in (("UNWIND_PATCH_PAC_INTO_SCS", ">= 150000"),
                           ("ZERO_CALL_USED_REGS", "> 150006")):
        assert model.value(symbol) == "n"
        exp = model.explain(symbol, "y")
        root = exp.chain[-1]
        assert (root.symbol, root.value, root.needed, root.kind) == (
            "CLANG_VERSION", "140006", needed, "toolchain"), exp.chain
        assert "$(cc-version)" in exp.summary
        assert exp.fix.startswith("the toolchain is too old: CLANG_VERSION is 140006")
        assert exp.cause == f"the toolchain gives CLANG_VERSION=140006, {needed} needed"
