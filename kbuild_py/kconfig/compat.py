"""kconfiglib 14.1.0 taught the Kconfig of the kernels kbuild-py supports.

- The bare ``modules`` attribute (kernel 5.13+) is read as ``option modules``.
- Choices follow scripts/kconfig/symbol.c:sym_calc_choice() as reworked in 6.11.
- A tristate that another symbol ``imply``s is valued as sym_calc_value() values it.

Nothing is changed at import: ``install()`` (called by every parse and cache load) patches
kconfiglib's Symbol class once per process, and the parse uses ``CompatKconfig``.
"""

from __future__ import annotations

import threading
from typing import Any

import kconfiglib

NEW_CHOICE_SEMANTICS = (6, 11)


class CompatKconfig(kconfiglib.Kconfig):  # type: ignore[misc]
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


def adapt(kconf: CompatKconfig, version: tuple[int, ...], srcarch: str) -> None:
    """What a freshly parsed tree needs before it is used: the kernel version's semantics."""
    kconf.choice_priority = {}
    kconf.srcarch = srcarch
    if version[:2] >= NEW_CHOICE_SEMANTICS:
        for choice in kconf.unique_choices:
            choice.__class__ = Choice611


_kconfiglib_tri_value = kconfiglib.Symbol.tri_value.fget
_installed = threading.Lock()
_done = False


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


def install() -> None:
    """Patch kconfiglib's Symbol class (once per process): the values kbuild-py relies on."""
    global _done
    with _installed:
        if not _done:
            kconfiglib.Symbol.tri_value = property(
                _tri_value, doc=kconfiglib.Symbol.tri_value.__doc__)
            _done = True
