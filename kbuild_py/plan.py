"""BuildPlan: everything a build needs, as plain data, decided before any I/O happens."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import UserError
from .profile import Profile, SourcePin, load_profile
from .toolchain import Arch, Toolchain, load_arch, load_toolchain


@dataclass(frozen=True)
class Paths:
    root: Path  # out/
    profile: Path  # out/<p>/

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def base_dir(self) -> Path:
        return self.profile / "base"

    @property
    def build(self) -> Path:
        return self.profile / "build"

    @property
    def config(self) -> Path:
        return self.build / ".config"

    @property
    def fragment(self) -> Path:
        return self.profile / "fragment.config"

    @property
    def predicted(self) -> Path:
        return self.profile / "kconfiglib.config"

    @property
    def dist(self) -> Path:
        return self.profile / "dist"

    @property
    def modules(self) -> Path:
        return self.profile / "modules"  # INSTALL_MOD_PATH: lib/modules/<release>/

    @property
    def boot(self) -> Path:
        return self.profile / "boot"

    @property
    def log(self) -> Path:
        return self.profile / "build.log"

    @property
    def lock(self) -> Path:
        return self.profile / ".lock"

    @property
    def stamps(self) -> Path:
        return self.profile / "stamps"


@dataclass(frozen=True)
class BuildPlan:
    profile: Profile
    arch: Arch
    toolchain: Toolchain
    source: SourcePin
    paths: Paths
    jobs: int
    ccache: bool = True
    distcc_hosts: str = ""  # DISTCC_HOSTS syntax; empty: compile here


def make_plan(profile_name: str, out_root: Path, source: SourcePin | None = None,
              jobs: int | None = None, ccache: bool = True, distcc_hosts: str = ""
              ) -> BuildPlan:
    import os

    from . import patches

    if out_root.exists() and not out_root.is_dir():
        raise UserError(f"{out_root}: the output folder is a file", "give a folder with out=")
    if jobs is not None and jobs < 1:
        raise UserError(f"jobs={jobs}: must be 1 or more", "e.g. jobs=2")
    profile = load_profile(profile_name)
    arch = load_arch(profile.arch)
    toolchain = load_toolchain(profile.toolchain)
    if arch.name not in toolchain.arches:
        raise UserError(
            f"toolchains/{toolchain.name}.yaml: toolchain {toolchain.name} does not target "
            f"{arch.name}", f"it targets {', '.join(toolchain.arches)}; pick another toolchain "
            f"in profile {profile.name}")
    if profile.dtbs and not arch.dts:
        raise UserError(f"{profile.path}: dtbs: arch {arch.name} has no device trees",
                        f"remove dtbs from profile {profile.name}")
    for queue in profile.patches:  # every queue checked (files, pins, paths) before any work
        patches.load_queue(queue)
    return BuildPlan(
        profile=profile, arch=arch, toolchain=toolchain,
        source=source or profile.source,
        paths=Paths(out_root, out_root / profile.name),
        jobs=jobs or os.cpu_count() or 1,
        ccache=ccache,
        distcc_hosts=distcc_hosts.strip(),
    )
