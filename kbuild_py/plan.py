"""BuildPlan: everything a build needs, as plain data, decided before any I/O happens."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import UserError
from .profile import Profile, SourcePin, load_profile
from .toolchain import Arch, Toolchain, load_arch, load_toolchain


@dataclass(frozen=True)
class Paths:
    root: Path  # out/
    profile: Path  # out/<p>/
    # Where configure keeps its Kconfig cache (probe answers, conf results; signed): out/cache/,
    # or the folder KBUILD_PY_CACHE names (shared_cache), shared by several out/ folders as
    # CCACHE_DIR is by several builds.
    cache: Path

    # out/'s own folders, shared by every profile: no profile may be named like them.
    SHARED = ("src", "cache")

    @property
    def marker(self) -> Path:
        """Names the profile a folder in out/ belongs to: only such a folder is ever cleaned."""
        return self.profile / ".kbuild-py-profile"

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
    def export(self) -> Path:
        return self.profile / "export"  # <format>/: what another build system needs

    @property
    def boot(self) -> Path:
        return self.profile / "boot"

    @property
    def log(self) -> Path:
        return self.profile / "build.log"

    @property
    def configure_log(self) -> Path:
        return self.profile / "configure.log"

    @property
    def cmdline(self) -> Path:
        return self.profile / "cmdline"

    @property
    def sysctl(self) -> Path:
        return self.profile / "sysctl.conf"

    @property
    def report(self) -> Path:
        """report.json; report.txt and report.xml beside it (report.write_all)."""
        return self.profile / "report.json"

    @property
    def binary_report(self) -> Path:
        return self.profile / "binary-report.json"

    @property
    def manifest(self) -> Path:
        return self.dist / "manifest.json"

    @property
    def lock(self) -> Path:
        return self.profile / ".lock"

    @property
    def stamps(self) -> Path:
        return self.profile / "stamps"

    @property
    def durations(self) -> Path:
        return self.stamps / "durations.json"  # seconds of each step's last run


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
    make_vars: tuple[tuple[str, str], ...] = ()  # the user's (kbuild.user_make_vars), for builds


MAX_JOBS = 1024
CACHE_ENV = "KBUILD_PY_CACHE"


def shared_cache() -> Path | None:
    """The folder KBUILD_PY_CACHE names, checked as an output folder (absolute, plain, not the
    project, not inside a kernel tree), or None when it is not set."""
    text = os.environ.get(CACHE_ENV, "")
    if not text:
        return None
    if not os.path.isabs(text):
        raise UserError(f"{CACHE_ENV}={text}: not an absolute path",
                        f"give an absolute folder, or unset {CACHE_ENV}")
    try:
        return out_folder(text)
    except UserError as e:
        raise UserError(f"{CACHE_ENV}: {e.message}",
                        f"give a folder of its own, or unset {CACHE_ENV}") from None


def out_folder(text: str) -> Path:
    """The output folder named on the command line (--out, out=), checked: not empty, a
    plain path make can carry, not /, not the project or one of its folders, not inside a
    kernel tree (which kbuild-py never writes)."""
    if not text.strip():
        raise UserError("the output folder is empty", "give one with --out / out=, e.g. out")
    from .catalog import DATA_FOLDERS, PACKAGE_DIR, data_root
    from .fsutil import user_path
    from .kmake import require_plain_path

    out = user_path(text, "output folder")
    try:
        out = out.resolve()
    except (OSError, RuntimeError) as e:
        raise UserError(f"output folder {text!r}: {e}", "give another folder") from None
    require_plain_path(out, "output folder", "give a plain path with --out / out=")
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: the output folder is a file", "give a folder with --out / out=")
    project = {data_root().resolve(), PACKAGE_DIR.parent.resolve()}
    if out == Path(out.anchor) or any(out == p or out in p.parents for p in project):
        raise UserError(f"output folder {out}: it holds the project (or the system's folders), "
                        "and cleaning it would delete them", "give a folder of its own, e.g. out")
    for root in project:
        for name in (*DATA_FOLDERS, "kbuild_py", "tests", "docs", "bench", ".git"):
            folder = root / name
            if out == folder or folder in out.parents:
                raise UserError(f"output folder {out}: inside the project's {name}/",
                                "give a folder of its own, e.g. out")
    for folder in (out, *out.parents):
        if (folder / "Kconfig").is_file() and (folder / "scripts" / "kconfig").is_dir():
            raise UserError(f"output folder {out}: inside the kernel tree {folder}, which "
                            "kbuild-py never writes", "give a folder outside the tree")
    return out


def _no_link(folder: Path, *, inside: bool) -> None:
    """A folder kbuild-py writes in and cleans (and, for a profile's, what is in it) must be a
    folder of out/ itself: a link would take the writes, and scons -c's removals, elsewhere."""
    children = list(folder.iterdir()) if inside and folder.is_dir() else []
    for path in [folder, *children]:
        if path.is_symlink():
            raise UserError(f"{path}: is a link (to {os.path.realpath(path)}); kbuild-py writes "
                            "and removes files only in folders of the out folder itself",
                            "remove the link, or give another out folder")


def make_plan(profile_name: str, out_root: Path, source: SourcePin | None = None,
              jobs: int | None = None, ccache: bool = True, distcc_hosts: str = "",
              make_vars: tuple[tuple[str, str], ...] = ()) -> BuildPlan:
    from . import patches

    if out_root.exists() and not out_root.is_dir():
        raise UserError(f"{out_root}: the output folder is a file", "give a folder with out=")
    if jobs is not None and not 1 <= jobs <= MAX_JOBS:
        raise UserError(f"jobs={jobs}: must be 1 to {MAX_JOBS}", "e.g. jobs=2")
    cache = shared_cache() or out_root / "cache"  # checked before any work
    if any(ord(c) < 32 or ord(c) == 127 for c in distcc_hosts):
        raise UserError("hosts: holds a control character", "give DISTCC_HOSTS syntax on one line")
    profile = load_profile(profile_name)
    if profile.name in Paths.SHARED:
        raise UserError(f"{profile.path}: name: '{profile.name}' is the name of out/{profile.name}/"
                        ", which every profile shares", "give the profile another name")
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
    _no_link(out_root / profile.name, inside=True)
    for name in (*Paths.SHARED, ".locks"):
        _no_link(out_root / name, inside=False)
    return BuildPlan(
        profile=profile, arch=arch, toolchain=toolchain,
        source=source or profile.source,
        paths=Paths(out_root, out_root / profile.name, cache),
        jobs=jobs or os.cpu_count() or 1,
        ccache=ccache,
        distcc_hosts=distcc_hosts.strip(),
        make_vars=make_vars,
    )
