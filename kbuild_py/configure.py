"""configure: base config from Kbuild, profile fragment on top, kconfiglib's prediction, then
Kbuild's own `make olddefconfig` as the ground truth — and the two compared."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .fsutil import atomic_write, sha256_text
from .kconfig import KconfigModel, cache_key, read_config
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


@dataclass
class Configured:
    tree: KernelTree
    toolchain: ToolchainIdentity
    resolved: list[Resolved]
    final: dict[str, str]
    model: KconfigModel
    mismatches: list[Mismatch] = field(default_factory=list)


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
    env = kconfig_environment(plan.toolchain, ident, plan.arch, str(tree.path), tree.version_text)
    cache = None
    if tree.owned:
        key = cache_key([tree.identity, plan.arch.name, ident.key(),
                         json.dumps(env, sort_keys=True)])
        cache = plan.paths.cache / "kconfig" / f"{key}.pickle"
    return KconfigModel.parse(tree.path, env, tree.version, cache)


def base_config(plan: BuildPlan, tree: KernelTree, ident: ToolchainIdentity) -> Path:
    """`make <base>` by Kbuild itself, redone only when tree, toolchain or target change."""
    out = plan.paths.base_dir
    key = sha256_text(json.dumps([tree.identity, ident.key(), plan.profile.base,
                                  make_variables(plan.toolchain, plan.arch)]))
    stamp = out / ".kbuild-py-key"
    config = out / ".config"
    if config.is_file() and stamp.is_file() and stamp.read_text() == key:
        return config
    stamp.unlink(missing_ok=True)
    argv = make_argv(tree.path, out.resolve(), make_variables(plan.toolchain, plan.arch),
                     [plan.profile.base])
    run_make(argv, plan.paths.profile / "configure.log", what=f"make {plan.profile.base}")
    atomic_write(stamp, key)
    return config


def configure(plan: BuildPlan, tree: KernelTree) -> Configured:
    ident = detect(plan.toolchain, plan.arch.name)
    base = base_config(plan, tree, ident)
    model = load_model(plan, tree, ident)
    family = (plan.toolchain.family, plan.toolchain.name)
    resolved = resolve(plan.profile, tree.version, family, model)
    atomic_write(plan.paths.fragment, fragment(plan.profile, resolved))

    model.load(base, plan.paths.fragment)
    tmp = plan.paths.predicted.with_suffix(".tmp")
    model.write(tmp)
    tmp.replace(plan.paths.predicted)

    build = plan.paths.build
    build.mkdir(parents=True, exist_ok=True)
    atomic_write(build / ".config",
                 base.read_text() + plan.paths.fragment.read_text(), only_if_changed=False)
    argv = make_argv(tree.path, build.resolve(), make_variables(plan.toolchain, plan.arch),
                     ["olddefconfig"])
    run_make(argv, plan.paths.profile / "configure.log", what="make olddefconfig")
    final = read_config(build / ".config")
    return Configured(tree, ident, resolved, final, model,
                      compare(read_config(plan.paths.predicted), final))
