"""Resolve a Profile for one kernel (version, arch, toolchain) into the requirements that apply,
and render the merged fragment. Pure: the Kconfig model is only asked which symbols exist."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from .errors import UserError
from .kconfig.dotconfig import fragment_line
from .kconfig.results import SymbolInfo
from .profile import Param, Profile, Requirement, Version, parse_version


class SymbolTable(Protocol):
    def info(self, symbol: str) -> SymbolInfo | None: ...
    def names(self) -> list[str]: ...


@dataclass(frozen=True)
class Resolved:
    requirement: Requirement
    symbol: str  # the name in this kernel (after renames)
    applicable: bool
    reason: str = ""  # why not applicable
    kind: str = "unknown"  # Kconfig type of the symbol
    # The queues whose patches add the symbol ("" if none does), and whether this tree has it.
    needs_patches: str = ""
    in_tree: bool = True


def resolve(profile: Profile, version: Version, toolchain: tuple[str, str],
            symbols: SymbolTable, added: set[str] | frozenset[str] = frozenset()
            ) -> list[Resolved]:
    """Every requirement, each either applicable (symbol exists here) or not, with the reason.

    A symbol missing from a kernel inside the profile's newest supported version is an error
    (a typo or a stale name); in an older kernel it is reported as not applicable. A symbol
    the profile's patches add (``added``) applies whether or not this tree has them: a tree
    without them cannot meet it.
    """
    out: list[Resolved] = []
    newest = profile.kernel.max
    strict = newest is None or version[:2] >= parse_version(newest)[:2]
    unknown: list[str] = []
    for req in profile.requirements.values():
        name = req.symbol_for(version)
        if req.when:
            why_not = req.when.why_not(profile.arch, version, toolchain)
            if why_not:
                out.append(Resolved(req, name, False, why_not))
                continue
        info = symbols.info(name)
        if name in added:  # the profile's patches add it: a tree without them cannot have it
            out.append(Resolved(req, name, True, kind=info.type if info else "unknown",
                                needs_patches=", ".join(profile.patches),
                                in_tree=info is not None))
            continue
        if info is None:
            if strict:
                unknown.append(f"{req.origin}: options.{req.symbol}: unknown symbol "
                               f"CONFIG_{name} in this kernel")
                continue
            out.append(Resolved(req, name, False,
                                f"CONFIG_{name} does not exist in this kernel"))
            continue
        out.append(Resolved(req, name, True, kind=info.type))
    if unknown:
        from . import catalog

        first = unknown[0]
        sym = first.rsplit("CONFIG_", 1)[1].split(" ")[0]
        hint = catalog.suggest(sym, symbols.names()).strip(" ()") or (
            "check the name, or gate it with when: kernel / arch")
        more = f" (+{len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise UserError(first + more, hint)
    return out


def fragment(profile: Profile, resolved: list[Resolved], kernel: str,
             patched: set[str] | frozenset[str] = frozenset()) -> str:
    """The merged fragment, usable as it is by merge_config.sh, Yocto and Kleaf; its header
    names the base it goes on and the options that exist only with the profile's patches
    (``patched``: the symbols the patches add), which a tree without them drops."""
    body = []
    for r in sorted(resolved, key=lambda r: r.symbol):
        value = r.requirement.fragment_value() if r.applicable else None
        if value is not None:
            body.append((r.symbol, fragment_line(r.symbol, value, r.kind)))
    needs = [f"CONFIG_{s}" for s, _ in body if s in patched]
    lines = [f"# kbuild-py fragment for profile {profile.name}: {profile.arch}, Linux {kernel}",
             "# generated: edit the profile, not this file",
             f"# goes on the '{profile.base}' base configuration of the same kernel"]
    if needs:
        lines.append(f"# needs the profile's patches ({', '.join(profile.patches)}), without "
                     f"which Kconfig drops: {', '.join(needs)}")
    return "\n".join(lines + [line for _, line in body]) + "\n"


def _params(params: dict[str, Param], arch: str, version: Version,
            toolchain: tuple[str, str]) -> list[Param]:
    return [p for p in params.values()
            if not (p.when and p.when.why_not(arch, version, toolchain))]


def runtime_params(profile: Profile, version: Version, toolchain: tuple[str, str]
                   ) -> tuple[list[Param], list[Param]]:
    """The command-line parameters and sysctls the profile ships for this kernel."""
    return (_params(profile.cmdline, profile.arch, version, toolchain),
            _params(profile.sysctl, profile.arch, version, toolchain))


_CMDLINE_NAME = re.compile(r"[a-z0-9_.-]+")
_CMDLINE_VALUE = re.compile(r"[^\s\"'\\\x00-\x1f\x7f]+")
_SYSCTL_NAME = re.compile(r"[a-z0-9_]+(\.[a-z0-9_*-]+)+")
_SYSCTL_VALUE = re.compile(r"[!-~]([ -~]*[!-~])?")


def _grammar(p: Param, kind: str) -> None:
    """Each generated line follows its file's grammar, whatever the schema let through."""
    name_ok = (_CMDLINE_NAME if kind == "cmdline" else _SYSCTL_NAME).fullmatch(p.name)
    value_ok = p.value is None or bool(
        (_CMDLINE_VALUE if kind == "cmdline" else _SYSCTL_VALUE).fullmatch(p.value))
    if not name_ok or not value_ok or (kind == "sysctl" and p.value is None):
        raise UserError(f"{p.origin}: {kind}.{p.name}: {p.value!r} is not one "
                        f"{'command-line parameter' if kind == 'cmdline' else 'sysctl line'}",
                        "one word for a command-line value; printable text on one line for "
                        "a sysctl")


def cmdline(profile: Profile, version: Version, toolchain: tuple[str, str]) -> str:
    """Kernel command line, one line, ready for a bootloader: one word per parameter."""
    params = _params(profile.cmdline, profile.arch, version, toolchain)
    for p in params:
        _grammar(p, "cmdline")
    return " ".join(p.render_cmdline() for p in params) + "\n"


def sysctl_conf(profile: Profile, version: Version, toolchain: tuple[str, str]) -> str:
    """A sysctl.d file: each setting after its reason, every line of which is a comment."""
    lines = [f"# kbuild-py: sysctl settings of profile {profile.name}"]
    for p in _params(profile.sysctl, profile.arch, version, toolchain):
        _grammar(p, "sysctl")
        for line in p.why.splitlines() or [""]:
            lines.append(f"# {''.join(c if c.isprintable() else ' ' for c in line)}".rstrip())
        lines.append(f"{p.name} = {p.value}")
    return "\n".join(lines) + "\n"


def resolve_without_tree(profile: Profile, version: Version, toolchain: tuple[str, str],
                         config: dict[str, str]) -> list[Resolved]:
    """Without a Kconfig tree only conditions decide applicability; types are unknown."""
    out = []
    for req in profile.requirements.values():
        name = req.symbol_for(version)
        why_not = req.when.why_not(profile.arch, version, toolchain) if req.when else None
        out.append(Resolved(req, name, why_not is None, why_not or ""))
    return out
