"""A real target built completely, from its pinned source to dist/: wall time per step, peak
memory, and what was shipped. One run (14 to 75 minutes on 2 cores): by hand, never in CI.

    .venv/bin/python bench/bench_full.py --profile server-x86_64 [--jobs 2] [--ccache]

The build goes to a fresh out/.bench/full/, which extracts its own tree (kbuild-py refuses an
out folder whose src/ is a link to another; the extraction is a step of its own in the figure);
without --ccache no compile goes through ccache, so the time is a cold build's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from common import BENCH_OUT, OUT, REPO, machine, record


def _fresh_out() -> Path:
    out = BENCH_OUT / "full"
    shutil.rmtree(out, ignore_errors=True)
    (out / "cache").mkdir(parents=True)
    if (OUT / "cache" / "hashes.json").is_file():
        shutil.copy(OUT / "cache" / "hashes.json", out / "cache" / "hashes.json")
    return out


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:04.1f} s"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", required=True)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--ccache", action="store_true", help="compile through ccache (as "
                    "`scons` does by default); the figure is then a cold-cache build's only "
                    "if the cache is empty")
    args = ap.parse_args()
    out = _fresh_out()
    argv = ["scons", "-Q", f"profile={args.profile}", f"out={out}", f"jobs={args.jobs}",
            f"ccache={int(args.ccache)}"]
    steps: list[tuple[str, float]] = []
    start = time.monotonic()
    log = out / "bench-full.log"
    with open(log, "w") as f:
        proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, text=True,
                                stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})  # lines on time
        assert proc.stdout is not None
        for line in proc.stdout:
            f.write(line)
            step = line.removeprefix("kbuild-py: ").strip()
            if line.startswith("kbuild-py: ") and ":" not in step:  # SCons's step labels
                steps.append((step, time.monotonic() - start))
        rc = proc.wait()
    total = time.monotonic() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if rc != 0:  # the time it took is worth keeping even so
        sys.exit(f"bench: the build of {args.profile} failed ({rc}) after {_minutes(total)} "
                 f"({_step_times(steps, total)}): see {log}")
    lines = summary(out, args.profile, argv, steps, total, peak)
    print("\n".join(lines))
    record(f"Full build, {args.profile} (bench/bench_full.py)", lines)


def _step_times(steps: list[tuple[str, float]], total: float) -> str:
    ends = [t for _, t in steps[1:]] + [total]
    return ", ".join(f"{name} {_minutes(end - begin)}"
                     for (name, begin), end in zip(steps, ends, strict=True))


def summary(out: Path, profile: str, argv: list[str], steps: list[tuple[str, float]],
            total: float, peak: float) -> list[str]:
    """RESULTS.md lines for a finished build in out/<profile>."""
    dist = out / profile / "dist"
    manifest = json.loads((dist / "manifest.json").read_text())
    image = next(n for n in manifest["outputs"] if n in ("bzImage", "Image.gz"))
    compiles = sum(1 for line in (out / profile / "build.log").open(errors="replace")
                   if line.startswith(("  CC ", "  CC [M] ")))
    shipped = [f"{image} {(dist / image).stat().st_size / 1e6:.1f} MB",
               f"vmlinux {(dist / 'vmlinux').stat().st_size / 1e6:.0f} MB"]
    if manifest.get("modules"):
        m = manifest["modules"]
        shipped.append(f"modules.tar.gz {(dist / 'modules.tar.gz').stat().st_size / 1e6:.0f} MB "
                       f"({m['count']} modules, {m['signed']} signed)")
    dtbs = [n for n in manifest["outputs"] if n.startswith("dtbs/")]
    if dtbs:
        shipped.append(f"{len(dtbs)} device trees")
    return [
        f"- machine: {machine()}; `{' '.join(argv)}` in a fresh out/ "
        f"(the tree extracted again); one run",
        f"- **{_minutes(total)}** wall time ({_step_times(steps, total)}); {compiles} compiles; "
        f"peak memory of any one process {peak:.0f} MB",
        f"- kernel {manifest['kernel']['version']}, {manifest['toolchain']['cc']}",
        f"- shipped: {'; '.join(shipped)}",
    ]


if __name__ == "__main__":
    main()
