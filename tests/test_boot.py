"""Run-time proof: the qemu-x86_64 (gcc, plugins) and qemu-arm64-clang (clang: kCFI, PAC, BTI)
kernels of the newest kernel (7.3) are built
once for the session (conftest.SESSION_KERNELS) and booted once per LKDTM test under QEMU;
every protection the profile claims is observed; a negative control (the same kernel booted
with protections switched off on the command line) must be reported NOT protected.

The fast tests at the end check the harness itself (cpio writer, verdict logic, reports, errors)
without a kernel.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from kbtest import REPO, TARBALL_73, TEST_OUT, TINY, shared_out
from kbuild_py import boot, initramfs, verdict
from kbuild_py import report as render
from kbuild_py.catalog import DATA_FOLDERS
from kbuild_py.errors import InfraError, UserError
from kbuild_py.lkdtm import load_expectations
from kbuild_py.plan import make_plan
from kbuild_py.profile import SourcePin
from kbuild_py.verdict import (
    INCONCLUSIVE,
    NOT_APPLICABLE,
    NOT_PROTECTED,
    PROTECTED,
    Boot,
    BootReport,
    OptionValue,
    Verdict,
    undecided,
)

# Protections the qemu profiles claim and the suite must see, by LKDTM test (current names).
REQUIRED_COMMON = [
    "WRITE_RO", "WRITE_RO_AFTER_INIT", "WRITE_KERN", "EXEC_DATA", "EXEC_STACK", "EXEC_KMALLOC",
    "EXEC_VMALLOC", "EXEC_RODATA", "ACCESS_USERSPACE", "CORRUPT_STACK",
    "CORRUPT_STACK_STRONG", "STACK_GUARD_PAGE_LEADING", "STACK_GUARD_PAGE_TRAILING",
    "REPORT_STACK_CANARY", "SLAB_FREE_DOUBLE", "SLAB_FREE_CROSS", "BUDDY_INIT_ON_ALLOC",
    "CORRUPT_LIST_ADD", "CORRUPT_LIST_DEL", "ARRAY_BOUNDS",
]
FAMILIES = ("USERCOPY_", "REFCOUNT_", "FORTIFY_")
REQUIRED = {
    "qemu-x86_64": [*REQUIRED_COMMON, "EXEC_USERSPACE", "UNSET_SMEP", "KSTACK_ERASE"],
    "qemu-arm64-clang": [*REQUIRED_COMMON, "CFI_FORWARD_PROTO", "CORRUPT_PAC", "CFI_BACKWARD"],
}
# What the booted kernel cannot decide, and the reason it must give (lkdtm/tests.yaml): kCFI
# reads the type hash before LKDTM's call into user memory, so PXN is not reached.
UNDECIDABLE = {"qemu-x86_64": {}, "qemu-arm64-clang": {"EXEC_USERSPACE": "undecidable with CFI"}}
SUITE_PROFILES = list(REQUIRED)
# Protected wherever the profile enables them, n/a (without a boot) where it does not.
WHERE_ENABLED = ["KSTACK_ERASE", "READ_AFTER_FREE", "READ_BUDDY_AFTER_FREE"]
NOT_ON_ARCH = {
    "qemu-x86_64": ["CORRUPT_PAC", "CFI_BACKWARD", "WRITE_OPD", "DOUBLE_FAULT"],
    "qemu-arm64-clang": ["UNSET_SMEP", "WRITE_OPD", "DOUBLE_FAULT"],
}
# Switched off at run time on the same kernel: both must be reported NOT protected.
# (init_on_free=0 too: memory zeroed when freed would hide init_on_alloc=0.)
NEGATIVE_CONTROL = {"hardened_usercopy=off": "USERCOPY_SLAB_SIZE_TO",
                    "init_on_alloc=0 init_on_free=0": "BUDDY_INIT_ON_ALLOC"}


def plan_73(profile: str):  # type: ignore[no-untyped-def]
    """The plan of the session's ``profile`` kernel (conftest.SESSION_KERNELS: from 7.3)."""
    return make_plan(profile, TEST_OUT, SourcePin("tarball", str(TARBALL_73)))


def _table(report: BootReport) -> str:
    return render.boot_text(report)


@pytest.mark.kernel
@pytest.mark.build
@pytest.mark.parametrize("profile", SUITE_PROFILES)
def test_suite_proves_the_claimed_protections(session_kernel, profile: str) -> None:  # type: ignore[no-untyped-def]
    folder = session_kernel(profile)
    plan = plan_73(profile)
    report = boot.run_suite(plan, jobs=2)
    written = render.write_boot_reports(report, folder / "boot")
    table = _table(report)

    assert not report.failed, table
    by_name = {v.test: v for v in report.verdicts}
    for name in REQUIRED[profile]:
        assert by_name[name].verdict == PROTECTED, f"{name}: {by_name[name].reason}\n{table}"
        assert by_name[name].claimed
    for prefix in FAMILIES:  # every member this kernel's LKDTM has (7.3 dropped one FORTIFY_)
        family = [v for v in report.verdicts if v.test.startswith(prefix)
                  and not v.reason.startswith(f"not in {report.kernel}:")]
        assert len(family) >= 4, prefix
        assert all(v.verdict == PROTECTED for v in family), table
    for name in WHERE_ENABLED:
        v = by_name[name]
        assert v.verdict == (PROTECTED if v.claimed else NOT_APPLICABLE), f"{name}\n{table}"
        if not v.claimed:
            assert "not claimed: needs" in v.reason and v.seconds == 0
    # LKDTM's method fails by design on 7.3 with per-call-site kmalloc caches (tests.yaml says
    # why): protected when a boot decides, else n/a with that reason, never inconclusive.
    slab = by_name["SLAB_INIT_ON_ALLOC"]
    assert slab.verdict == PROTECTED or (
        slab.verdict == NOT_APPLICABLE
        and slab.reason.startswith("undecidable with KMALLOC_PARTITION_RANDOM")), slab.reason
    for name in NOT_ON_ARCH[profile]:
        assert by_name[name].verdict == NOT_APPLICABLE and "not on" in by_name[name].reason
    for name, reason in UNDECIDABLE[profile].items():
        assert by_name[name].verdict == NOT_APPLICABLE, f"{name}: {by_name[name].reason}"
        assert by_name[name].reason.startswith(reason), by_name[name].reason
    protected = [v for v in report.verdicts if v.verdict == PROTECTED]
    assert report.kernel.startswith("7.3."), report.kernel
    # 6.12 proves 68 on x86_64; 7.3's LKDTM lost FORTIFY_STR_OBJECT and passes SLAB_FREE_PAGE a
    # NULL cache (n/a, the reason says so), and its PTR_BOUNDS and FAM_BOUNDS need a compiler
    # with counted_by (gcc 12 has none): 66 on x86_64, 65 on arm64 (no SMEP test there).
    assert len(protected) >= 65, table
    for v in report.verdicts:
        assert v.verdict in (PROTECTED, NOT_APPLICABLE), f"{v.test}: {v.reason}\n{table}"
        if v.verdict == PROTECTED:
            log = Path(v.log).read_text()
            assert v.evidence and all(part in log for part in v.evidence.split(" | ")), v.test
            assert "Call Trace" not in v.evidence and "Call trace" not in v.evidence
        for option in v.options:
            assert option.name and not option.name.startswith("CONFIG_")

    # One boot per test (times are measured by bench/bench_boot.py, not asserted here).
    booted = [v for v in report.verdicts if v.seconds > 0]
    assert len(booted) == len({v.log for v in booted}) >= 25

    # Reports: text, JSON, JUnit with one testcase per test and no failure.
    data = json.loads(written[1].read_text())
    assert data["passed"] is True and data["counts"][PROTECTED] == len(protected)
    suite = ET.parse(written[2]).getroot().find("testsuite")
    assert suite is not None
    assert len(suite.findall("testcase")) == len(report.verdicts)
    assert suite.get("failures") == "0" and suite.get("errors") == "0"


@pytest.mark.kernel
@pytest.mark.build
@pytest.mark.parametrize("profile", SUITE_PROFILES)
def test_negative_control_is_reported(session_kernel, profile: str) -> None:  # type: ignore[no-untyped-def]
    """The harness can fail: the same kernel, protections switched off at run time."""
    folder = session_kernel(profile)
    plan = plan_73(profile)
    report = boot.run_suite(plan, tests=list(NEGATIVE_CONTROL.values()), jobs=2,
                            extra_cmdline=" ".join(NEGATIVE_CONTROL))
    written = render.write_boot_reports(report, folder / "boot", stem="boot-report-negative")
    table = _table(report)
    for param, name in NEGATIVE_CONTROL.items():
        v = report.verdict(name)
        assert v.verdict == NOT_PROTECTED, table
        assert v.claimed and v in report.failed
        assert v.cmdline.endswith(f"{' '.join(NEGATIVE_CONTROL)} kbuild_py_test={name}")
        assert param.split()[0] in v.cmdline
        assert "FAIL:" in v.reason and "booted with" in v.reason, v.reason
    suite = ET.parse(written[2]).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == str(len(NEGATIVE_CONTROL))
    assert "FAIL NOT protected" in written[0].read_text()
    # The plain run's logs are not overwritten by the control's.
    assert all("/logs-" in v.log for v in report.verdicts)


@pytest.mark.kernel
@pytest.mark.parametrize("kernel", ["tree612", "tree73"])
def test_expectations_match_the_lkdtm_of_each_kernel(kernel: str, request) -> None:  # type: ignore[no-untyped-def]
    """Every test a kernel's tests.txt runs is in lkdtm/tests.yaml (under its current name);
    every test there that applies to that kernel exists in its LKDTM, under the name the
    expectations give it for that version."""
    tree = request.getfixturevalue(kernel)
    listed = [line.split()[0] for line in
              (tree.path / "tools/testing/selftests/lkdtm/tests.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    crashtypes = set(re.findall(r"CRASHTYPE\((\w+)\)", "".join(
        p.read_text() for p in (tree.path / "drivers/misc/lkdtm").glob("*.c"))))
    for arch in ("x86_64", "arm64"):
        exp = load_expectations(arch)
        triggers = {t.trigger(tree.version): t for t in exp.tests.values()
                    if not t.missing_in(tree.version)}
        missing = [name for name in listed if name not in triggers]
        assert not missing, missing
        unknown = [name for name in triggers if name not in crashtypes]
        assert not unknown, unknown


# --------------------------------------------------------------------------- fast, no kernel


def _parse_newc(data: bytes) -> dict[str, tuple[int, tuple[int, int], bytes]]:
    out: dict[str, tuple[int, tuple[int, int], bytes]] = {}
    pos = 0
    while True:
        assert data[pos:pos + 6] == b"070701"
        fields = [int(data[pos + 6 + 8 * i: pos + 14 + 8 * i], 16) for i in range(13)]
        namesize, filesize = fields[11], fields[6]
        name = data[pos + 110: pos + 110 + namesize - 1].decode()
        pos += 110 + namesize
        pos += -pos % 4
        body = data[pos:pos + filesize]
        pos += filesize + (-filesize % 4)
        if name == "TRAILER!!!":
            assert pos == len(data)
            return out
        out[name] = (fields[1], (fields[9], fields[10]), body)


def test_cpio_newc_layout() -> None:
    archive = initramfs.cpio_newc(b"\x7fELF-init")
    entries = _parse_newc(archive)
    assert list(entries) == ["dev", "dev/console", "dev/kmsg", "debug", "init"]
    assert entries["init"] == (0o100755, (0, 0), b"\x7fELF-init")
    assert entries["dev/console"][:2] == (0o20600, (5, 1))
    assert entries["dev/kmsg"][1] == (1, 11)
    assert entries["debug"][0] & 0o170000 == 0o040000
    assert len(archive) % 4 == 0
    assert initramfs.cpio_newc(b"x") == initramfs.cpio_newc(b"x"), "deterministic"


def test_initramfs_is_cached_by_content(tmp_path: Path) -> None:
    plan = make_plan("qemu-x86_64", tmp_path)
    init = tmp_path / "init"
    init.write_bytes(b"one")
    first = initramfs.build_initramfs(plan, init)
    assert first.parent == tmp_path / "qemu-x86_64" / "boot"
    assert _parse_newc(gzip.decompress(first.read_bytes()))["init"][2] == b"one"
    mtime = first.stat().st_mtime_ns
    assert initramfs.build_initramfs(plan, init) == first and first.stat().st_mtime_ns == mtime
    init.write_bytes(b"two")
    assert initramfs.build_initramfs(plan, init) != first


CONSOLE_HEAD = ("Linux version 6.12\nlkdtm: No crash points registered\n"
                "KBUILD-PY: start X repeat 1\n")


def _judge(name: str, console: str, *, arch: str = "x86_64", timed_out: bool = False) -> tuple[
        str, str, str, str]:
    test = load_expectations(arch).tests[name]
    return verdict.judge(test, Boot(console, 1.0, timed_out, None if timed_out else 0), 30)


def test_judge_protected_needs_the_protections_own_message() -> None:
    fault = ("KBUILD-PY: trigger WRITE_RO 1/1\nlkdtm: attempting bad rodata write at ff\n"
             "BUG: unable to handle page fault for address: ff\n"
             "#PF: supervisor write access in kernel mode\n"
             "#PF: error_code(0x0003) - permissions violation\nCall Trace:\n"
             "KBUILD-PY: killed WRITE_RO signal 9\nKBUILD-PY: done WRITE_RO\n")
    verdict, reason, evidence, ending = _judge("WRITE_RO", CONSOLE_HEAD + fault)
    assert (verdict, ending) == (PROTECTED, "killed")
    assert "permissions violation" in evidence
    # A generic oops is not this protection's message.
    other = fault.replace("#PF: error_code(0x0003) - permissions violation", "#PF: oops")
    verdict, reason, _, _ = _judge("WRITE_RO", CONSOLE_HEAD + other)
    assert verdict == INCONCLUSIVE and "not with this protection's message" in reason
    # The message alone is not enough when the task was supposed to die and did not.
    survived = fault.replace("killed WRITE_RO signal 9", "survived WRITE_RO")
    assert _judge("WRITE_RO", CONSOLE_HEAD + survived)[0] == INCONCLUSIVE


def test_judge_reads_the_messages_behind_printk_timestamps_and_callers() -> None:
    """Shipped configurations print with PRINTK_TIME (and PRINTK_CALLER): a pattern that spans
    two lines must still match (server-x86_64-lkdtm's first boot read nine protections that
    worked as inconclusive)."""
    fault = ("KBUILD-PY: trigger EXCEPTION 1/1\n"
             "[    1.998968] lkdtm: Performing direct entry EXCEPTION\n"
             "[    1.999392] BUG: kernel NULL pointer dereference, address: 0000000000000000\n"
             "[    1.999550][   T72] #PF: supervisor write access in kernel mode\n"
             "[    2.004314] Kernel panic - not syncing: Fatal exception\n")
    verdict, _, evidence, ending = _judge("EXCEPTION", CONSOLE_HEAD + fault)
    assert (verdict, ending) == (PROTECTED, "panic")
    assert evidence.startswith("BUG: kernel NULL pointer dereference")


def test_judge_not_protected_and_lkdtm_comment() -> None:
    console = CONSOLE_HEAD + (
        "KBUILD-PY: trigger USERCOPY_KERNEL 1/1\nlkdtm: FAIL: bad copy_to_user() not detected!\n"
        "lkdtm: Unexpected! This kernel (6.12) was built with CONFIG_HARDENED_USERCOPY=y\n"
        "KBUILD-PY: survived USERCOPY_KERNEL\nKBUILD-PY: done USERCOPY_KERNEL\n")
    verdict, reason, evidence, ending = _judge("USERCOPY_KERNEL", console)
    assert (verdict, ending) == (NOT_PROTECTED, "survived")
    assert "FAIL: bad copy_to_user() not detected" in reason and "Unexpected!" in reason
    # Ran to its end without the report: NOT protected too.
    quiet = CONSOLE_HEAD + ("KBUILD-PY: trigger SLAB_FREE_DOUBLE 1/1\n"
                            "KBUILD-PY: survived SLAB_FREE_DOUBLE\nKBUILD-PY: done x\n")
    verdict, reason, _, _ = _judge("SLAB_FREE_DOUBLE", quiet)
    assert verdict == NOT_PROTECTED and "never reported" in reason


def test_judge_says_which_inconclusive() -> None:
    verdict, reason, _, ending = _judge("WRITE_RO", "SeaBIOS\nLinux version", timed_out=True)
    assert (verdict, ending) == (INCONCLUSIVE, "timeout") and "before the test ran" in reason
    verdict, reason, _, _ = _judge("WRITE_RO", "qemu: could not load kernel")
    assert verdict == INCONCLUSIVE and "QEMU exited (0) before the test" in reason
    verdict, reason, _, _ = _judge("WRITE_RO", "Kernel panic - not syncing: VFS: no root\n")
    assert verdict == INCONCLUSIVE and "panicked before the test" in reason
    hung = CONSOLE_HEAD + "KBUILD-PY: trigger WRITE_RO 1/1\nlkdtm: attempting bad rodata\n"
    verdict, reason, _, _ = _judge("WRITE_RO", hung, timed_out=True)
    assert verdict == INCONCLUSIVE and "timed out after 30 s without a verdict" in reason
    realloc = CONSOLE_HEAD + ("KBUILD-PY: trigger SLAB_INIT_ON_ALLOC 1/1\n"
                              "lkdtm: Reallocation missed clobbered memory.\n"
                              "lkdtm: Memory appears initialized (0, no earlier values)\n"
                              "KBUILD-PY: survived SLAB_INIT_ON_ALLOC\n")
    slab = load_expectations("x86_64").tests["SLAB_INIT_ON_ALLOC"]
    got, _, evidence, _ = _judge("SLAB_INIT_ON_ALLOC", realloc)
    assert got == INCONCLUSIVE
    # LKDTM could not decide (a race): the suite boots again, up to the test's attempts.
    assert slab.attempts > 1 and undecided(slab, got, evidence)
    # A boot that timed out, or a test without such lines, is not booted again.
    timed = _judge("SLAB_INIT_ON_ALLOC", "SeaBIOS\nLinux version", timed_out=True)
    assert not undecided(slab, timed[0], timed[2])


# Seen on the clang 7.3.4 kernels: the kCFI call site reads the type hash just before LKDTM's
# page-aligned user page (x86_64 at -15, arm64 at -4), where nothing is mapped.
KCFI_READ = {
    "x86_64": "BUG: unable to handle page fault for address: 00007efef7483ff1\n"
              "#PF: supervisor read access in kernel mode\n",
    "arm64": "Unable to handle kernel paging request at virtual address 0000ffff992fcffc\n"
             "Mem abort info:\n",
}


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_kcfi_stopping_exec_userspace_first_is_undecided_not_protected(arch: str) -> None:
    """kCFI faults on its hash read before the kernel could jump to user memory: SMEP/PXN was
    not put to the test, so the verdict is not PROTECTED; the suite makes it n/a on a kernel
    with CFI (tests.yaml undecidable_with), and leaves it inconclusive on one without."""
    test = load_expectations(arch).tests["EXEC_USERSPACE"]
    console = CONSOLE_HEAD + ("KBUILD-PY: trigger EXEC_USERSPACE 1/1\n"
                              "lkdtm: attempting bad execution at 00007efef7484000\n"
                              + KCFI_READ[arch] + "Kernel panic - not syncing: Fatal exception\n")
    got, _, evidence, _ = _judge("EXEC_USERSPACE", console, arch=arch)
    assert got == INCONCLUSIVE and undecided(test, got, evidence)
    assert test.undecidable_with and "CFI" in test.undecidable_with[0]
    # Any other fault on a user address is no such case.
    other = console.replace("ff1\n", "ff8\n").replace("ffc\n", "ff8\n")
    got, _, evidence, _ = _judge("EXEC_USERSPACE", other, arch=arch)
    assert got == INCONCLUSIVE and not undecided(test, got, evidence)
    assert load_expectations("x86_64").tests["WRITE_RO"].attempts == 1


def test_judge_not_applicable_cases() -> None:
    refused = CONSOLE_HEAD + "KBUILD-PY: trigger NEW 1/1\nKBUILD-PY: refused NEW errno 22\n"
    verdict, reason, _, _ = _judge("WRITE_RO", refused)
    assert verdict == NOT_APPLICABLE and "no such test" in reason
    xfail = CONSOLE_HEAD + ("KBUILD-PY: trigger CFI_BACKWARD 1/1\n"
                            "lkdtm: XFAIL: this test is arm64-only\nKBUILD-PY: survived x\n")
    assert _judge("CFI_BACKWARD", xfail, arch="arm64")[0] == NOT_APPLICABLE
    no_mte = CONSOLE_HEAD + "KBUILD-PY: trigger SLAB_LINEAR_OVERFLOW 1/1\nKBUILD-PY: survived x\n"
    verdict, reason, _, _ = _judge("SLAB_LINEAR_OVERFLOW", no_mte, arch="arm64")
    assert verdict == NOT_APPLICABLE and "MTE" in reason


def test_after_limits_where_the_protection_may_show() -> None:
    early = CONSOLE_HEAD + ("KBUILD-PY: trigger CFI_BACKWARD 1/1\n"
                            "Unable to handle kernel paging request at virtual address 0\n"
                            "KBUILD-PY: killed CFI_BACKWARD signal 11\n")
    assert _judge("CFI_BACKWARD", early, arch="arm64")[0] == INCONCLUSIVE
    late = early.replace("KBUILD-PY: trigger CFI_BACKWARD 1/1\n",
                         "KBUILD-PY: trigger CFI_BACKWARD 1/1\n"
                         "lkdtm: Attempting checked stack return address redirection ...\n")
    assert _judge("CFI_BACKWARD", late, arch="arm64")[0] == PROTECTED


def _fake_dist(tmp_path: Path, profile: str = "qemu-x86_64") -> Path:
    dist = tmp_path / profile / "dist"
    dist.mkdir(parents=True)
    (dist / "bzImage").write_bytes(b"kernel")
    (dist / "config").write_text("CONFIG_STRICT_KERNEL_RWX=y\n# CONFIG_KASAN is not set\n")
    return dist


def test_unclaimed_and_foreign_tests_need_no_boot(tmp_path: Path) -> None:
    _fake_dist(tmp_path)
    plan = make_plan("qemu-x86_64", tmp_path)
    report = boot.run_suite(plan, tests=["SLAB_LINEAR_OVERFLOW", "CORRUPT_PAC"])
    assert [v.verdict for v in report.verdicts] == [NOT_APPLICABLE, NOT_APPLICABLE]
    kasan, pac = report.verdicts
    assert kasan.reason == "not claimed: needs KASAN (off in the final .config)"
    assert kasan.options == (OptionValue("KASAN", None),) and not kasan.claimed
    assert pac.reason.startswith("not on x86_64: ")
    assert not report.failed


def test_missing_qemu_names_the_package(tmp_path: Path) -> None:
    _fake_dist(tmp_path)
    plan = make_plan("qemu-x86_64", tmp_path)
    qemu = {**plan.arch.qemu, "binary": "qemu-system-nonexistent"}
    plan = dataclasses.replace(plan, arch=dataclasses.replace(plan.arch, qemu=qemu))
    with pytest.raises(InfraError) as e:
        boot.run_suite(plan, tests=["WRITE_RO"])
    assert "qemu-system-nonexistent not found" in e.value.one_line()
    assert "apt-get install qemu-system-x86" in e.value.one_line()


def test_missing_compiler_names_the_package(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from kbuild_py.toolchain import detect

    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    detect.cache_clear()
    try:
        plan = make_plan("qemu-arm64", tmp_path)
        with pytest.raises(InfraError) as e:
            initramfs.build_init(plan)
        assert "aarch64-linux-gnu-gcc not found" in e.value.one_line()
        assert "apt-get install gcc-aarch64-linux-gnu" in e.value.one_line()
    finally:
        detect.cache_clear()


@pytest.mark.kernel
def test_the_init_builds_with_a_clang_toolchain(tmp_path: Path, tree612) -> None:  # type: ignore[no-untyped-def]
    """toolchains/llvm.yaml's init: flags build initramfs/init.c for arm64 with clang 19 and
    its lld (the qemu kernels' boots prove the gcc ones): a static aarch64 executable."""
    from kbuild_py.toolchain import load_toolchain

    plan = make_plan(str(TINY / "tiny-arm64.yaml"), shared_out(tmp_path / "out", [tree612.path]))
    plan = dataclasses.replace(plan, toolchain=load_toolchain("clang-19"))
    init = initramfs.build_init(plan).read_bytes()
    assert init[:4] == b"\x7fELF" and init[4] == 2, "a 64-bit ELF"
    assert int.from_bytes(init[16:18], "little") == 2, "an executable (ET_EXEC: static)"
    assert int.from_bytes(init[18:20], "little") == 183, "for aarch64 (EM_AARCH64)"
    assert b"ld-linux" not in init, "no dynamic loader"


def test_a_toolchain_without_init_flags_is_one_line(data_root: Path, tmp_path: Path) -> None:
    gcc = data_root / "toolchains" / "gcc.yaml"
    text = gcc.read_text()
    start = text.index("init:")
    gcc.write_text(text[:start] + text[text.index("  libs:", start):].split("\n", 1)[1])
    plan = make_plan("qemu-x86_64", tmp_path / "out")
    with pytest.raises(UserError, match=r"toolchains/gcc.yaml: no init: flags"):
        initramfs.build_init(plan)


def test_bad_input_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_dist(tmp_path / "out")
    plan = make_plan("qemu-x86_64", tmp_path / "out")
    with pytest.raises(UserError, match="unknown LKDTM test 'WRITE_R0' \\(did you mean "
                                        "'WRITE_RO'\\?\\)"):
        boot.run_suite(plan, tests=["WRITE_R0"])
    with pytest.raises(UserError) as missing:
        boot.run_suite(make_plan("qemu-x86_64", tmp_path / "none"))
    assert re.search(r"no built kernel at \S+/dist/bzImage \(build it first: scons "
                     r"profile=qemu-x86_64\)", missing.value.one_line())

    data = tmp_path / "data"
    for name in DATA_FOLDERS:
        shutil.copytree(REPO / name, data / name)
    monkeypatch.setenv("KBUILD_PY_DATA", str(data))
    tests_yaml = data / "lkdtm" / "tests.yaml"
    text = tests_yaml.read_text()
    tests_yaml.write_text(text.replace("outcome: panic", "outcome: crash", 1))
    line = text[:text.index("outcome: panic")].count("\n") + 1
    with pytest.raises(UserError) as e:
        load_expectations("x86_64")
    assert f"lkdtm/tests.yaml:{line}: tests.CORRUPT_STACK.outcome: must be one of" in str(e.value)
    tests_yaml.write_text(text.replace("'pinned CR4 bits changed: '", "'pinned CR4 (bits'"))
    with pytest.raises(UserError, match=r"tests.yaml:\d+: bad regex 'pinned CR4 \(bits'"):
        load_expectations("x86_64")


def test_reports_render_every_verdict(tmp_path: Path) -> None:
    opts = (OptionValue("HARDENED_USERCOPY", "y"),)
    report = BootReport("p", "x86_64", "6.12.1", "bzImage", "lkdtm/tests.yaml", ["qemu"],
                        "console=ttyS0", 2, 30.0, verdicts=[
                            Verdict("A", "a", PROTECTED, "msg", opts, True, "killed", "killed",
                                    "msg", 2.0, "a.log"),
                            Verdict("B", "b", NOT_PROTECTED, "FAIL", opts, True, "killed",
                                    "survived", "", 2.0, "b.log"),
                            Verdict("C", "c", INCONCLUSIVE, "timeout", opts, True, "killed",
                                    "timeout", "", 30.0, "c.log"),
                            Verdict("D", "d", NOT_APPLICABLE, "not claimed", (), False,
                                    "killed")])
    assert [v.test for v in report.failed] == ["B", "C"]
    txt, js, xml = render.write_boot_reports(report, tmp_path)
    assert "FAIL NOT protected" in txt.read_text() and "FAIL inconclusive" in txt.read_text()
    data = json.loads(js.read_text())
    assert data["passed"] is False and data["counts"] == {
        PROTECTED: 1, NOT_PROTECTED: 1, NOT_APPLICABLE: 1, INCONCLUSIVE: 1}
    assert data["verdicts"][0]["options"] == [{"name": "HARDENED_USERCOPY", "final": "y"}]
    suite = ET.parse(xml).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"),
            suite.get("skipped")) == ("4", "1", "1", "1")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert cases["B"].find("failure") is not None and cases["C"].find("error") is not None
    assert cases["D"].find("skipped") is not None


@pytest.mark.kernel
@pytest.mark.build
@pytest.mark.parametrize("profile", SUITE_PROFILES)
def test_patched_builtin_defaults_are_in_force_at_boot(session_kernel, profile: str) -> None:  # type: ignore[no-untyped-def]
    """The hardening-defaults patch queue's behaviour (refreshed for 7.3), seen in the running
    kernel."""
    session_kernel(profile)
    plan = plan_73(profile)
    checks = {c.path: c for c in boot.run_default_checks(plan)}
    kptr = checks["/proc/sys/kernel/kptr_restrict"]
    assert (kptr.status, kptr.observed) == ("ok", "2"), kptr
    yama = checks["/proc/sys/kernel/yama/ptrace_scope"]
    assert (yama.status, yama.observed) == ("ok", "3"), yama
    assert checks["/proc/sys/kernel/io_uring_disabled"].status == "n/a"  # IO_URING is off
    # Negative control: the same kernel with the sysctl lowered on its command line.
    lowered = {c.path: c for c in boot.run_default_checks(
        plan, extra_cmdline="sysctl.kernel.kptr_restrict=0")}
    assert lowered["/proc/sys/kernel/kptr_restrict"].status == "unmet"
    assert lowered["/proc/sys/kernel/kptr_restrict"].observed == "0"


@pytest.mark.kernel
@pytest.mark.build
@pytest.mark.uses_kernel("qemu-arm64-clang")
def test_device_trees_the_profile_lists_are_shipped(session_kernel) -> None:  # type: ignore[no-untyped-def]
    """The arm64 qemu layer lists the FVP device tree: built by Kbuild's dtc (here with clang's
    preprocessor), in dist/, manifest, SBOM."""
    dist = session_kernel("qemu-arm64-clang") / "dist"
    name = "dtbs/arm/fvp-base-revc.dtb"
    blob = (dist / name).read_bytes()
    assert blob[:4] == b"\xd0\x0d\xfe\xed"  # a flattened device tree
    assert int.from_bytes(blob[4:8], "big") == len(blob)  # totalsize: dtc wrote all of it
    manifest = json.loads((dist / "manifest.json").read_text())
    assert manifest["outputs"][name] == hashlib.sha256(blob).hexdigest()
    sbom = json.loads((dist / "sbom.spdx.json").read_text())
    assert f"./{name}" in {f["fileName"] for f in sbom["files"]}
