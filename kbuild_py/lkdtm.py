"""LKDTM expectations (lkdtm/tests.yaml): what each test must print, which options it vouches
for and where it applies, validated by catalog's schema path (kbuild_py/schema/lkdtm.schema.json)
with every regex compiled and an arch's overrides applied. Data in, typed data out: no I/O but
reading the file."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import catalog
from .errors import UserError
from .profile import Rename, Version, VersionRange, parse_version
from .yamlio import Document


@dataclass(frozen=True)
class Precondition:
    pattern: re.Pattern[str]
    otherwise: str


@dataclass(frozen=True)
class LkdtmTest:
    """One LKDTM test as it applies to one arch (tests.yaml with per_arch merged in)."""

    name: str
    what: str
    vouches: tuple[tuple[str, ...], ...]  # all groups must hold; a group holds if any item does
    outcome: str
    protected: tuple[re.Pattern[str], ...]
    not_protected: tuple[re.Pattern[str], ...] = ()
    inconclusive: tuple[re.Pattern[str], ...] = ()
    not_applicable: tuple[re.Pattern[str], ...] = ()
    explained_by: tuple[re.Pattern[str], ...] = ()
    after: re.Pattern[str] | None = None
    repeat: int = 1
    attempts: int = 1  # boots in all while LKDTM itself cannot decide (its inconclusive lines)
    # Options with which LKDTM's test cannot decide by design, and why: still undecided after
    # its attempts, the test is n/a on a kernel that sets one (not inconclusive).
    undecidable_with: tuple[tuple[str, ...], str] | None = None
    cmdline: tuple[str, ...] = ()
    precondition: Precondition | None = None
    arches: tuple[str, ...] | None = None  # None: every arch
    why: str = ""
    note: str = ""
    kernel: VersionRange | None = None  # the kernels whose LKDTM has the test
    renamed_from: tuple[Rename, ...] = ()  # its older LKDTM names

    def applies_to(self, arch: str) -> bool:
        return self.arches is None or arch in self.arches

    def missing_in(self, version: Version | None) -> str | None:
        """Why this kernel's LKDTM has no such test, or None (unknown version: assume it has)."""
        if version is None or self.kernel is None or self.kernel.contains(version):
            return None
        return f"LKDTM has this test only in kernel {self.kernel}"

    def trigger(self, version: Version | None) -> str:
        """The test's name in this kernel's LKDTM."""
        for rename in sorted(self.renamed_from, key=lambda r: parse_version(r.before)):
            if version is not None and version < parse_version(rename.before):
                return rename.name
        return self.name

    def vouched_items(self) -> list[str]:
        return [item for group in self.vouches for item in group]


@dataclass(frozen=True)
class Expectations:
    path: Path
    kernel: str
    cmdline: tuple[str, ...]
    qemu_args: tuple[str, ...]
    tests: dict[str, LkdtmTest]


def expectations_path() -> Path:
    return catalog.data_root() / "lkdtm" / "tests.yaml"


def _regex(doc: Document, where: tuple[str | int, ...], text: Any) -> re.Pattern[str]:
    try:
        return re.compile(str(text), re.M)
    except re.error as e:
        raise UserError(f"{doc.where(where)}: bad regex {text!r}: {e}",
                        "patterns are Python regexes; escape ( ) . ? with a backslash") from None


def _test_from(doc: Document, name: str, raw: dict[str, Any], defaults: dict[str, Any],
               arch: str) -> LkdtmTest:
    """One test for one arch: defaults, then the test's fields, then its per_arch fields."""
    override: dict[str, Any] = raw.get("per_arch", {}).get(arch, {})
    fields: dict[str, Any] = {**defaults, **raw, **override}

    def where(key: str) -> tuple[str | int, ...]:
        if key in override:
            return ("tests", name, "per_arch", arch, key)
        return ("tests", name, key) if key in raw else ("defaults", key)

    def pats(key: str) -> tuple[re.Pattern[str], ...]:
        return tuple(_regex(doc, (*where(key), i), p) for i, p in enumerate(fields.get(key, [])))

    pre = fields.get("precondition")
    after = fields.get("after")
    arches = fields.get("arches")
    return LkdtmTest(
        name=name, what=fields["what"],
        vouches=tuple((v,) if isinstance(v, str) else tuple(v) for v in fields["vouches"]),
        outcome=fields.get("outcome", "killed"),
        protected=pats("protected"), not_protected=pats("not_protected"),
        inconclusive=pats("inconclusive"), not_applicable=pats("not_applicable"),
        explained_by=pats("explained_by"),
        after=_regex(doc, where("after"), after) if after else None,
        repeat=int(fields.get("repeat", 1)),
        attempts=int(fields.get("attempts", 1)),
        undecidable_with=(tuple(fields["undecidable_with"]["options"]),
                          fields["undecidable_with"]["why"])
        if "undecidable_with" in fields else None,
        cmdline=tuple(fields.get("cmdline", [])),
        precondition=Precondition(_regex(doc, (*where("precondition"), "pattern"),
                                         pre["pattern"]), pre["otherwise"]) if pre else None,
        arches=tuple(arches) if arches is not None else None,
        why=fields.get("why", ""), note=fields.get("note", ""),
        kernel=VersionRange(raw["kernel"].get("min"), raw["kernel"].get("max"))
        if "kernel" in raw else None,
        renamed_from=tuple(Rename(r["name"], r["before"]) for r in raw.get("renamed_from", ())))


def load_expectations(arch: str, path: Path | None = None) -> Expectations:
    """lkdtm/tests.yaml, validated, every regex compiled, with ``arch``'s overrides applied."""
    path = path or expectations_path()
    if not path.is_file():
        raise UserError(f"{path}: no such file", "the LKDTM expectations live in lkdtm/tests.yaml")
    doc = catalog.load_validated(path, "lkdtm", "LKDTM expectations")
    data: dict[str, Any] = doc.data
    defaults: dict[str, Any] = data.get("defaults", {})
    tests = {name: _test_from(doc, name, raw, defaults, arch)
             for name, raw in data["tests"].items()}
    boot = data["boot"]
    return Expectations(path, str(data["kernel"]), tuple(boot.get("cmdline", [])),
                        tuple(boot.get("qemu_args", [])), tests)

