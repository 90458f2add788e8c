"""Run-time switches (checks/switches.yaml): a command-line parameter or sysctl the profile
ships that turns a protection it requires off again. Pure once loaded: which requirements the
profile's own cmdline and sysctl undo, and by which parameter."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from . import catalog
from .errors import UserError
from .kconfig.dotconfig import NUMBER_SYNTAX
from .profile import Param
from .resolve import Resolved


@dataclass(frozen=True)
class Switch:
    option: str
    protects: str = "y"
    off: re.Pattern[str] | None = None
    flag: bool = False
    below_required: bool = False

    def undoes(self, r: Resolved, value: str | None) -> bool:
        """Whether ``value`` of this parameter turns requirement ``r`` off."""
        req = r.requirement
        if self.flag:
            return req.value == self.protects
        if value is None:
            return False
        if self.below_required:
            floor = req.value if req.value is not None else (
                str(req.min) if req.min is not None else None)
            number = NUMBER_SYNTAX["number"]
            return (floor is not None and bool(number.fullmatch(floor))
                    and bool(number.fullmatch(value)) and int(value, 0) < int(floor, 0))
        return req.value == self.protects and self.off is not None and bool(
            self.off.fullmatch(value))


@cache
def table() -> dict[str, dict[str, tuple[Switch, ...]]]:
    """{"cmdline"|"sysctl": {parameter: switches}} from checks/switches.yaml."""
    doc = catalog.load_validated(catalog.folder("checks") / "switches.yaml", "switches",
                                 "run-time switch list")
    out: dict[str, dict[str, tuple[Switch, ...]]] = {}
    for kind in ("cmdline", "sysctl"):
        out[kind] = {}
        for name, entries in doc.data[kind].items():
            switches = []
            for i, e in enumerate(entries):
                try:
                    off = re.compile(e["off"]) if "off" in e else None
                except re.error as err:
                    raise UserError(f"{doc.where((kind, name, i, 'off'))}: {kind}.{name}: "
                                    f"not a regular expression ({err})", "fix the pattern"
                                    ) from None
                switches.append(Switch(e["option"], e.get("protects", "y"), off,
                                       bool(e.get("flag")), bool(e.get("below_required"))))
            out[kind][name] = tuple(switches)
    return out


def undone(resolved: list[Resolved], cmdline: list[Param], sysctl: list[Param]
           ) -> dict[str, str]:
    """{symbol: why} for each applicable requirement the profile's own cmdline or sysctl turns
    off at run time."""
    known = table()
    by_symbol = {r.symbol: r for r in resolved if r.applicable}
    out: dict[str, str] = {}
    for kind, params in (("cmdline", cmdline), ("sysctl", sysctl)):
        for p in params:
            for switch in known[kind].get(p.name, ()):
                r = by_symbol.get(switch.option)
                if r is not None and r.symbol not in out and switch.undoes(r, p.value):
                    shown = p.render_cmdline() if kind == "cmdline" else f"{p.name} = {p.value}"
                    out[r.symbol] = (f"the profile's {kind} '{shown}' ({p.origin}) turns "
                                     f"CONFIG_{r.symbol} off again at run time")
    return out
