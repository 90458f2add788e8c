"""BuildPlan: everything a build needs, as plain data, decided before any I/O happens."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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


def make_plan(profile_name: str, out_root: Path, source: SourcePin | None = None,
              jobs: int | None = None, ccache: bool = True) -> BuildPlan:
    import os

    profile = load_profile(profile_name)
    arch = load_arch(profile.arch)
    toolchain = load_toolchain(profile.toolchain)
    return BuildPlan(
        profile=profile, arch=arch, toolchain=toolchain,
        source=source or profile.source,
        paths=Paths(out_root, out_root / profile.name),
        jobs=jobs or os.cpu_count() or 1,
        ccache=ccache,
    )
