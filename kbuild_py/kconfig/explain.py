"""Why a symbol does not have the value wanted: its dependencies followed down to one root
cause per failing term (a value from the base config or the fragment, a choice, an arch, the
toolchain), and a fix a user can act on.

A toolchain root is a failed $(cc-option)-style probe or a version gate (CLANG_VERSION >=
150000, also mirrored, negated or inside an OR, where the alternative closest to holding is
named); the fix says the toolchain is too old (or too new, or lacks the tool: a version of 0),
and a gate for another compiler family names the family. Which toolchain that is, and where a
user changes a value (the profile, or a config checked as it is), comes with the context: a
config made elsewhere is explained with its own compiler's answers (record.py).
"""

from __future__ import annotations

import os
from typing import Any

import kconfiglib

from .fixes import Fix, Words
from .record import Adopted, adoption
from .results import Blocker, ExplainContext, Explanation
from .terms import TRI, is_threshold, literal, selectors, term_causes


def _root(chain: list[Blocker]) -> Blocker:
    """The root cause of the first blocking term: its chain followed down as deep as it goes
    (the next entry at the same depth is another term's)."""
    root = chain[0]
    for b in chain[1:]:
        if b.depth <= root.depth:
            break
        root = b
    return root


def _val(sym: Any) -> str:
    if sym.type in (kconfiglib.BOOL, kconfiglib.TRISTATE):
        return TRI[sym.tri_value]
    return str(sym.str_value)


def _loc(sym: Any) -> str:
    if not sym.nodes:
        return "(undefined)"
    node = sym.nodes[0]
    return f"{node.filename}:{node.linenr}"


def _expr(e: Any) -> str:
    def sc(item: Any) -> str:
        if literal(item):
            return str(item.name)
        if isinstance(item, kconfiglib.Symbol):
            return f"{item.name}[={_val(item)}]"
        return kconfiglib.standard_sc_expr_str(item)  # type: ignore[no-any-return]

    return str(kconfiglib.expr_str(e, sc))


def _is_probe(sym: Any) -> bool:
    """A promptless symbol whose defaults are constants: a $(shell)/$(cc-option) result."""
    if any(n.prompt for n in sym.nodes) or not sym.defaults:
        return False
    return all(literal(d) for d, _ in sym.defaults) and _probe(sym) is not None


def _definition(node: Any) -> list[str]:
    """The property lines of a symbol's definition as written (before macro expansion), up to
    its help text or the next entry."""
    try:
        with open(os.path.join(node.kconfig.srctree, node.filename), errors="replace") as f:
            lines = f.readlines()[node.linenr:node.linenr + 40]
    except OSError:
        return []
    out = []
    for line in lines:
        word = line.split(maxsplit=1)[0] if line.strip() else ""
        if word in _ENDS_DEFINITION or line.strip() and not line[0].isspace():
            break
        out.append(line)
    return out


# Keywords that end a symbol's properties: its help text, or the next entry (some Kconfig files
# indent their entries).
_ENDS_DEFINITION = {"help", "---help---", "config", "menuconfig", "choice", "endchoice", "menu",
                    "endmenu", "if", "endif", "source", "rsource", "osource", "orsource",
                    "comment", "mainmenu"}


class Explainer:
    """Explanations over a parsed tree with a config loaded: ``base`` and ``requested`` are
    the values read from the base config and from the fragment (they name a value's source)."""

    def __init__(self, kconf: Any, base: dict[str, str], requested: dict[str, str],
                 context: ExplainContext | None = None) -> None:
        self._k = kconf
        self.base_values = base
        self.requested = requested
        self.ctx = context or ExplainContext()
        self.tc = self.ctx.toolchain
        self.words = Words(kconf, self.ctx, base, requested)

    def explain(self, symbol: str, wanted: str) -> Explanation:
        sym = self._k.syms.get(symbol)
        if sym is None or not sym.nodes:
            return Explanation(symbol, "(missing)", wanted,
                               f"{symbol} does not exist in this kernel", "check the name or the "
                               "kernel version; gate it with when: kernel", (),
                               "not in this kernel")
        chain: list[Blocker] = []
        self._why(sym, wanted, 0, chain, set())
        value = _val(sym)
        if not chain:
            return self.words.unforced(symbol, value, wanted)
        root = _root(chain)
        summary = f"{symbol}={value}, wanted {wanted}: " + "; ".join(
            b.detail for b in chain if b.depth == max(c.depth for c in chain))
        # Every blocking term must change (an AND to hold, an OR to fail): one fix each.
        # Every cause the chain ends in must change (each term of an AND to hold, of an OR
        # to fail): one fix for each leaf of the chain, in order.
        fixes: list[Fix] = []
        for i, b in enumerate(chain):
            if i + 1 == len(chain) or chain[i + 1].depth <= b.depth:
                fixes.append(self.words.fix_for(b, symbol))
        if self.ctx.fix_in == "config" and root.kind != "choice":
            # A config is taken as it is: once a cause is fixed, each prompted symbol on the
            # way (and the symbol itself) keeps the config's value or its default (often n,
            # or m) unless it is written too.
            links = [b for i, b in enumerate(chain[:-1]) if chain[i + 1].depth > b.depth
                     and b.kind == "depends" and b.needed in ("y", "m") and self._prompted(b)]
            fixes += [Fix(setting=(b.symbol, b.needed, "")) for b in links]
            if any(n.prompt for n in sym.nodes):
                fixes.append(Fix(setting=(symbol, wanted, "")))
        fix = self.words.render(fixes)
        probe = _probe(self._k.syms[root.symbol]) if root.symbol in self._k.syms else None
        cause = self.words.cause(root, probe[0] if probe else f"a probe at {root.location}")
        return Explanation(symbol, value, wanted, summary, fix, tuple(chain), cause)

    def _prompted(self, b: Blocker) -> bool:
        sym = self._k.syms.get(b.symbol)
        return sym is not None and any(n.prompt for n in sym.nodes)

    def _add(self, chain: list[Blocker], sym: Any, needed: str, kind: str, detail: str,
             depth: int) -> None:
        chain.append(Blocker(sym.name, _val(sym), needed, kind, _loc(sym), detail,
                             self.words.source(sym.name), depth))

    def _why(self, sym: Any, wanted: str, depth: int, chain: list[Blocker], seen: set[str]) -> None:
        if sym.name in seen or depth > 5:
            return
        seen.add(sym.name)
        taken = adoption(sym)
        if taken is not None and not taken.shown:  # shown there: the user's value, as usual
            self._why_recorded(sym, wanted, taken, depth, chain)
        elif sym.type not in (kconfiglib.BOOL, kconfiglib.TRISTATE):
            self._why_value(sym, wanted, depth, chain, seen)
        elif wanted == "n":
            self._why_on(sym, depth, chain, seen)
        else:
            self._why_off(sym, wanted, depth, chain, seen)

    def _why_recorded(self, sym: Any, wanted: str, taken: Adopted, depth: int,
                      chain: list[Blocker]) -> None:
        """A symbol whose value is the checked config's record of its machine's answer."""
        here = "hidden" if taken.here is None else taken.here
        if taken.recorded is None:
            detail = (f"{sym.name} is hidden in this config: {_probe_line(sym)} fails for "
                      f"{self.tc} (with this machine's compiler: {here})")
        else:
            detail = (f"{sym.name}={taken.recorded} in this config, as {self.tc} answers "
                      f"{_probe_line(sym)} (with this machine's compiler: {here})")
        chain.append(Blocker(sym.name, _val(sym), wanted, "toolchain", _loc(sym), detail,
                             "the config's record", depth))

    # -- a bool or tristate that is on, wanted off

    def _why_on(self, sym: Any, depth: int, chain: list[Blocker], seen: set[str]) -> None:
        """Something selects it, its prompt is hidden, or it has no prompt and defaults on."""
        active = [t for t in kconfiglib.split_expr(sym.rev_dep, kconfiglib.OR)
                  if kconfiglib.expr_value(t)]
        for term in active:
            self._why_selected(sym, term, depth, chain, seen)
        if active:
            return
        value = _val(sym)
        prompts = [n for n in sym.nodes if n.prompt]
        if prompts and not sym.visibility:
            # The prompt is hidden, so the user's n is ignored and the default applies.
            cond = prompts[0].prompt[1]
            self._why_expr(cond, 2, depth, chain, seen,
                           f"{sym.name}'s prompt is hidden unless {_expr(cond)}, so its "
                           f"default ({value}) applies")
        elif _is_probe(sym):
            chain.append(Blocker(sym.name, value, "n", "toolchain", _loc(sym),
                                 f"{sym.name}={value} is decided by a compiler probe "
                                 f"({_probe_line(sym)})", "toolchain probe", depth))
        elif not prompts and not self._why_follows(sym, depth, chain, seen) \
                and not self._why_depends_on(sym, depth, chain, seen):
            self._add(chain, sym, "n", "promptless", f"{sym.name} has no prompt and "
                      f"defaults to {value} ({_loc(sym)})", depth)

    def _why_selected(self, sym: Any, term: Any, depth: int, chain: list[Blocker],
                      seen: set[str]) -> None:
        sel = term[1] if isinstance(term, tuple) else term
        if not isinstance(sel, kconfiglib.Symbol) or sel is self._k.modules:
            return
        if not any(n.prompt for n in sel.nodes) and _loc(sel).startswith("arch/"):
            chain.append(Blocker(sel.name, _val(sel), "n", "arch", _loc(sel),
                                 f"{sel.name} selects {sym.name} unconditionally on "
                                 "this arch", "arch", depth))
            return
        self._add(chain, sel, "n", "select",
                  f"{sel.name}={_val(sel)} selects {sym.name} ({_loc(sel)})", depth)
        self._why(sel, "n", depth + 1, chain, seen)

    def _why_follows(self, sym: Any, depth: int, chain: list[Blocker], seen: set[str]) -> bool:
        """A promptless symbol on because its active default follows other symbols."""
        for default, cond in sym.defaults:
            if kconfiglib.expr_value(cond) and kconfiglib.expr_value(default) and \
                    not literal(default):
                self._add(chain, sym, "n", "promptless",
                          f"{sym.name} has no prompt and follows {_expr(default)}", depth)
                for item in kconfiglib.expr_items(default):
                    if isinstance(item, kconfiglib.Symbol) and item.tri_value:
                        self._why(item, "n", depth + 1, chain, seen)
                return True
        return False

    def _why_depends_on(self, sym: Any, depth: int, chain: list[Blocker],
                        seen: set[str]) -> bool:
        """A promptless symbol that defaults on whenever its dependencies hold (COMPAT:
        def_bool y, depends on IA32_EMULATION || X86_X32_ABI): each term of theirs that is on
        must go off (of an AND, one suffices: the first)."""
        if sym.direct_dep is self._k.y:
            return False
        found = False
        for term in kconfiglib.split_expr(sym.direct_dep, kconfiglib.OR):
            if not kconfiglib.expr_value(term):
                continue
            on = [s for s in kconfiglib.expr_items(term)
                  if isinstance(s, kconfiglib.Symbol) and not literal(s) and s.tri_value
                  and s.nodes and s is not self._k.modules]
            for sub in on[:1]:
                detail = (f"also {sub.name}={_val(sub)}" if found else
                          f"{sym.name} has no prompt and is on while "
                          f"{_expr(sym.direct_dep)}: {sub.name}={_val(sub)}")
                self._add(chain, sub, "n", "depends", detail, depth)
                self._why(sub, "n", depth + 1, chain, seen)
                found = True
        return found

    # -- a bool or tristate that is off (or m), wanted on

    def _why_off(self, sym: Any, wanted: str, depth: int, chain: list[Blocker],
                 seen: set[str]) -> None:
        need = 2 if wanted == "y" else 1
        if sym.orig_type is kconfiglib.BOOL:
            need = 1  # a bool's visibility m counts as y (kconfig promotes it)
        if kconfiglib.expr_value(sym.direct_dep) < need:
            self._why_expr(sym.direct_dep, need, depth, chain, seen,
                           f"{sym.name} depends on {_expr(sym.direct_dep)}", owner=sym)
            return
        prompts = [n for n in sym.nodes if n.prompt]
        if prompts and all(kconfiglib.expr_value(n.prompt[1]) < need for n in prompts):
            # Hidden (`prompt ... if X`): before any choice, whose other member is then
            # only the consequence (DEFAULT_SECURITY_SELINUX without SECURITY_SELINUX).
            cond = prompts[0].prompt[1]
            self._why_expr(cond, need, depth, chain, seen,
                           f"{sym.name}'s prompt is hidden unless {_expr(cond)}")
            return
        if sym.choice is not None:
            sel = sym.choice.selection
            if sel is not None and sel is not sym:
                self._add(chain, sel, "n", "choice",
                          f"choice '{_prompt(sym.choice)}' has {sel.name}=y "
                          f"(from {self.words.source(sel.name)}), which excludes {sym.name}", depth)
                return
        if not prompts:
            self._why_promptless_off(sym, wanted, need, depth, chain, seen)

    def _why_promptless_off(self, sym: Any, wanted: str, need: int, depth: int,
                            chain: list[Blocker], seen: set[str]) -> None:
        """No prompt: a probe, a default whose condition fails, or no active selector."""
        value = _val(sym)
        if _is_probe(sym):
            chain.append(Blocker(sym.name, value, wanted, "toolchain", _loc(sym),
                                 f"{sym.name}={value}: the compiler probe at {_loc(sym)} "
                                 f"fails for {self.tc}", "toolchain probe", depth))
            return
        for default, cond in sym.defaults:
            # def_bool y if SMP: the default's condition is what keeps it off.
            if kconfiglib.expr_value(default) >= need and kconfiglib.expr_value(cond) < need:
                self._why_expr(cond, need, depth, chain, seen,
                               f"{sym.name} has no prompt and defaults to "
                               f"{_expr(default)} only if {_expr(cond)}")
                return
            if kconfiglib.expr_value(cond) >= need and kconfiglib.expr_value(default) < need \
                    and not literal(default):
                self._why_expr(default, need, depth, chain, seen,
                               f"{sym.name} has no prompt and follows {_expr(default)}")
                return
        selecting = selectors(sym)
        chosen_elsewhere = [s for s in selecting if s.choice is not None
                            and s.choice.selection not in (None, s)]
        if chosen_elsewhere and not any(s.tri_value for s in selecting):
            s0 = chosen_elsewhere[0]
            sel = s0.choice.selection
            self._add(chain, s0, "y", "choice",
                      f"{sym.name} is only selected by {s0.name}, a member of choice "
                      f"'{_prompt(s0.choice)}', which has {sel.name}=y "
                      f"(from {self.words.source(sel.name)})", depth)
            return
        if not selecting:
            chain.append(Blocker(
                sym.name, value, wanted, "arch", _loc(sym),
                f"{sym.name} has no prompt and nothing in the {self._k.srcarch} Kconfig "
                "of this kernel selects it: this arch does not support it here", "arch", depth))
            return
        names = ", ".join(sorted({s.name for s in selecting})[:6])
        chain.append(Blocker(sym.name, value, wanted, "promptless", _loc(sym),
                             f"{sym.name} has no prompt; it is only selected by {names}, "
                             "none of which is set", self.words.source(sym.name), depth))
        for s in selecting[:1]:
            self._why(s, wanted, depth + 1, chain, seen)

    # -- int, hex and string symbols

    def _why_value(self, sym: Any, wanted: str, depth: int, chain: list[Blocker],
                   seen: set[str]) -> None:
        if not kconfiglib.expr_value(sym.direct_dep):
            self._why_expr(sym.direct_dep, 2, depth, chain, seen,
                           f"{sym.name} depends on {_expr(sym.direct_dep)}")
            return
        if _is_probe(sym):  # CLANG_VERSION and friends: `default $(cc-version) if CC_IS_CLANG`
            measured_if = sym.defaults[0][1]
            if not kconfiglib.expr_value(measured_if):  # 0: not this tool at all, not too old
                self._why_expr(measured_if, 2, depth, chain, seen,
                               f"{sym.name} is measured only if {_expr(measured_if)}")
                return
            chain.append(Blocker(sym.name, _val(sym), wanted, "toolchain", _loc(sym),
                                 f"{sym.name}={_val(sym)} comes from {self.tc} "
                                 f"({_probe_line(sym)}); {wanted} is needed", "toolchain probe",
                                 depth))
            return
        if is_threshold(wanted) and not any(n.prompt for n in sym.nodes):
            self._add(chain, sym, wanted, "promptless", f"{sym.name} has no prompt: its value "
                      f"{_val(sym)} comes from its defaults ({_loc(sym)}); {wanted} is needed",
                      depth)
            return
        for low, high, cond in sym.ranges:
            if kconfiglib.expr_value(cond):
                self._add(chain, sym, wanted, "range",
                          f"{sym.name} is limited to {low.str_value}..{high.str_value} "
                          f"({_loc(sym)})", depth)
                return

    def _why_expr(self, expr: Any, need: int, depth: int, chain: list[Blocker], seen: set[str],
                  detail: str, owner: Any = None) -> None:
        """Find the terms of a dependency expression that keep it below ``need``."""
        terms = kconfiglib.split_expr(expr, kconfiglib.AND)
        blocking = [t for t in terms if kconfiglib.expr_value(t) < need]
        if owner is not None and any(literal(t) for t in blocking):
            probe = _probe_line(owner)
            chain.append(Blocker(owner.name, _val(owner), "y", "toolchain", _loc(owner),
                                 f"{owner.name} depends on a compiler probe that fails for "
                                 f"{self.tc}: {probe}", "toolchain probe", depth))
        first = True
        for term in blocking:
            if isinstance(term, kconfiglib.Choice):
                self._why_expr(term.direct_dep, need, depth, chain, seen,
                               f"choice '{_prompt(term)}' depends on {_expr(term.direct_dep)}")
                continue
            for sub, want in term_causes(term, need):
                if literal(sub):
                    continue
                if first:
                    self._add(chain, sub, want, "depends", f"{detail}: {sub.name}={_val(sub)}"
                              f" but {want} is needed", depth)
                    first = False
                else:
                    self._add(chain, sub, want, "depends", f"also {sub.name}={_val(sub)}, "
                              f"{want} needed", depth)
                self._why(sub, want, depth + 1, chain, seen)


def _probe(sym: Any) -> tuple[str, str] | None:
    """The first '$(...)' line of a symbol's definition as written in Kconfig, and where."""
    for node in sym.nodes:
        for line in _definition(node):
            if "$(" in line:
                return line.strip(), f"{node.filename}:{node.linenr}"
    return None


def _probe_line(sym: Any) -> str:
    probe = _probe(sym)
    return f"'{probe[0]}' ({probe[1]})" if probe else f"a $(...) probe ({_loc(sym)})"


def _prompt(sc: Any) -> str:
    for n in sc.nodes:
        if n.prompt:
            return str(n.prompt[0])
    return "(no prompt)"


