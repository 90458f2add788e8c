"""Binary markers on a real (tiny) arm64 object: instruction families by mask, and markers that
another mechanism replaces. The full android-arm64 build is where these were found wanting:
arm64 kCFI has no __cfi_ symbols, and DYNAMIC_SCS patches the shadow call stack in at boot."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from kbuild_py.binary import check_binary

AS = "aarch64-linux-gnu-as"

SOURCE = """
    .text
    .globl f
f:  paciasp
    brk #0x8000         // kCFI trap, registers x0/x0
    brk #0x83ff         // kCFI trap, registers x31/x31
    brk #0x800          // BUG(): not a kCFI trap
    brk #0x8400         // outside CFI_BRK_IMM_MASK
    .byte 0, 0          // misalign what follows
    .byte 0x00, 0x00, 0x30, 0xd4  // a kCFI trap's bytes at an unaligned offset: no instruction
    .balign 4
    str x30, [x18], #8  // static shadow call stack push
    autiasp
    ret
"""


@pytest.fixture(scope="module")
def vmlinux(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which(AS) is None:
        pytest.skip(f"{AS} is installed by ./setup (gcc-aarch64-linux-gnu)")
    d = tmp_path_factory.mktemp("elf")
    (d / "f.S").write_text(SOURCE)
    subprocess.run([AS, "-march=armv8.3-a", "-o", str(d / "vmlinux"), str(d / "f.S")],
                   check=True)
    (d / "System.map").write_text("0000000000000000 T f\n0000000000000040 t __pi_scs_patch\n")
    return d / "vmlinux", d / "System.map"


def _checks(vmlinux: tuple[Path, Path], **config: str) -> dict[str, tuple[str, str]]:
    return {c.name: (c.status, c.detail) for c in check_binary(*vmlinux, "arm64", config)}


def test_kcfi_traps_are_counted_by_mask_at_instruction_boundaries(
        vmlinux: tuple[Path, Path]) -> None:
    status, detail = _checks(vmlinux, CFI_CLANG="y")["kcfi-checks"]
    assert re.match(r"2 x d4300000/ffff801f in executable sections \(need 100\)", detail)
    assert status == "unmet"  # two traps are not a kCFI kernel
    assert _checks(vmlinux)["kcfi-checks"][0] == "n/a"
    assert _checks(vmlinux, CFI_CLANG="y")["kcfi-type-hashes"] == ("n/a", "only on x86_64")


def test_a_marker_another_mechanism_replaces_is_not_applicable(
        vmlinux: tuple[Path, Path]) -> None:
    static = _checks(vmlinux, SHADOW_CALL_STACK="y")
    assert static["shadow-call-stack"][1].startswith("1 x f800865e")
    assert static["dynamic-shadow-call-stack"][0] == "n/a"
    dynamic = _checks(vmlinux, SHADOW_CALL_STACK="y", DYNAMIC_SCS="y")
    assert dynamic["shadow-call-stack"] == ("n/a", "DYNAMIC_SCS is set instead")
    assert dynamic["dynamic-shadow-call-stack"][0] == "ok"  # the boot-time patcher is there
