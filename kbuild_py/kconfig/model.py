"""A parsed Kconfig tree for one arch and toolchain: parse, signed cache, values, configs.

The model is kept between runs as a pickle in out/cache/kconfig/, signed with the cache's key
(kbuild_py.signed): a pickle is code, so an unsigned or altered one is never loaded. The key of
a cached model covers everything that shapes the parse, this package's code included.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import pickle
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import kconfiglib

from ..errors import InfraError, UserError
from ..fsutil import code_digest, in_thread
from ..signed import Signer
from . import compat, dotconfig
from .explain import Explainer, _loc, _val
from .probes import ProbeRunner, module_quiet
from .record import Adopted, adopted
from .results import ExplainContext, Explanation, SymbolInfo, SymbolTable

T = TypeVar("T")
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
        change the parse), a signed pickled model is reused; a missing, stale, unsigned or
        unreadable one re-parses, and the new model is stored there unless ``store`` is false
        (see store()). ``hint`` names probe commands to start ahead (see ProbeRunner).
        """
        compat.install()
        if cache is not None and signer is not None:
            model = cls._from_cache(cache, signer)
            if model is not None:
                return model
        with ProbeRunner(env, str(srctree), hint or []) as probes, _no_gc():
            try:
                kconf = compat.CompatKconfig(str(srctree / "Kconfig"), warn=False,
                                             warn_to_stderr=False, suppress_traceback=False)
            except kconfiglib.KconfigError as e:
                raise InfraError(f"{srctree}: kconfiglib cannot parse Kconfig: "
                                 f"{' '.join(str(e).split())}",
                                 "report this kernel version as unsupported") from None
            commands = probes.commands()
        kconf._functions["shell"] = (_KCONFIGLIB_SHELL, 1, 1)  # not the runner's hook
        compat.adapt(kconf, version, env.get("SRCARCH", "?"))
        model = cls(kconf)
        model.probe_commands = commands
        if cache is not None and signer is not None and store:
            model.store(cache, signer)
        return model

    @classmethod
    def _from_cache(cls, path: Path, signer: Signer) -> KconfigModel | None:
        data = signer.load(path)
        if data is None:
            return None
        try:
            with _no_gc(), module_quiet():
                kconf = _deep(lambda: pickle.loads(data))  # noqa: S301 - signed by this user
        except Exception:  # a damaged cache is never trusted: parse again
            return None
        if not isinstance(kconf, compat.CompatKconfig):
            return None
        model = cls(kconf)
        model.from_cache = True
        return model

    def store(self, path: Path, signer: Signer) -> None:
        self._k._readline = None  # the closed Kconfig file handle cannot be pickled
        self._k._filestack = []
        with module_quiet():
            data = _deep(lambda: pickle.dumps(self._k, protocol=pickle.HIGHEST_PROTOCOL))
        signer.dump(path, data)

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

