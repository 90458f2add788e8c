"""Renderers for verification reports: text table, JSON, JUnit XML. No logic beyond layout."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from .fsutil import atomic_write
from .verify import NOT_APPLICABLE, UNMET, WAIVED, Report


def text(report: Report, *, verbose: bool = False) -> str:
    c = report.counts()
    lines = [
        f"profile {report.profile}: kernel {report.kernel} {report.arch}, "
        f"toolchain {report.toolchain}",
        f"config: {report.config}",
        f"{c['ok']} ok, {c[UNMET]} unmet ({len(report.failed)} required), {c[WAIVED]} waived, "
        f"{c[NOT_APPLICABLE]} not applicable",
        "",
    ]
    width = max((len(ch.symbol) for ch in report.checks), default=10)
    lines.append(f"{'STATUS':7} {'SYMBOL':{width}}  {'REQUESTED':12} {'FINAL':12} NOTE")
    for ch in report.checks:
        if ch.status == "ok" and not verbose:
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
    if not verbose and c["ok"]:
        lines.append(f"({c['ok']} met requirements not shown; --verbose lists them)")
    return "\n".join(lines) + "\n"


def junit(report: Report) -> str:
    suite = ET.Element("testsuite", name=f"kbuild-py.{report.profile}",
                       tests=str(len(report.checks)),
                       failures=str(len(report.failed)),
                       skipped=str(sum(1 for c in report.checks if c.status != "ok"
                                       and not c.fails)))
    for ch in report.checks:
        case = ET.SubElement(suite, "testcase", classname=f"{report.profile}.config",
                             name=ch.symbol)
        if ch.fails:
            f = ET.SubElement(case, "failure", message=f"requested {ch.requirement.wanted()}, "
                              f"got {ch.final or 'not set'}")
            f.text = ch.explanation.summary if ch.explanation else ch.note
        elif ch.status != "ok":
            ET.SubElement(case, "skipped", message=f"{ch.status}: {ch.note}")
    suites = ET.Element("testsuites")
    suites.append(suite)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def write_all(report: Report, folder: Path, stem: str = "report") -> None:
    atomic_write(folder / f"{stem}.json", json.dumps(report.to_dict(), indent=2) + "\n")
    atomic_write(folder / f"{stem}.txt", text(report, verbose=True))
    atomic_write(folder / f"{stem}.xml", junit(report))
