"""configure: base config from Kbuild, profile fragment on top, kconfiglib's prediction, then
Kbuild's own `make olddefconfig` as the ground truth — and the two compared."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from . import kbuild, patches
from .errors import InfraError
from .fsutil import atomic_write, in_thread, sha256_text
from .kconfig import dotconfig
from .kconfig.dotconfig import read_config
from .kconfig.model import KconfigModel, cache_key
from .kconfig.results import Explanation, SymbolTable
from .kmake import make_argv, run_make
from .plan import BuildPlan
from .resolve import Resolved, fragment, resolve
from .signed import Signer
from .source import KernelTree
from .toolchain import ToolchainIdentity, detect, kconfig_environment, make_variables
from .ui import Progress


@dataclass(frozen=True)
class Mismatch:
    """kconfiglib predicted one value, Kbuild's conf produced another."""

    symbol: str
    predicted: str
    kbuild: str


class KconfigSource:
    """The Kconfig model for one plan, tree and toolchain, loaded only when needed.

    Resolution needs only the symbol table (kept beside the model cache as JSON); prediction
    and explanations need the parsed model (from its signed cache, else parsed). Every cache
    file is signed (kbuild_py.signed): one this user's runs did not write is never used.
    """

    def __init__(self, plan: BuildPlan, tree: KernelTree, ident: ToolchainIdentity) -> None:
        self.plan, self.tree, self.ident = plan, tree, ident
        self.env = kconfig_environment(plan.toolchain, ident, plan.arch, str(tree.path),
                                       tree.version_text)
        self.signer = Signer(plan.paths.cache)
        folder = plan.paths.cache / "kconfig"
        self.cache: Path | None = None
        if tree.owned:
            key = cache_key([tree.identity, plan.arch.name, ident.key(),
                             kbuild.identity(self.env)])
            self.cache = folder / f"{key}.answers.json"
        self.hint = folder / f"probes-{cache_key([plan.arch.name, ident.key()])}.json"
        self._model: KconfigModel | None = None

    def model(self) -> KconfigModel:
        """From the signed cache when there is one; else parsed (and kept only by persist())."""
        if self._model is None:
            self._model = KconfigModel.parse(
                self.tree.path, self.env, self.tree.version,
                self.cache, self.signer, store=False, hint=self._hint())
            if not self._model.from_cache and self._model.probe_commands:
                self.signer.dump(self.hint, json.dumps(self._model.probe_commands, indent=0))
                if self.cache is not None:
                    self.signer.dump(self.cache.with_suffix(".symbols.json"),
                                     self._model.symbol_table().to_json())
        return self._model

    def _hint(self) -> list[str]:
        text = self.signer.load_text(self.hint)
        try:
            commands = json.loads(text) if text else []
        except ValueError:
            return []
        return [c for c in commands if isinstance(c, str)] if isinstance(commands, list) else []

    def persist(self) -> None:
        """Keep the probe answers of a model parsed in this process, so that the next parse with
        the same key runs no probe (signed JSON; only the callers that will parse again write)."""
        if self._model is not None and self.cache is not None and not self._model.from_cache:
            self._model.store(self.cache, self.signer)

    def symbols(self) -> SymbolTable:
        if self.cache is not None:
            text = self.signer.load_text(self.cache.with_suffix(".symbols.json"))
            if text is not None:
                try:
                    return SymbolTable.from_json(text)
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
    Kconfig environment, kconfiglib's version and the adapter's code. A user's local tree can
    change under us, so its model is never cached.
    """
    from .kconfig.results import ExplainContext

    source = KconfigSource(plan, tree, ident)
    model = source.model()
    source.persist()
    model.context = ExplainContext(families=kbuild.interface().families)
    return model


def _base_key(plan: BuildPlan, tree: KernelTree, ident: ToolchainIdentity) -> str:
    return sha256_text(json.dumps([tree.identity, ident.key(), plan.profile.base,
                                   make_variables(plan.toolchain, plan.arch),
                                   kbuild.identity(kbuild.environment())]))


def made_here(text: str, tree: KernelTree, ident: ToolchainIdentity) -> bool:
    """Whether a .config (a saved result) is what Kbuild writes for this tree and compiler:
    its header names this kernel version and it records this compiler."""
    data = text.encode("utf-8", errors="surrogateescape")
    head = dotconfig.header(data)
    raw = dict(dotconfig.parse(data)).get(kbuild.interface().compiler_text, "")
    cc = dotconfig.value(raw, "string")
    return bool(head and head.version_text == tree.version_text
                and cc == ident.cc_version_text)


def base_is_current(plan: BuildPlan, tree: KernelTree, ident: ToolchainIdentity) -> bool:
    config = plan.paths.base_dir / ".config"
    stamp = Signer(plan.paths.cache).load_text(plan.paths.base_dir / ".kbuild-py-key")
    if stamp != _base_key(plan, tree, ident) or not config.is_file():
        return False
    return made_here(config.read_text(errors="replace"), tree, ident)


def base_config(plan: BuildPlan, tree: KernelTree, ident: ToolchainIdentity) -> Path:
    """`make <base>` by Kbuild itself, redone only when tree, toolchain or target change.

    It runs in the build directory (KCONFIG_CONFIG pointing at base/.config), so Kbuild's conf
    tool is compiled once per profile rather than once for the base and once for the build.
    """
    out = plan.paths.base_dir
    stamp = out / ".kbuild-py-key"
    config = out / ".config"
    if base_is_current(plan, tree, ident):
        return config
    kbuild.check_base(plan.profile.base, tree.path, plan.arch.srcarch, str(plan.profile.path))
    stamp.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    plan.paths.build.mkdir(parents=True, exist_ok=True)
    run_make(make_commands(plan, tree)[0], plan.paths.configure_log,
             what=f"make {plan.profile.base}")
    if not made_here(config.read_text(errors="replace"), tree, ident):
        raise InfraError(f"make {plan.profile.base} wrote {config} for another kernel or "
                         f"compiler than {tree.version_text} with {ident.cc_version_text}",
                         f"see {plan.paths.configure_log}")
    Signer(plan.paths.cache).dump(stamp, _base_key(plan, tree, ident))
    return config


def make_commands(plan: BuildPlan, tree: KernelTree) -> tuple[list[str], list[str]]:
    """The two makes of the config step: the base config (into base/.config), and
    olddefconfig on the base with the fragment (build/.config)."""
    variables = make_variables(plan.toolchain, plan.arch)
    build = plan.paths.build.resolve()
    base = {**variables, "KCONFIG_CONFIG": str((plan.paths.base_dir / ".config").resolve())}
    return (make_argv(tree.path, build, base, [plan.profile.base]),
            make_argv(tree.path, build, variables, ["olddefconfig"]))


def configure(plan: BuildPlan, tree: KernelTree) -> Configured:
    with Progress(f"configure {plan.profile.name}", "steps (base config and Kconfig model, "
                  "make olddefconfig)", total=2) as shown:
        return _configure(plan, tree, shown)


def resolved_for(plan: BuildPlan, tree: KernelTree, source: KconfigSource | None = None,
                 added: set[str] | frozenset[str] = frozenset()) -> list[Resolved]:
    """The profile's requirements on this tree (the symbols its Kconfig has), without
    configuring; ``added``: the symbols the profile's patches add (kept if the tree lacks
    them)."""
    source = source or KconfigSource(plan, tree, detect(plan.toolchain, plan.arch.name))
    return resolve(plan.profile, tree.version, (plan.toolchain.family, plan.toolchain.name),
                   source.symbols(), added)


def fragment_text(plan: BuildPlan, tree: KernelTree, resolved: list[Resolved]) -> str:
    """The fragment for this tree, naming the options only the profile's patches add."""
    return fragment(plan.profile, resolved, tree.version_text,
                    patches.added_symbols(plan.profile.patches, tree.version))


def _configure(plan: BuildPlan, tree: KernelTree, shown: Progress) -> Configured:
    ident = detect(plan.toolchain, plan.arch.name)
    kbuild.check_base(plan.profile.base, tree.path, plan.arch.srcarch, str(plan.profile.path))
    # Kbuild makes the base config while kconfiglib reads the Kconfig tree: two cores, two
    # independent jobs (the model is also parsed here when the results below are not cached).
    cold = not base_is_current(plan, tree, ident)
    base_done = in_thread(lambda: base_config(plan, tree, ident), "kbuild-base")
    source = KconfigSource(plan, tree, ident)
    try:
        resolved = resolved_for(plan, tree, source)
        if cold:  # Kbuild is busy for seconds: have the model ready for the prediction
            source.model()
            source.persist()
    finally:
        base = base_done()
    shown.update(1)
    atomic_write(plan.paths.fragment, fragment_text(plan, tree, resolved))

    # Kbuild's conf is deterministic: the same input config on the same tree with the same
    # toolchain gives the same .config. Both results are kept under that key (signed), which
    # also covers the adapter's code (a corrected adapter predicts anew).
    merged = base.read_text() + plan.paths.fragment.read_text()
    key = cache_key([merged, tree.identity, ident.key(), plan.arch.name,
                     kbuild.identity(source.env),
                     json.dumps(make_variables(plan.toolchain, plan.arch), sort_keys=True)])
    saved = plan.paths.cache / "conf" / key if tree.owned else None
    build = plan.paths.build
    build.mkdir(parents=True, exist_ok=True)
    kept = _saved(source.signer, saved, tree, ident)
    if kept is not None:
        atomic_write(build / ".config", kept[0])
        atomic_write(plan.paths.predicted, kept[1])
    else:
        model = source.model()
        source.persist()
        model.load(base, plan.paths.fragment)
        model.write(plan.paths.predicted.with_name(".kconfiglib.config.tmp"))
        plan.paths.predicted.with_name(".kconfiglib.config.tmp").replace(plan.paths.predicted)
        atomic_write(build / ".config", merged, only_if_changed=False)
        run_make(make_commands(plan, tree)[1], plan.paths.configure_log,
                 what="make olddefconfig")
        result = (build / ".config").read_text(errors="replace")
        if not made_here(result, tree, ident):
            raise InfraError(f"make olddefconfig wrote a .config for another kernel or compiler "
                             f"than {tree.version_text} with {ident.cc_version_text}",
                             f"see {plan.paths.configure_log}")
        if saved is not None:
            source.signer.dump(saved / "kbuild.config", result)
            source.signer.dump(saved / "kconfiglib.config", plan.paths.predicted.read_bytes())
    shown.update(1)
    final = read_config(build / ".config")
    return Configured(tree, ident, resolved, final, source, base,
                      compare(read_config(plan.paths.predicted), final))


def _saved(signer: Signer, saved: Path | None, tree: KernelTree, ident: ToolchainIdentity
           ) -> tuple[str, bytes] | None:
    """A kept conf result, if it is signed and is what Kbuild writes for this tree and compiler."""
    if saved is None:
        return None
    kbuild_config = signer.load_text(saved / "kbuild.config")
    predicted = signer.load(saved / "kconfiglib.config")
    if kbuild_config is None or predicted is None or not made_here(kbuild_config, tree, ident):
        return None
    return kbuild_config, predicted
