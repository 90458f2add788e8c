"""What a .config records about the machine that made it, taken over by a model of its tree.

Kbuild answers some Kconfig questions with the machine's tools: the compiler's name and
version, ``$(cc-option,...)``-style probes, pahole's version. A complete .config records the
answers: every symbol with a macro in its properties (``def_bool $(success,...)``, ``default
$(cc-version)``, ``depends on $(cc-option,...)``) is written with the value, or left out when
it was hidden. A model parsed on another machine has its own answers, so explaining a config
made elsewhere with them explains a different config (GCC_PLUGINS "on by default" where the
config's compiler had no plugin headers). ``adopted()`` makes the model answer as the config's
machine did, for as long as it is held, and says which answers differed.

A symbol is taken over as a constant: its prompts, dependencies and selectors set aside, its
value the recorded one (or hidden, as recorded); a prompted symbol that was shown there but is
hidden here is only made visible, so its recorded value is the user's choice it was.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import kconfiglib

from .terms import TRI

_ROUNDS = 8  # a taken-over answer changes what depends on it; probes rarely nest deeper


@dataclass(frozen=True)
class Adopted:
    """One answer the config's machine gave differently: this machine's and the recorded one
    (None: hidden, left out of the config)."""

    symbol: str
    here: str | None
    recorded: str | None
    shown: bool = False  # shown there, hidden here: the recorded value is the user's choice


def _value(sym: Any) -> str:
    if sym.orig_type in (kconfiglib.BOOL, kconfiglib.TRISTATE):
        return TRI[sym.tri_value]
    return str(sym.str_value)


def _const(kconf: Any, sym: Any, value: str) -> Any:
    if sym.orig_type in (kconfiglib.BOOL, kconfiglib.TRISTATE):
        return {"y": kconf.y, "m": kconf.m}.get(value, kconf.n)
    return kconf._lookup_const_sym(value)


class _Saved:
    """A symbol's definition as parsed, to put back."""

    def __init__(self, sym: Any) -> None:
        self.sym = sym
        self.props = (sym.defaults, sym.direct_dep, sym.rev_dep, sym.weak_rev_dep, sym.ranges)
        self.prompts = [node.prompt for node in sym.nodes]

    def restore(self) -> None:
        sym = self.sym
        (sym.defaults, sym.direct_dep, sym.rev_dep, sym.weak_rev_dep, sym.ranges) = self.props
        for node, prompt in zip(sym.nodes, self.prompts, strict=True):
            node.prompt = prompt


def _as_constant(kconf: Any, sym: Any, recorded: str | None) -> None:
    """Sym as a promptless constant: the recorded value, or hidden (None)."""
    for node in sym.nodes:
        node.prompt = None
    sym.rev_dep = sym.weak_rev_dep = kconf.n
    sym.ranges = []
    if recorded is None:
        sym.direct_dep, sym.defaults = kconf.n, []
    else:
        sym.direct_dep, sym.defaults = kconf.y, [(_const(kconf, sym, recorded), kconf.y)]


def _as_shown(kconf: Any, sym: Any) -> None:
    """A prompted symbol shown whatever its dependencies: its user value decides."""
    sym.direct_dep = kconf.y
    for node in sym.nodes:
        if node.prompt:
            node.prompt = (node.prompt[0], kconf.y)


@contextlib.contextmanager
def adopted(kconf: Any, recorded: dict[str, str], complete: bool) -> Iterator[list[Adopted]]:
    """Within: the model (with the config loaded) answers every probed symbol as ``recorded``
    (the config's values, read with their types) says the config's machine did. ``complete``:
    the config is a whole .config, so a probed symbol it leaves out was hidden there (a
    fragment or a minimal defconfig says nothing of what it leaves out). Yields the answers
    taken over, filled in on entry; everything is put back on exit."""
    saved: dict[Any, _Saved] = {}
    taken: list[Adopted] = []
    probed = sorted(getattr(kconf, "probed", ()), key=lambda s: s.name)
    kconf.adopting = {}
    try:
        for _ in range(_ROUNDS):
            changed = False
            for sym in probed:
                if sym in saved or sym.choice is not None or not sym.nodes:
                    continue
                written_here = bool(sym.config_string)
                here = _value(sym)
                mine = recorded.get(sym.name)
                if mine is None:
                    if not complete or not written_here:
                        continue
                elif written_here and here == mine:
                    continue
                saved[sym] = _Saved(sym)
                prompted = any(node.prompt for node in sym.nodes)
                shown = mine is not None and prompted and not written_here
                if shown:
                    _as_shown(kconf, sym)
                else:
                    _as_constant(kconf, sym, mine)
                taken.append(Adopted(sym.name, here if written_here else None, mine, shown))
                kconf.adopting[sym] = taken[-1]
                changed = True
            if not changed:
                break
            kconf._invalidate_all()
        yield taken
    finally:
        kconf.adopting = {}
        for s in saved.values():
            s.restore()
        if saved:
            kconf._invalidate_all()


def adoption(sym: Any) -> Adopted | None:
    """How ``sym`` answers from the config's record just now (within adopted()), if it does."""
    found: Adopted | None = getattr(sym.kconfig, "adopting", {}).get(sym)
    return found
