"""collect: artifacts and a manifest into out/<p>/dist/, swapped in whole (never half-written)."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from . import catalog, patches
from .build import Built, source_time
from .fsutil import sha256_file
from .plan import BuildPlan
from .sbom import SbomInput, sbom
from .source import KernelTree
from .toolchain import ToolchainIdentity


def input_files(plan: BuildPlan) -> list[Path]:
    return [*plan.profile.files, catalog.folder("toolchains") / f"{plan.toolchain.name}.yaml",
            catalog.folder("arches") / f"{plan.arch.name}.yaml"]


def _version(text: str) -> str:
    found = re.findall(r"\d+\.\d+(?:\.\d+)?", text)
    return found[-1] if found else "NOASSERTION"


def collect(plan: BuildPlan, tree: KernelTree, ident: ToolchainIdentity, built: Built,
            command: list[str]) -> Path:
    paths = plan.paths
    dist = paths.dist
    work = dist.with_name(f".dist.{os.getpid()}.tmp")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    files: dict[str, Path] = {
        Path(built.image).name: built.image,
        "vmlinux": built.vmlinux,
        "System.map": built.system_map,
        "config": paths.config,
        "fragment.config": paths.fragment,
        "cmdline": paths.profile / "cmdline",
        "sysctl.conf": paths.profile / "sysctl.conf",
        "report.json": paths.profile / "report.json",
        "binary-report.json": paths.profile / "binary-report.json",
    }
    try:
        for name, src in files.items():
            shutil.copy2(src, work / name)
        manifest: dict[str, Any] = {
            "schema": "kbuild-py/manifest/1",
            "profile": plan.profile.name,
            "arch": plan.arch.name,
            "kernel": {"version": tree.version_text, "source": plan.source.location,
                       "source_kind": plan.source.kind, "identity": tree.identity},
            "toolchain": {"name": ident.name, "cc": ident.cc_version_text,
                          "ld": ident.ld_version_text},
            "inputs": {catalog.display(p): sha256_file(p) for p in input_files(plan)},
            "outputs": {name: sha256_file(work / name) for name in sorted(files)},
            "build_command": list(built.argv),
            "ccache": built.ccache,
            "distcc": built.distcc,
            "seed": built.seed,
            "reproduce": command,
        }
        bom = sbom(SbomInput(
            profile=plan.profile.name, kernel_version=tree.version_text,
            source_location=plan.source.location, source_kind=plan.source.kind,
            source_sha256=tree.identity.split("+")[0] if plan.source.kind != "tree" else None,
            patches=[p.path for p in patches.select(plan.profile.patches, tree.version)[0]],
            toolchain=[(plan.toolchain.tools["CC"], ident.version, ident.cc_version_text),
                       (plan.toolchain.tools["LD"], _version(ident.ld_version_text),
                        ident.ld_version_text)],
            created=source_time(tree).strftime("%Y-%m-%dT%H:%M:%SZ"),
            outputs={name: work / name for name in files}))
        (work / "sbom.spdx.json").write_text(json.dumps(bom, indent=2, sort_keys=True) + "\n")
        manifest["outputs"]["sbom.spdx.json"] = sha256_file(work / "sbom.spdx.json")
        (work / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        old = dist.with_name(f".dist.{os.getpid()}.old")
        if dist.exists():
            os.rename(dist, old)
        os.rename(work, dist)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return dist / "manifest.json"
