"""The verdict of one boot, a pure function of its console (``judge``), and the boot report's
data model. No I/O: the suite (boot.py) runs QEMU and hands the console in.

What a boot proves: the console after the init's trigger marker, read against the test's
patterns (lkdtm/tests.yaml): LKDTM's own FAIL lines first (NOT protected), then what makes it
inapplicable or undecidable, then the protection's own message with the ending it expects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .lkdtm import LkdtmTest
from .status import Status

PROTECTED, NOT_PROTECTED, NOT_APPLICABLE, INCONCLUSIVE = (
    Status.PROTECTED, Status.NOT_PROTECTED, Status.NOT_APPLICABLE, Status.INCONCLUSIVE)
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
# What printk puts before a message when a kernel has PRINTK_TIME ("[    1.999550] ") and
# PRINTK_CALLER ("[    T72] "), as shipped configurations do: the patterns are the messages.
PRINTK_PREFIX = re.compile(r"^\[\s*\d+\.\d+\](?:\[\s*[TC]\d+\])? ?", re.M)


@dataclass(frozen=True)
class Boot:
    """What one QEMU run left: its console, how long it took, how it ended."""

    console: str
    seconds: float
    timed_out: bool
    returncode: int | None


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
        out: dict[str, int] = dict.fromkeys(VERDICTS, 0)
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


def undecided(test: LkdtmTest, verdict: str, evidence: str) -> bool:
    """Whether LKDTM itself could not decide (one of the test's inconclusive lines, e.g. a
    reallocation that landed elsewhere): another boot may decide, where a boot that failed
    or timed out would only fail again."""
    return verdict == INCONCLUSIVE and bool(evidence) and _search(test.inconclusive,
                                                                   evidence) is not None


def judge(test: LkdtmTest, boot: Boot, timeout: float) -> tuple[str, str, str, str]:
    """(verdict, reason, evidence, ending) of one boot's console for one test."""
    text = PRINTK_PREFIX.sub("", boot.console)
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
