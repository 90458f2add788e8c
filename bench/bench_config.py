"""Profile → verified .config, cold and warm, against merge_config.sh + olddefconfig of the same
inputs; all profiles one after another; peak memory of resolution.

Targets: cold ≤ 0.25× the merge_config.sh anchor, warm ≤ 0.05×, peak memory ≤ 200 MB.
"""

from __future__ import annotations

import argparse
import json
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
    """What a vendor does from scratch with the same inputs: `make <base>` in a fresh objdir,
    merge_config.sh of that .config and the same fragment, then make olddefconfig."""
    plan = make_plan(profile, out)
    tree = Path(json.loads((out / profile / "stamps" / "tree.json").read_text())["path"])
    objdir = out / profile / "anchor"
    shutil.rmtree(objdir, ignore_errors=True)
    objdir.mkdir(parents=True)
    variables = [f"{k}={v}" for k, v in make_variables(plan.toolchain, plan.arch).items()]
    make = ["make", "-C", str(tree), f"O={objdir}", *variables]
    start = time.perf_counter()
    run([*make, plan.profile.base])
    run([str(tree / "scripts" / "kconfig" / "merge_config.sh"), "-m", "-O", str(objdir),
         str(objdir / ".config"), str(out / profile / "fragment.config")], cwd=tree)
    run([*make, "olddefconfig"])
    return time.perf_counter() - start


def issue_anchor(out: Path) -> float:
    """The anchor the targets were set against: merge_config.sh of x86_64_defconfig and the
    kernel's two hardening fragments (it runs make alldefconfig itself), fresh objdir."""
    tree = Path(json.loads((out / "server-x86_64" / "stamps" / "tree.json").read_text())["path"])
    objdir = out / "anchor-merge-config"
    shutil.rmtree(objdir, ignore_errors=True)
    objdir.mkdir(parents=True)
    start = time.perf_counter()
    run([str(tree / "scripts" / "kconfig" / "merge_config.sh"), "-O", str(objdir),
         "arch/x86/configs/x86_64_defconfig", "kernel/configs/hardening.config",
         "arch/x86/configs/hardening.config"], cwd=tree, env={"ARCH": "x86_64"})
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("profiles", nargs="*", default=["server-x86_64", "android-arm64"])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    out = shared_out()
    lines = [f"- machine: {machine()}; {args.runs} runs each, medians; the 6.12 tree already "
             "extracted (extraction is a one-time cost per source, ~30 s)"]
    canon = 0.0
    if "server-x86_64" in args.profiles:
        run(kbuild(out, "server-x86_64"))
        canon, _ = median_of(lambda: issue_anchor(out), args.runs)
        lines.append(f"- the issue's anchor, `merge_config.sh` of x86_64_defconfig + "
                     f"kernel/configs/hardening.config + arch/x86/configs/hardening.config "
                     f"(fresh objdir): {fmt(canon)}")
        print(lines[-1])
    for p in args.profiles:
        if not (REPO / "profiles" / f"{p}.yaml").is_file():
            print(f"bench: skipping {p}: no such profile")
            continue
        run(kbuild(out, p))  # the tree is unpacked (and patched) once per source

        def cold_reset(p: str = p) -> None:
            """Nothing of ours: no Kconfig model, no conf results, no profile folder (so
            Kbuild also rebuilds its conf tool) — only the unpacked tree and its stamp."""
            drop_model_cache(out)
            shutil.rmtree(out / "cache" / "conf", ignore_errors=True)
            for child in (out / p).iterdir():
                if child.name != "stamps":
                    shutil.rmtree(child) if child.is_dir() else child.unlink()

        def new_tree_reset(p: str = p) -> None:
            """As cold, but the probe hint (a command list) of an earlier parse with this arch
            and toolchain stays, as on a machine that built an earlier kernel."""
            hints = {f: f.read_bytes() for f in (out / "cache" / "kconfig").glob("probes-*")}
            cold_reset(p)
            for f, data in hints.items():
                f.parent.mkdir(parents=True, exist_ok=True)
                f.write_bytes(data)

        resolve = kbuild(out, p, "resolve")[:-1]
        res_cold, _ = median_of(lambda r=resolve: timed(r), args.runs, cold_reset)  # type: ignore[misc]
        res_hint, _ = median_of(lambda r=resolve: timed(r), args.runs, new_tree_reset)  # type: ignore[misc]
        res_warm, _ = median_of(lambda r=resolve: timed(r), args.runs)  # type: ignore[misc]
        cold, _ = median_of(lambda p=p: timed(kbuild(out, p)), args.runs, cold_reset)  # type: ignore[misc]
        run(kbuild(out, p))
        warm, _ = median_of(lambda p=p: timed(kbuild(out, p)), args.runs)  # type: ignore[misc]
        ref, _ = median_of(lambda p=p: anchor(out, p), args.runs)  # type: ignore[misc]
        drop_model_cache(out)  # peak memory of a cold resolution: the full kconfiglib parse
        mem = peak_rss_mb(resolve)
        versus = f"; {res_cold / canon:.2f}× / {res_warm / canon:.2f}× the issue's anchor" if (
            canon) else ""
        lines += [
            f"- **{p}**, anchor `make {make_plan(p, out).profile.base}` + merge_config.sh -m of "
            f"its .config and the same fragment + make olddefconfig, fresh objdir: {fmt(ref)}",
            f"  - resolution (`kbuild-py resolve`: profile → fragment on the real Kconfig "
            f"tree): cold {fmt(res_cold)} (**{res_cold / ref:.2f}×**; target ≤ 0.25×; "
            f"{fmt(res_hint)}, {res_hint / ref:.2f}×, with the probe hint an earlier parse with "
            f"this arch and toolchain leaves, here of the same tree), warm "
            f"{fmt(res_warm)} (**{res_warm / ref:.2f}×**; target ≤ 0.05×){versus}; peak memory "
            f"of a cold resolution {mem:.0f} MB (target ≤ 200 MB)",
            f"  - verified .config (`kbuild-py config`: resolution + Kbuild's base config + "
            f"kconfiglib prediction + Kbuild's olddefconfig + verification): cold "
            f"{fmt(cold)} ({cold / ref:.2f}×), warm {fmt(warm)} (**{warm / ref:.2f}×**)",
        ]
        print(lines[-1])
    everything = [p.stem for p in sorted((REPO / "profiles").glob("*.yaml"))]
    for p in everything:
        run(kbuild(out, p))  # every tree unpacked and patched: what follows is configuration
    totals = []
    for label in ("cold", "warm"):
        if label == "cold":
            drop_model_cache(out)
            shutil.rmtree(out / "cache" / "conf", ignore_errors=True)
        start = time.perf_counter()
        for p in everything:
            run(kbuild(out, p))
        totals.append(f"{label} {fmt(time.perf_counter() - start)}")
    lines.append(f"- all {len(everything)} profiles config-only, one after another: "
                 f"{', '.join(totals)} ({', '.join(everything)}; cold: no Kconfig model, no "
                 "conf results)")
    print(lines[-1])
    record("Profile to verified .config (bench/bench_config.py)", lines)


if __name__ == "__main__":
    main()
