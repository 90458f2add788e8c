"""The profile x kernel matrix: every profile configured and verified against every kernel, one
table. SCons runs the pairs (`scons matrix`, in parallel with -j); this module names the
kernels, runs one pair so that its failure becomes a cell rather than the end of the run, and
renders the table from the pairs' reports.

Each kernel has its own output folder, out/matrix/<kernel>/: its tree is extracted once there
and shared by every profile, as any out/ folder shares src/ between its profiles.
"""

from __future__ import annotations

import glob
import json
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import Busy, Interrupted, KbuildError, RequirementsUnmet
from .fsutil import atomic_write
from .plan import BuildPlan
from .profile import SourcePin
from .ui import block

COLUMNS = ("ok", "unmet", "waived", "n/a")


def installed_kernels() -> list[str]:
    """Kernel tarballs the machine's packages installed (kbuild/interface.yaml names where)."""
    from .kbuild import interface

    return sorted(glob.glob(interface().installed_sources), key=version_key)


def version_key(path: str) -> tuple[int, ...]:
    """The version a source's file name says (linux-source-6.12.tar.xz: 6, 12)."""
    return tuple(int(n) for n in re.findall(r"\d+", Path(path).name)) or (0,)


def kernel_label(pin: SourcePin) -> str:
    """A folder name for a kernel source: its file or folder name without archive suffixes."""
    name = Path(pin.location.split("#", 1)[0].rstrip("/")).name
    name = re.sub(r"\.tar(\.[a-z0-9]+)?$|\.t[gx]z$", "", name)
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "kernel"


def error_file(plan: BuildPlan) -> Path:
    return plan.paths.profile / "matrix-error.txt"


def run_pair(plan: BuildPlan, known_error: str = "") -> None:
    """Tree, configure and verify one pair, report-only. A failure is written as the pair's
    cell (one line) instead of ending the run; being busy or interrupted still ends it. The
    error file is always written (empty when the pair ran), so SCons sees its targets made.
    ``known_error``: the pair could not even be planned (a missing tarball or compiler)."""
    from .errors import from_os_error
    from .pipeline import locked, step_config
    from .tree import step_tree

    err = error_file(plan)
    err.parent.mkdir(parents=True, exist_ok=True)
    message = known_error
    if not message:
        try:
            with locked(plan):
                step_tree(plan)
                step_config(plan, strict=False, show=False)
        except (Busy, Interrupted, KeyboardInterrupt):
            raise
        except KbuildError as e:
            message = f"{e.kind}: {e.one_line()}"
        except OSError as e:
            failure = from_os_error(e, f"configuring {plan.profile.name}")
            message = f"{failure.kind}: {failure.one_line()}"
        except Exception as e:  # a bug in one pair is that pair's cell, not the end of the run
            message = f"failure: internal error: {type(e).__name__}: {e}"
    atomic_write(err, message + "\n" if message else "")


def planned(plan: BuildPlan) -> tuple[str, str]:
    """What a pair's SCons signature covers, or the one-line error that stops it: (signature,
    error)."""
    from .pipeline import inputs_digest
    from .tree import tree_identity

    try:
        return f"{tree_identity(plan)}|{inputs_digest(plan)}", ""
    except KbuildError as e:
        return "", f"{e.kind}: {e.one_line()}"


@dataclass(frozen=True)
class Cell:
    profile: str
    kernel: str
    version: str = ""
    counts: tuple[int, ...] = ()
    mismatches: int = 0
    error: str = ""

    @property
    def good(self) -> bool:
        return not self.error and self.counts[1] == 0 and self.mismatches == 0

    def text(self) -> str:
        if self.error:
            return self.error
        ok, unmet, waived, na = self.counts
        return (f"ok {ok} | unmet {unmet} | waived {waived} | n/a {na} | "
                f"kconfiglib != Kbuild {self.mismatches}")


def read_cell(plan: BuildPlan, kernel: str) -> Cell:
    err = error_file(plan)
    message = err.read_text().strip() if err.is_file() else ""
    if message:
        return Cell(plan.profile.name, kernel, error=message)
    try:
        report = json.loads((plan.paths.report).read_text())
        counts = tuple(int(report["counts"].get(c, 0)) for c in COLUMNS)
        return Cell(plan.profile.name, kernel, str(report.get("kernel", "")), counts,
                    len(report.get("prediction_mismatches", [])))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return Cell(plan.profile.name, kernel, error="no report (the pair did not run)")


def render(cells: list[Cell]) -> str:
    """One block per kernel, one line per profile: a table a terminal and a CI log both keep."""
    lines = []
    kernels = list(dict.fromkeys(c.kernel for c in cells))
    width = max(len(c.profile) for c in cells)
    for kernel in kernels:
        row = [c for c in cells if c.kernel == kernel]
        version = next((c.version for c in row if c.version), "")
        lines.append(f"{kernel}" + (f" ({version})" if version else ""))
        lines += [f"  {c.profile:<{width}}  {c.text()}" for c in row]
    good = sum(c.good for c in cells)
    lines.append(f"{good} of {len(cells)} profile x kernel pairs: 0 unmet, kconfiglib == Kbuild")
    return "\n".join(lines) + "\n"


def write(out: Path, cells: list[Cell]) -> str:
    """matrix.txt and matrix.json in ``out``; the table. Raises (exit 1) when a pair is not
    clean, after writing."""
    table = render(cells)
    atomic_write(out / "matrix.txt", table)
    atomic_write(out / "matrix.json", json.dumps(
        [{"profile": c.profile, "kernel": c.kernel, "version": c.version,
          "counts": dict(zip(COLUMNS, c.counts, strict=False)),
          "kconfiglib_vs_kbuild": c.mismatches, "error": c.error} for c in cells], indent=2) + "\n")
    block(table)
    bad = [c for c in cells if not c.good]
    if bad:
        raise RequirementsUnmet(f"matrix: {len(bad)} of {len(cells)} pairs are not clean "
                                f"(first: {bad[0].profile} on {bad[0].kernel})",
                                f"see {out / 'matrix.txt'} and each pair's report.txt")
    return table
