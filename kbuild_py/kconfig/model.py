"""A parsed Kconfig tree for one arch and toolchain: parse, signed cache, values, configs.

What a parse learnt from its compiler probes is kept between runs as data: the answer of every
$(shell ...) command, JSON in out/cache/kconfig/, signed with the cache's key (kbuild_py.signed).
A parse with the answers runs no probe; an unsigned, altered or damaged file is ignored. No
cache holds code (no pickle). The key covers everything that shapes the parse, this package's
code included.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kconfiglib

from ..errors import InfraError, UserError
from ..fsutil import code_digest
from ..signed import Signer
from . import compat, dotconfig
from .explain import Explainer, _loc, _val
from .probes import ProbeRunner
from .record import Adopted, adopted
from .results import ExplainContext, Explanation, SymbolInfo, SymbolTable

# kconfiglib's own $(shell) (read at import: during a parse in another thread the module
# attribute is that parse's hook).
_KCONFIGLIB_SHELL = kconfiglib._shell_fn
PACKAGE = Path(__file__).resolve().parent


class KconfigModel:
    """A parsed Kconfig tree for one arch and toolchain."""

    def __init__(self, kconf: Any) -> None:
        self._k = kconf
        self.from_cache = False
        self.probe_commands: list[str] = []  # what the parse ran (a hint for the next one)
        self.probe_answers: dict[str, str] = {}  # command (source path a placeholder) -> output
        self.base_values: dict[str, str] = {}
        self.requested: dict[str, str] = {}
        self.context = ExplainContext()  # whose config is explained (see explain.py)

    # -- parsing

    @classmethod
    def parse(cls, srctree: Path, env: dict[str, str], version: tuple[int, ...],
              cache: Path | None = None, signer: Signer | None = None, store: bool = True,
              hint: list[str] | None = None) -> KconfigModel:
        """Parse srctree/Kconfig with the Makefile's environment ``env`` (only that: the
        process's environment is not seen).

        With ``cache`` and ``signer`` (a file path whose name is a key over everything that can
        change the parse), the signed answers of an earlier parse's probes are used and no
        probe runs (``from_cache``); missing, unsigned or damaged ones are ignored, and the new
        answers are stored there unless ``store`` is false (see store()). ``hint`` names probe
        commands to start ahead (see ProbeRunner).
        """
        compat.install()
        answers = _answers(cache, signer) if cache is not None and signer is not None else None
        with ProbeRunner(env, str(srctree), hint or [], answers) as probes, _no_gc():
            try:
                kconf = compat.CompatKconfig(str(srctree / "Kconfig"), warn=False,
                                             warn_to_stderr=False, suppress_traceback=False)
            except kconfiglib.KconfigError as e:
                raise InfraError(f"{srctree}: kconfiglib cannot parse Kconfig: "
                                 f"{' '.join(str(e).split())}",
                                 "report this kernel version as unsupported") from None
            commands, results = probes.commands(), probes.answered()
        kconf._functions["shell"] = (_KCONFIGLIB_SHELL, 1, 1)  # not the runner's hook
        compat.adapt(kconf, version, env.get("SRCARCH", "?"))
        model = cls(kconf)
        model.probe_commands, model.probe_answers = commands, results
        model.from_cache = answers is not None
        if cache is not None and signer is not None and store and answers is None:
            model.store(cache, signer)
        return model

    def store(self, path: Path, signer: Signer) -> None:
        """The answers of this parse's probes, as signed JSON (data, never code)."""
        signer.dump(path, json.dumps(self.probe_answers, sort_keys=True))

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
        """Load the base .config, then the fragment on top (later assignments win), each read
        as Kbuild's conf reads it (see dotconfig) before kconfiglib sees it."""
        kinds = self.symbol_table().kinds()
        self._k.choice_priority = {}
        for i, path in enumerate([base] + ([fragment] if fragment else [])):
            values = dotconfig.assignments(path, kinds)
            if i == 0:
                self.base_values = dict(values)
            else:
                self.requested = dict(values)
            with _clean_copy(dotconfig.render(values, kinds)) as plain:
                try:
                    self._k.load_config(str(plain), replace=(i == 0))
                except kconfiglib.KconfigError as e:
                    raise UserError(f"{path}: cannot load config: {str(e).strip()}",
                                    "give a .config or fragment in Kconfig format") from None
            self._note_choice_order(values)
        if fragment is None:
            self.requested = {}

    def _note_choice_order(self, values: list[tuple[str, str]]) -> None:
        order = self._k.choice_priority
        for name, _ in values:
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
        return Explainer(self._k, self.base_values, self.requested,
                         self.context).explain(symbol, wanted)

    def recorded(self, complete: bool) -> contextlib.AbstractContextManager[list[Adopted]]:
        """Within: the tree answers its compiler probes as the loaded config records them
        (a config made on another machine; see record.py). Yields the answers that differ
        from this machine's; ``complete``: the config is a whole .config, not a fragment."""
        return adopted(self._k, self.base_values, complete)


@contextlib.contextmanager
def _clean_copy(text: str) -> Iterator[Path]:
    with tempfile.NamedTemporaryFile("w", suffix=".config", encoding="utf-8") as tmp:
        tmp.write(text)
        tmp.flush()
        yield Path(tmp.name)


def _answers(path: Path, signer: Signer) -> dict[str, str] | None:
    """The signed probe answers at ``path``, or None (missing, unsigned, altered, damaged)."""
    text = signer.load_text(path)
    try:
        data = json.loads(text) if text is not None else None
    except ValueError:
        return None
    if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        return None
    return data


def cache_key(parts: list[str]) -> str:
    """Key of a cached result: the caller's parts plus kconfiglib's and this package's code."""
    kversion = ".".join(map(str, getattr(kconfiglib, "VERSION", ())))
    material = "\n".join([*parts, kversion, code_digest(PACKAGE), sys.version])
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

