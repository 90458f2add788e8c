"""Renderers for verification reports: text table, JSON, JUnit XML. No logic beyond layout."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from .errors import printable
from .fsutil import atomic_write
from .verdict import INCONCLUSIVE, NOT_PROTECTED, PROTECTED, BootReport
from .verify import NOT_APPLICABLE, OK, UNMET, WAIVED, Report


def text(report: Report, *, verbose: bool = False) -> str:
    c = report.counts()
    lines = [
        f"profile {report.profile}: kernel {report.kernel} {report.arch}, "
        f"toolchain {report.toolchain}",
        f"config: {report.config}",
        *report.notes,
        f"{c['ok']} ok, {c[UNMET]} unmet ({len(report.failed)} required), {c[WAIVED]} waived, "
        f"{c[NOT_APPLICABLE]} not applicable",
        "",
    ]
    width = max((len(ch.symbol) for ch in report.checks), default=10)
    lines.append(f"{'STATUS':7} {'SYMBOL':{width}}  {'REQUESTED':12} {'FINAL':12} NOTE")
    for ch in report.checks:
        if ch.status == OK and not verbose:
            continue
        status = ch.status.upper() if ch.status == UNMET else ch.status
        if ch.status == UNMET and ch.requirement.severity != "required":
            status = "warn"
        lines.append(f"{status:7} {ch.symbol:{width}}  {ch.requirement.wanted():12} "
                     f"{(ch.final or 'not set'):12} {ch.note}")
        if ch.explanation:
            for b in ch.explanation.chain:
                lines.append(f"{'':7} {'':{width}}  {'  ' * b.depth}<- {b.detail}")
            lines.append(f"{'':7} {'':{width}}  fix: {ch.explanation.fix}")
        lines.append(f"{'':7} {'':{width}}  from {ch.requirement.origin}")
    if report.mismatches:
        lines.append("")
        lines.append(f"kconfiglib's prediction differs from Kbuild's conf on "
                     f"{len(report.mismatches)} symbol(s) (Kbuild's .config is used):")
        for m in report.mismatches[:20]:
            lines.append(f"  {m['symbol']}: kconfiglib {m['predicted']}, Kbuild {m['kbuild']}")
    changed = [w for w in report.waivers if w.replacement is not None or w.kind != "options"]
    if changed:  # option waivers are rows above; these change a layer's value or line
        lines += ["", f"changed from the layers ({len(changed)}):"]
        for w in changed:
            new = w.replacement.wanted() if w.replacement is not None else "dropped"
            kspp = " [KSPP]" if w.replaced.ref == "KSPP" else ""
            lines.append(f"  {w.kind} {w.symbol}: {w.replaced.wanted()} -> {new}{kspp} "
                         f"({w.origin}): {w.reason}")
    if not verbose and c["ok"]:
        lines.append(f"({c['ok']} met requirements not shown; --verbose lists them)")
    return "\n".join(printable(line) for line in lines) + "\n"


def junit(report: Report) -> str:
    suite = ET.Element("testsuite", name=f"kbuild-py.{report.profile}",
                       tests=str(len(report.checks)),
                       failures=str(len(report.failed)),
                       skipped=str(sum(1 for c in report.checks if c.status != OK
                                       and not c.fails)))
    for ch in report.checks:
        case = ET.SubElement(suite, "testcase", classname=f"{report.profile}.config",
                             name=ch.symbol)
        if ch.fails:
            f = ET.SubElement(case, "failure", message=f"requested {ch.requirement.wanted()}, "
                              f"got {ch.final or 'not set'}")
            f.text = ch.explanation.summary if ch.explanation else ch.note
        elif ch.status != OK:
            ET.SubElement(case, "skipped", message=f"{ch.status}: {ch.note}")
    return _xml(suite)


def _xml(suite: ET.Element) -> str:
    """The JUnit document; values from a .config or a console are made printable first (XML
    1.0 has no place for control characters)."""
    for element in suite.iter():
        element.attrib = {k: printable(v) for k, v in element.attrib.items()}
        if element.text:
            element.text = "\n".join(printable(line) for line in element.text.split("\n"))
    suites = ET.Element("testsuites")
    suites.append(suite)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def _write_set(files: dict[Path, str]) -> list[Path]:
    """Reports rendered in full before the first is written: a report set is never partial
    because one of them could not be rendered."""
    for path, content in files.items():
        atomic_write(path, content)
    return list(files)


def write_all(report: Report, folder: Path, stem: str = "report") -> None:
    _write_set({folder / f"{stem}.json": json.dumps(report.to_dict(), indent=2) + "\n",
                folder / f"{stem}.txt": text(report, verbose=True),
                folder / f"{stem}.xml": junit(report)})


# --------------------------------------------------------------------------- boot reports


def boot_text(report: BootReport) -> str:
    c = report.counts()
    booted = [v for v in report.verdicts if v.seconds > 0]
    lines = [
        f"boot tests of profile {report.profile}: kernel {report.kernel} {report.arch}",
        f"image: {report.image}",
        f"cmdline: {report.cmdline}",
        f"{c[PROTECTED]} protected, {c[NOT_PROTECTED]} NOT protected, {c[INCONCLUSIVE]} "
        f"inconclusive, {c[NOT_APPLICABLE]} n/a; {len(report.failed)} claimed protection(s) "
        f"not observed",
        f"{len(booted)} boots, {report.jobs} at a time, {report.seconds:.1f} s"
        + (f" (slowest {max(v.seconds for v in booted):.1f} s)" if booted else ""),
        *[f"note: {n}" for n in report.notes],
        "",
    ]
    width = max((len(v.test) for v in report.verdicts), default=10)
    lines.append(f"{'VERDICT':18} {'TEST':{width}} {'TIME':>5}  OPTIONS / REASON")
    for v in report.verdicts:
        mark = "FAIL " if v.fails else ""
        secs = f"{v.seconds:4.1f}s" if v.seconds else "    -"
        opts = ", ".join(o.text() for o in v.options) or "always on"
        lines.append(f"{mark + v.verdict:18} {v.test:{width}} {secs:>5}  {opts}")
        lines.append(f"{'':18} {'':{width}} {'':>5}  {v.reason}")
    if report.failed:
        lines.append("")
        lines.append("claimed by the profile but not observed:")
        for v in report.failed:
            lines.append(f"  {v.test}: {v.verdict}: {v.reason} (log: {v.log})")
    return "\n".join(printable(line) for line in lines) + "\n"


def boot_junit(report: BootReport) -> str:
    suite = ET.Element(
        "testsuite", name=f"kbuild-py.{report.profile}.boot", tests=str(len(report.verdicts)),
        failures=str(sum(1 for v in report.failed if v.verdict == NOT_PROTECTED)),
        errors=str(sum(1 for v in report.failed if v.verdict == INCONCLUSIVE)),
        skipped=str(sum(1 for v in report.verdicts if not v.fails and v.verdict != PROTECTED)),
        time=f"{report.seconds:.2f}")
    for v in report.verdicts:
        case = ET.SubElement(suite, "testcase", classname=f"{report.profile}.lkdtm",
                             name=v.test, time=f"{v.seconds:.2f}")
        opts = ", ".join(o.text() for o in v.options) or "always on"
        if v.fails and v.verdict == NOT_PROTECTED:
            f = ET.SubElement(case, "failure", message=f"NOT protected ({opts})")
            f.text = f"{v.reason}\nlog: {v.log}"
        elif v.fails:
            e = ET.SubElement(case, "error", message=f"inconclusive ({opts})")
            e.text = f"{v.reason}\nlog: {v.log}"
        elif v.verdict != PROTECTED:
            ET.SubElement(case, "skipped", message=f"{v.verdict}: {v.reason}")
        if v.verdict == PROTECTED:
            out = ET.SubElement(case, "system-out")
            out.text = f"{opts}: {v.evidence}"
    return _xml(suite)


def write_boot_reports(report: BootReport, folder: Path, stem: str = "boot-report"
                       ) -> list[Path]:
    """boot-report.{txt,json,xml} in ``folder``; returns their paths."""
    return _write_set({folder / f"{stem}.txt": boot_text(report),
                       folder / f"{stem}.json": json.dumps(report.to_dict(), indent=2) + "\n",
                       folder / f"{stem}.xml": boot_junit(report)})
