"""check: a .config made anywhere, against a profile, without building.

The config says what it is, and that decides: its header names the arch and the kernel version
(`# Linux/x86 6.12.118 Kernel Configuration`), and a whole .config records the compiler that
configured it (kbuild/interface.yaml: compiler_record). An arch other than the profile's, or a
version outside the profile's range, is refused. The version's gates and renames apply. With a
tree of that version (given with --kernel, or an installed tarball of it), every unmet
requirement is explained with the config's own compiler's answers to the tree's probes
(kconfig/record.py); without one, each line says what the config shows and how to get more.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from . import kbuild, patches
from .errors import UserError
from .kconfig import dotconfig
from .profile import Profile, Version, load_profile, parse_version
from .toolchain import Arch, load_arch, load_toolchain
from .verify import UNMET, Report, requirement_kind, verify

if TYPE_CHECKING:
    from .kconfig.model import KconfigModel


@dataclass(frozen=True)
class Checked:
    """What the config says of itself."""

    path: Path
    header: dotconfig.Header | None
    written: tuple[tuple[str, str], ...]  # (symbol, value as written), in file order
    raw: dict[str, str]  # symbol -> value as written, the last one
    compiler: str | None  # its compiler's --version line, when recorded

    @property
    def complete(self) -> bool:
        return self.header is not None


def read_checked(path: Path) -> Checked:
    data = dotconfig.read_bytes(path)
    written = tuple(dotconfig.parse(data))
    raw = dict(written)
    text = raw.get(kbuild.interface().compiler_text)
    compiler = dotconfig.value(text, "string") if text is not None else None
    return Checked(path, dotconfig.header(data), written, raw, compiler or None)


def check_arch(config: Checked, profile: Profile, arch: Arch) -> None:
    """A config of another arch is refused (its header, else its marker symbol, says)."""
    head = config.header
    if head is not None and head.arch not in arch.header_arches:
        raise UserError(f"{config.path}: a Linux/{head.arch} config (its header), and profile "
                        f"{profile.name} is for {arch.name}",
                        "check it with a profile for its arch (kbuild-py profiles lists them)")
    if head is not None and config.raw.get(arch.marker, "n")[:1] != "y":
        raise UserError(f"{config.path}: CONFIG_{arch.marker} is not set, so this is not an "
                        f"{arch.name} config, and profile {profile.name} is for {arch.name}",
                        "check it with a profile for its arch (kbuild-py profiles lists them)")


def config_version(config: Checked, given: str | None) -> tuple[Version, str] | None:
    """The kernel version of the config: its header's, which --version may only repeat."""
    version = None
    if given is not None:
        try:
            version = parse_version(given)
        except ValueError:
            raise UserError(f"--version {given}: not a kernel version",
                            "give it like 6.12 or 6.1.119") from None
    head = config.header
    if head is None:
        return (version, given) if version is not None and given is not None else None
    if version is not None and version != head.version[:len(version)]:
        raise UserError(f"--version {given}: {config.path} is Linux {head.version_text} "
                        "(its header)", "leave --version out: the header says the version")
    return head.version, head.version_text


def check_range(config: Checked, profile: Profile, version: Version, text: str) -> None:
    if not profile.kernel.contains(version):
        raise UserError(f"{config.path}: Linux {text}, outside the kernels profile "
                        f"{profile.name} supports ({profile.kernel})",
                        "check it with a profile for that kernel, or a config of a kernel in "
                        "that range")


def installed_tree(version: Version) -> str | None:
    """An installed source tarball of this kernel's major.minor version (Debian's
    linux-source-X.Y), if the machine has one."""
    from .matrix import installed_kernels, version_key

    return next((p for p in installed_kernels() if version_key(p)[:2] == version[:2]), None)


def check(profile_name: str, config_path: Path, *, kernel: str | None, version: str | None,
          out: Path, search: bool) -> Report:
    """The report of a config against a profile (see the module's text)."""
    profile = load_profile(profile_name)
    arch = load_arch(profile.arch)
    config = read_checked(config_path)
    check_arch(config, profile, arch)
    known = config_version(config, version)
    if known is not None:
        check_range(config, profile, *known)
    source = kernel
    found = ""
    if source is None and search and known is not None and config.complete:
        source = installed_tree(known[0])
        found = f" (found installed for the config's Linux {known[1]})" if source else ""
    if source is None:
        if known is None:
            raise UserError(f"{config_path}: no kernel version: the config has no "
                            "'# Linux/<arch> <version> Kernel Configuration' header",
                            "give --version, or --kernel with the config's kernel tree")
        return _without_tree(profile, config, *known)
    return _with_tree(profile_name, profile, config, known, source, found, out)


def _compiler_label(config: Checked, here: str) -> str:
    if config.compiler:
        return f"the config's compiler ({config.compiler})"
    return f"{here} on this machine (the config does not record its compiler)"


def _without_tree(profile: Profile, config: Checked, version: Version, text: str) -> Report:
    from .resolve import resolve_without_tree

    tc = load_toolchain(profile.toolchain)
    resolved = resolve_without_tree(profile, version, (tc.family, tc.name), config.raw)
    kinds = {r.symbol: requirement_kind(r.requirement) for r in resolved}
    final = dict(dotconfig.typed(config.written, kinds))
    report = verify(profile, resolved, final, None, kernel=text,
                    toolchain=config.compiler or "not recorded", config=str(config.path))
    added = patches.added_symbols(profile.patches, version)
    if config.complete:  # a whole .config leaves out only what is hidden or does not exist
        series = ".".join(map(str, version[:2]))
        report.checks = [
            replace(c, note=(f"not in this config: it exists only with the profile's patches "
                             f"({', '.join(profile.patches)})" if c.symbol in added else
                             f"not in this config: hidden there, or not in Linux {series}"))
            if c.status == UNMET and c.symbol not in config.raw and not c.note else c
            for c in report.checks]
    report.notes.append(f"no Linux {'.'.join(map(str, version[:2]))} tree here: unmet lines are "
                        "not explained; give --kernel with that kernel's tree or tarball for "
                        "explanations")
    return report


def _with_tree(profile_name: str, profile: Profile, config: Checked,
               known: tuple[Version, str] | None, source: str, found: str, out: Path) -> Report:
    from .configure import load_model
    from .plan import make_plan
    from .source import parse_source_arg
    from .toolchain import detect
    from .tree import tree_to_read

    plan = make_plan(profile_name, out, parse_source_arg(source))
    ident = detect(plan.toolchain, plan.arch.name)
    tree = tree_to_read(plan)
    if known is not None and tree.version[:2] != known[0][:2]:
        raise UserError(f"--kernel {source}: Linux {tree.version_text}, and {config.path} is "
                        f"Linux {known[1]} (its header)",
                        f"give a Linux {'.'.join(map(str, known[0][:2]))} tree or tarball, or "
                        "leave --kernel out to use an installed one")
    version, text = known if known is not None else (tree.version, tree.version_text)
    check_range(config, profile, version, text)
    report = explained(profile, config, load_model(plan, tree, ident), version, text,
                       ident.name)
    report.notes.insert(0, f"tree: Linux {tree.version_text} from {source}{found}")
    return report


def explained(profile: Profile, config: Checked, model: KconfigModel, version: Version,
              text: str, here: str) -> Report:
    """The report of a config with the model of its kernel's tree (parsed with the
    toolchain ``here`` names): every unmet requirement explained with the answers the config
    records of its own compiler; the model is left as it was, but for the config loaded."""
    from .kconfig.results import ExplainContext
    from .resolve import resolve

    tc = load_toolchain(profile.toolchain)
    model.load(config.path)
    saved = model.context
    model.context = ExplainContext(_compiler_label(config, here), "config",
                                   kbuild.interface().families)
    try:
        table = model.symbol_table()
        added = patches.added_symbols(profile.patches, version)
        resolved = resolve(profile, version, (tc.family, tc.name), table, added)
        final = dict(dotconfig.typed(config.written, table.kinds()))
        with model.recorded(config.complete) as taken:
            report = verify(profile, resolved, final, model.explain, kernel=text,
                            toolchain=config.compiler or f"not recorded ({here} probed here)",
                            config=str(config.path))
    finally:
        model.context = saved
    if config.compiler and taken:
        report.notes.append(
            f"{len(taken)} probe answer(s) of this machine's {here} differ from the config's "
            "record and were taken from the config: "
            + ", ".join(t.symbol for t in taken[:12]) + (" ..." if len(taken) > 12 else ""))
    elif not config.compiler:
        report.notes.append(f"the config does not record its compiler: the tree's probes were "
                            f"answered by {here} on this machine")
    report.recorded = [{"symbol": t.symbol, "here": t.here, "recorded": t.recorded}
                       for t in taken]
    return report
