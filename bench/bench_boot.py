"""LKDTM suites under software emulation: time per boot and per suite, for each qemu profile.
Targets: each test ≤ 10 s, a whole suite ≤ 3 min (2 boots at a time on 2 cores).

Needs the profiles built (`scons profile=qemu-x86_64`, `scons profile=qemu-arm64-clang`).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from common import OUT, REPO, machine, record

sys.path.insert(0, str(REPO))
from kbuild_py import boot  # noqa: E402
from kbuild_py.plan import make_plan  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("profiles", nargs="*", default=["qemu-x86_64", "qemu-arm64-clang"])
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    lines = [f"- machine: {machine()}; {args.jobs} boots at a time; software emulation (TCG)"]
    for p in args.profiles:
        plan = make_plan(p, Path(args.out).resolve(), jobs=args.jobs)
        report = boot.run_suite(plan, jobs=args.jobs)
        times = sorted(v.seconds for v in report.verdicts if v.seconds > 0)
        counts = report.to_dict()["counts"]
        lines.append(
            f"- **{p}**: {len(times)} boots, suite {report.seconds:.0f} s (target ≤ 180 s); "
            f"per boot min {times[0]:.1f} / median {statistics.median(times):.1f} / max "
            f"{times[-1]:.1f} s (target ≤ 10 s); verdicts {counts}")
        print(lines[-1])
    record("LKDTM boot suites (bench/bench_boot.py)", lines)


if __name__ == "__main__":
    main()
