"""Export a profile for another build system: the fragment for one kernel, the patches that
apply to it with their series, the command line, the sysctl.d file, and the recipes of the
format (export/formats.yaml, templates in export/templates/<format>/).

Everything lands in out/<p>/export/<format>/, replaced whole. The values a format's templates
put into recipes are read by other tools (BitBake expands ``${...}``, kern-tools runs .scc
files through a shell), so each one is a plain word from a small alphabet or the export stops,
naming where the value comes from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from . import catalog, patches
from .configure import resolved_for
from .errors import UserError
from .fsutil import replaced_folder
from .plan import BuildPlan
from .profile import Param
from .resolve import cmdline, fragment, runtime_params, sysctl_conf
from .source import KernelTree
from .yamlio import Document, read_text

# A value other tools read unquoted: a word of letters, digits and ._+,:=/- not starting with
# a dash (it would read as an option), no $, quotes, backslashes, braces, ; or spaces.
_WORD = re.compile(r"[A-Za-z0-9._+,:=/][A-Za-z0-9._+,:=/-]*")
_PLACEHOLDER = re.compile(r"\{\{([a-z]+)\}\}")
# The values a template or path may name; {{patch}} repeats its line once per patch.
PLACEHOLDERS = ("profile", "package", "arch", "kernel", "series", "base", "cmdline", "patch")
IN_PATHS = ("profile", "package", "arch", "kernel", "series", "patch")
MAX_TEMPLATE = 64 << 10


@dataclass(frozen=True)
class FileSpec:
    path: str
    content: str = ""  # fragment | cmdline | sysctl | series | patch
    template: str = ""


def _check_files(doc: Document, fmt: str, specs: list[FileSpec]) -> None:
    """What the schema cannot say: each path names known placeholders, one file per patch
    exactly where {{patch}} is, and no path twice or inside another file."""
    seen: dict[PurePosixPath, int] = {}
    for i, spec in enumerate(specs):
        where = f"{doc.where(('formats', fmt, 'files', i, 'path'))}: formats.{fmt}.files.{i}"
        unknown = [k for k in _PLACEHOLDER.findall(spec.path) if k not in IN_PATHS]
        if unknown or "{" in _PLACEHOLDER.sub("", spec.path):
            raise UserError(f"{where}: path {spec.path!r} names a placeholder a path cannot "
                            "hold", f"use {{{{name}}}} with name one of: {', '.join(IN_PATHS)}")
        if ("{{patch}}" in spec.path) != (spec.content == "patch"):
            raise UserError(f"{where}: {{{{patch}}}} belongs in the path of content: patch, "
                            "and only there (one file per patch)", "fix the entry")
        path = PurePosixPath(spec.path)
        if path in seen or any(p in seen for p in path.parents) or any(
                path in q.parents for q in seen):
            raise UserError(f"{where}: {spec.path} is the path of entry {seen.get(path, '?')}, "
                            "or a file is in its way", "give each file its own path")
        seen[path] = i


def formats() -> dict[str, tuple[str, list[FileSpec]]]:
    """Each format's description and files, from export/formats.yaml."""
    doc = catalog.load_validated(catalog.folder("export") / "formats.yaml", "export",
                                 "export format list")
    out = {}
    for name, f in doc.data["formats"].items():
        specs = [FileSpec(**spec) for spec in f["files"]]
        _check_files(doc, name, specs)
        out[name] = (f["what"], specs)
    return out


def format_files(fmt: str) -> list[FileSpec]:
    """The files of a known format (export/formats.yaml), or a one-line error."""
    known = formats()
    if fmt not in known:
        raise UserError(f"export: unknown format '{fmt}'{catalog.suggest(fmt, set(known))}",
                        f"formats: {', '.join(sorted(known))} (export/formats.yaml)")
    return known[fmt][1]


def _word(value: str, what: str, hint: str) -> str:
    if not _WORD.fullmatch(value):
        raise UserError(f"export: {what}: {value!r} is not one word of letters, digits and "
                        "._+,:=/- (another build system would expand or split it)", hint)
    return value


def _fill(text: str, values: dict[str, str], names: list[str], where: str) -> str:
    """{{name}} replaced by its value; a line holding {{patch}} repeated once per patch."""
    out: list[str] = []
    for line in text.splitlines(keepends=True):
        for key in _PLACEHOLDER.findall(line):
            if key != "patch" and key not in values:
                raise UserError(f"{where}: unknown placeholder {{{{{key}}}}}",
                                f"use one of: {', '.join(PLACEHOLDERS)}")
        if "{{" in _PLACEHOLDER.sub("", line):
            raise UserError(f"{where}: {line.strip()!r} holds a placeholder not written "
                            "{{name}}", f"write it as {{{{name}}}}, name one of: "
                            f"{', '.join(PLACEHOLDERS)}")
        rows = [{**values, "patch": n} for n in names] if "{{patch}}" in line else [values]
        for row in rows:
            out.append(_PLACEHOLDER.sub(lambda m: row[m.group(1)], line))  # noqa: B023
    return "".join(out)


def _cmdline_words(params: list[Param], fmt: str) -> str:
    """The command line as plain words, each checked where the profile sets it."""
    return " ".join(_word(p.render_cmdline(), f"cmdline.{p.name} ({p.origin})",
                          f"the {fmt} recipes carry the command line unquoted: change the "
                          "value, or export another format and set it by hand")
                    for p in params)


def _patch_names(todo: list[patches.Patch]) -> list[str]:
    owner: dict[str, str] = {}
    for p in todo:
        if p.name in owner:
            raise UserError(f"export: patch {p.name} is in both queues {owner[p.name]} and "
                            f"{p.queue}", "rename one of them (and its line in the series)")
        owner[p.name] = p.queue
        _word(p.name, f"patches/{p.queue}/series: {p.name}",
              f"rename the patch in patches/{p.queue}/ and its line in the series")
    return list(owner)


def bundle(plan: BuildPlan, tree: KernelTree, fmt: str) -> dict[str, bytes]:
    """The files of one format for this plan and tree: relative path -> content."""
    specs = format_files(fmt)
    folder = catalog.folder("export") / "templates" / fmt
    templates = {s.template: read_text(folder / s.template, f"export/templates/{fmt}/"
                                       f"{s.template}", limit=MAX_TEMPLATE)
                 for s in specs if s.template}
    used = set(_PLACEHOLDER.findall(" ".join([*templates.values(), *(s.path for s in specs)])))
    todo = patches.select(plan.profile.patches, tree.version)[0] if plan.profile.patches else []
    names = _patch_names(todo)
    family = (plan.toolchain.family, plan.toolchain.name)
    line = runtime_params(plan.profile, tree.version, family)[0]
    values = {"profile": _word(plan.profile.name, f"name ({plan.profile.path})",
                               "give the profile a name of one plain word"),
              "package": plan.profile.name.lower().replace("_", "-"),
              "arch": _word(plan.arch.name, "arch", "fix the arch file"),
              "kernel": _word(tree.version_text, f"kernel version ({tree.path}/Makefile)",
                              "export from a tree whose version is plain"),
              "series": ".".join(map(str, tree.version[:2])),
              "base": _word(plan.profile.base, f"base ({plan.profile.path})", "fix the base"),
              "cmdline": _cmdline_words(line, fmt) if "cmdline" in used else ""}
    added = patches.introduced(todo)
    resolved = resolved_for(plan, tree, added=added)
    pieces = {"fragment": fragment(plan.profile, resolved, tree.version_text, added).encode(),
              "cmdline": cmdline(plan.profile, tree.version, family).encode(),
              "sysctl": sysctl_conf(plan.profile, tree.version, family).encode(),
              "series": "".join(f"{n}\n" for n in names).encode()}
    files: dict[str, bytes] = {}
    for spec in specs:
        for i, name in enumerate(names if spec.content == "patch" else [""]):
            path = _fill(spec.path, values, [name] if name else [], "export/formats.yaml")
            if spec.content == "patch":
                files[path] = todo[i].path.read_bytes()
            elif spec.content:
                files[path] = pieces[spec.content]
            else:
                where = f"export/templates/{fmt}/{spec.template}"
                files[path] = _fill(templates[spec.template], values, names, where).encode()
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
