"""What the Kconfig adapter hands out: plain data, no kconfiglib object (and no kconfiglib
import: resolve, verify and the reports use these types without loading it)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


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

    def kinds(self) -> dict[str, str]:
        return {name: kind for name, (kind, _) in self._symbols.items()}

    def to_json(self) -> str:
        return json.dumps(self._symbols, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> SymbolTable:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a symbol table")
        return cls({str(k): (str(v[0]), str(v[1])) for k, v in data.items()})


@dataclass(frozen=True)
class ExplainContext:
    """Whose config is explained, for the words of an explanation: ``toolchain`` names the
    compiler whose answers the model holds ("gcc-12", or a checked config's own compiler);
    ``fix_in`` is where a user changes a value: "profile" (kbuild-py configures) or "config" (a
    config made elsewhere, checked); ``families`` maps the symbols that name a compiler family
    to it (CC_IS_CLANG: clang), from Kbuild's interface data."""

    toolchain: str = "the toolchain"
    fix_in: str = "profile"
    families: tuple[tuple[str, str], ...] = ()


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
