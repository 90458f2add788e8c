"""The one adapter over kconfiglib. Nothing else in kbuild-py imports kconfiglib.

- Compatibility with newer Kconfig syntax than kconfiglib 14.1.0 knows: the bare ``modules``
  attribute (kernel >= 5.13) and the choice semantics reworked in 6.11.
- The Kconfig environment the kernel's Makefile would export, so ``$(cc-option ...)`` probes
  reflect the chosen compiler.
- Plain data out: values as strings, explanations as dataclasses. No live kconfiglib object
  leaves this module.

kconfiglib is the brain that predicts and explains; Kbuild's own conf is the ground truth, and
the two are compared on every configure.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import lzma
import os
import pickle
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import kconfiglib

from .errors import InfraError, UserError
from .fsutil import atomic_write, in_thread

T = TypeVar("T")

# --------------------------------------------------------------------------- compatibility


class _CompatKconfig(kconfiglib.Kconfig):  # type: ignore[misc]
    """kconfiglib with the syntax of kernels newer than it knows."""

    # Choice members in Kbuild's priority order (6.11+): each member read from a config file
    # moves to the front, so the last one read wins (scripts/kconfig/confdata.c).
    choice_priority: dict[Any, list[Any]]
    srcarch: str

    def _tokenize(self, s: str) -> Any:
        tokens = super()._tokenize(s)
        # Kernel 5.13 turned "option modules" into a bare "modules" attribute.
        if tokens[0] is kconfiglib._T_MODULES and tokens[1] is None:
            return (kconfiglib._T_OPTION, kconfiglib._T_MODULES, None)
        return tokens


class _Choice611(kconfiglib.Choice):  # type: ignore[misc]
    """Choice selection as scripts/kconfig/symbol.c:sym_calc_choice() does since 6.11.

    The first visible member the user set to y; else the default, unless the user set it to n;
    else the first visible member the user did not set; else the last visible member.
    """

    __slots__ = ()

    def _selection(self) -> Any:
        if self.tri_value != 2:
            return None
        priority = self.kconfig.choice_priority.get(self) or list(self.syms)
        for sym in priority:
            if sym.visibility and sym.user_value == 2:
                return sym
        for sym, cond in self.defaults:
            if kconfiglib.expr_value(cond) and sym.visibility:
                if sym.user_value == 0:
                    break
                return sym
        for sym in self.syms:
            if sym.visibility and sym.user_value is None:
                return sym
        for sym in reversed(priority):
            if sym.visibility:
                return sym
        return None


NEW_CHOICE_SEMANTICS = (6, 11)


_kconfiglib_tri_value = kconfiglib.Symbol.tri_value.fget


def _tri_value(sym: Any) -> int:
    """Symbol.tri_value as scripts/kconfig/symbol.c:sym_calc_value() computes it for a tristate
    another symbol `imply`s, in the kernels kbuild-py supports (checked in 6.1 and 6.12).

    kconfiglib follows an older conf: an implier at y promotes m to y even over the user's m,
    and the implied value ignores the symbol's own dependencies. Kbuild keeps a visible user
    value as it is, and ANDs the implied value with the direct dependencies. kconfiglib's value
    is never below Kbuild's, so only a y is ever corrected. (Installed on the class: kconfiglib
    tells symbols by `__class__ is Symbol`, so a subclass would be skipped when writing.)
    """
    val: int = _kconfiglib_tri_value(sym)
    if val != 2 or sym.weak_rev_dep is sym.kconfig.n or sym.orig_type is not kconfiglib.TRISTATE \
            or sym.choice is not None:
        return val
    vis = sym.visibility
    if vis and sym.user_value is not None:
        val = min(sym.user_value, vis)
    else:
        val = 0
        for default, cond in sym.defaults:
            if kconfiglib.expr_value(cond):
                val = min(kconfiglib.expr_value(default), kconfiglib.expr_value(cond))
                break
        implied = kconfiglib.expr_value(sym.weak_rev_dep)
        if implied:
            val = min(max(val, implied), kconfiglib.expr_value(sym.direct_dep))
    val = max(val, kconfiglib.expr_value(sym.rev_dep))
    if val == 1 and sym.type is kconfiglib.BOOL:  # tristates are bools without MODULES
        val = 2
    sym._cached_tri_val = val
    return val


kconfiglib.Symbol.tri_value = property(_tri_value, doc=kconfiglib.Symbol.tri_value.__doc__)

# --------------------------------------------------------------------------- reading .config

_SET = re.compile(r"^CONFIG_([A-Za-z0-9_]+)=(.*)$")
_UNSET = re.compile(r"^# CONFIG_([A-Za-z0-9_]+) is not set$")


def assignments(path: Path) -> list[tuple[str, str]]:
    """Every assignment in a .config or fragment, in file order; 'n' for '# ... is not set'.

    String values are unquoted. Reads .xz files directly.
    """
    opener = lzma.open if path.suffix == ".xz" else open
    out: list[tuple[str, str]] = []
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as f:
            for line in f:
                line = line.rstrip("\n")
                if m := _SET.match(line):
                    raw = m.group(2)
                    if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
                        raw = kconfiglib.unescape(raw[1:-1])
                    out.append((m.group(1), raw))
                elif m := _UNSET.match(line):
                    out.append((m.group(1), "n"))
    except FileNotFoundError:
        raise UserError(f"{path}: no such file", "check the path of the .config") from None
    except (OSError, EOFError, lzma.LZMAError) as e:
        raise UserError(f"{path}: cannot read config: {e}", "check the path") from None
    return out


def read_config(path: Path) -> dict[str, str]:
    """{symbol: value} of a .config or fragment; later assignments win, as in Kbuild's conf."""
    return dict(assignments(path))


def fragment_line(symbol: str, value: str, kind: str) -> str:
    """One .config line; strings are escaped so no value can inject a line."""
    if value == "n" and kind in ("bool", "tristate", "unknown"):
        return f"# CONFIG_{symbol} is not set"
    if kind == "string":
        return f'CONFIG_{symbol}="{kconfiglib.escape(value)}"'
    if "\n" in value or "\r" in value:
        raise UserError(f"CONFIG_{symbol}: value contains a newline", "remove it")
    return f"CONFIG_{symbol}={value}"


# --------------------------------------------------------------------------- explanations


@dataclass(frozen=True)
class Blocker:
    """One link in the chain that keeps a symbol from its wanted value."""

    symbol: str
    value: str
    needed: str
    kind: str  # depends | select | choice | toolchain | arch | promptless | missing | range
    location: str  # Kconfig file:line of the symbol's definition
    detail: str
    source: str = ""  # where the blocking value came from: base config, fragment, default
    depth: int = 0


@dataclass(frozen=True)
class Explanation:
    symbol: str
    value: str
    wanted: str
    summary: str
    fix: str
    chain: tuple[Blocker, ...] = field(default_factory=tuple)
    cause: str = ""  # the root cause in a few words, for one-line messages

    def to_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol, "value": self.value, "wanted": self.wanted,
            "summary": self.summary, "fix": self.fix, "cause": self.cause,
            "chain": [b.__dict__ for b in self.chain],
        }


def _is_threshold(needed: str) -> bool:
    """'>= 150000' and friends: what a comparison in a dependency needs of an int symbol."""
    return needed.startswith(("<", ">"))


def _root(chain: list[Blocker]) -> Blocker:
    """The root cause of the first blocking term: its chain followed down as deep as it goes
    (the next entry at the same depth is another term's)."""
    root = chain[0]
    for b in chain[1:]:
        if b.depth <= root.depth:
            break
        root = b
    return root


def _cause(root: Blocker, probe: str) -> str:
    if root.kind == "toolchain" and _is_threshold(root.needed):
        return f"the toolchain gives {root.symbol}={root.value}, {root.needed} needed"
    if root.kind == "toolchain":
        return f"{root.symbol}={root.value}, decided by the toolchain: {probe}"
    if root.kind == "arch":
        return f"not on this arch ({root.symbol})"
    if root.kind == "missing":
        return f"{root.symbol} does not exist in this kernel"
    return f"{root.symbol}={root.value}, from {root.source}"


_TRI = {0: "n", 1: "m", 2: "y"}


def _val(sym: Any) -> str:
    if sym.type in (kconfiglib.BOOL, kconfiglib.TRISTATE):
        return _TRI[sym.tri_value]
    return str(sym.str_value)


def _loc(sym: Any) -> str:
    if not sym.nodes:
        return "(undefined)"
    node = sym.nodes[0]
    return f"{node.filename}:{node.linenr}"


def _expr(e: Any) -> str:
    def sc(item: Any) -> str:
        if _literal(item):
            return str(item.name)
        if isinstance(item, kconfiglib.Symbol):
            return f"{item.name}[={_val(item)}]"
        return kconfiglib.standard_sc_expr_str(item)  # type: ignore[no-any-return]

    return str(kconfiglib.expr_str(e, sc))


_NUMBER = re.compile(r"-?(0[xX][0-9a-fA-F]+|[0-9]+)")


def _literal(item: Any) -> bool:
    """A constant in an expression: y/n/m, a quoted string, or a number (kconfiglib keeps a bare
    number as an undefined symbol named by its value, not as a constant)."""
    if not isinstance(item, kconfiglib.Symbol):
        return False
    return bool(item.is_constant or (not item.nodes and _NUMBER.fullmatch(item.name)))


def _is_probe(sym: Any) -> bool:
    """A promptless symbol whose defaults are constants: a $(shell)/$(cc-option) result."""
    if any(n.prompt for n in sym.nodes) or not sym.defaults:
        return False
    return all(_literal(d) for d, _ in sym.defaults) and _probe(sym) is not None


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


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class SymbolInfo:
    name: str
    type: str  # bool tristate string int hex unknown
    location: str


class SymbolTable:
    """Which symbols exist and their types: all that resolution needs, cheap to keep on disk."""

    def __init__(self, symbols: dict[str, tuple[str, str]]) -> None:
        self._symbols = symbols

    def info(self, symbol: str) -> SymbolInfo | None:
        found = self._symbols.get(symbol)
        return SymbolInfo(symbol, found[0], found[1]) if found else None

    def names(self) -> list[str]:
        return list(self._symbols)

    def to_json(self) -> str:
        return json.dumps(self._symbols, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> SymbolTable:
        data = json.loads(text)
        return cls({k: (v[0], v[1]) for k, v in data.items()})


class KconfigModel:
    """A parsed Kconfig tree for one arch and toolchain."""

    def __init__(self, kconf: Any) -> None:
        self._k = kconf
        self.from_cache = False
        self.base_values: dict[str, str] = {}
        self.requested: dict[str, str] = {}

    # -- parsing

    @classmethod
    def parse(cls, srctree: Path, env: dict[str, str], version: tuple[int, ...],
              cache: Path | None = None, store: bool = True,
              probes: Path | None = None) -> KconfigModel:
        """Parse srctree/Kconfig with the Makefile's environment.

        With ``cache`` (a file path whose name is a key over everything that can change the
        parse), a pickled model is reused; a missing, stale or unreadable cache re-parses, and
        the new model is stored there unless ``store`` is false (see store()).

        With ``probes`` (a file naming the $(shell ...) probes an earlier parse with this arch
        and toolchain ran), those probes are started in parallel ahead of the parse (see
        _ProbeAhead); without it they run one after another as the parse meets them.
        """
        if cache is not None and cache.is_file():
            model = cls._from_cache(cache)
            if model is not None:
                return model
        with _environment(env), _scratch_cwd(), _ProbeAhead(probes, str(srctree)), _no_gc():
            try:
                kconf = _CompatKconfig(str(srctree / "Kconfig"), warn=False, warn_to_stderr=False,
                                       suppress_traceback=False)
            except kconfiglib.KconfigError as e:
                raise InfraError(f"{srctree}: kconfiglib cannot parse Kconfig: {e}".strip(),
                                 "report this kernel version as unsupported") from None
        kconf._functions["shell"] = (kconfiglib._shell_fn, 1, 1)  # not the probe-ahead hook
        kconf.choice_priority = {}
        kconf.srcarch = env.get("SRCARCH", "?")
        if version[:2] >= NEW_CHOICE_SEMANTICS:
            for choice in kconf.unique_choices:
                choice.__class__ = _Choice611
        model = cls(kconf)
        if cache is not None and store:
            model.store(cache)
        return model

    @classmethod
    def _from_cache(cls, path: Path) -> KconfigModel | None:
        try:
            data = path.read_bytes()
            with _no_gc():
                kconf = _deep(lambda: pickle.loads(data))
        except Exception:  # a damaged cache is never trusted: parse again
            return None
        if not isinstance(kconf, _CompatKconfig):
            return None
        model = cls(kconf)
        model.from_cache = True
        return model

    def store(self, path: Path) -> None:
        self._k._readline = None  # the closed Kconfig file handle cannot be pickled
        self._k._filestack = []
        data = _deep(lambda: pickle.dumps(self._k, protocol=pickle.HIGHEST_PROTOCOL))
        atomic_write(path, data)

    # -- queries

    def has(self, symbol: str) -> bool:
        sym = self._k.syms.get(symbol)
        return bool(sym is not None and sym.nodes)

    def info(self, symbol: str) -> SymbolInfo | None:
        sym = self._k.syms.get(symbol)
        if sym is None or not sym.nodes:
            return None
        return SymbolInfo(symbol, kconfiglib.TYPE_TO_STR[sym.orig_type] or "unknown", _loc(sym))

    def names(self) -> list[str]:
        return [s.name for s in self._k.unique_defined_syms]

    def symbol_table(self) -> SymbolTable:
        table = {}
        for sym in self._k.unique_defined_syms:
            table[sym.name] = (kconfiglib.TYPE_TO_STR[sym.orig_type] or "unknown", _loc(sym))
        return SymbolTable(table)

    def value(self, symbol: str) -> str | None:
        sym = self._k.syms.get(symbol)
        return None if sym is None or not sym.nodes else _val(sym)

    # -- configuration

    def load(self, base: Path, fragment: Path | None = None) -> None:
        """Load the base .config, then the fragment on top (later assignments win)."""
        self.base_values = read_config(base)
        self.requested = read_config(fragment) if fragment else {}
        self._k.choice_priority = {}
        for i, path in enumerate([base] + ([fragment] if fragment else [])):
            with _plain_file(path) as plain:
                try:
                    self._k.load_config(str(plain), replace=(i == 0))
                except kconfiglib.KconfigError as e:
                    raise UserError(f"{path}: cannot load config: {str(e).strip()}",
                                    "give a .config or fragment in Kconfig format") from None
            self._note_choice_order(path)

    def _note_choice_order(self, path: Path) -> None:
        order = self._k.choice_priority
        for name, _ in assignments(path):
            sym = self._k.syms.get(name)
            if sym is None or sym.choice is None:
                continue
            members = order.setdefault(sym.choice, list(sym.choice.syms))
            members.remove(sym)
            members.insert(0, sym)
            sym.choice._rec_invalidate()

    def write(self, path: Path) -> None:
        self._k.write_config(str(path), save_old=False)

    def values(self) -> dict[str, str]:
        """Every written symbol's value, as the C tools would write it (n for 'not set')."""
        out: dict[str, str] = {}
        for sym in self._k.unique_defined_syms:
            if sym.config_string:
                out[sym.name] = _val(sym)
        return out

    # -- explanation

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
            source = self._source(symbol)
            summary = (f"{symbol}={value}, wanted {wanted}: the value comes from the {source}; "
                       "no dependency forces it")
            line = f"# CONFIG_{symbol} is not set" if wanted == "n" else f"CONFIG_{symbol}={wanted}"
            return Explanation(symbol, value, wanted, summary, f"write {line} in the {source}",
                               (), f"the {source} sets it")
        root = _root(chain)
        summary = f"{symbol}={value}, wanted {wanted}: " + "; ".join(
            b.detail for b in chain if b.depth == max(c.depth for c in chain))
        member = root.symbol if root.needed == "y" else symbol
        fix = (f"set {member}: y in the profile: a choice member set by the fragment wins"
               if root.kind == "choice" else self._fix(root))
        probe = _probe(self._k.syms[root.symbol]) if root.symbol in self._k.syms else None
        cause = _cause(root, probe[0] if probe else f"a probe at {root.location}")
        return Explanation(symbol, value, wanted, summary, fix, tuple(chain), cause)

    def _source(self, name: str) -> str:
        if name in self.requested:
            return "fragment (profile)"
        if name in self.base_values:
            return "base config"
        return "Kconfig default"

    def _fix(self, root: Blocker) -> str:
        if root.kind == "toolchain" and _is_threshold(root.needed) and root.value == "0":
            return (f"the toolchain lacks the tool {root.symbol} measures ({root.symbol}=0) and "
                    f"{root.needed} is needed: install it, or use a toolchain that has it, or "
                    "waive the requirement for this one")
        if root.kind == "toolchain" and _is_threshold(root.needed):
            age = "old" if root.needed.startswith(">") else "new"
            return (f"the toolchain is too {age}: {root.symbol} is {root.value} with it and "
                    f"{root.needed} is needed: use a toolchain that meets that, or waive the "
                    "requirement for this one")
        if root.kind == "promptless" and _is_threshold(root.needed):
            return (f"{root.symbol} has no prompt and cannot be set: change what its defaults "
                    f"follow ({root.location}), or waive the requirement for this one")
        if root.kind == "toolchain":
            return (f"{root.symbol} depends on the compiler: use a toolchain for which the "
                    "probe succeeds, or waive the requirement for this one")
        if root.kind == "arch" and root.needed == "n":
            return "cannot be turned off on this arch: waive it here or limit it with when: arch"
        if root.kind == "arch":
            return "not available on this arch: waive it here or limit it with when: arch"
        if root.kind == "missing":
            return f"{root.symbol} does not exist in this kernel"
        if root.needed == "n":
            return f"set {root.symbol}: n in the profile (now {root.value}, from {root.source})"
        return f"set {root.symbol}: {root.needed} in the profile (now {root.value}, " \
               f"from {root.source})"

    def _add(self, chain: list[Blocker], sym: Any, needed: str, kind: str, detail: str,
             depth: int) -> None:
        chain.append(Blocker(sym.name, _val(sym), needed, kind, _loc(sym), detail,
                             self._source(sym.name), depth))

    def _why(self, sym: Any, wanted: str, depth: int, chain: list[Blocker], seen: set[str]) -> None:
        if sym.name in seen or depth > 5:
            return
        seen.add(sym.name)
        value = _val(sym)
        want_on = wanted not in ("n",)
        if sym.type not in (kconfiglib.BOOL, kconfiglib.TRISTATE):
            self._why_value(sym, wanted, depth, chain, seen)
            return
        if not want_on:
            # Wanted off but on: something selects it, or it has no prompt and defaults on.
            active = [t for t in kconfiglib.split_expr(sym.rev_dep, kconfiglib.OR)
                      if kconfiglib.expr_value(t)]
            for term in active:
                sel = term[1] if isinstance(term, tuple) else term
                if not isinstance(sel, kconfiglib.Symbol) or sel is self._k.modules:
                    continue
                if not any(n.prompt for n in sel.nodes) and _loc(sel).startswith("arch/"):
                    chain.append(Blocker(sel.name, _val(sel), "n", "arch", _loc(sel),
                                         f"{sel.name} selects {sym.name} unconditionally on "
                                         "this arch", "arch", depth))
                    continue
                self._add(chain, sel, "n", "select",
                          f"{sel.name}={_val(sel)} selects {sym.name} ({_loc(sel)})", depth)
                self._why(sel, "n", depth + 1, chain, seen)
            prompts = [n for n in sym.nodes if n.prompt]
            if not active and prompts and not sym.visibility:
                # The prompt is hidden, so the user's n is ignored and the default applies.
                cond = prompts[0].prompt[1]
                self._why_expr(cond, 2, depth, chain, seen,
                               f"{sym.name}'s prompt is hidden unless {_expr(cond)}, so its "
                               f"default ({value}) applies")
                return
            if not active and not prompts and not _is_probe(sym):
                for default, cond in sym.defaults:
                    if kconfiglib.expr_value(cond) and kconfiglib.expr_value(default) and \
                            not _literal(default):
                        self._add(chain, sym, "n", "promptless",
                                  f"{sym.name} has no prompt and follows {_expr(default)}",
                                  depth)
                        for item in kconfiglib.expr_items(default):
                            if isinstance(item, kconfiglib.Symbol) and item.tri_value:
                                self._why(item, "n", depth + 1, chain, seen)
                        return
            if not active and _is_probe(sym):
                chain.append(Blocker(sym.name, value, "n", "toolchain", _loc(sym),
                                     f"{sym.name}={value} is decided by a compiler probe "
                                     f"({_probe_line(sym)})", "toolchain probe", depth))
            elif not active and not any(n.prompt for n in sym.nodes):
                self._add(chain, sym, "n", "promptless", f"{sym.name} has no prompt and "
                          f"defaults to {value} ({_loc(sym)})", depth)
            return
        # Wanted on.
        dep_value = kconfiglib.expr_value(sym.direct_dep)
        need = 2 if wanted == "y" else 1
        if dep_value < need:
            self._why_expr(sym.direct_dep, need, depth, chain, seen,
                           f"{sym.name} depends on {_expr(sym.direct_dep)}", owner=sym)
            return
        if sym.choice is not None:
            sel = sym.choice.selection
            if sel is not None and sel is not sym:
                self._add(chain, sel, "n", "choice",
                          f"choice '{_prompt(sym.choice)}' has {sel.name}=y "
                          f"(from {self._source(sel.name)}), which excludes {sym.name}", depth)
                return
        prompts = [n for n in sym.nodes if n.prompt]
        if not prompts:
            selectors = _selectors(sym)
            if _is_probe(sym):
                chain.append(Blocker(sym.name, value, wanted, "toolchain", _loc(sym),
                                     f"{sym.name}={value}: the compiler probe at {_loc(sym)} "
                                     "failed for this toolchain", "toolchain probe", depth))
                return
            for default, cond in sym.defaults:
                # def_bool y if SMP: the default's condition is what keeps it off.
                if kconfiglib.expr_value(default) >= need and kconfiglib.expr_value(cond) < need:
                    self._why_expr(cond, need, depth, chain, seen,
                                   f"{sym.name} has no prompt and defaults to "
                                   f"{_expr(default)} only if {_expr(cond)}")
                    return
                if kconfiglib.expr_value(cond) >= need and kconfiglib.expr_value(default) < need \
                        and not _literal(default):
                    self._why_expr(default, need, depth, chain, seen,
                                   f"{sym.name} has no prompt and follows {_expr(default)}")
                    return
            chosen_elsewhere = [s for s in selectors if s.choice is not None
                                and s.choice.selection not in (None, s)]
            if chosen_elsewhere and not any(s.tri_value for s in selectors):
                s0 = chosen_elsewhere[0]
                sel = s0.choice.selection
                self._add(chain, s0, "y", "choice",
                          f"{sym.name} is only selected by {s0.name}, a member of choice "
                          f"'{_prompt(s0.choice)}', which has {sel.name}=y "
                          f"(from {self._source(sel.name)})", depth)
                return
            if not selectors:
                chain.append(Blocker(
                    sym.name, value, wanted, "arch", _loc(sym),
                    f"{sym.name} has no prompt and nothing in the {self._k.srcarch} Kconfig "
                    "selects it: this arch does not support it", "arch", depth))
                return
            names = ", ".join(sorted({s.name for s in selectors})[:6])
            chain.append(Blocker(sym.name, value, wanted, "promptless", _loc(sym),
                                 f"{sym.name} has no prompt; it is only selected by {names}, "
                                 "none of which is set", self._source(sym.name), depth))
            for s in selectors[:1]:
                self._why(s, wanted, depth + 1, chain, seen)
            return
        for node in prompts:
            cond = node.prompt[1]
            if kconfiglib.expr_value(cond) < need:
                self._why_expr(cond, need, depth, chain, seen,
                               f"{sym.name}'s prompt is hidden unless {_expr(cond)}")
                return

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
                                 f"{sym.name}={_val(sym)} comes from the toolchain "
                                 f"({_probe_line(sym)}); {wanted} is needed", "toolchain probe",
                                 depth))
            return
        if _is_threshold(wanted) and not any(n.prompt for n in sym.nodes):
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
        if owner is not None and any(_literal(t) for t in blocking):
            probe = _probe_line(owner)
            chain.append(Blocker(owner.name, _val(owner), "y", "toolchain", _loc(owner),
                                 f"{owner.name} depends on a compiler probe that failed for this "
                                 f"toolchain: {probe}", "toolchain probe", depth))
        first = True
        for term in blocking:
            if isinstance(term, kconfiglib.Choice):
                self._why_expr(term.direct_dep, need, depth, chain, seen,
                               f"choice '{_prompt(term)}' depends on {_expr(term.direct_dep)}")
                continue
            for sub, want in _term_causes(term, need):
                if _literal(sub):
                    continue
                if first:
                    self._add(chain, sub, want, "depends", f"{detail}: {sub.name}={_val(sub)}"
                              f" but {want} is needed", depth)
                    first = False
                else:
                    self._add(chain, sub, want, "depends", f"also {sub.name}={_val(sub)}, "
                              f"{want} needed", depth)
                self._why(sub, want, depth + 1, chain, seen)


def _term_causes(term: Any, need: int) -> list[tuple[Any, str]]:
    """Symbols in a failing term and the value each should have."""
    if isinstance(term, kconfiglib.Symbol):
        return [(term, "y" if need == 2 else "m")]
    if isinstance(term, tuple):
        op = term[0]
        if op is kconfiglib.NOT and isinstance(term[1], kconfiglib.Symbol):
            return [(term[1], "n")]
        if op is kconfiglib.NOT:  # !(CC_IS_CLANG && CLANG_VERSION < 190103)
            negated = _negated(term[1])
            return _term_causes(negated, need) if negated is not None else []
        if op is kconfiglib.OR:
            # One alternative is enough to name: the one closest to holding, and of those a
            # comparison (a version gate), which says most.
            alternatives = kconfiglib.split_expr(term, kconfiglib.OR)
            alternatives.sort(key=lambda t: (_failing(t, need), not _compares(t)))
            for t in alternatives:
                causes = _term_causes(t, need)
                if causes:
                    return causes[:1]
            return []
        if op is kconfiglib.AND:
            out = []
            for t in kconfiglib.split_expr(term, kconfiglib.AND):
                if kconfiglib.expr_value(t) < need:
                    out.extend(_term_causes(t, need))
            return out
        if op in (kconfiglib.EQUAL, kconfiglib.UNEQUAL) and isinstance(term[1], kconfiglib.Symbol):
            want = term[2].str_value if op is kconfiglib.EQUAL else f"not {term[2].str_value}"
            return [(term[1], want)]
        if op in _ORDER:  # CLANG_VERSION >= 150000, or 150000 <= CLANG_VERSION
            left, right = term[1], term[2]
            if _literal(left) and not _literal(right):
                left, right, op = right, left, _ORDER[op]
            if _literal(left):
                return []
            if _literal(right):
                return [(left, f"{kconfiglib.REL_TO_STR[op]} {right.str_value}")]
            if left.orig_type in (kconfiglib.BOOL, kconfiglib.TRISTATE):  # TCG_TPM >= TRUSTED_KEYS
                step = {kconfiglib.GREATER: 1, kconfiglib.LESS: -1}.get(op, 0)
                return [(left, _TRI[min(2, max(0, right.tri_value + step))])]
            return [(left, f"{kconfiglib.REL_TO_STR[op]} {right.name} (={right.str_value})")]
    return []


def _failing(e: Any, need: int) -> int:
    """How many terms of an AND fall short of ``need``."""
    return sum(kconfiglib.expr_value(t) < need for t in kconfiglib.split_expr(e, kconfiglib.AND))


def _compares(e: Any) -> bool:
    """Whether an expression holds an order comparison."""
    return isinstance(e, tuple) and (e[0] in _ORDER or any(_compares(x) for x in e[1:]))


# Each comparison's negation (!(a < b) is a >= b).
_NEGATION = {kconfiglib.EQUAL: kconfiglib.UNEQUAL, kconfiglib.UNEQUAL: kconfiglib.EQUAL,
             kconfiglib.LESS: kconfiglib.GREATER_EQUAL, kconfiglib.GREATER_EQUAL: kconfiglib.LESS,
             kconfiglib.GREATER: kconfiglib.LESS_EQUAL, kconfiglib.LESS_EQUAL: kconfiglib.GREATER}


def _negated(e: Any) -> Any:
    """!e with the negation pushed inwards (De Morgan holds in Kconfig's three-valued logic),
    or None where it cannot go further."""
    if isinstance(e, kconfiglib.Symbol):
        return (kconfiglib.NOT, e)
    if not isinstance(e, tuple):  # a choice
        return None
    op = e[0]
    if op is kconfiglib.NOT:
        return e[1]
    if op in (kconfiglib.AND, kconfiglib.OR):
        a, b = _negated(e[1]), _negated(e[2])
        if a is None or b is None:
            return None
        return (kconfiglib.OR if op is kconfiglib.AND else kconfiglib.AND, a, b)
    if op in _NEGATION:
        return (_NEGATION[op], e[1], e[2])
    return None


# The order comparisons, each with its mirror image (a < b is b > a).
_ORDER = {kconfiglib.LESS: kconfiglib.GREATER, kconfiglib.GREATER: kconfiglib.LESS,
          kconfiglib.LESS_EQUAL: kconfiglib.GREATER_EQUAL,
          kconfiglib.GREATER_EQUAL: kconfiglib.LESS_EQUAL}


def _selectors(sym: Any) -> list[Any]:
    """The symbols that `select` sym (not the symbols in their conditions)."""
    out = []
    for term in kconfiglib.split_expr(sym.rev_dep, kconfiglib.OR):
        sel = term[1] if isinstance(term, tuple) and term[0] is kconfiglib.AND else term
        if isinstance(sel, kconfiglib.Symbol) and not sel.is_constant and sel not in out:
            out.append(sel)
    return out


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


@contextlib.contextmanager
def _plain_file(path: Path) -> Iterator[Path]:
    """kconfiglib reads plain files: decompress .xz configs into a temp file."""
    if path.suffix != ".xz":
        yield path
        return
    with tempfile.NamedTemporaryFile("w", suffix=".config", delete=True) as tmp:
        try:
            with lzma.open(path, "rt", encoding="utf-8", errors="replace") as f:
                tmp.write(f.read())
        except (OSError, lzma.LZMAError) as e:
            raise UserError(f"{path}: cannot decompress: {e}", "check the file") from None
        tmp.flush()
        yield Path(tmp.name)


def _deep(fn: Callable[[], T]) -> T:
    """Run ``fn`` (pickling the Kconfig graph) where deep recursion is safe.

    The graph's menu nodes form chains thousands long, and pickle follows them recursively:
    Python's recursion limit must be raised, and the C stack must be large enough for that
    depth, or the process dies of SIGSEGV. So the work runs on a thread of its own with a
    512 MiB stack (address space; only the pages touched are used).
    """
    old_limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old_limit, 1_000_000))
    try:
        return in_thread(fn, "kbuild-pickle", stack_size=512 << 20)()
    finally:
        sys.setrecursionlimit(old_limit)


def cache_key(parts: list[str]) -> str:
    """Key of a cached model: the caller's parts plus kconfiglib's and this adapter's code."""
    adapter = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
    kversion = ".".join(map(str, getattr(kconfiglib, "VERSION", ())))
    material = "\n".join([*parts, kversion, adapter, sys.version])
    return hashlib.sha256(material.encode()).hexdigest()


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """A parse or an unpickling makes ~10^5 long-lived objects. The cyclic garbage collector,
    run again and again as they are made and then over all of them (up to the interpreter's
    last collection at exit), only costs time: ~20% of a cold resolution. So they are made with
    it off and then frozen out of its sight (gc.freeze): a model lives as long as its process,
    which is one kbuild-py or SCons run."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was:
            gc.enable()


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


class _ProbeAhead:
    """Run the Kconfig tree's $(shell ...) probes (compiler tests: over half of a parse) in
    parallel, ahead of the parse that needs them.

    Which probes a parse will run is only known by parsing, so two sources guess them: the
    commands an earlier parse ran with the same arch and toolchain (any tree: the source path is
    a placeholder), kept as a hint; and a prescan (_Prescan) that reads the Kconfig files ahead
    of kconfiglib and expands only their macros. Only commands are guessed, never a result:
    every probe runs afresh, a result is used only for the very command the parse asks for,
    and a command nobody foresaw runs when the parse meets it, as without any of this.
    """

    _SRC = "@SRCTREE@"

    def __init__(self, hint: Path | None, srctree: str) -> None:
        self.hint, self.srctree = hint, srctree
        self.seen: list[str] = []
        self.ahead: dict[str, Any] = {}

    def __enter__(self) -> _ProbeAhead:
        import threading
        from concurrent.futures import Future, ThreadPoolExecutor

        self.original = kconfiglib._shell_fn
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 2)
        known: list[str] = []
        if self.hint is not None:
            with contextlib.suppress(OSError, ValueError, TypeError):
                known = [c.replace(self._SRC, self.srctree)
                         for c in json.loads(self.hint.read_text())]
        for command in known:
            self.submit(command)
        self.prescan = _Prescan(self.srctree, self.submit)
        self.prescan.start()

        def shell(kconf: Any, name: Any, command: str) -> str:
            self.seen.append(command)
            with self.lock:
                future = self.ahead.get(command)
                if future is None:  # nobody foresaw it: run it here, for the prescan too
                    future = self.ahead[command] = Future()
                    mine = True
                else:
                    mine = False
            if not mine:
                return str(future.result())
            try:
                result = str(self.original(kconf, name, command))
            except BaseException as e:
                future.set_exception(e)
                raise
            future.set_result(result)
            return result

        kconfiglib._shell_fn = shell
        return self

    def submit(self, command: str) -> Any:
        """Start ``command`` unless it runs already; its future."""
        with self.lock:
            future = self.ahead.get(command)
            if future is None:
                future = self.ahead[command] = self.pool.submit(
                    self.original, _QUIET, None, command)
            return future

    def __exit__(self, kind: object, *_: object) -> None:
        kconfiglib._shell_fn = self.original
        self.prescan.stop()
        self.pool.shutdown(wait=True, cancel_futures=True)
        if kind is None and self.hint is not None and self.seen:
            atomic_write(self.hint, json.dumps(
                [c.replace(self.srctree, self._SRC) for c in self.seen], indent=0))


_RELATIVE_SOURCE = ("rsource", "orsource", "grsource")


class _PrescanLineError(Exception):
    pass


class _Prescan:
    """Reads the Kconfig files in kconfiglib's order, in a thread, only to start their probes.

    It follows ``source`` lines and preprocessor assignments and expands the macros of the
    other lines with kconfiglib's own expander; everything else (symbols, menus, help text) is
    skipped. A ``:=`` assignment waits for its probes, as kconfiglib would; any other line's
    probes are only started. Whatever it gets wrong costs a wasted probe, never a wrong value:
    the parse uses a probe's result only for the command it asks for itself.
    """

    # kconfiglib's macro machinery, borrowed: it needs only the attributes set in __init__.
    _expand_whole = kconfiglib.Kconfig._expand_whole
    _expand_macro = kconfiglib.Kconfig._expand_macro
    _fn_val = kconfiglib.Kconfig._fn_val
    _parse_assignment = kconfiglib.Kconfig._parse_assignment

    _SOURCE = re.compile(r'\s*(source|rsource|osource|orsource|gsource|grsource)\s+"([^"]*)"')
    _ASSIGN = re.compile(r"[A-Za-z0-9_$()-]+\s*(=|:=|\+=)")

    def __init__(self, srctree: str, submit: Callable[[str], Any]) -> None:
        self.srctree, self.submit = srctree, submit
        self.variables: dict[str, Any] = {}
        self.env_vars: set[str] = set()
        self._encoding = "utf-8"
        self.filename: str | None = None
        self.linenr: int | None = None
        self.wait = False
        self.stopped = False
        self._functions = {
            "info": (lambda *_: "", 1, 1), "warning-if": (lambda *_: "", 2, 2),
            "error-if": (lambda *_: "", 2, 2), "filename": (lambda *_: "", 0, 0),
            "lineno": (lambda *_: "", 0, 0), "shell": (self._shell, 1, 1)}

    def _shell(self, _kconf: Any, _name: Any, command: str) -> str:
        future = self.submit(command)
        return str(future.result()) if self.wait else ""

    def _parse_error(self, msg: str) -> None:
        raise _PrescanLineError(msg)

    def start(self) -> None:
        import threading

        self.thread = threading.Thread(target=self._run, name="kconfig-prescan", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopped = True
        self.thread.join()

    def _run(self) -> None:
        self.nested: list[str] = []
        with contextlib.suppress(Exception):  # a guess that fails costs nothing
            self._file(os.path.join(self.srctree, "Kconfig"))
            # Lines whose probes take another probe's output: again, now with that output.
            self.wait = True
            for line in self.nested:
                if self.stopped:
                    return
                with contextlib.suppress(Exception):
                    self._expand_whole(line, ())

    def _file(self, path: str) -> None:
        import glob

        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                lines = f.read().split("\n")
        except OSError:
            return
        help_indent: int | None = None
        in_help = False
        pending = ""
        for raw in lines:
            if self.stopped:
                return
            if in_help:  # kconfiglib's rule: it ends at the first line indented less
                expanded = raw.expandtabs()
                stripped = expanded.lstrip()
                if not stripped:
                    continue
                indent = len(expanded) - len(stripped)
                if help_indent is None:
                    help_indent = indent
                if indent >= help_indent:
                    continue
                in_help = False
            if raw.endswith("\\"):
                pending += raw[:-1]
                continue
            line, pending = pending + raw, ""
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            if text in ("help", "---help---"):
                in_help, help_indent = True, None
                continue
            source = self._SOURCE.match(line)
            try:
                if source:
                    pattern = self._expand_whole(source.group(2), ())
                    base = (os.path.dirname(path) if source.group(1) in _RELATIVE_SOURCE
                            else self.srctree)
                    for name in sorted(glob.iglob(os.path.join(base, pattern))):
                        self._file(name)
                elif self._ASSIGN.match(line) and not line[0].isspace():
                    self.wait = True
                    try:
                        self._parse_assignment(line)
                    finally:
                        self.wait = False
                elif "$(" in line:
                    self._expand_whole(line, ())
                    if line.find("$(shell,") > line.find("$("):  # a probe inside a probe
                        self.nested.append(line)
            except Exception:  # noqa: S112 - the parse proper reports real errors
                continue


class _Quiet:
    """Stands in for the Kconfig object when a probe runs ahead: its stderr is not a
    warning anyone reads (kconfiglib runs with warn=False)."""

    _encoding = "utf-8"
    filename = linenr = None

    def _warn(self, *_: object) -> None:
        pass


_QUIET = _Quiet()


@contextlib.contextmanager
def _scratch_cwd() -> Iterator[None]:
    """$(cc-option) probes create .tmp_$$ folders in the working directory, as under O=."""
    old = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="kbuild-py-kconfig-") as tmp:
        os.chdir(tmp)
        try:
            yield
        finally:
            os.chdir(old)
