"""No-op rebuild: `scons profile=<p>` with nothing changed vs `make` with nothing to do on the
same built tree. Targets: ≤ 0.5 s and ≤ 0.3× the make no-op.

Needs a built profile (run `scons profile=qemu-x86_64` first).
"""

from __future__ import annotations

import argparse
import json
import sys

from common import OUT, REPO, fmt, machine, median_of, record, run, timed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="qemu-x86_64")
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    p = args.profile
    stamp = OUT / p / "stamps" / "build.json"
    if not stamp.is_file():
        sys.exit(f"bench: build {p} first: scons profile={p}")
    scons = ["scons", "-Q", f"profile={p}"]
    run(scons)  # settle (and bring the build up to date with this kbuild-py)
    argv = json.loads(stamp.read_text())["argv"]  # make's own command line of that build
    ours, s1 = median_of(lambda: timed(scons), args.runs)
    make, s2 = median_of(lambda: timed(argv), args.runs)
    ratio = ours / make
    lines = [
        f"- machine: {machine()}; profile {p}; {args.runs} runs each, medians",
        f"- `scons profile={p}` with nothing changed: **{fmt(ours)}** "
        f"(samples {', '.join(f'{x:.2f}' for x in s1)})",
        f"- `{' '.join(argv[:1] + argv[3:])}` with nothing to do: **{fmt(make)}** "
        f"(samples {', '.join(f'{x:.2f}' for x in s2)})",
        f"- ratio: **{ratio:.2f}×** (target ≤ 0.3×); absolute target ≤ 0.5 s: "
        f"{'met' if ours <= 0.5 else 'NOT met'}",
    ]
    print("\n".join(lines))
    record("No-op rebuild (bench/bench_noop.py)", lines)
    _ = REPO


if __name__ == "__main__":
    main()
