"""Export a profile for another build system: the fragment for one kernel, the patches that
apply to it with their series, the command line, the sysctl.d file, and the recipes of the
format (export/formats.yaml, templates in export/templates/<format>/).

Everything lands in out/<p>/export/<format>/, replaced whole. The values put into recipes are
read by other tools (BitBake expands ``${...}``, kern-tools runs .scc files through a shell),
so each one is a plain word from a small alphabet or the export stops, naming it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from . import catalog, patches
from .configure import fragment_text, resolved_for
from .errors import UserError
from .fsutil import replaced_folder
from .plan import BuildPlan
from .resolve import cmdline, sysctl_conf
from .source import KernelTree
from .yamlio import read_text

# A value other tools read unquoted: no $, quotes, backslashes, braces, ;, spaces (but between
# command-line words).
_WORD = r"[A-Za-z0-9._+,:=/-]+"
_SAFE = re.compile(rf"({_WORD}( {_WORD})*)?")
_PLACEHOLDER = re.compile(r"\{\{([a-z]+)\}\}")
MAX_TEMPLATE = 64 << 10


@dataclass(frozen=True)
class FileSpec:
    path: str
    content: str = ""  # fragment | cmdline | sysctl | series | patch
    template: str = ""


def formats() -> dict[str, tuple[str, list[FileSpec]]]:
    """Each format's description and files, from export/formats.yaml."""
    doc = catalog.load_validated(catalog.folder("export") / "formats.yaml", "export",
                                 "export format list")
    return {name: (f["what"], [FileSpec(**spec) for spec in f["files"]])
            for name, f in doc.data["formats"].items()}


def _safe(value: str, what: str) -> str:
    if not _SAFE.fullmatch(value):
        raise UserError(f"export: {what} {value!r} is not plain words of letters, digits and "
                        "._+,:=/- (other build systems would expand or split it)",
                        "change it in the profile, or export with --format plain and apply "
                        "it by hand")
    return value


def _fill(text: str, values: dict[str, str], names: list[str], where: str) -> str:
    """{{name}} replaced by its value; a line holding {{patch}} repeated once per patch."""
    out: list[str] = []
    for line in text.splitlines(keepends=True):
        for key in _PLACEHOLDER.findall(line):
            if key != "patch" and key not in values:
                raise UserError(f"{where}: unknown placeholder {{{{{key}}}}}",
                                f"use one of: {', '.join(sorted([*values, 'patch']))}")
        rows = [{**values, "patch": n} for n in names] if "{{patch}}" in line else [values]
        for row in rows:
            out.append(_PLACEHOLDER.sub(lambda m: row[m.group(1)], line))  # noqa: B023
    return "".join(out)


def format_files(fmt: str) -> list[FileSpec]:
    """The files of a known format (export/formats.yaml), or a one-line error."""
    known = formats()
    if fmt not in known:
        raise UserError(f"export: unknown format '{fmt}'{catalog.suggest(fmt, set(known))}",
                        f"formats: {', '.join(sorted(known))} (export/formats.yaml)")
    return known[fmt][1]


def bundle(plan: BuildPlan, tree: KernelTree, fmt: str) -> dict[str, bytes]:
    """The files of one format for this plan and tree: relative path -> content."""
    specs = format_files(fmt)
    todo = patches.select(plan.profile.patches, tree.version)[0] if plan.profile.patches else []
    names = [_safe(p.name, f"patch file name in patches/{p.queue}") for p in todo]
    family = (plan.toolchain.family, plan.toolchain.name)
    line = cmdline(plan.profile, tree.version, family)
    values = {"profile": _safe(plan.profile.name, "profile name"),
              "arch": _safe(plan.arch.name, "arch"),
              "kernel": _safe(tree.version_text, "kernel version"),
              "base": _safe(plan.profile.base, "base configuration"),
              "cmdline": _safe(line.strip(), "kernel command line")}
    pieces = {"fragment": fragment_text(plan, tree, resolved_for(plan, tree)).encode(),
              "cmdline": line.encode(),
              "sysctl": sysctl_conf(plan.profile, tree.version, family).encode(),
              "series": "".join(f"{n}\n" for n in names).encode()}
    folder = catalog.folder("export") / "templates" / fmt
    files: dict[str, bytes] = {}
    for spec in specs:
        each = names if "{{patch}}" in spec.path else [""]
        for i, name in enumerate(each):
            path = _fill(spec.path, values, [name] if name else [], "export/formats.yaml")
            if path.startswith("/") or ".." in Path(path).parts or path in files:
                raise UserError(f"export/formats.yaml: {fmt}: {spec.path} names {path!r}, "
                                "outside the export folder or twice", "fix the path")
            if spec.content == "patch":
                files[path] = todo[i].path.read_bytes()
            elif spec.content:
                files[path] = pieces[spec.content]
            else:
                where = f"export/templates/{fmt}/{spec.template}"
                text = read_text(folder / spec.template, where, limit=MAX_TEMPLATE)
                files[path] = _fill(text, values, names, where).encode()
    return files


def export(plan: BuildPlan, tree: KernelTree, fmt: str) -> tuple[Path, list[str]]:
    """Write the format's files to out/<p>/export/<format>/, whole or not at all."""
    files = bundle(plan, tree, fmt)
    dest = plan.paths.export / fmt
    dest.parent.mkdir(parents=True, exist_ok=True)
    with replaced_folder(dest) as work:
        for rel, data in files.items():
            target = work / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            target.chmod(0o644)
    return dest, sorted(files)
