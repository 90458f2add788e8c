"""The words of an explanation: its root cause in a few words and a fix a user can act on,
for the toolchain the context names and where the user sets values (the profile, or a config
checked as it is). explain.py finds the chain; this says it.

A fix is always something a user can do: a profile or config line, a compiler family or
version, a kernel version, or a waiver; never a write into a Kconfig default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import kconfiglib

from .dotconfig import fragment_line
from .results import Blocker, ExplainContext, Explanation
from .terms import is_threshold, selectors


@dataclass(frozen=True)
class Fix:
    """One change a user makes: in words, or a value to set (symbol, value, a note on it).
    Words.render says the values of one explanation in one sentence."""

    text: str = ""
    setting: tuple[str, str, str] | None = None


class Words:
    """The words for one explanation context: ``base`` and ``requested`` are the values read
    from the base config (or the checked config) and from the fragment."""

    def __init__(self, kconf: Any, ctx: ExplainContext, base: dict[str, str],
                 requested: dict[str, str]) -> None:
        self._k = kconf
        self.ctx = ctx
        self.tc = ctx.toolchain
        self.families = dict(ctx.families)
        self.base_values = base
        self.requested = requested

    def fix_for(self, root: Blocker, symbol: str) -> Fix:
        if root.kind != "choice":
            return self.fix(root)
        member = root.symbol if root.needed == "y" else symbol
        where = "the fragment" if self.ctx.fix_in == "profile" else "the config"
        return Fix(setting=(member, "y", f"a choice member set by {where} wins"))

    def unforced(self, symbol: str, value: str, wanted: str) -> Explanation:
        """Nothing keeps the symbol from the value wanted: only what sets it (or nothing)."""
        source = self.source(symbol)
        if source == "Kconfig default":
            summary = (f"{symbol}={value}, wanted {wanted}: nothing sets it, so its Kconfig "
                       f"default applies; no dependency forces it")
            cause = "nothing sets it"
        else:
            summary = (f"{symbol}={value}, wanted {wanted}: the {source} sets it; no dependency "
                       "forces it")
            cause = f"the {source} sets it"
        return Explanation(symbol, value, wanted, summary, self.set(symbol, wanted), (), cause)

    def set(self, symbol: str, value: str) -> str:
        """The fix that sets a symbol where the user sets values: the profile, or the config."""
        return self.render([Fix(setting=(symbol, value, ""))])

    def render(self, fixes: list[Fix]) -> str:
        """One sentence: the fixes in words, then every value to set, in one profile or config
        edit (a config takes its lines as Kbuild reads them: a string is quoted)."""
        texts = list(dict.fromkeys(f.text for f in fixes if f.setting is None))
        first: dict[tuple[str, str], str] = {}  # (symbol, value) -> its first note
        for f in fixes:
            if f.setting is not None:
                first.setdefault(f.setting[:2], f.setting[2])
        settings = [(s, v, note) for (s, v), note in first.items()]
        if settings:
            config = self.ctx.fix_in == "config"
            items = [self._line(s, v) if config else f"{s}: {v}" for s, v, _ in settings]
            notes = [f" ({note})" if note else "" for _, _, note in settings]
            tail = notes[0] if len(settings) == 1 else ""  # one value: its note at the end
            if len(settings) > 1:
                items = [i + n for i, n in zip(items, notes, strict=True)]
            what = ", ".join(items[:-1]) + " and " + items[-1] if len(items) > 1 else items[0]
            texts.append(f"write {what} in the config (or its defconfig), then make "
                         f"olddefconfig{tail}" if config else f"set {what} in the profile{tail}")
        return "; and ".join(texts)

    def _line(self, symbol: str, value: str) -> str:
        sym = self._k.syms.get(symbol)
        kind = kconfiglib.TYPE_TO_STR[sym.orig_type] if sym is not None else "unknown"
        return fragment_line(symbol, value, kind or "unknown")

    def source(self, name: str) -> str:
        if name in self.requested:
            return "fragment (profile)"
        if name in self.base_values:
            return "config" if self.ctx.fix_in == "config" else "base config"
        return "Kconfig default"

    def cause(self, root: Blocker, probe: str) -> str:
        family = self.family(root)
        if family:
            return family
        if root.kind == "toolchain" and is_threshold(root.needed):
            return f"{self.tc} gives {root.symbol}={root.value}, {root.needed} needed"
        if root.kind == "toolchain":
            return f"{root.symbol}={root.value}, decided by {self.tc}: {probe}"
        if root.kind == "arch":
            return f"not on this arch in this kernel ({root.symbol})"
        if root.kind == "missing":
            return f"{root.symbol} does not exist in this kernel"
        return f"{root.symbol}={root.value}, from {root.source}"

    def family(self, root: Blocker) -> str:
        """'needs a clang compiler; gcc-12 is not one': a compiler-family gate, in words."""
        family = self.families.get(root.symbol)
        if root.kind != "toolchain" or family is None or root.needed not in ("y", "n"):
            return ""
        if root.needed == "y":
            return f"needs a {family} compiler ({root.symbol}); {self.tc} is not one"
        return f"needs a compiler other than {family} ({root.symbol}); {self.tc} is {family}"

    def fix(self, root: Blocker) -> Fix:
        text = self._fix_text(root)
        if text:
            return Fix(text)
        now = f"now {root.value}, " + ("by default" if root.source == "Kconfig default"
                                       else f"from {root.source}")
        return Fix(setting=(root.symbol, root.needed, now))

    def _fix_text(self, root: Blocker) -> str:
        """The fix in words, or "" when it is to set the root's value where values are set."""
        family = self.families.get(root.symbol)
        if self.family(root) and family:
            wanted = family if root.needed == "y" else f"a compiler other than {family}"
            return (f"{root.symbol}: build with {wanted} ({self.tc} is "
                    f"{'not ' if root.needed == 'y' else ''}{family}), or waive the "
                    "requirement for this one")
        if root.kind == "toolchain" and is_threshold(root.needed) and root.value == "0":
            return (f"{self.tc} lacks the tool {root.symbol} measures ({root.symbol}=0) and "
                    f"{root.needed} is needed: install it, or use a toolchain that has it, or "
                    "waive the requirement for this one")
        if root.kind == "toolchain" and is_threshold(root.needed):
            age = "old" if root.needed.startswith(">") else "new"
            return (f"{self.tc} is too {age}: {root.symbol} is {root.value} with it and "
                    f"{root.needed} is needed: use a toolchain that meets that, or waive the "
                    "requirement for this one")
        if root.kind == "promptless" and is_threshold(root.needed):
            return (f"{root.symbol} has no prompt and cannot be set: change what its defaults "
                    f"follow ({root.location}), or waive the requirement for this one")
        if root.kind == "toolchain":
            return (f"{root.symbol} is decided by a compiler probe that {self.tc} fails: use a "
                    "compiler for which it succeeds, or waive the requirement for this one")
        where = f"{self._k.srcarch} in Linux {'.'.join(map(str, self._version()))}"
        if root.kind == "arch" and root.needed == "n":
            return (f"cannot be turned off on {where}: waive it here, or gate it with "
                    "when: arch or when: kernel")
        if root.kind == "arch":
            return (f"not available on {where}: waive it here, or gate it with when: arch or "
                    "when: kernel")
        if root.kind == "missing":
            return f"{root.symbol} does not exist in this kernel"
        sym = self._k.syms.get(root.symbol)
        if root.kind == "promptless" and sym is not None and root.needed != "n":
            selecting = sorted((s for s in selectors(sym) if s.nodes),
                               key=lambda s: (not any(n.prompt for n in s.nodes), s.name))
            if selecting:
                others = ", ".join(s.name for s in selecting[1:4])
                return (f"{root.symbol} has no prompt: {self.set(selecting[0].name, 'y')}"
                        + (f" (or set another of what selects it: {others})" if others else ""))
        return ""

    def _version(self) -> tuple[int, ...]:
        version: tuple[int, ...] = getattr(self._k, "version", ())
        return version[:2]
