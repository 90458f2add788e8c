"""build: `make O=out/<p>/build -jN` with the toolchain's variables, reproducibly."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .kconfig import read_config
from .kmake import make_argv, run_make
from .plan import BuildPlan
from .source import KernelTree
from .toolchain import make_variables

_STEP = re.compile(r"^\s+(CC|AS|LD|AR|HOSTCC|HOSTLD|OBJCOPY|GEN|GZIP|XZ)\s")


@dataclass(frozen=True)
class Built:
    image: Path
    vmlinux: Path
    system_map: Path
    modules: bool
    argv: tuple[str, ...]
    ccache: dict[str, int] | None = None


def ccache_stats() -> dict[str, int]:
    """ccache's counters (ccache >= 4: --print-stats is machine-readable)."""
    r = subprocess.run(["ccache", "--print-stats"], capture_output=True, text=True, check=False)
    out: dict[str, int] = {}
    for line in r.stdout.splitlines():
        key, _, value = line.partition("\t")
        if value.strip().isdigit():
            out[key] = int(value)
    return out


def _ccache_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    keys = ("direct_cache_hit", "preprocessed_cache_hit", "cache_miss")
    return {k: after.get(k, 0) - before.get(k, 0) for k in keys}


def reproducible_env(tree: KernelTree) -> dict[str, str]:
    """Fixed build identity: the timestamp comes from the source (its Makefile's mtime)."""
    from datetime import UTC, datetime

    stamp = datetime.fromtimestamp(int((tree.path / "Makefile").stat().st_mtime), UTC)
    return {
        "KBUILD_BUILD_TIMESTAMP": stamp.strftime("%a %b %d %H:%M:%S UTC %Y"),
        "KBUILD_BUILD_USER": "kbuild-py",
        "KBUILD_BUILD_HOST": "kbuild-py",
        "KBUILD_BUILD_VERSION": "1",
    }


def targets(plan: BuildPlan, config: dict[str, str]) -> list[str]:
    out = [plan.arch.image_target, "vmlinux"]
    if config.get("MODULES") == "y":
        out.append("modules")
    return out


def build(plan: BuildPlan, tree: KernelTree, *, progress: bool = True) -> Built:
    build_dir = plan.paths.build.resolve()
    config = read_config(build_dir / ".config")
    variables = make_variables(plan.toolchain, plan.arch)
    env = reproducible_env(tree)
    use_ccache = plan.ccache and shutil.which("ccache") is not None
    if use_ccache:
        # Same compiler, through ccache; paths under out/ hashed relative so that two out
        # folders share hits.
        variables["CC"] = f"ccache {plan.toolchain.tools['CC']}"
        env.update({"CCACHE_BASEDIR": str(plan.paths.root.resolve()), "CCACHE_NOHASHDIR": "1"})
        before = ccache_stats()
    from tqdm import tqdm  # only a build draws a progress bar

    argv = make_argv(tree.path, build_dir, variables, targets(plan, config), plan.jobs)
    plan.paths.log.unlink(missing_ok=True)
    with tqdm(desc=f"build {plan.profile.name}", unit=" steps", disable=not progress or None,
              leave=False) as bar:
        run_make(argv, plan.paths.log, env=env,
                 on_line=lambda line: bar.update(1) if _STEP.match(line) else None,
                 what=f"build of {plan.profile.name}")
    stats = _ccache_delta(before, ccache_stats()) if use_ccache else None
    return Built(build_dir / plan.arch.image_path, build_dir / "vmlinux",
                 build_dir / "System.map", config.get("MODULES") == "y", tuple(argv), stats)
