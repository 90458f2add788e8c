"""boot: prove the protections at run time. One QEMU boot per LKDTM test, a verdict per test.

What each test must print, which options it vouches for and where it applies is data
(lkdtm/tests.yaml, checked against lkdtm/schema.yaml); this module only runs the boots and reads
the console:

    init     initramfs/init.c, built with the profile's own compiler against the tree's nolibc
             and UAPI headers (no C library package), cached by content in out/<p>/boot/
    cpio     a newc archive written here (no cpio tool), gzip'd, cached by content
    boot     qemu -kernel dist/<image> -initrd ... -append "console=... kbuild_py_test=<TEST>":
             the init triggers the test through debugfs provoke-crash/DIRECT from a child
             process, prints markers to /dev/kmsg and reboots (QEMU runs with -no-reboot)
    verdict  the console after the trigger marker against the test's patterns

Traps kept out by design: tests are never triggered with the lkdtm.cpoint_* boot parameters
(they fire before read-only and no-execute mappings are applied), and no two tests share a boot
(warn-once state and earlier corruption change later outcomes).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import selectors
import shutil
import stat
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from . import catalog
from .errors import InfraError, UserError
from .fsutil import atomic_write, exclusive_lock
from .kconfig.dotconfig import read_config
from .kmake import make_argv, run_make
from .plan import BuildPlan
from .toolchain import detect, make_variables
from .yamlio import Document, load_document

PROTECTED, NOT_PROTECTED, NOT_APPLICABLE, INCONCLUSIVE = (
    "protected", "NOT protected", "n/a", "inconclusive")
VERDICTS = (PROTECTED, NOT_PROTECTED, NOT_APPLICABLE, INCONCLUSIVE)

# How a test may end when its protection works (lkdtm/tests.yaml "outcome").
ENDINGS_ACCEPTED = {
    "killed": {"killed", "panic"},
    "panic": {"panic"},
    "warns": {"killed", "panic", "survived"},
    "returns": {"survived"},
}
OUTCOME_TEXT = {
    "killed": "an oops that kills the task",
    "panic": "a kernel panic",
    "warns": "a kernel report",
    "returns": "LKDTM's own success line",
}

MARKER = re.compile(r"KBUILD-PY: (start|trigger|survived|killed|exited|refused|error|done)\b(.*)")
PANIC = re.compile(r"Kernel panic - not syncing: .*")
KERNEL_REPORT = re.compile(
    r"^.*(BUG: |Unable to handle kernel|Internal error: |Oops|kernel BUG at|WARNING: |"
    r"Kernel panic - not syncing).*$", re.M)
EINVAL = 22
GRACE = 3.0  # seconds QEMU gets to exit by itself after the init's "done" or a panic


# --------------------------------------------------------------------------- expectations


@dataclass(frozen=True)
class Precondition:
    pattern: re.Pattern[str]
    otherwise: str


@dataclass(frozen=True)
class LkdtmTest:
    """One LKDTM test as it applies to one arch (tests.yaml with per_arch merged in)."""

    name: str
    what: str
    vouches: tuple[tuple[str, ...], ...]  # all groups must hold; a group holds if any item does
    outcome: str
    protected: tuple[re.Pattern[str], ...]
    not_protected: tuple[re.Pattern[str], ...] = ()
    inconclusive: tuple[re.Pattern[str], ...] = ()
    not_applicable: tuple[re.Pattern[str], ...] = ()
    explained_by: tuple[re.Pattern[str], ...] = ()
    after: re.Pattern[str] | None = None
    repeat: int = 1
    cmdline: tuple[str, ...] = ()
    precondition: Precondition | None = None
    arches: tuple[str, ...] | None = None  # None: every arch
    why: str = ""
    note: str = ""

    def applies_to(self, arch: str) -> bool:
        return self.arches is None or arch in self.arches

    def vouched_items(self) -> list[str]:
        return [item for group in self.vouches for item in group]


@dataclass(frozen=True)
class Expectations:
    path: Path
    kernel: str
    cmdline: tuple[str, ...]
    qemu_args: tuple[str, ...]
    tests: dict[str, LkdtmTest]


def expectations_path() -> Path:
    return catalog.data_root() / "lkdtm" / "tests.yaml"


def _validate(doc: Document, schema_path: Path) -> None:
    with open(schema_path, encoding="utf-8") as f:
        schema = yaml.safe_load(f)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(doc.data), key=lambda e: -len(e.path))
    if not errors:
        return
    err = errors[0]
    path = tuple(err.path)
    dotted = ".".join(str(p) for p in path) or "(top level)"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    raise UserError(f"{doc.where(path)}: {dotted}: {catalog.describe(err)}{more}",
                    "see the field list at the top of lkdtm/tests.yaml and docs/BOOT.md")


def _regex(doc: Document, where: tuple[str | int, ...], text: Any) -> re.Pattern[str]:
    try:
        return re.compile(str(text), re.M)
    except re.error as e:
        raise UserError(f"{doc.where(where)}: bad regex {text!r}: {e}",
                        "patterns are Python regexes; escape ( ) . ? with a backslash") from None


def _test_from(doc: Document, name: str, raw: dict[str, Any], defaults: dict[str, Any],
               arch: str) -> LkdtmTest:
    """One test for one arch: defaults, then the test's fields, then its per_arch fields."""
    override: dict[str, Any] = raw.get("per_arch", {}).get(arch, {})
    fields: dict[str, Any] = {**defaults, **raw, **override}

    def where(key: str) -> tuple[str | int, ...]:
        if key in override:
            return ("tests", name, "per_arch", arch, key)
        return ("tests", name, key) if key in raw else ("defaults", key)

    def pats(key: str) -> tuple[re.Pattern[str], ...]:
        return tuple(_regex(doc, (*where(key), i), p) for i, p in enumerate(fields.get(key, [])))

    pre = fields.get("precondition")
    after = fields.get("after")
    arches = fields.get("arches")
    return LkdtmTest(
        name=name, what=fields["what"],
        vouches=tuple((v,) if isinstance(v, str) else tuple(v) for v in fields["vouches"]),
        outcome=fields.get("outcome", "killed"),
        protected=pats("protected"), not_protected=pats("not_protected"),
        inconclusive=pats("inconclusive"), not_applicable=pats("not_applicable"),
        explained_by=pats("explained_by"),
        after=_regex(doc, where("after"), after) if after else None,
        repeat=int(fields.get("repeat", 1)), cmdline=tuple(fields.get("cmdline", [])),
        precondition=Precondition(_regex(doc, (*where("precondition"), "pattern"),
                                         pre["pattern"]), pre["otherwise"]) if pre else None,
        arches=tuple(arches) if arches is not None else None,
        why=fields.get("why", ""), note=fields.get("note", ""))


def load_expectations(arch: str, path: Path | None = None) -> Expectations:
    """lkdtm/tests.yaml, validated, every regex compiled, with ``arch``'s overrides applied."""
    path = path or expectations_path()
    if not path.is_file():
        raise UserError(f"{path}: no such file", "the LKDTM expectations live in lkdtm/tests.yaml")
    doc = load_document(path, catalog.display(path))
    _validate(doc, path.with_name("schema.yaml"))
    data: dict[str, Any] = doc.data
    defaults: dict[str, Any] = data.get("defaults", {})
    tests = {name: _test_from(doc, name, raw, defaults, arch)
             for name, raw in data["tests"].items()}
    boot = data["boot"]
    return Expectations(path, str(data["kernel"]), tuple(boot.get("cmdline", [])),
                        tuple(boot.get("qemu_args", [])), tests)


# --------------------------------------------------------------------------- report model


@dataclass(frozen=True)
class OptionValue:
    """One thing a verdict vouches for: a Kconfig symbol or a kernel parameter, and its value."""

    name: str
    final: str | None  # the symbol's value in the final .config; for a parameter "set" or None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "final": self.final}

    def text(self) -> str:
        if "=" in self.name:
            return f"{self.name} {'on' if self.final else 'not on'} the cmdline"
        return f"{self.name}={self.final or 'not set'}"


@dataclass(frozen=True)
class Verdict:
    test: str
    what: str
    verdict: str
    reason: str
    options: tuple[OptionValue, ...]
    claimed: bool  # every vouched group holds: the profile claims this protection
    outcome: str  # expected ending (tests.yaml)
    ending: str = ""  # observed: killed, survived, panic, refused, timeout, ... ("" not booted)
    evidence: str = ""  # the console line(s) that decided
    seconds: float = 0.0
    log: str = ""
    cmdline: str = ""

    @property
    def fails(self) -> bool:
        """A protection the profile claims was not observed."""
        return self.claimed and self.verdict in (NOT_PROTECTED, INCONCLUSIVE)

    def to_dict(self) -> dict[str, Any]:
        return {
            "test": self.test, "what": self.what, "verdict": self.verdict,
            "reason": self.reason, "claimed": self.claimed, "fails": self.fails,
            "options": [o.to_dict() for o in self.options], "outcome": self.outcome,
            "ending": self.ending, "evidence": self.evidence,
            "seconds": round(self.seconds, 2), "log": self.log, "cmdline": self.cmdline,
        }


@dataclass
class BootReport:
    profile: str
    arch: str
    kernel: str
    image: str
    expectations: str
    qemu: list[str]
    cmdline: str
    jobs: int
    timeout: float
    verdicts: list[Verdict] = field(default_factory=list)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(VERDICTS, 0)
        for v in self.verdicts:
            out[v.verdict] += 1
        return out

    @property
    def failed(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.fails]

    def verdict(self, test: str) -> Verdict:
        for v in self.verdicts:
            if v.test == test:
                return v
        raise KeyError(test)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "kbuild-py/boot-report/1",
            "profile": self.profile, "arch": self.arch, "kernel": self.kernel,
            "image": self.image, "expectations": self.expectations, "qemu": self.qemu,
            "cmdline": self.cmdline, "jobs": self.jobs, "timeout": self.timeout,
            "seconds": round(self.seconds, 2), "counts": self.counts(),
            "passed": not self.failed, "notes": self.notes,
            "verdicts": [v.to_dict() for v in self.verdicts],
        }


# --------------------------------------------------------------------------- the init


def _boot_dir(plan: BuildPlan) -> Path:
    return plan.paths.boot


def init_source() -> Path:
    return catalog.data_root() / "initramfs" / "init.c"


def _uapi_headers(plan: BuildPlan, tree_path: Path, identity: str) -> Path:
    """The tree's UAPI headers for the arch (make headers), once per tree and arch."""
    objdir = _boot_dir(plan) / "uapi"
    include = objdir / "usr" / "include"
    stamp = objdir / ".kbuild-py-headers"
    key = f"{identity} {plan.arch.name}\n"
    if stamp.is_file() and stamp.read_text() == key and include.is_dir():
        return include
    objdir.mkdir(parents=True, exist_ok=True)
    argv = make_argv(tree_path, objdir.resolve(), make_variables(plan.toolchain, plan.arch),
                     ["headers"], jobs=2)
    run_make(argv, _boot_dir(plan) / "uapi.log", what="make headers (for the test init)")
    atomic_write(stamp, key)
    return include


def _compile_argv(plan: BuildPlan, nolibc: Path, include: Path, source: Path,
                  output: Path) -> list[str]:
    tc = plan.toolchain
    argv = [tc.tools["CC"]]
    if tc.family == "clang":
        ld = shutil.which(tc.tools["LD"]) or tc.tools["LD"]
        argv += [f"--target={plan.arch.clang_target}", f"--ld-path={ld}"]
    argv += ["-Os", "-static", "-nostdlib", "-fno-stack-protector",
             "-fno-asynchronous-unwind-tables", "-Wall", "-s", "-I", str(include),
             "-include", str(nolibc), str(source), "-o", str(output)]
    if tc.family == "gcc":
        argv.append("-lgcc")
    return argv


def build_init(plan: BuildPlan) -> Path:
    """initramfs/init.c as a static binary for the profile's arch, built by its compiler."""
    from .pipeline import load_tree

    ident = detect(plan.toolchain, plan.arch.name)  # names the package of a missing compiler
    tree = load_tree(plan)
    nolibc = tree.path / "tools" / "include" / "nolibc" / "nolibc.h"
    if not nolibc.is_file():
        raise UserError(f"kernel {tree.version_text} at {tree.path}: no "
                        "tools/include/nolibc/nolibc.h", "boot tests need a kernel with nolibc "
                        "(5.1 or later; the expectations are for 6.12)")
    source = init_source()
    include = _uapi_headers(plan, tree.path, tree.identity)
    probe = _compile_argv(plan, nolibc, include, source, Path("init"))
    key = hashlib.sha256("\0".join([source.read_text(), ident.key(), tree.identity,
                                    *probe]).encode()).hexdigest()[:16]
    out = _boot_dir(plan) / f"init-{key}"
    if out.is_file():
        return out
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    argv = _compile_argv(plan, nolibc, include, source, tmp)
    try:
        r = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
    except OSError as e:
        raise InfraError(f"cannot run {argv[0]}: {e}",
                         f"install toolchains/{plan.toolchain.name}.yaml's compiler") from None
    if r.returncode != 0:
        tmp.unlink(missing_ok=True)
        first = next((ln for ln in r.stderr.splitlines() if "error" in ln), r.stderr.strip())
        raise InfraError(f"{source}: {argv[0]} failed to build the test init: {first[:300]}",
                         "run the command by hand: " + " ".join(argv))
    os.replace(tmp, out)
    return out


# --------------------------------------------------------------------------- the initramfs


def _cpio_entry(name: str, mode: int, ino: int, data: bytes = b"",
                rdev: tuple[int, int] = (0, 0), nlink: int = 1) -> bytes:
    """One newc ("070701") record: 110-byte ASCII header, name, data, each padded to 4 bytes."""
    encoded = name.encode() + b"\0"
    fields = [ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0]
    out = b"070701" + "".join(f"{v:08x}" for v in fields).encode() + encoded
    out += b"\0" * (-len(out) % 4)
    return out + data + b"\0" * (-len(data) % 4)


def cpio_newc(init: bytes) -> bytes:
    """The whole initramfs: /init, /dev/console, /dev/kmsg, /debug (debugfs mount point)."""
    entries = [
        _cpio_entry("dev", stat.S_IFDIR | 0o755, 1, nlink=2),
        _cpio_entry("dev/console", stat.S_IFCHR | 0o600, 2, rdev=(5, 1)),
        _cpio_entry("dev/kmsg", stat.S_IFCHR | 0o644, 3, rdev=(1, 11)),
        _cpio_entry("debug", stat.S_IFDIR | 0o755, 4, nlink=2),
        _cpio_entry("init", stat.S_IFREG | 0o755, 5, init),
        _cpio_entry("TRAILER!!!", 0, 0),
    ]
    return b"".join(entries)


def build_initramfs(plan: BuildPlan, init: Path) -> Path:
    """gzip'd newc archive named by its content in out/<p>/boot/; reused when unchanged."""
    data = gzip.compress(cpio_newc(init.read_bytes()), compresslevel=9, mtime=0)
    out = _boot_dir(plan) / f"initramfs-{hashlib.sha256(data).hexdigest()[:16]}.cpio.gz"
    if not out.is_file():
        atomic_write(out, data)
    return out


# --------------------------------------------------------------------------- one boot


@dataclass(frozen=True)
class Boot:
    console: str
    seconds: float
    timed_out: bool
    returncode: int | None


def run_qemu(argv: list[str], timeout: float, log: Path,
             stop: threading.Event | None = None) -> Boot:
    """Run one QEMU to its end (or the timeout); the console goes to ``log`` and is returned.

    The init reboots and QEMU exits; if it lingers after the init's "done" marker or a panic,
    it is stopped after a short grace period. Setting ``stop`` ends it at once.
    """
    start = time.monotonic()
    buf = bytearray()
    timed_out = False
    finished_at: float | None = None
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
    except OSError as e:
        raise InfraError(f"cannot start {argv[0]}: {e}", "check the QEMU installation") from None
    try:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        os.set_blocking(fd, False)
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while True:
                now = time.monotonic()
                if now - start >= timeout:
                    timed_out = True
                    break
                if finished_at is not None and now - finished_at >= GRACE:
                    break
                if stop is not None and stop.is_set():
                    break
                if not sel.select(min(0.2, timeout - (now - start))):
                    continue
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    break
                buf += chunk
                if finished_at is None and (b"KBUILD-PY: done" in buf
                                            or b"Kernel panic - not syncing" in buf):
                    finished_at = time.monotonic()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    seconds = time.monotonic() - start
    console = buf.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
    header = (f"# kbuild-py boot: {' '.join(argv)}\n# {seconds:.2f} s, "
              f"{'timed out' if timed_out else f'exit {proc.returncode}'}\n")
    atomic_write(log, header + console)
    return Boot(console, seconds, timed_out, None if timed_out else proc.returncode)


# --------------------------------------------------------------------------- verdicts


def _line_of(text: str, m: re.Match[str]) -> str:
    start = text.rfind("\n", 0, m.start()) + 1
    end = text.find("\n", m.end())
    line = text[start:end if end >= 0 else len(text)].strip()
    return " | ".join(part.strip() for part in line.splitlines())[:240]


def _search(patterns: tuple[re.Pattern[str], ...], text: str) -> str | None:
    for p in patterns:
        if m := p.search(text):
            return _line_of(text, m)
    return None


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:200] if lines else "(no console output)"


def _ending(post: str, boot: Boot) -> tuple[str, str]:
    """How the triggered test ended, from the init's markers: (ending, marker line)."""
    if m := PANIC.search(post):
        return "panic", m.group(0).strip()
    found: dict[str, str] = {}
    for m in MARKER.finditer(post):
        found.setdefault(m.group(1), m.group(0).strip())
    for kind in ("killed", "refused", "error", "exited", "survived"):
        if kind in found:
            return kind, found[kind]
    return ("timeout" if boot.timed_out else "no end"), ""


def judge(test: LkdtmTest, boot: Boot, timeout: float) -> tuple[str, str, str, str]:
    """(verdict, reason, evidence, ending) of one boot's console for one test."""
    text = boot.console
    trigger = re.search(r"KBUILD-PY: trigger ", text)
    if trigger is None:
        if m := re.search(r"KBUILD-PY: error .*", text):
            return INCONCLUSIVE, f"the test init could not run: {m.group(0).strip()}", "", "error"
        if m := PANIC.search(text):
            return (INCONCLUSIVE, f"the kernel panicked before the test: {m.group(0).strip()}",
                    "", "panic")
        if boot.timed_out:
            return (INCONCLUSIVE, f"boot timed out after {timeout:g} s before the test ran "
                    f"(last console line: {_last_line(text)})", "", "timeout")
        return (INCONCLUSIVE, f"boot failed: QEMU exited ({boot.returncode}) before the test "
                f"ran (last console line: {_last_line(text)})", "", "no start")
    pre, post = text[:trigger.start()], text[trigger.start():]
    ending, marker = _ending(post, boot)
    if ending == "refused":
        m = re.search(r"errno (\d+)", marker)
        if m and int(m.group(1)) == EINVAL:
            return NOT_APPLICABLE, "this kernel's LKDTM has no such test", marker, ending
        return INCONCLUSIVE, f"the trigger write failed: {marker}", marker, ending
    if ending == "error":
        return INCONCLUSIVE, f"the test init failed: {marker}", marker, ending
    if test.precondition and not test.precondition.pattern.search(pre):
        return NOT_APPLICABLE, test.precondition.otherwise, "", ending
    if line := _search(test.not_protected, post):
        why = _search(test.explained_by, post)
        return (NOT_PROTECTED, f"LKDTM reports the attack went through: {line}"
                + (f" ({why})" if why else ""), line, ending)
    if line := _search(test.not_applicable, post):
        return NOT_APPLICABLE, f"LKDTM says it does not apply: {line}", line, ending
    if line := _search(test.inconclusive, post):
        return INCONCLUSIVE, f"LKDTM could not decide: {line}", line, ending
    region = post
    if test.after is not None:
        m = test.after.search(post)
        region = post[m.end():] if m else ""
    if line := _search(test.protected, region):
        if ending in ENDINGS_ACCEPTED[test.outcome]:
            return PROTECTED, line, line, ending
        return (INCONCLUSIVE, f"the protection reported ({line}) but the test ended "
                f"'{ending}', expected {OUTCOME_TEXT[test.outcome]}", line, ending)
    expected = " or ".join(p.pattern.replace("\n", "\\n") for p in test.protected)
    if ending == "survived":
        return (NOT_PROTECTED, f"the test ran to its end and the kernel never reported it "
                f"(expected: {expected})", "", ending)
    if ending in ("killed", "panic"):
        report = KERNEL_REPORT.search(post)
        seen = report.group(0).strip()[:200] if report else marker
        return (INCONCLUSIVE, f"the test was stopped ({ending}), but not with this protection's "
                f"message (expected: {expected}; saw: {seen})", seen, ending)
    if ending == "timeout":
        return (INCONCLUSIVE, f"timed out after {timeout:g} s without a verdict (last console "
                f"line: {_last_line(post)})", "", ending)
    return (INCONCLUSIVE, f"QEMU ended ({boot.returncode}) without the init's end marker "
            f"(last console line: {_last_line(post)})", "", ending)


# --------------------------------------------------------------------------- the suite


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


def _profile_cmdline(plan: BuildPlan) -> list[str]:
    path = plan.paths.dist / "cmdline"
    return path.read_text().split() if path.is_file() else []


def _qemu_binary(plan: BuildPlan) -> str:
    qemu = plan.arch.qemu
    binary = str(qemu.get("binary", ""))
    if not binary:
        raise UserError(f"arches/{plan.arch.name}.yaml: no qemu.binary",
                        "add a qemu section (binary, args, console, package)")
    if shutil.which(binary) is None:
        package = qemu.get("package")
        install = f"apt-get install {package}" if package else "install QEMU"
        raise InfraError(f"arch {plan.arch.name}: {binary} not found on PATH",
                         f"{install}, then rerun")
    return binary


def _kernel_version(plan: BuildPlan) -> str:
    try:
        manifest = json.loads((plan.paths.dist / "manifest.json").read_text())
        return str(manifest["kernel"]["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return "unknown"


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
    console = str(arch.qemu.get("console", ""))
    base_cmdline = [f"console={console}"] if console else []
    base_cmdline += [*_profile_cmdline(plan), *exp.cmdline]
    extra = extra_cmdline.split()
    report = BootReport(
        profile=plan.profile.name, arch=arch.name, kernel=_kernel_version(plan), image=str(image),
        expectations=catalog.display(exp.path), qemu=[], cmdline=" ".join(base_cmdline + extra),
        jobs=jobs, timeout=timeout)
    if not report.kernel.startswith(exp.kernel + "."):
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
        elif not claimed:
            missing = ", ".join(" or ".join(g) for g in t.vouches
                                if all(o.final is None for o in options if o.name in g))
            decided[t.name] = Verdict(t.name, t.what, NOT_APPLICABLE,
                                      f"not claimed: needs {missing} (off in the final .config)",
                                      options, False, t.outcome)
        else:
            to_boot.append((t, options, words))
    if to_boot:
        binary = _qemu_binary(plan)
        with exclusive_lock(_boot_dir(plan) / ".lock", f"boot tests of {plan.profile.name}"):
            initramfs = build_initramfs(plan, build_init(plan))
            args = arch.qemu.get("args", [])
            qemu = [binary, *(str(a) for a in (args if isinstance(args, list) else [])),
                    *exp.qemu_args,
                    "-kernel", str(image), "-initrd", str(initramfs)]
            report.qemu = qemu
            # Logs of a run with extra parameters (a negative control) do not replace the
            # plain run's logs.
            tag = hashlib.sha256(" ".join(extra).encode()).hexdigest()[:8] if extra else ""
            logs = _boot_dir(plan) / (f"logs-{tag}" if tag else "logs")

            def one(item: tuple[LkdtmTest, tuple[OptionValue, ...], list[str]]) -> Verdict:
                t, options, words = item
                words = [*words, f"kbuild_py_test={t.name}"]
                if t.repeat > 1:
                    words.append(f"kbuild_py_repeat={t.repeat}")
                cmdline = " ".join(words)
                log = logs / f"{t.name}.log"
                boot = run_qemu([*qemu, "-append", cmdline], timeout, log, stop)
                verdict, reason, evidence, ending = judge(t, boot, timeout)
                return Verdict(t.name, t.what, verdict, reason, options, True, t.outcome,
                               ending, evidence, boot.seconds, str(log), cmdline)

            stop = threading.Event()
            pool = ThreadPoolExecutor(max_workers=max(1, jobs))
            try:
                for v in pool.map(one, to_boot):
                    decided[v.test] = v
            except BaseException:  # Ctrl-C or an error: no new boot, running ones killed
                stop.set()
                pool.shutdown(wait=True, cancel_futures=True)
                raise
            pool.shutdown()
    report.verdicts = [decided[t.name] for t in chosen]
    report.seconds = time.monotonic() - started
    return report


# --------------------------------------------------------------------------- renderers


def text(report: BootReport) -> str:
    c = report.counts()
    booted = [v for v in report.verdicts if v.seconds > 0]
    lines = [
        f"boot tests of profile {report.profile}: kernel {report.kernel} {report.arch}",
        f"image: {report.image}",
        f"cmdline: {report.cmdline}",
        f"{c[PROTECTED]} protected, {c[NOT_PROTECTED]} NOT protected, {c[INCONCLUSIVE]} "
        f"inconclusive, {c[NOT_APPLICABLE]} n/a; {len(report.failed)} claimed protection(s) "
        f"not observed",
        f"{len(booted)} boots, {report.jobs} at a time, {report.seconds:.1f} s"
        + (f" (slowest {max(v.seconds for v in booted):.1f} s)" if booted else ""),
        *[f"note: {n}" for n in report.notes],
        "",
    ]
    width = max((len(v.test) for v in report.verdicts), default=10)
    lines.append(f"{'VERDICT':18} {'TEST':{width}} {'TIME':>5}  OPTIONS / REASON")
    for v in report.verdicts:
        mark = "FAIL " if v.fails else ""
        secs = f"{v.seconds:4.1f}s" if v.seconds else "    -"
        opts = ", ".join(o.text() for o in v.options) or "always on"
        lines.append(f"{mark + v.verdict:18} {v.test:{width}} {secs:>5}  {opts}")
        lines.append(f"{'':18} {'':{width}} {'':>5}  {v.reason}")
    if report.failed:
        lines.append("")
        lines.append("claimed by the profile but not observed:")
        for v in report.failed:
            lines.append(f"  {v.test}: {v.verdict}: {v.reason} (log: {v.log})")
    return "\n".join(lines) + "\n"


def junit(report: BootReport) -> str:
    suite = ET.Element(
        "testsuite", name=f"kbuild-py.{report.profile}.boot", tests=str(len(report.verdicts)),
        failures=str(sum(1 for v in report.failed if v.verdict == NOT_PROTECTED)),
        errors=str(sum(1 for v in report.failed if v.verdict == INCONCLUSIVE)),
        skipped=str(sum(1 for v in report.verdicts if not v.fails and v.verdict != PROTECTED)),
        time=f"{report.seconds:.2f}")
    for v in report.verdicts:
        case = ET.SubElement(suite, "testcase", classname=f"{report.profile}.lkdtm",
                             name=v.test, time=f"{v.seconds:.2f}")
        opts = ", ".join(o.text() for o in v.options) or "always on"
        if v.fails and v.verdict == NOT_PROTECTED:
            f = ET.SubElement(case, "failure", message=f"NOT protected ({opts})")
            f.text = f"{v.reason}\nlog: {v.log}"
        elif v.fails:
            e = ET.SubElement(case, "error", message=f"inconclusive ({opts})")
            e.text = f"{v.reason}\nlog: {v.log}"
        elif v.verdict != PROTECTED:
            ET.SubElement(case, "skipped", message=f"{v.verdict}: {v.reason}")
        if v.verdict == PROTECTED:
            out = ET.SubElement(case, "system-out")
            out.text = f"{opts}: {v.evidence}"
    suites = ET.Element("testsuites")
    suites.append(suite)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def write_reports(report: BootReport, folder: Path, stem: str = "boot-report") -> list[Path]:
    """boot-report.{txt,json,xml} in ``folder``; returns their paths."""
    paths = [folder / f"{stem}.{ext}" for ext in ("txt", "json", "xml")]
    atomic_write(paths[0], text(report))
    atomic_write(paths[1], json.dumps(report.to_dict(), indent=2) + "\n")
    atomic_write(paths[2], junit(report))
    return paths


# --------------------------------------------------------------------------- built-in defaults


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
    initramfs = build_initramfs(plan, build_init(plan))
    args = plan.arch.qemu.get("args", [])
    exp = load_expectations(plan.arch.name)
    console = str(plan.arch.qemu.get("console", ""))
    words = [f"console={console}", *_profile_cmdline(plan), *exp.cmdline,
             *extra_cmdline.split(), "kbuild_py_read=" + ",".join(wanted)]
    argv = [_qemu_binary(plan), *(str(a) for a in (args if isinstance(args, list) else [])),
            *exp.qemu_args, "-kernel", str(image), "-initrd", str(initramfs),
            "-append", " ".join(words)]
    tag = "-" + hashlib.sha256(extra_cmdline.encode()).hexdigest()[:8] if extra_cmdline else ""
    booted = run_qemu(argv, timeout, _boot_dir(plan) / "logs" / f"defaults{tag}.log")
    seen = {m.group(2): (m.group(1), m.group(3).strip()) for m in _VALUE.finditer(booted.console)}
    for path, (rule, expected) in wanted.items():
        kind, observed = seen.get(path, ("missing", ""))
        if kind == "value":
            status = "ok" if observed == expected else "unmet"
            out.append(DefaultCheck(rule["option"], path, status, expected, observed, rule["why"]))
        else:
            out.append(DefaultCheck(rule["option"], path, "unmet", expected, None,
                                    f"{path} {kind} in the running kernel "
                                    f"(log: {_boot_dir(plan) / 'logs' / 'defaults.log'})"))
    return out
