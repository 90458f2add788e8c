"""Lint, type checks and the shape of the package are part of the test run."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from kbtest import REPO

PACKAGE = REPO / "kbuild_py"


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *argv], cwd=REPO, capture_output=True,
                          text=True, check=False)


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(REPO).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The kbuild_py modules ``name`` imports, at any level (a lazy import is still a
    dependency)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")
                parent = parent[:len(parent) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in known else base)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m in known and m != name}


def test_ruff() -> None:
    r = _run("ruff", "check", "kbuild_py", "tests", "bench")
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_strict() -> None:
    r = _run("mypy")
    assert r.returncode == 0, r.stdout + r.stderr


def test_only_the_adapter_imports_kconfiglib() -> None:
    importers = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                       if re.search(r"^\s*(import|from) kconfiglib", p.read_text(), re.M))
    assert importers and all(p.startswith("kconfig/") for p in importers), importers
    # reading and writing .config files, and the results handed out, need no kconfiglib
    assert "kconfig/dotconfig.py" not in importers and "kconfig/results.py" not in importers


def test_no_import_cycles() -> None:
    modules = _modules()
    graph = {name: _imports(name, path, set(modules)) for name, path in modules.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        stack.append(name)
        for dep in sorted(graph[name]):
            if dep.startswith(name + "."):
                continue  # a package may import its own submodules
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep):] + [dep]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep)
        stack.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


def test_modules_are_small() -> None:
    big = {str(p.relative_to(REPO)): n for p in PACKAGE.rglob("*.py")
           if (n := len(p.read_text().splitlines())) > 500}
    assert not big, big


def test_no_config_symbols_in_python() -> None:
    """Knowledge is data: no CONFIG_ names hard-coded in kbuild_py/, and no symbol names used
    as .config keys outside the kconfig package."""
    key_use = re.compile(r"""\b(config|final|values)(\.get\(|\[)\s*["'][A-Z][A-Z0-9_]{2,}["']""")
    for path in PACKAGE.rglob("*.py"):
        for line in path.read_text().splitlines():
            symbol = re.search(r"(?<![A-Za-z0-9_])CONFIG_[A-Z0-9]{3,}", line)
            assert not symbol, f"{path.name}: {line.strip()}"
            if "kconfig" not in path.parts:
                assert not key_use.search(line), f"{path.name}: {line.strip()}"
