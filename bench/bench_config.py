"""Profile → verified .config, cold and warm, against merge_config.sh + olddefconfig of the same
inputs; all profiles one after another; peak memory of resolution.

Targets: cold ≤ 0.25× the merge_config.sh anchor, warm ≤ 0.05×, peak memory ≤ 200 MB.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from common import (
    REPO,
    drop_model_cache,
    fmt,
    machine,
    median_of,
    peak_rss_mb,
    record,
    run,
    shared_out,
    timed,
)

sys.path.insert(0, str(REPO))
from kbuild_py.plan import make_plan  # noqa: E402
from kbuild_py.toolchain import make_variables  # noqa: E402


def kbuild(out: Path, profile: str, cmd: str = "config") -> list[str]:
    return [sys.executable, "-m", "kbuild_py.cli", cmd, "--profile", profile, "--out", str(out),
            "--report-only"]


def anchor(out: Path, profile: str) -> float:
    """merge_config.sh of the same base + fragment, then make olddefconfig (what vendors do)."""
    plan = make_plan(profile, out)
    tree = next((out / "src").iterdir())
    objdir = out / profile / "anchor"
    shutil.rmtree(objdir, ignore_errors=True)
    objdir.mkdir(parents=True)
    env = make_variables(plan.toolchain, plan.arch)
    start = time.perf_counter()
    run([str(tree / "scripts" / "kconfig" / "merge_config.sh"), "-m", "-O", str(objdir),
         str(out / profile / "base" / ".config"), str(out / profile / "fragment.config")],
        cwd=tree, env=env)
    run(["make", "-C", str(tree), f"O={objdir}", *(f"{k}={v}" for k, v in env.items()),
         "olddefconfig"])
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("profiles", nargs="*", default=["server-x86_64", "android-arm64"])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    out = shared_out()
    lines = [f"- machine: {machine()}; {args.runs} runs each, medians; the 6.12 tree already "
             "extracted (extraction is a one-time cost per source, ~30 s)"]
    for p in args.profiles:
        if not (REPO / "profiles" / f"{p}.yaml").is_file():
            print(f"bench: skipping {p}: no such profile")
            continue
        run(kbuild(out, p))  # prime: base config made by Kbuild once

        def cold_reset(p: str = p) -> None:
            drop_model_cache(out)
            shutil.rmtree(out / p / "base", ignore_errors=True)

        cold, _ = median_of(lambda p=p: timed(kbuild(out, p)), args.runs, cold_reset)  # type: ignore[misc]
        run(kbuild(out, p))
        warm, _ = median_of(lambda p=p: timed(kbuild(out, p)), args.runs)  # type: ignore[misc]
        ref, _ = median_of(lambda p=p: anchor(out, p), args.runs)  # type: ignore[misc]
        drop_model_cache(out)  # peak memory of a cold resolution: the full kconfiglib parse
        mem = peak_rss_mb(kbuild(out, p, "resolve")[:-1])
        lines += [
            f"- **{p}**: cold {fmt(cold)} ({cold / ref:.2f}× anchor; target ≤ 0.25×), "
            f"warm {fmt(warm)} ({warm / ref:.2f}×; target ≤ 0.05×); "
            f"anchor merge_config.sh -m + make olddefconfig of the same base and fragment: "
            f"{fmt(ref)}; peak memory of a cold `kbuild-py resolve`: {mem:.0f} MB "
            "(target ≤ 200 MB)",
        ]
        print(lines[-1])
    everything = [p.stem for p in sorted((REPO / "profiles").glob("*.yaml"))]
    start = time.perf_counter()
    for p in everything:
        run(kbuild(out, p))
    total = time.perf_counter() - start
    lines.append(f"- all {len(everything)} profiles config-only, one after another (warm): "
                 f"{fmt(total)} ({', '.join(everything)})")
    print(lines[-1])
    record("Profile to verified .config (bench/bench_config.py)", lines)


if __name__ == "__main__":
    main()
