"""Load, validate and merge profiles and their layers into one typed Profile.

Pure: reads YAML files, returns data. Every requirement keeps where it came from (file:line),
and every deviation from an extended layer is recorded as a waiver with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import catalog
from .errors import UserError
from .yamlio import Document

Version = tuple[int, ...]


def parse_version(text: str) -> Version:
    return tuple(int(p) for p in text.split("."))


@dataclass(frozen=True)
class VersionRange:
    min: str | None = None
    max: str | None = None

    def contains(self, version: Version) -> bool:
        """max is inclusive at its own precision: max 6.12 covers 6.12.117."""
        if self.min and version < parse_version(self.min):
            return False
        if self.max:
            top = parse_version(self.max)
            if version[: len(top)] > top:
                return False
        return True

    def __str__(self) -> str:
        return f"{self.min or 'any'}..{self.max or 'any'}"


@dataclass(frozen=True)
class Origin:
    file: str
    line: int | None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True)
class Condition:
    arch: tuple[str, ...] = ()
    kernel: VersionRange | None = None
    toolchain: tuple[str, ...] = ()

    def why_not(self, arch: str, kernel: Version, toolchain: tuple[str, str]) -> str | None:
        """None when the condition holds, else the reason it does not."""
        if self.arch and arch not in self.arch:
            return f"only for arch {', '.join(self.arch)}"
        if self.kernel and not self.kernel.contains(kernel):
            return f"only for kernel {self.kernel}"
        if self.toolchain and not set(toolchain) & set(self.toolchain):
            return f"only with toolchain {', '.join(self.toolchain)}"
        return None


@dataclass(frozen=True)
class Rename:
    name: str
    before: str


@dataclass(frozen=True)
class Requirement:
    """One Kconfig requirement. Exactly one of value / min-max / one_of says what is accepted."""

    symbol: str
    why: str
    origin: Origin
    value: str | None = None
    min: int | None = None
    max: int | None = None
    one_of: tuple[str, ...] = ()
    ref: str | None = None
    severity: str = "required"
    when: Condition | None = None
    renamed_from: tuple[Rename, ...] = ()
    cost: dict[str, str] | None = None

    def symbol_for(self, kernel: Version) -> str:
        """The symbol's name in a given kernel version (renames are first-class)."""
        for rename in sorted(self.renamed_from, key=lambda r: parse_version(r.before)):
            if kernel < parse_version(rename.before):
                return rename.name
        return self.symbol

    def rename_note(self, used: str) -> str:
        """Where a name used for an older kernel comes from: 'called X in this kernel (Y since
        6.15)'; empty for the current name."""
        for rename in self.renamed_from:
            if rename.name == used:
                return f"called {used} in this kernel ({self.symbol} since {rename.before})"
        return "" if used == self.symbol else f"called {used} in this kernel"

    def wanted(self) -> str:
        """What is accepted, for humans: 'y', 'is not set', '>= 32', 'one of 1, 2'."""
        if self.value is not None:
            return "is not set" if self.value == "n" else self.value
        if self.one_of:
            return "one of " + ", ".join(self.one_of)
        parts = []
        if self.min is not None:
            parts.append(f">= {self.min}")
        if self.max is not None:
            parts.append(f"<= {self.max}")
        return " and ".join(parts)

    def fragment_value(self) -> str | None:
        """The value the fragment asks Kconfig for."""
        if self.value is not None:
            return self.value
        if self.one_of:
            return self.one_of[0]
        if self.min is not None:
            return str(self.min)
        if self.max is not None:
            return str(self.max)
        return None

    def same_as(self, other: Requirement) -> bool:
        return (self.value, self.min, self.max, self.one_of) == (
            other.value, other.min, other.max, other.one_of)


@dataclass(frozen=True)
class Waiver:
    """A requirement of an extended layer that this profile deliberately does not keep."""

    symbol: str
    reason: str
    origin: Origin
    replaced: Requirement | Param
    replacement: Requirement | Param | None = None
    kind: str = "options"  # options | cmdline | sysctl


@dataclass(frozen=True)
class Param:
    """A kernel command-line parameter or a sysctl."""

    name: str
    why: str
    origin: Origin
    value: str | None = None
    ref: str | None = None
    when: Condition | None = None

    def wanted(self) -> str:
        return "(flag)" if self.value is None else self.value

    def render_cmdline(self) -> str:
        return self.name if self.value is None else f"{self.name}={self.value}"


@dataclass(frozen=True)
class SourcePin:
    kind: str  # "tarball", "url" or "tree"
    location: str
    sha256: str | None = None


@dataclass
class Profile:
    name: str
    path: Path
    arch: str
    base: str
    toolchain: str
    kernel: VersionRange
    source: SourcePin
    description: str = ""
    patches: tuple[str, ...] = ()
    dtbs: tuple[str, ...] = ()  # device trees to build, relative to the arch's dts folder
    requirements: dict[str, Requirement] = field(default_factory=dict)
    waivers: list[Waiver] = field(default_factory=list)
    cmdline: dict[str, Param] = field(default_factory=dict)
    sysctl: dict[str, Param] = field(default_factory=dict)
    files: tuple[Path, ...] = ()


DEFAULT_SOURCE = SourcePin("tarball", "/usr/src/linux-source-6.12.tar.xz")


def _text(v: Any) -> str:
    return str(v)


def _condition(raw: dict[str, Any] | None) -> Condition | None:
    if not raw:
        return None
    k = raw.get("kernel")
    return Condition(
        arch=tuple(raw.get("arch", ())),
        kernel=VersionRange(k.get("min"), k.get("max")) if k else None,
        toolchain=tuple(raw.get("toolchain", ())),
    )


def _requirement(symbol: str, raw: dict[str, Any], origin: Origin) -> Requirement:
    value = raw.get("value")
    return Requirement(
        symbol=symbol,
        why=raw["why"].strip(),
        origin=origin,
        value=None if value is None else _text(value),
        min=raw.get("min"),
        max=raw.get("max"),
        one_of=tuple(_text(v) for v in raw.get("one_of", ())),
        ref=raw.get("ref"),
        severity=raw.get("severity", "required"),
        when=_condition(raw.get("when")),
        renamed_from=tuple(Rename(r["name"], r["before"]) for r in raw.get("renamed_from", ())),
        cost=raw.get("cost"),
    )


def _param(name: str, raw: dict[str, Any], origin: Origin) -> Param:
    value = raw.get("value")
    return Param(name=name, why=raw["why"].strip(), origin=origin,
                 value=None if value is None else _text(value), ref=raw.get("ref"),
                 when=_condition(raw.get("when")))


def _find_extended(name: str, including: Path) -> Path:
    if name.endswith((".yaml", ".yml")):
        path = (including.parent / name) if not Path(name).is_absolute() else Path(name)
        if not path.is_file():
            raise UserError(f"{catalog.display(including)}: extends {name}: no such file",
                            "check the path (relative to the including file)")
        return path
    for candidate in (catalog.folder("profiles") / "layers" / f"{name}.yaml",
                      catalog.folder("profiles") / f"{name}.yaml"):
        if candidate.is_file():
            return candidate
    known = catalog.names("profiles") + [
        p.stem for p in (catalog.folder("profiles") / "layers").glob("*.yaml")]
    raise UserError(
        f"{catalog.display(including)}: extends unknown layer '{name}'"
        f"{catalog.suggest(name, known)}",
        "layers live in profiles/layers/, profiles in profiles/",
    )


MAX_EXTENDS_DEPTH = 32
MAX_FILES = 256
MAX_TOTAL_BYTES = 1 << 20  # all the files of one profile together


def _collect(path: Path, stack: list[Path], seen: dict[Path, Document], order: list[Path]) -> None:
    """Depth-first: a file's extends come before it; each file is merged once."""
    real = path.resolve()
    if real in stack:
        chain = " -> ".join(catalog.display(p) for p in stack[stack.index(real):] + [real])
        raise UserError(f"extends cycle: {chain}", "remove one of the extends entries")
    if real in seen:
        return
    if len(stack) >= MAX_EXTENDS_DEPTH:
        raise UserError(f"{catalog.display(stack[0])}: extends chain deeper than "
                        f"{MAX_EXTENDS_DEPTH} files (at {catalog.display(real)})",
                        "flatten the layers")
    if len(seen) >= MAX_FILES:
        raise UserError(f"{catalog.display(stack[0])}: extends over {MAX_FILES} files",
                        "merge some layers")
    try:
        total = sum(p.stat().st_size for p in {*seen, *stack, real})
    except OSError:
        total = 0  # the read below names the file
    if (seen or stack) and total > MAX_TOTAL_BYTES:  # one file alone: its own limit says so
        raise UserError(f"{catalog.display(stack[0] if stack else real)}: its layers hold over "
                        f"{MAX_TOTAL_BYTES >> 20} MiB of YAML (at {catalog.display(real)})",
                        "a profile and its layers are a few hundred KiB; check the extends")
    doc = catalog.load_validated(real, "profile", "profile")
    if real.parent in (catalog.folder("profiles").resolve(),
                       catalog.folder("profiles").resolve() / "layers"):
        catalog.check_name(doc, real.stem)
    stack.append(real)
    for i, name in enumerate(doc.data.get("extends", [])):
        try:
            target = _find_extended(name, real)
        except UserError as e:
            raise UserError(f"{doc.where(('extends', i))}: {e.message.split(': ', 1)[-1]}",
                            e.hint) from None
        _collect(target, stack, seen, order)
    stack.pop()
    seen[real] = doc
    order.append(real)


def _merge_entries(kind: str, doc: Document, entries: dict[str, dict[str, Any]],
                   current: dict[str, Any], waivers: list[Waiver], make: Any) -> None:
    for written, raw in entries.items():
        origin = Origin(str(doc.path), doc.line_of((kind, written)))
        # The kernel reads - and _ in a parameter's name as the same (kernel/params.c:
        # parameq): init-on-alloc and init_on_alloc are one parameter, merged as one.
        name = written.replace("-", "_") if kind == "cmdline" else written
        earlier = current.get(name)
        if "waive" in raw:
            if earlier is None:
                raise UserError(
                    f"{origin}: {kind}.{written}: waive given, but no extended layer requires "
                    f"{written}",
                    "remove the entry, or extend the layer that sets it")
            waivers.append(Waiver(name, raw["waive"].strip(), origin, earlier, kind=kind))
            del current[name]
            continue
        new = make(written, raw, origin)
        if earlier is None:
            if "override" in raw:
                raise UserError(
                    f"{origin}: {kind}.{written}: override given, but no extended layer sets "
                    f"{written}",
                    "drop 'override' (nothing to override)")
            current[name] = new
            continue
        if isinstance(earlier, Requirement):
            same, shown = earlier.same_as(new), earlier.wanted()
        else:
            same, shown = earlier.value == new.value, str(earlier.value)
        if same:
            continue  # restated: keep the first provenance
        if "override" not in raw:
            raise UserError(
                f"{origin}: {kind}.{written}: conflicts with {earlier.origin} ({shown} there)",
                "add 'override: <reason>' to change it deliberately")
        waivers.append(Waiver(name, raw["override"].strip(), origin, earlier, new, kind=kind))
        current[name] = new


def load_profile(name_or_path: str) -> Profile:
    """Load a profile by name (profiles/<name>.yaml) or path, with every layer merged."""
    path = catalog.find("profiles", name_or_path, "profile")
    seen: dict[Path, Document] = {}
    order: list[Path] = []
    _collect(path, [], seen, order)

    requirements: dict[str, Requirement] = {}
    cmdline: dict[str, Param] = {}
    sysctl: dict[str, Param] = {}
    waivers: list[Waiver] = []
    settings: dict[str, tuple[Any, Document, Path]] = {}
    for file in order:
        doc = seen[file]
        data = doc.data
        for key in ("arch", "base", "toolchain", "kernel", "source", "patches", "dtbs",
                    "description"):
            if key in data:
                settings[key] = (data[key], doc, file)
        _merge_entries("options", doc, data.get("options", {}), requirements, waivers,
                       _requirement)
        _merge_entries("cmdline", doc, data.get("cmdline", {}), cmdline, waivers, _param)
        _merge_entries("sysctl", doc, data.get("sysctl", {}), sysctl, waivers, _param)

    top = seen[path.resolve()]
    if top.data.get("kind", "profile") != "profile":
        raise UserError(f"{top.where()}: {top.data['name']} is a layer, not a profile",
                        "name a profile from profiles/, or extend this layer from one")
    for key in ("arch", "base", "toolchain"):
        if key not in settings:
            raise UserError(f"{top.where()}: profile {top.data['name']} sets no '{key}'",
                            f"add '{key}:' to the profile or a profile it extends")
    arch = settings["arch"][0]
    if arch not in catalog.names("arches"):
        raise UserError(
            f"{settings['arch'][1].where(('arch',))}: arch: unknown arch '{arch}'"
            f"{catalog.suggest(arch, catalog.names('arches'))}",
            f"known: {', '.join(catalog.names('arches'))} (files in arches/)")
    kernel: dict[str, str] = settings["kernel"][0] if "kernel" in settings else {}
    src = settings.get("source", (None, None, None))[0]
    if src is None:
        source = DEFAULT_SOURCE
    else:
        kind = next(k for k in ("tarball", "url", "tree") if k in src)
        location = src[kind]
        if kind != "url" and not Path(location).is_absolute():
            location = str(settings["source"][2].parent / location)
        source = SourcePin(kind, location, src.get("sha256"))
    return Profile(
        name=top.data["name"],
        path=path,
        arch=arch,
        base=settings["base"][0],
        toolchain=settings["toolchain"][0],
        kernel=VersionRange(kernel.get("min"), kernel.get("max")),
        source=source,
        description=settings.get("description", ("", None, None))[0],
        patches=tuple(settings.get("patches", ([], None, None))[0]),
        dtbs=tuple(settings.get("dtbs", ([], None, None))[0]),
        requirements=requirements,
        waivers=waivers,
        cmdline=cmdline,
        sysctl=sysctl,
        files=tuple(order),
    )
