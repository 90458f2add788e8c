"""Kbuild's interface (kbuild/interface.yaml): which variables steer it, which config targets a
profile may start from, and the controlled environment every make and Kconfig probe runs in.

Nothing of the caller's environment reaches Kbuild unless the interface file lists it: a
KCONFIG_CONFIG, CROSS_COMPILE or MAKEFLAGS left in a shell can neither change nor bypass what
kbuild-py configures and verifies.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from . import catalog
from .errors import UserError


@dataclass(frozen=True)
class Interface:
    keep: tuple[str, ...]
    no_effect: frozenset[str]
    fixed: tuple[tuple[str, str], ...]
    append: tuple[str, ...]
    owned_names: frozenset[str]
    owned_prefixes: tuple[str, ...]
    config_targets: tuple[str, ...]
    defconfig_folder: str
    modules: dict[str, str]  # enabled_by, signed_by, key_symbol, generated_key
    seed: dict[str, str]  # script, file, header (randstruct seed)
    exports: tuple[tuple[str, str], ...] = ()  # (variable, shell command) the Makefile exports
    installed_sources: str = ""  # glob of installed kernel source tarballs
    wrappers: dict[str, Any] = field(default_factory=dict)  # compiler_wrappers: ccache, distcc
    compiler_text: str = ""  # the symbol a .config records its compiler's --version line in
    families: tuple[tuple[str, str], ...] = ()  # (symbol, family): CC_IS_CLANG, clang
    build_identity: dict[str, Any] = field(default_factory=dict)  # timestamp, epoch, fixed
    make_failures: tuple[tuple[str, str], ...] = ()  # (kind, pattern of the line that says it)
    sbom_kernel: dict[str, str] = field(default_factory=dict)  # cpe (vendor:product), purl
    user_may_set: frozenset[str] = frozenset()  # owned make variables a user may give a build

    def owned(self, name: str) -> bool:
        """Whether kbuild-py sets this variable itself (a data file may not)."""
        return name in self.owned_names or name.startswith(self.owned_prefixes)


@cache
def interface() -> Interface:
    path = catalog.data_root() / "kbuild" / "interface.yaml"
    data = catalog.load_validated(path, "interface", "Kbuild interface").data
    env, owned = data["environment"], data["owned"]
    for i, failure in enumerate(data.get("make_failures", [])):
        try:
            re.compile(failure["line"])
        except re.error as e:
            raise UserError(f"{catalog.display(path)}: make_failures[{i}].line: not a regular "
                            f"expression ({e})", "fix the pattern") from None
    return Interface(
        keep=tuple(env["keep"]), no_effect=frozenset(env.get("no_effect", [])),
        fixed=tuple(sorted(env.get("fixed", {}).items())),
        append=tuple(env.get("append", [])), owned_names=frozenset(owned["names"]),
        owned_prefixes=tuple(owned.get("prefixes", [])),
        config_targets=tuple(data["config_targets"]), defconfig_folder=data["defconfig_folder"],
        modules=dict(data["modules"]), seed=dict(data["randstruct_seed"]),
        exports=tuple(data.get("makefile_exports", {}).items()),
        installed_sources=data.get("installed_sources", ""),
        wrappers=dict(data["compiler_wrappers"]),
        compiler_text=data["compiler_record"]["version_text"],
        families=tuple(sorted(data["compiler_record"]["families"].items())),
        build_identity=dict(data["build_identity"]),
        make_failures=tuple((f["kind"], f["line"]) for f in data.get("make_failures", [])),
        sbom_kernel=dict(data.get("sbom_kernel", {})),
        user_may_set=frozenset(owned.get("user_may_set", [])))


_UNSAFE_VALUE = re.compile(r"[$\x00-\x1f\x7f]")


def require_safe_value(name: str, value: str) -> None:
    """A make variable's value make takes as it is: no '$' to expand, no line to split."""
    if _UNSAFE_VALUE.search(value):
        raise UserError(f"make variable {name}: its value holds '$' or a control character, "
                        "which make would expand or split", f"remove it from {name}")


def user_make_vars(words: list[str], where: str) -> tuple[tuple[str, str], ...]:
    """NAME=VALUE words a user gives a build (``where`` names the option), checked: a name
    make takes, not one kbuild-py sets (but those the interface lets a user set), a value make
    takes as it is."""
    iface = interface()
    out: dict[str, str] = {}
    for word in words:
        name, eq, value = word.partition("=")
        if not eq or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise UserError(f"{where}: {word[:60]!r} is not NAME=VALUE",
                            f"give make variables as {where} W=1 LOCALVERSION=-acme")
        if iface.owned(name) and name not in iface.user_may_set:
            raise UserError(f"{where}: {name}: kbuild-py sets {name} itself (Kbuild's "
                            "interface, kbuild/interface.yaml)",
                            f"leave it out; a user may set {', '.join(sorted(iface.user_may_set))}")
        require_safe_value(name, value)
        out[name] = value
    return tuple(sorted(out.items()))


def environment(source: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment make and Kconfig probes get: the kept variables of ``source`` (this
    process's environment by default), then the fixed ones."""
    source = os.environ if source is None else source
    iface = interface()
    env = {k: source[k] for k in iface.keep if k in source}
    env.update(iface.fixed)
    env.setdefault("PATH", os.defpath)
    return env


def identity(env: Mapping[str, str]) -> str:
    """An environment as a cache key part: every variable that can change a result."""
    import json

    skip = interface().no_effect
    return json.dumps({k: v for k, v in sorted(env.items()) if k not in skip})


def appended(name: str, own: str, source: Mapping[str, str] | None = None) -> str:
    """kbuild-py's own value of ``name`` followed by the caller's (for variables the interface
    lets the caller append to, e.g. KCFLAGS); just ``own`` for any other variable."""
    source = os.environ if source is None else source
    theirs = source.get(name, "").strip() if name in interface().append else ""
    return " ".join(part for part in (own.strip(), theirs) if part)


def check_base(base: str, tree: Path, srcarch: str, where: str) -> None:
    """A profile's base must be a config target of this tree (not an option, an interactive
    or host-reading target, or a file outside the arch's configs)."""
    iface = interface()
    if base in iface.config_targets:
        return
    folder = tree / iface.defconfig_folder.format(srcarch=srcarch)
    if base.endswith("defconfig") and "/" not in base and (folder / base).is_file():
        return
    known = sorted({*iface.config_targets,
                    *(p.name for p in folder.glob("*defconfig") if p.is_file())})
    raise UserError(f"{where}: base: '{base}' is not a config target of this kernel"
                    f"{catalog.suggest(base, known)}",
                    f"use one of {', '.join(iface.config_targets)} or a file in "
                    f"{folder.relative_to(tree)}/")


def make_symbol(symbol: str) -> str:
    """A Kconfig symbol as a make variable (Kbuild's makefiles read them with their prefix)."""
    return f"CONFIG_{symbol}"
