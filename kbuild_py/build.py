"""build: `make O=out/<p>/build -jN` with the toolchain's variables, reproducibly."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

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
    argv = make_argv(tree.path, build_dir, variables, targets(plan, config), plan.jobs)
    plan.paths.log.unlink(missing_ok=True)
    with tqdm(desc=f"build {plan.profile.name}", unit=" steps", disable=not progress or None,
              leave=False) as bar:
        run_make(argv, plan.paths.log, env=reproducible_env(tree),
                 on_line=lambda line: bar.update(1) if _STEP.match(line) else None,
                 what=f"build of {plan.profile.name}")
    return Built(build_dir / plan.arch.image_path, build_dir / "vmlinux",
                 build_dir / "System.map", config.get("MODULES") == "y", tuple(argv))
