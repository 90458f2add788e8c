"""Shared helpers for the benchmarks: run commands, take medians, record results.

Benchmarks print each figure next to its anchor, measured in the same run on the same inputs,
and rewrite their own section of bench/RESULTS.md.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "RESULTS.md"
OUT = REPO / "out"
BENCH_OUT = OUT / ".bench"


def run(argv: Sequence[str], cwd: Path = REPO, env: dict[str, str] | None = None,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    full = dict(os.environ)
    full.update(env or {})
    r = subprocess.run(list(argv), cwd=cwd, env=full, capture_output=True, text=True,
                       check=False)
    if check and r.returncode != 0:
        sys.exit(f"bench: {' '.join(argv)} failed ({r.returncode}):\n{r.stdout[-2000:]}"
                 f"{r.stderr[-2000:]}")
    return r


def timed(argv: Sequence[str], **kw: object) -> float:
    start = time.perf_counter()
    run(argv, **kw)  # type: ignore[arg-type]
    return time.perf_counter() - start


def median_of(fn: Callable[[], float], runs: int, before: Callable[[], None] | None = None
              ) -> tuple[float, list[float]]:
    samples = []
    for _ in range(runs):
        if before:
            before()
        samples.append(fn())
    return statistics.median(samples), samples


def peak_rss_mb(argv: Sequence[str], cwd: Path = REPO) -> float:
    """Largest resident set of any process of the command (ru_maxrss of the children)."""
    probe = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], "
             "capture_output=True); print(resource.getrusage(resource.RUSAGE_CHILDREN)"
             ".ru_maxrss); sys.exit(r.returncode)")
    r = run([sys.executable, "-c", probe, *argv], cwd=cwd)
    return int(r.stdout.strip().splitlines()[-1]) / 1024


def shared_out() -> Path:
    """out/.bench shares the extracted trees of out/ (same sha256 names) but nothing else."""
    (BENCH_OUT).mkdir(parents=True, exist_ok=True)
    src = BENCH_OUT / "src"
    if not src.exists() and (OUT / "src").is_dir():
        src.symlink_to(OUT / "src")
    cache = BENCH_OUT / "cache"
    cache.mkdir(exist_ok=True)
    if (OUT / "cache" / "hashes.json").is_file():
        shutil.copy(OUT / "cache" / "hashes.json", cache / "hashes.json")
    return BENCH_OUT


def drop_model_cache(out: Path) -> None:
    shutil.rmtree(out / "cache" / "kconfig", ignore_errors=True)


def record(section: str, lines: list[str]) -> None:
    """Replace '## <section>' in RESULTS.md with fresh lines."""
    text = RESULTS.read_text() if RESULTS.is_file() else (
        "# Benchmark results\n\nWritten by the scripts in bench/; each figure is measured "
        "in the same run as its anchor, on this machine.\n")
    block = f"## {section}\n\n" + "\n".join(lines) + "\n"
    pattern = re.compile(rf"^## {re.escape(section)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(block + "\n", text) if pattern.search(text) else text.rstrip() + (
        "\n\n" + block)
    RESULTS.write_text(text.rstrip() + "\n")


def machine() -> str:
    return f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}"


def fmt(seconds: float) -> str:
    return f"{seconds:.2f} s"

