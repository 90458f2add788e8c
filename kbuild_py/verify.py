"""verify: the .config Kbuild produced, against the resolved profile. Every miss explained."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .kconfig.dotconfig import NUMBER_SYNTAX
from .kconfig.results import Explanation
from .profile import Profile, Requirement, Waiver
from .resolve import Resolved
from .status import Status

OK, UNMET, WAIVED, NOT_APPLICABLE = Status.OK, Status.UNMET, Status.WAIVED, Status.NOT_APPLICABLE


@dataclass(frozen=True)
class Check:
    symbol: str
    requirement: Requirement
    status: str
    final: str | None
    note: str = ""
    explanation: Explanation | None = None

    def headline(self) -> str:
        """The symbol and, when explained, its root cause: for one-line messages."""
        cause = self.explanation.cause if self.explanation else ""
        return f"{self.symbol} ({cause})" if cause else self.symbol

    @property
    def fails(self) -> bool:
        return self.status == UNMET and self.requirement.severity == "required"

    def to_dict(self) -> dict[str, Any]:
        r = self.requirement
        return {
            "symbol": self.symbol,
            "requested": r.wanted(),
            "final": self.final,
            "status": self.status,
            "severity": r.severity,
            "why": r.why,
            "ref": r.ref,
            "origin": str(r.origin),
            "note": self.note,
            "explanation": self.explanation.to_dict() if self.explanation else None,
        }


@dataclass
class Report:
    profile: str
    kernel: str
    arch: str
    toolchain: str
    config: str
    checks: list[Check]
    waivers: list[Waiver]
    mismatches: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the report rests on (tree, record)
    # A checked config's record of its compiler's answers, where this machine's differ.
    recorded: list[dict[str, str | None]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {OK: 0, UNMET: 0, WAIVED: 0, NOT_APPLICABLE: 0}
        for c in self.checks:
            out[c.status] += 1
        return out

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.fails]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "kbuild-py/report/1",
            "profile": self.profile,
            "kernel": self.kernel,
            "arch": self.arch,
            "toolchain": self.toolchain,
            "config": self.config,
            "counts": self.counts(),
            "passed": not self.failed,
            "checks": [c.to_dict() for c in self.checks],
            "waivers": [{"symbol": w.symbol, "kind": w.kind, "reason": w.reason,
                         "origin": str(w.origin),
                         "replaced": {"requested": w.replaced.wanted(),
                                      "origin": str(w.replaced.origin)},
                         "replacement": w.replacement.wanted() if w.replacement else None}
                        for w in self.waivers],
            "prediction_mismatches": self.mismatches,
            "notes": self.notes,
            "recorded_answers": self.recorded,
        }


def satisfied(req: Requirement, final: str | None) -> bool:
    value = final if final is not None else "n"
    if req.value is not None:
        return value == req.value
    if req.one_of:
        return value in req.one_of
    if not NUMBER_SYNTAX["number"].fullmatch(value):  # Kbuild's syntax, not Python's
        return False
    number = int(value, 0)
    if req.min is not None and number < req.min:
        return False
    return not (req.max is not None and number > req.max)


def requirement_kind(req: Requirement) -> str:
    """The Kconfig type a requirement implies, for a .config read without the tree's types."""
    accepted = [req.value] if req.value is not None else list(req.one_of)
    if accepted and all(v in ("y", "m", "n") for v in accepted):
        return "tristate"
    if req.min is not None or req.max is not None:
        return "number"
    # A number (-1, 0xb0) is written unquoted whatever its type; "unknown" reads it as written.
    numbers = all(NUMBER_SYNTAX["number"].fullmatch(v) for v in accepted)
    return "string" if accepted and not numbers else "unknown"


Explainer = Callable[[str, str], Explanation]


def _consistent(exp: Explanation, req: Requirement, final: str | None) -> Explanation:
    """An explanation of a value the config does not have would contradict it ("X=y, wanted
    y"): the tree computes the value wanted from the rest of the config, so the config is not
    what this tree's Kconfig writes (another patch level, or edited by hand). Said so."""
    if not satisfied(req, exp.value):
        return exp
    have = final if final is not None else "not set"
    return Explanation(
        exp.symbol, have, exp.wanted,
        f"{exp.symbol} is {have} in the config, but this tree's Kconfig gives {exp.wanted} "
        "from the rest of it: the config was not written by this tree's Kconfig (another "
        "version or patch level, or edited by hand)",
        "run make olddefconfig on the config in its own kernel tree, then check it against "
        "that tree", (), "the config does not match this tree's Kconfig")


def _patch_note(r: Resolved, value: str | None) -> str:
    """Why a symbol only the profile's patches add is unmet: the config lacks it (made from a
    tree without them), or this tree lacks it and cannot explain the config's value."""
    export = "kbuild-py export --format plain writes them with their series"
    if value is None:
        return (f"not in the config: CONFIG_{r.symbol} exists only with the profile's patches "
                f"({r.needs_patches}), so the config was made from a tree without them: apply "
                f"them ({export})")
    return (f"CONFIG_{r.symbol}={value} in the config, but this tree lacks the profile's "
            f"patches ({r.needs_patches}) that add it, so nothing here explains it: check "
            "against a tree with them (a tarball is patched by kbuild-py)")


def verify(profile: Profile, resolved: list[Resolved], final: dict[str, str],
           explain: Explainer | None, *, kernel: str, toolchain: str, config: str,
           mismatches: list[dict[str, str]] | None = None,
           undone: dict[str, str] | None = None) -> Report:
    """One Check per requirement; with an explainer, every unmet one carries its explanation.
    ``undone``: requirements the profile's own cmdline or sysctl turns off at run time (why),
    unmet whatever the .config says."""
    checks: list[Check] = []
    for r in resolved:
        req = r.requirement
        if not r.applicable:
            checks.append(Check(r.symbol, req, NOT_APPLICABLE, None, r.reason))
            continue
        value = final.get(r.symbol)
        if satisfied(req, value):
            if undone and r.symbol in undone:  # in the .config, off again at run time
                checks.append(Check(r.symbol, req, UNMET, value, undone[r.symbol]))
            else:
                checks.append(Check(r.symbol, req, OK, value, req.rename_note(r.symbol)))
            continue
        if r.needs_patches and (value is None or not r.in_tree):
            checks.append(Check(r.symbol, req, UNMET, value, _patch_note(r, value)))
            continue
        explanation = None
        if explain is not None:
            wanted = req.fragment_value()
            explanation = _consistent(explain(r.symbol, "y" if wanted is None else wanted),
                                      req, value)
        checks.append(Check(r.symbol, req, UNMET, value,
                            explanation.summary if explanation else "", explanation))
    for w in profile.waivers:
        if w.replacement is None and isinstance(w.replaced, Requirement):
            checks.append(Check(w.symbol, w.replaced, WAIVED, final.get(w.symbol), w.reason))
    checks.sort(key=lambda c: (c.status != UNMET, c.symbol))
    return Report(profile.name, kernel, profile.arch, toolchain, config, checks,
                  list(profile.waivers), mismatches or [])
