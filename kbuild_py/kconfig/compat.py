"""kconfiglib 14.1.0 taught the Kconfig of the kernels kbuild-py supports.

- The bare ``modules`` attribute (kernel 5.13+) is read as ``option modules``.
- Choices follow scripts/kconfig/symbol.c:sym_calc_choice() as reworked in 6.11.
- A tristate that another symbol ``imply``s is valued as sym_calc_value() values it.
- The ``transitional`` attribute (kernel 6.18+) works as scripts/kconfig does: the symbol is
  always visible (its value is read from an input .config), is never written, may carry only
  help, and a symbol whose active default is a lone transitional symbol with a value read is
  marked as set by the user, with the value it got (symbol.c:sym_calc_value()).
- An int or hex symbol without a value is 0 or 0x0, not empty (kernel 6.9+, symbol.c).
- A user value outside the active range is clamped to it (symbol.c:sym_validate_range()), not
  dropped for the default as kconfiglib and older kernels' conf_read() do (6.1 drops it, 6.12
  clamps it: both checked against Kbuild; taken as one of 6.9's kconfig changes).
- ``depends on X if Y`` (kernel 6.19+) is ``X || (Y = n)``, as menu.c:menu_add_dep() makes it.

Nothing is changed at import: ``install()`` (called by every parse and cache load) patches
kconfiglib's Symbol class once per process, and the parse uses ``CompatKconfig``.
"""

from __future__ import annotations

import re
import threading
from typing import Any

import kconfiglib

NEW_CHOICE_SEMANTICS = (6, 11)
ZERO_NUMBERS = (6, 9)  # "kconfig: use 0 and 0x0 as the value of int and hex without one"
CLAMP_USER_VALUES = (6, 9)  # conf_read() no longer drops out-of-range user values
_TRANSITIONAL = re.compile(r"\s*transitional\s*(#.*)?$")


class CompatKconfig(kconfiglib.Kconfig):  # type: ignore[misc]
    """kconfiglib with the syntax of kernels newer than it knows."""

    # Choice members in Kbuild's priority order (6.11+): each member read from a config file
    # moves to the front, so the last one read wins (scripts/kconfig/confdata.c).
    choice_priority: dict[Any, list[Any]]
    srcarch: str
    version: tuple[int, ...]
    zero_numbers: bool
    clamp_user_values: bool
    # Symbols declared `transitional` (kernel 6.18+).
    transitional: frozenset[Any]

    # Symbols with a macro in their properties ($(cc-option,...), $(CC_VERSION_TEXT), ...): their
    # values come from the machine the tree is configured on (see record.py).
    probed: set[Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._declared: list[tuple[Any, str, int]] = []
        self._props_of: Any = None
        self.probed = set()
        super().__init__(*args, **kwargs)
        self.transitional = frozenset(sym for sym, _, _ in self._declared)
        for sym, filename, linenr in self._declared:
            _check_transitional(sym, filename, linenr)

    def _parse_props(self, node: Any) -> Any:
        self._props_of = node
        try:
            return super()._parse_props(node)
        finally:
            self._props_of = None

    def _expect_expr_and_eol(self) -> Any:
        if self._tokens[0] is not kconfiglib._T_DEPENDS:
            return super()._expect_expr_and_eol()
        dep = self._parse_expr(True)
        cond = self._parse_cond()  # `if <expr>`, else y; nothing may follow
        if cond is self.y:
            return dep
        return self._make_or(dep, _compare_n(self, cond, kconfiglib.EQUAL))

    def _tokenize(self, s: str) -> Any:
        if self._props_of is not None and _TRANSITIONAL.match(s):
            if self._props_of.item.__class__ is not kconfiglib.Symbol:
                self._parse_error("only a config symbol can be transitional")
            self._declared.append((self._props_of.item, self.filename, self.linenr))
            return (None,)  # read like a blank line; the symbol is noted
        if self._props_of is not None and "$(" in s \
                and self._props_of.item.__class__ is kconfiglib.Symbol:
            self.probed.add(self._props_of.item)
        tokens = super()._tokenize(s)
        # Kernel 5.13 turned "option modules" into a bare "modules" attribute.
        if tokens[0] is kconfiglib._T_MODULES and tokens[1] is None:
            return (kconfiglib._T_OPTION, kconfiglib._T_MODULES, None)
        return tokens


class Choice611(kconfiglib.Choice):  # type: ignore[misc]
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


_COMPARISONS = frozenset((kconfiglib.EQUAL, kconfiglib.UNEQUAL, kconfiglib.LESS,
                          kconfiglib.LESS_EQUAL, kconfiglib.GREATER, kconfiglib.GREATER_EQUAL))


def _compare_n(kconf: Any, expr: Any, op: int) -> Any:
    """``expr = n`` (op EQUAL) or ``expr != n`` (UNEQUAL), rewritten as
    scripts/kconfig/expr.c:expr_trans_compare() rewrites it (a syntactic rewrite, kept as is)."""
    if expr.__class__ is not tuple:
        return (op, expr, kconf.n)
    kind = expr[0]
    if kind is kconfiglib.NOT:
        return _compare_n(kconf, expr[1], kconfiglib.UNEQUAL if op is kconfiglib.EQUAL
                          else kconfiglib.EQUAL)
    if kind in _COMPARISONS:
        return (kconfiglib.NOT, expr) if op is kconfiglib.EQUAL else expr
    left = _compare_n(kconf, expr[1], kconfiglib.EQUAL)
    right = _compare_n(kconf, expr[2], kconfiglib.EQUAL)
    joined = (kconfiglib.OR if kind is kconfiglib.AND else kconfiglib.AND, left, right)
    return joined if op is kconfiglib.EQUAL else (kconfiglib.NOT, joined)


def _check_transitional(sym: Any, filename: str, linenr: int) -> None:
    """scripts/kconfig/parser.y:transitional_check_sanity(): a type and help, nothing else."""
    bare = all(node.prompt is None and node.dep is sym.kconfig.y for node in sym.nodes)
    if not sym.orig_type or not bare or sym.defaults or sym.selects or sym.implies \
            or sym.ranges or sym.__class__ is not kconfiglib.Symbol:
        raise kconfiglib.KconfigError(
            f"{filename}:{linenr}: error: couldn't parse 'transitional': transitional symbol "
            f"{sym.name} can only have a type and help")


def adapt(kconf: CompatKconfig, version: tuple[int, ...], srcarch: str) -> None:
    """What a freshly parsed tree needs before it is used: the kernel version's semantics."""
    kconf.choice_priority = {}
    kconf.srcarch = srcarch
    kconf.version = tuple(version)
    kconf.zero_numbers = version[:2] >= ZERO_NUMBERS
    kconf.clamp_user_values = version[:2] >= CLAMP_USER_VALUES
    if version[:2] >= NEW_CHOICE_SEMANTICS:
        for choice in kconf.unique_choices:
            choice.__class__ = Choice611


_kconfiglib_tri_value = kconfiglib.Symbol.tri_value.fget
_kconfiglib_str_value = kconfiglib.Symbol.str_value.fget
_kconfiglib_invalidate_if_has_prompt = kconfiglib.Symbol._rec_invalidate_if_has_prompt
_installed = threading.Lock()
_done = False


def _transitional(sym: Any) -> frozenset[Any]:
    return getattr(sym.kconfig, "transitional", frozenset())


def _visibility(sym: Any) -> int:
    """Symbol.visibility, with a transitional symbol always visible (symbol.c)."""
    if sym._cached_vis is None:
        sym._cached_vis = 2 if sym in _transitional(sym) else kconfiglib._visibility(sym)
    vis: int = sym._cached_vis
    return vis


def _invalidate_if_has_prompt(sym: Any) -> None:
    """A value assigned to a transitional symbol (which has no prompt) invalidates what
    depends on it, as one assigned to a visible symbol does."""
    if sym in _transitional(sym):
        sym._rec_invalidate()
    else:
        _kconfiglib_invalidate_if_has_prompt(sym)


def _after_calc(sym: Any, val: Any) -> None:
    """What sym_calc_value() does with a freshly computed value of a kernel with
    transitional symbols: they are never written, and a symbol whose value came from a lone
    transitional default that has a value read counts as set by the user."""
    trans = _transitional(sym)
    if not trans:
        return
    if sym in trans:
        sym._write_to_conf = False
        return
    if sym.user_value is not None or sym.choice is not None:
        return
    for default, cond in sym.defaults:
        if kconfiglib.expr_value(cond):
            if default in trans and default.user_value is not None:
                sym.user_value = val
            return


def _clamped_user_value(sym: Any) -> str | None:
    """A visible int/hex user value outside the active range, clamped as Kbuild clamps it."""
    base = kconfiglib._TYPE_TO_BASE[sym.orig_type]
    if not (sym.user_value and sym.visibility and kconfiglib._is_base_n(sym.user_value, base)):
        return None
    for low_expr, high_expr, cond in sym.ranges:
        if kconfiglib.expr_value(cond):
            low, high = (int(e.str_value, base) if kconfiglib._is_base_n(e.str_value, base)
                         else 0 for e in (low_expr, high_expr))
            val = int(sym.user_value, base)
            if val < low or val > high:  # the bound's own text, as sym_validate_range() copies it
                return str((low_expr if val < low else high_expr).str_value)
            return None
    return None


def _str_value(sym: Any) -> str:
    fresh = sym._cached_str_val is None
    val: str = _kconfiglib_str_value(sym)
    if fresh and sym.orig_type in kconfiglib._INT_HEX \
            and getattr(sym.kconfig, "clamp_user_values", False):
        clamped = _clamped_user_value(sym)
        if clamped is not None:
            val = sym._cached_str_val = clamped
    if fresh and sym.orig_type not in kconfiglib._BOOL_TRISTATE:
        if not val and sym.orig_type in kconfiglib._INT_HEX \
                and getattr(sym.kconfig, "zero_numbers", False):
            val = sym._cached_str_val = "0" if sym.orig_type is kconfiglib.INT else "0x0"
        _after_calc(sym, val)
    return val


def _tri_value(sym: Any) -> int:
    fresh = sym._cached_tri_val is None
    val = _imply_corrected(sym)
    if fresh and sym.orig_type in kconfiglib._BOOL_TRISTATE:
        _after_calc(sym, val)
    return val


def _imply_corrected(sym: Any) -> int:
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


def install() -> None:
    """Patch kconfiglib's Symbol class (once per process): the values kbuild-py relies on."""
    global _done
    with _installed:
        if not _done:
            symbol = kconfiglib.Symbol
            symbol.tri_value = property(_tri_value, doc=symbol.tri_value.__doc__)
            symbol.str_value = property(_str_value, doc=symbol.str_value.__doc__)
            symbol.visibility = property(_visibility, doc=symbol.visibility.__doc__)
            symbol._rec_invalidate_if_has_prompt = _invalidate_if_has_prompt
            _done = True
