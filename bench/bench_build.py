"""Full build of a qemu profile through kbuild-py vs bare `make -jN` on the same .config, and a
clean build with a warm ccache vs a cold one. Targets: overhead ≤ 1.03×; warm ccache ≤ 0.25×.

Expensive (four clean kernel builds per profile): run by hand, not in CI.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time

from common import OUT, fmt, machine, record, run, shared_out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="qemu-x86_64")
    part = ap.add_mutually_exclusive_group()
    part.add_argument("--overhead-only", action="store_true",
                      help="skip the two ccache builds (cold, warm)")
    part.add_argument("--ccache-only", action="store_true",
                      help="skip the two builds without ccache (ours, bare make)")
    args = ap.parse_args()
    p = args.profile
    out = shared_out()
    cli = [sys.executable, "-m", "kbuild_py.cli"]
    run([*cli, "config", "--profile", p, "--out", str(out)])
    build = out / p / "build"

    ccache_dir = OUT / ".bench" / "ccache"
    env = {"CCACHE_DIR": str(ccache_dir)}

    lines = [f"- machine: {machine()}; profile {p}; one run each (a clean build takes minutes)"]
    if not args.ccache_only:
        # 1. kbuild-py build without ccache vs bare make on the same .config, same -j.
        config = (build / ".config").read_bytes()
        shutil.rmtree(build)
        start = time.perf_counter()
        run(["scons", "-Q", f"profile={p}", f"out={out}", "ccache=0"], env=env)
        ours = time.perf_counter() - start
        argv = json.loads((out / p / "stamps" / "build.json").read_text())["argv"]
        shutil.rmtree(build)
        build.mkdir()
        (build / ".config").write_bytes(config)
        start = time.perf_counter()
        run(argv)
        bare = time.perf_counter() - start
        lines.append(
            f"- `scons profile={p}` from a configured tree, ccache off: **{fmt(ours)}**; bare "
            f"`{' '.join(argv[:1] + argv[3:])}` on the same .config: **{fmt(bare)}**; overhead "
            f"**{ours / bare:.3f}×** (target ≤ 1.03×; ours includes configure + verify + binary "
            "checks + collect)")
    if not args.overhead_only:
        # 2. Clean builds through ccache, in the same out/ folder: cold cache, then warm.
        shutil.rmtree(ccache_dir, ignore_errors=True)
        times, hits = [], []
        for _ in range(2):
            shutil.rmtree(out / p, ignore_errors=True)
            start = time.perf_counter()
            run(["scons", "-Q", f"profile={p}", f"out={out}", "ccache=1"], env=env)
            times.append(time.perf_counter() - start)
            stats = json.loads((out / p / "dist" / "manifest.json").read_text())["ccache"]
            hits.append(f"{stats['direct_cache_hit'] + stats['preprocessed_cache_hit']} hits / "
                        f"{stats['cache_miss']} misses")
        cold, warm = times
        lines.append(f"- clean build through ccache: cold {fmt(cold)} ({hits[0]}), warm "
                     f"{fmt(warm)} ({hits[1]}): **{warm / cold:.2f}×** (target ≤ 0.25×)")
    print("\n".join(lines))
    record(f"Full build, {p} (bench/bench_build.py)", lines)


if __name__ == "__main__":
    main()
