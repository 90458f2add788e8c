"""configure: base config from Kbuild, profile fragment on top, kconfiglib's prediction, then
Kbuild's own `make olddefconfig` as the ground truth — and the two compared."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from .fsutil import atomic_write, in_thread, sha256_text
from .kconfig import Explanation, KconfigModel, SymbolTable, cache_key, read_config
from .kmake import make_argv, run_make
from .plan import BuildPlan
from .resolve import Resolved, fragment, resolve
from .source import KernelTree
from .toolchain import ToolchainIdentity, detect, kconfig_environment, make_variables


@dataclass(frozen=True)
class Mismatch:
    """kconfiglib predicted one value, Kbuild's conf produced another."""

    symbol: str
    predicted: str
    kbuild: str


class KconfigSource:
    """The Kconfig model for one plan, tree and toolchain, loaded only when needed.

    Resolution needs only the symbol table (kept beside the model cache as JSON); prediction
    and explanations need the parsed model (from its pickle cache, else parsed).
    """

    def __init__(self, plan: BuildPlan, tree: KernelTree, ident: ToolchainIdentity) -> None:
        self.plan, self.tree, self.ident = plan, tree, ident
        self.env = kconfig_environment(plan.toolchain, ident, plan.arch, str(tree.path),
                                       tree.version_text)
        self.cache: Path | None = None
        if tree.owned:
            key = cache_key([tree.identity, plan.arch.name, ident.key(),
                             json.dumps(self.env, sort_keys=True)])
            self.cache = plan.paths.cache / "kconfig" / f"{key}.pickle"
        self.probes = plan.paths.cache / "kconfig" / (
            f"probes-{cache_key([plan.arch.name, ident.key()])}.json")
        self._model: KconfigModel | None = None

    def model(self) -> KconfigModel:
        """From the pickle when there is one; else parsed (and kept only by persist())."""
        if self._model is None:
            self._model = KconfigModel.parse(self.tree.path, self.env, self.tree.version,
                                             self.cache, store=False, probes=self.probes)
            if self.cache is not None and not self._model.from_cache:
                atomic_write(self.cache.with_suffix(".symbols.json"),
                             self._model.symbol_table().to_json())
        return self._model

    def persist(self) -> None:
        """Keep a model parsed in this process for the next one (a pickle costs ~0.5 s, so
        only the callers that will want the model again pay for it)."""
        if self._model is not None and self.cache is not None and not self._model.from_cache:
            self._model.store(self.cache)

    def symbols(self) -> SymbolTable:
        if self.cache is not None:
            table = self.cache.with_suffix(".symbols.json")
            if table.is_file():
                try:
                    return SymbolTable.from_json(table.read_text())
                except (ValueError, KeyError, IndexError, TypeError):
                    pass  # damaged: rebuild from the model
        return self.model().symbol_table()


@dataclass
class Configured:
    tree: KernelTree
    toolchain: ToolchainIdentity
    resolved: list[Resolved]
    final: dict[str, str]
    kconfig: KconfigSource
    base: Path
    mismatches: list[Mismatch] = field(default_factory=list)

    def explain(self, symbol: str, wanted: str) -> Explanation:
        model = self.kconfig.model()
        model.load(self.base, self.kconfig.plan.paths.fragment)
        return model.explain(symbol, wanted)


def compare(predicted: dict[str, str], final: dict[str, str]) -> list[Mismatch]:
    """Differences that matter: 'is not set' and absent both mean n."""
    out = []
    for name in sorted(set(predicted) | set(final)):
        a, b = predicted.get(name, "n"), final.get(name, "n")
        if a != b:
            out.append(Mismatch(name, a, b))
    return out


def load_model(plan: BuildPlan, tree: KernelTree, ident: ToolchainIdentity) -> KconfigModel:
    """The parsed Kconfig model, from the on-disk cache when nothing that shapes it changed.

    The key covers the tree's content identity, arch, toolchain identity (versions), the whole
    Kconfig environment, kconfiglib's version and this adapter's code. A user's local tree can
    change under us, so its model is never cached.
    """
    source = KconfigSource(plan, tree, ident)
    model = source.model()
    source.persist()
    return model


def _base_key(plan: BuildPlan, tree: KernelTree, ident: ToolchainIdentity) -> str:
    return sha256_text(json.dumps([tree.identity, ident.key(), plan.profile.base,
                                   make_variables(plan.toolchain, plan.arch)]))


def base_is_current(plan: BuildPlan, tree: KernelTree, ident: ToolchainIdentity) -> bool:
    stamp = plan.paths.base_dir / ".kbuild-py-key"
    return ((plan.paths.base_dir / ".config").is_file() and stamp.is_file()
            and stamp.read_text() == _base_key(plan, tree, ident))


def base_config(plan: BuildPlan, tree: KernelTree, ident: ToolchainIdentity,
                environ: dict[str, str] | None = None) -> Path:
    """`make <base>` by Kbuild itself, redone only when tree, toolchain or target change.

    It runs in the build directory (KCONFIG_CONFIG pointing at base/.config), so Kbuild's conf
    tool is compiled once per profile rather than once for the base and once for the build.
    """
    out = plan.paths.base_dir
    key = _base_key(plan, tree, ident)
    stamp = out / ".kbuild-py-key"
    config = out / ".config"
    if base_is_current(plan, tree, ident):
        return config
    stamp.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    plan.paths.build.mkdir(parents=True, exist_ok=True)
    variables = {**make_variables(plan.toolchain, plan.arch),
                 "KCONFIG_CONFIG": str(config.resolve())}
    argv = make_argv(tree.path, plan.paths.build.resolve(), variables, [plan.profile.base])
    run_make(argv, plan.paths.profile / "configure.log", what=f"make {plan.profile.base}",
             inherit=environ)
    atomic_write(stamp, key)
    return config


def configure(plan: BuildPlan, tree: KernelTree) -> Configured:
    ident = detect(plan.toolchain, plan.arch.name)
    # Kbuild makes the base config while kconfiglib reads the Kconfig tree: two cores, two
    # independent jobs (the model is also parsed here when the results below are not cached).
    cold = not base_is_current(plan, tree, ident)
    # The parse below sets the Kconfig environment in os.environ: make gets a copy from now.
    environ = dict(os.environ)
    base_done = in_thread(lambda: base_config(plan, tree, ident, environ), "kbuild-base")
    source = KconfigSource(plan, tree, ident)
    family = (plan.toolchain.family, plan.toolchain.name)
    try:
        resolved = resolve(plan.profile, tree.version, family, source.symbols())
        if cold:  # Kbuild is busy for seconds: have the model ready for the prediction
            source.model()
            source.persist()
    finally:
        base = base_done()
    atomic_write(plan.paths.fragment, fragment(plan.profile, resolved))

    # Kbuild's conf is deterministic: the same input config on the same tree with the same
    # toolchain gives the same .config. Both results are kept under that key, which also
    # covers the adapter's code (a corrected adapter predicts anew).
    merged = base.read_text() + plan.paths.fragment.read_text()
    key = cache_key([merged, tree.identity, ident.key(), plan.arch.name,
                     json.dumps(source.env, sort_keys=True)])
    saved = plan.paths.cache / "conf" / key if tree.owned else None
    build = plan.paths.build
    build.mkdir(parents=True, exist_ok=True)
    if saved is not None and (saved / "kbuild.config").is_file() and (
            saved / "kconfiglib.config").is_file():
        atomic_write(build / ".config", (saved / "kbuild.config").read_bytes())
        atomic_write(plan.paths.predicted, (saved / "kconfiglib.config").read_bytes())
    else:
        model = source.model()
        source.persist()
        model.load(base, plan.paths.fragment)
        tmp = plan.paths.predicted.with_name(f".kconfiglib.config.{os.getpid()}.tmp")
        model.write(tmp)
        tmp.replace(plan.paths.predicted)
        atomic_write(build / ".config", merged, only_if_changed=False)
        argv = make_argv(tree.path, build.resolve(), make_variables(plan.toolchain, plan.arch),
                         ["olddefconfig"])
        run_make(argv, plan.paths.profile / "configure.log", what="make olddefconfig")
        if saved is not None:
            atomic_write(saved / "kbuild.config", (build / ".config").read_bytes())
            atomic_write(saved / "kconfiglib.config", plan.paths.predicted.read_bytes())
    final = read_config(build / ".config")
    return Configured(tree, ident, resolved, final, source, base,
                      compare(read_config(plan.paths.predicted), final))
