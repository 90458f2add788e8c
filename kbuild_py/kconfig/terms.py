"""What in a failing Kconfig dependency expression has to change: the symbols of a failing
term and the value each needs, an OR reduced to its closest alternative, a negation pushed
inwards, a comparison read either way round. Pure functions over kconfiglib expressions."""

from __future__ import annotations

import re
from typing import Any

import kconfiglib

TRI = {0: "n", 1: "m", 2: "y"}


_NUMBER = re.compile(r"-?(0[xX][0-9a-fA-F]+|[0-9]+)")


def literal(item: Any) -> bool:
    """A constant in an expression: y/n/m, a quoted string, or a number (kconfiglib keeps a bare
    number as an undefined symbol named by its value, not as a constant)."""
    if not isinstance(item, kconfiglib.Symbol):
        return False
    return bool(item.is_constant or (not item.nodes and _NUMBER.fullmatch(item.name)))


def term_causes(term: Any, need: int) -> list[tuple[Any, str]]:
    """Symbols in a failing term and the value each should have."""
    if isinstance(term, kconfiglib.Symbol):  # a bool has no m: y is what it needs
        return [(term, "y" if need == 2 or term.orig_type is not kconfiglib.TRISTATE else "m")]
    if isinstance(term, tuple):
        op = term[0]
        if op is kconfiglib.NOT and isinstance(term[1], kconfiglib.Symbol):
            return [(term[1], "n")]
        if op is kconfiglib.NOT:  # !(CC_IS_CLANG && CLANG_VERSION < 190103)
            negated = _negated(term[1])
            return term_causes(negated, need) if negated is not None else []
        if op is kconfiglib.OR:
            # One alternative is enough to name: the one closest to holding, and of those a
            # comparison (a version gate), which says most.
            alternatives = kconfiglib.split_expr(term, kconfiglib.OR)
            alternatives.sort(key=lambda t: (_failing(t, need), not _compares(t)))
            for t in alternatives:
                causes = term_causes(t, need)
                if causes:
                    return causes[:1]
            return []
        if op is kconfiglib.AND:
            out = []
            for t in kconfiglib.split_expr(term, kconfiglib.AND):
                if kconfiglib.expr_value(t) < need:
                    out.extend(term_causes(t, need))
            return out
        if op in (kconfiglib.EQUAL, kconfiglib.UNEQUAL) and isinstance(term[1], kconfiglib.Symbol):
            want = term[2].str_value if op is kconfiglib.EQUAL else f"not {term[2].str_value}"
            return [(term[1], want)]
        if op in _ORDER:  # CLANG_VERSION >= 150000, or 150000 <= CLANG_VERSION
            left, right = term[1], term[2]
            if literal(left) and not literal(right):
                left, right, op = right, left, _ORDER[op]
            if literal(left):
                return []
            if literal(right):
                return [(left, f"{kconfiglib.REL_TO_STR[op]} {right.str_value}")]
            if left.orig_type in (kconfiglib.BOOL, kconfiglib.TRISTATE):  # TCG_TPM >= TRUSTED_KEYS
                step = {kconfiglib.GREATER: 1, kconfiglib.LESS: -1}.get(op, 0)
                return [(left, TRI[min(2, max(0, right.tri_value + step))])]
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


def is_threshold(needed: str) -> bool:
    """'>= 150000' and friends: what a comparison in a dependency needs of an int symbol."""
    return needed.startswith(("<", ">"))


def selectors(sym: Any) -> list[Any]:
    """The symbols that `select` sym (not the symbols in their conditions)."""
    out = []
    for term in kconfiglib.split_expr(sym.rev_dep, kconfiglib.OR):
        sel = term[1] if isinstance(term, tuple) and term[0] is kconfiglib.AND else term
        if isinstance(sel, kconfiglib.Symbol) and not sel.is_constant and sel not in out:
            out.append(sel)
    return out
