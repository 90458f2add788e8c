"""Toolchains and arches as data (toolchains/*.yaml, arches/*.yaml), and their detection."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from . import catalog
from .errors import InfraError, UserError
from .profile import parse_version
from .yamlio import Document


@dataclass(frozen=True)
class Arch:
    name: str
    srcarch: str
    image_target: str
    image_path: str
    clang_target: str = ""
    dts: str = ""  # device-tree sources, relative to the tree ("" if the arch has none)
    qemu: dict[str, object] = field(default_factory=dict, compare=False, hash=False)
    header_arches: tuple[str, ...] = ()  # a .config header's make ARCH for this arch
    marker: str = ""  # the symbol a .config of this arch sets


@dataclass(frozen=True)
class Toolchain:
    name: str
    family: str
    arches: tuple[str, ...]
    tools: dict[str, str] = field(compare=False, hash=False)
    make_vars: dict[str, str] = field(compare=False, hash=False)
    kconfig_env: dict[str, str] = field(compare=False, hash=False)
    min_version: str = "0"
    seed_flags: str = ""  # appended to KCFLAGS, {seed} expanded
    init_flags: tuple[str, ...] = ()  # the boot tests' init: before the source ({clang_target})
    init_libs: tuple[str, ...] = ()  # and after it
    packages: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    cpe: dict[str, str] = field(default_factory=dict, compare=False, hash=False)  # CC, LD
    files: tuple[Path, ...] = ()  # the file and the templates it extends: its inputs

    def expand(self, text: str, arch: Arch) -> str:
        return text.replace("{clang_target}", arch.clang_target)


@dataclass(frozen=True)
class ToolchainIdentity:
    """What the toolchain is on this machine: versions as the tools report them."""

    name: str
    family: str
    cc_version_text: str
    version: str
    ld_version_text: str

    def key(self) -> str:
        return f"{self.name}|{self.cc_version_text}|{self.ld_version_text}"


def load_arch(name: str) -> Arch:
    path = catalog.find("arches", name, "arch")
    doc = catalog.load_validated(path, "arch", "arch")
    catalog.check_name(doc, name)
    data = doc.data
    return Arch(name=data["name"], srcarch=data["srcarch"], image_target=data["image"]["target"],
                image_path=data["image"]["path"], clang_target=data.get("clang_target", ""),
                dts=data.get("dts", ""), qemu=data.get("qemu", {}),
                header_arches=tuple(data["dotconfig"]["header_arches"]),
                marker=data["dotconfig"]["marker"])


# Placeholders filled in later, per arch or per build (not by a toolchain's vars).
LATE_PLACEHOLDERS = frozenset({"clang_target", "seed"})
_PLACEHOLDER = re.compile(r"\{([a-z][a-z_]*)\}")
MAX_EXTENDS = 8


def load_toolchain(name: str) -> Toolchain:
    doc, data, files = _toolchain_data(name, ())
    if data.get("template"):
        raise UserError(f"{doc.where(('template',))}: toolchain {name} is a template",
                        f"use a toolchain that extends it (extends: {name} in toolchains/)")
    data = _filled(doc, data)
    from .kbuild import interface

    iface = interface()
    for section in ("tools", "make_vars", "kconfig_env"):
        for var in data.get(section, {}):
            if iface.owned(var):
                raise UserError(f"{doc.where((section, var))}: {section}.{var}: kbuild-py sets "
                                f"{var} itself (Kbuild's interface, kbuild/interface.yaml)",
                                f"remove {var} from toolchains/{name}.yaml")
    return Toolchain(
        name=data["name"], family=data["family"], arches=tuple(data["arches"]),
        tools=dict(data["tools"]), make_vars=dict(data.get("make_vars", {})),
        kconfig_env=dict(data.get("kconfig_env", {})), min_version=data["version"]["min"],
        packages=dict(data.get("packages", {})), seed_flags=data.get("seed_flags", ""),
        init_flags=tuple(data.get("init", {}).get("flags", ())),
        init_libs=tuple(data.get("init", {}).get("libs", ())), files=files,
        cpe=dict(data.get("cpe", {})),
    )


def _toolchain_data(name: str, chain: tuple[str, ...]
                    ) -> tuple[Document, dict[str, Any], tuple[Path, ...]]:
    """A toolchain file with the template it extends merged under it (mappings key by key)."""
    path = catalog.find("toolchains", name, "toolchain")
    doc = catalog.load_validated(path, "toolchain", "toolchain")
    catalog.check_name(doc, name)
    data: dict[str, Any] = dict(doc.data)
    base_name = data.pop("extends", None)
    if base_name is None:
        return doc, data, (path,)
    if base_name in chain or base_name == name or len(chain) >= MAX_EXTENDS:
        raise UserError(f"{doc.where(('extends',))}: extends: toolchain {base_name} extends "
                        f"itself ({' -> '.join((*chain, name, base_name))})",
                        "remove one of the extends entries")
    _, base, base_files = _toolchain_data(base_name, (*chain, name))
    if not base.get("template"):
        raise UserError(f"{doc.where(('extends',))}: extends: {base_name} is not a template "
                        "toolchain", f"extend a file with template: true, or copy {base_name}")
    merged = {k: v for k, v in base.items() if k != "template"}
    for key, value in data.items():
        old = merged.get(key)
        merged[key] = {**old, **value} if isinstance(old, dict) and isinstance(value,
                                                                              dict) else value
    return doc, merged, (path, *base_files)


def _filled(doc: Document, data: dict[str, Any]) -> dict[str, Any]:
    """Every {name} placeholder replaced by the toolchain's vars; one left over is an error."""
    values: dict[str, str] = data.get("vars", {})

    def fill(where: tuple[str, ...], text: str) -> str:
        def one(m: re.Match[str]) -> str:
            if m.group(1) in values:
                return values[m.group(1)]
            if m.group(1) in LATE_PLACEHOLDERS:
                return m.group(0)
            raise UserError(f"{doc.where(where)}: {'.'.join(where)}: {{{m.group(1)}}} has no "
                            "value", f"set vars: {{{m.group(1)}: ...}} in {doc.where()}")
        return _PLACEHOLDER.sub(one, text)

    out = dict(data)
    for section in ("tools", "make_vars", "kconfig_env", "packages"):
        out[section] = {fill((section, k), k): fill((section, k), v)
                        for k, v in data.get(section, {}).items()}
    if "init" in data:
        out["init"] = {k: [fill(("init", k), w) for w in words]
                       for k, words in data["init"].items()}
    if "description" in data:
        out["description"] = fill(("description",), data["description"])
    return out


def _first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30,
                             env={"LC_ALL": "C", "PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    except OSError as e:
        raise InfraError(f"cannot run {argv[0]}: {e}") from None
    return (out.stdout.splitlines() or [""])[0].strip()


@cache
def detect(tc: Toolchain, arch_name: str) -> ToolchainIdentity:
    """Check every tool is installed and new enough; name the package when one is missing.
    (That the toolchain targets the arch is checked with the plan.)"""
    for var, tool in tc.tools.items():
        if shutil.which(tool) is None:
            package = tc.packages.get(tool)
            install = (f"apt-get install {package}" if package else
                       f"install it, or fix tools.{var} in toolchains/{tc.name}.yaml")
            raise InfraError(
                f"toolchain {tc.name}: {var}={tool} not found on PATH", f"{install}, then rerun")
    cc_text = _first_line([tc.tools["CC"], "--version"]).replace("#", "")
    m = re.search(r"(\d+\.\d+(?:\.\d+)?)", cc_text)
    version = m.group(1) if m else "0"
    if parse_version(version) < parse_version(tc.min_version):
        raise InfraError(
            f"toolchain {tc.name}: {tc.tools['CC']} is {version}, older than {tc.min_version}",
            "install a newer compiler")
    ld_text = _first_line([tc.tools["LD"], "--version"])
    return ToolchainIdentity(tc.name, tc.family, cc_text, version, ld_text)


def kconfig_environment(tc: Toolchain, ident: ToolchainIdentity, arch: Arch, srctree: str,
                        kernelversion: str) -> dict[str, str]:
    """The environment the kernel's top Makefile exports to Kconfig, for this toolchain.

    Checked against Kbuild on every configure: a difference between kconfiglib's prediction and
    Kbuild's .config is reported, so a wrong variable here cannot pass silently.
    """
    from .kbuild import environment, interface
    from .kconfig.probes import run_probe

    env = environment()
    env.update({
        "srctree": srctree,
        "ARCH": arch.name,
        "SRCARCH": arch.srcarch,
        "KERNELVERSION": kernelversion,
        "CC_VERSION_TEXT": ident.cc_version_text,
        "CROSS_COMPILE": "",
        "RUSTC": "rustc",
        "BINDGEN": "bindgen",
        "PAHOLE": "pahole",
        "CLANG_FLAGS": "",
    })
    # make exports its command-line variables to the recipes, so Kbuild's conf sees them too.
    env.update(make_variables(tc, arch))
    env.update(tc.tools)
    env.update({k: tc.expand(v, arch) for k, v in tc.kconfig_env.items()})
    for name, command in interface().exports:
        env[name] = run_probe(command, env, srctree)
    return env


def make_variables(tc: Toolchain, arch: Arch) -> dict[str, str]:
    """ARCH plus the toolchain's own make variables (CROSS_COMPILE, LLVM, ...)."""
    out = {"ARCH": arch.name}
    out.update({k: tc.expand(v, arch) for k, v in tc.make_vars.items()})
    return out
