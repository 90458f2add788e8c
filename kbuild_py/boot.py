"""boot: prove the protections at run time. One QEMU boot per LKDTM test, a verdict per test.

What each test must print, which options it vouches for and where it applies is data
(lkdtm/tests.yaml, read by lkdtm.py); the parts are apart:

    initramfs  initramfs/init.c, built with the profile's own compiler against the tree's nolibc
               and UAPI headers, packed as newc and gzip'd, cached by content (initramfs.py)
    qemu       qemu -kernel dist/<image> -initrd ... -append "console=... kbuild_py_test=<TEST>":
               the init triggers the test through debugfs provoke-crash/DIRECT from a child
               process, prints markers to /dev/kmsg and reboots (QEMU runs with -no-reboot)
    verdict    the console after the trigger marker against the test's patterns (verdict.judge)

This module runs the suite: which tests need a boot, the boots in parallel, the report; and the
one boot that reads the built-in defaults the .config sets (checks/runtime.yaml).

Traps kept out by design: tests are never triggered with the lkdtm.cpoint_* boot parameters
(they fire before read-only and no-execute mappings are applied), and no two tests share a boot
(warn-once state and earlier corruption change later outcomes).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import catalog, qemu
from .errors import UserError
from .fsutil import exclusive_lock
from .initramfs import build_init, build_initramfs
from .kconfig.dotconfig import read_config
from .lkdtm import Expectations, LkdtmTest, load_expectations
from .plan import BuildPlan
from .status import Status
from .ui import Progress
from .verdict import NOT_APPLICABLE, BootReport, OptionValue, Verdict, judge, undecided


def _option_values(test: LkdtmTest, final: dict[str, str],
                   cmdline: list[str]) -> tuple[tuple[OptionValue, ...], bool]:
    def value(item: str) -> str | None:
        if "=" in item:  # a kernel parameter, e.g. init_on_free=1: its last setting counts
            key = item.split("=", 1)[0] + "="
            last = next((w for w in reversed(cmdline) if w.startswith(key)), None)
            return "set" if last == item else None
        v = final.get(item)
        return None if v in (None, "n") else v

    values = tuple(OptionValue(item, value(item)) for item in test.vouched_items())
    claimed = all(any(value(item) is not None for item in group) for group in test.vouches)
    return values, claimed


def _kernel_version(plan: BuildPlan) -> str:
    try:
        manifest = json.loads((plan.paths.manifest).read_text())
        return str(manifest["kernel"]["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return "unknown"


def _parsed(version: str) -> tuple[int, ...] | None:
    """'6.12.0+' or '7.3.4-rc1' as (6, 12, 0) or (7, 3, 4); None if it is no version."""
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
    return tuple(int(n) for n in m.groups() if n is not None) if m else None


def select_tests(expectations: Expectations, names: list[str] | None) -> list[LkdtmTest]:
    if names is None:
        return list(expectations.tests.values())
    out = []
    for name in names:
        if name not in expectations.tests:
            raise UserError(f"unknown LKDTM test '{name}'"
                            f"{catalog.suggest(name, set(expectations.tests))}",
                            f"known tests are listed in {catalog.display(expectations.path)}")
        out.append(expectations.tests[name])
    return out


def run_suite(plan: BuildPlan, *, tests: list[str] | None = None, jobs: int = 2,
              extra_cmdline: str = "", timeout: float = 30) -> BootReport:
    """Boot the profile's built kernel once per LKDTM test; a verdict for each test.

    Tests that do not apply to the arch, or whose options the final .config does not set, get
    "n/a" without a boot. Console logs are kept in out/<p>/boot/logs/<TEST>.log.
    """
    started = time.monotonic()
    arch = plan.arch
    exp = load_expectations(arch.name)
    chosen = select_tests(exp, tests)
    dist = plan.paths.dist
    image = dist / Path(arch.image_path).name
    config = dist / "config"
    if not image.is_file() or not config.is_file():
        raise UserError(f"profile {plan.profile.name}: no built kernel at {image}",
                        f"build it first: scons profile={plan.profile.name}")
    final = read_config(config)
    base_cmdline = qemu.console_words(plan, exp)
    extra = extra_cmdline.split()
    report = BootReport(
        profile=plan.profile.name, arch=arch.name, kernel=_kernel_version(plan), image=str(image),
        expectations=catalog.display(exp.path), qemu=[], cmdline=" ".join(base_cmdline + extra),
        jobs=jobs, timeout=timeout)
    version = _parsed(report.kernel)
    if not any(report.kernel.startswith(k + ".") for k in exp.kernel.split()):
        report.notes.append(f"the expectations were read from Linux {exp.kernel}; this kernel is "
                            f"{report.kernel}: a pattern that changed reads as inconclusive")
    decided: dict[str, Verdict] = {}
    to_boot: list[tuple[LkdtmTest, tuple[OptionValue, ...], list[str]]] = []
    for t in chosen:
        words = base_cmdline + list(t.cmdline) + extra
        options, claimed = _option_values(t, final, words)
        if not t.applies_to(arch.name):
            decided[t.name] = Verdict(t.name, t.what, NOT_APPLICABLE,
                                      f"not on {arch.name}: {t.why or 'arch limit'}", options,
                                      False, t.outcome)
        elif t.missing_in(version):
            decided[t.name] = Verdict(t.name, t.what, NOT_APPLICABLE,
                                      f"not in {report.kernel}: {t.missing_in(version)}",
                                      options, False, t.outcome)
        elif not claimed:
            missing = ", ".join(" or ".join(g) for g in t.vouches
                                if all(o.final is None for o in options if o.name in g))
            decided[t.name] = Verdict(t.name, t.what, NOT_APPLICABLE,
                                      f"not claimed: needs {missing} (off in the final .config)",
                                      options, False, t.outcome)
        else:
            to_boot.append((t, options, words))
    if to_boot:
        qemu.binary(plan)  # a missing QEMU is named before the init is built
        with exclusive_lock(plan.paths.boot / ".lock", f"boot tests of {plan.profile.name}"):
            initramfs = build_initramfs(plan, build_init(plan))
            command = qemu.argv(plan, exp, image, initramfs)
            report.qemu = command
            # Logs of a run with extra parameters (a negative control) do not replace the
            # plain run's logs.
            tag = hashlib.sha256(" ".join(extra).encode()).hexdigest()[:8] if extra else ""
            logs = plan.paths.boot / (f"logs-{tag}" if tag else "logs")

            def one(item: tuple[LkdtmTest, tuple[OptionValue, ...], list[str]]) -> Verdict:
                t, options, words = item
                words = [*words, f"kbuild_py_test={t.trigger(version)}"]
                if t.repeat > 1:
                    words.append(f"kbuild_py_repeat={t.repeat}")
                cmdline = " ".join(words)
                seconds = 0.0
                for attempt in range(1, t.attempts + 1):
                    log = logs / (f"{t.name}.log" if attempt == 1 else f"{t.name}.{attempt}.log")
                    boot = qemu.run([*command, "-append", cmdline], timeout, log, stop)
                    seconds += boot.seconds
                    verdict, reason, evidence, ending = judge(t, boot, timeout)
                    if stop.is_set() or not undecided(t, verdict, evidence):
                        break
                if attempt > 1:
                    reason += (f" (boot {attempt} of at most {t.attempts}: LKDTM could not "
                               "decide in the earlier ones)")
                if t.undecidable_with and undecided(t, verdict, evidence):
                    defeating, why = t.undecidable_with
                    if by_design := [o for o in defeating if final.get(o, "n") != "n"]:
                        verdict = NOT_APPLICABLE
                        reason = f"undecidable with {', '.join(by_design)}: {why} ({reason})"
                return Verdict(t.name, t.what, verdict, reason, options, True, t.outcome,
                               ending, evidence, seconds, str(log), cmdline)

            stop = threading.Event()
            pool = ThreadPoolExecutor(max_workers=max(1, jobs))
            try:
                with Progress(f"boot {plan.profile.name}", "LKDTM tests booted",
                              total=len(to_boot)) as shown:
                    for v in pool.map(one, to_boot):
                        decided[v.test] = v
                        shown.update(1)
            except BaseException:  # Ctrl-C or an error: no new boot, running ones killed
                stop.set()
                pool.shutdown(wait=True, cancel_futures=True)
                raise
            pool.shutdown()
    report.verdicts = [decided[t.name] for t in chosen]
    report.seconds = time.monotonic() - started
    return report


@dataclass(frozen=True)
class DefaultCheck:
    """A value the running kernel must have before user space touches it (checks/runtime.yaml)."""

    option: str
    path: str
    status: str  # ok | unmet | n/a
    expected: str | None
    observed: str | None
    why: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


_VALUE = re.compile(r"KBUILD-PY: (value|unreadable) (\S+) ?(.*)$", re.M)


def run_default_checks(plan: BuildPlan, *, timeout: float = 30,
                       extra_cmdline: str = "") -> list[DefaultCheck]:
    """Boot once, read every built-in default the final .config sets, compare with the config."""
    rules = catalog.load_validated(catalog.data_root() / "checks" / "runtime.yaml", "runtime",
                                   "run-time checks").data["defaults"]
    final = read_config(plan.paths.dist / "config")
    out: list[DefaultCheck] = []
    wanted: dict[str, tuple[dict[str, Any], str]] = {}
    for rule in rules:
        value = final.get(rule["option"])
        if value in (None, "n"):
            out.append(DefaultCheck(rule["option"], rule["path"], NOT_APPLICABLE, None, None,
                                    f"{rule['option']} is not set"))
            continue
        expected = rule.get("value_when_set", value) if value == "y" else value
        wanted[rule["path"]] = (rule, expected)
    if not wanted:
        return out
    image = plan.paths.dist / Path(plan.arch.image_path).name
    exp = load_expectations(plan.arch.name)
    words = [*qemu.console_words(plan, exp), *extra_cmdline.split(),
             "kbuild_py_read=" + ",".join(wanted)]
    command = [*qemu.argv(plan, exp, image, build_initramfs(plan, build_init(plan))),
               "-append", " ".join(words)]
    tag = "-" + hashlib.sha256(extra_cmdline.encode()).hexdigest()[:8] if extra_cmdline else ""
    log = plan.paths.boot / "logs" / f"defaults{tag}.log"
    booted = qemu.run(command, timeout, log)
    seen = {m.group(2): (m.group(1), m.group(3).strip()) for m in _VALUE.finditer(booted.console)}
    for path, (rule, expected) in wanted.items():
        kind, observed = seen.get(path, ("missing", ""))
        if kind == "value":
            status = Status.OK if observed == expected else Status.UNMET
            out.append(DefaultCheck(rule["option"], path, status, expected, observed, rule["why"]))
        else:
            out.append(DefaultCheck(rule["option"], path, Status.UNMET, expected, None,
                                    f"{path} {kind} in the running kernel (log: {log})"))
    return out

