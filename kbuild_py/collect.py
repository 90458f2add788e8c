"""collect: artifacts and a manifest into out/<p>/dist/, swapped in whole (never half-written)."""

from __future__ import annotations

import gzip
import json
import lzma
import os
import platform
import re
import shutil
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

from . import about, catalog, kbuild, patches
from .build import Built, build_time, built_dtbs
from .errors import InfraError
from .fsutil import recorded_seconds, replaced_folder, sha256_file
from .plan import BuildPlan
from .reproduce import Recipe, script
from .sbom import SbomInput, sbom
from .source import KernelTree
from .toolchain import ToolchainIdentity


def input_files(plan: BuildPlan) -> list[Path]:
    return [*plan.profile.files, *plan.toolchain.files,
            catalog.folder("arches") / f"{plan.arch.name}.yaml"]


def _version(text: str) -> str:
    found = re.findall(r"\d+\.\d+(?:\.\d+)?", text)
    return found[-1] if found else "NOASSERTION"


_SIGNED = b"~Module signature appended~\n"  # the tail of every signed module


def _module_signed(path: Path) -> bool | None:
    """Whether a module carries an appended signature; None for a compression not read here."""
    if path.suffix == ".ko":  # only the tail: a module can be megabytes of debug info
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - len(_SIGNED)))
            return f.read() == _SIGNED
    if path.suffix == ".xz":
        data = lzma.decompress(path.read_bytes())
    elif path.suffix == ".gz":
        data = gzip.decompress(path.read_bytes())
    else:
        return None
    return data.endswith(_SIGNED)


def _tool_version(command: str) -> str:
    """The first line of ``command --version``."""
    try:
        r = subprocess.run([command, "--version"], capture_output=True, text=True, check=False,
                           stdin=subprocess.DEVNULL, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    return r.stdout.splitlines()[0] if r.stdout else "unknown"


def _depmod() -> str:
    """depmod's version: its .bin indexes in the tarball are its output."""
    return _tool_version("depmod")


def provenance(built: Built) -> dict[str, Any]:
    """What made the build besides the toolchain: kbuild-py itself and the tools around make."""
    wrappers = kbuild.interface().wrappers
    tools = {"make": _tool_version(built.argv[0]) if built.argv else "unknown",
             "python": platform.python_version(), "kconfiglib": about.version("kconfiglib")}
    if built.ccache is not None:
        tools["ccache"] = _tool_version(wrappers["ccache"]["command"])
    if built.distcc:
        tools["distcc"] = _tool_version(wrappers["distcc"]["command"])
    return {"kbuild_py": {"version": about.version(), "commit": about.commit()},
            "tools": tools}


def recipe(plan: BuildPlan, tree: KernelTree, ident: ToolchainIdentity, built: Built,
           image_sha256: str) -> Recipe:
    """How reproduce.sh builds this kernel again: the profile, source and caller's variables
    the build took; what it cannot carry (a secret, a key) is said in its notes."""
    from .build import MODULE_KEY_ENV, SEED_SECRET_ENV, callers_time

    pin = plan.source
    kernel = f"{pin.location}#sha256={pin.sha256}" if pin.kind == "url" else pin.location
    own = plan.profile.path.parent.resolve() == catalog.folder("profiles").resolve()
    names = kbuild.interface().build_identity
    epoch, text = callers_time()
    env = {names["epoch"]: str(epoch)} if epoch is not None else {}
    if text:
        env[names["timestamp"]] = text
    env.update({name: value for name in kbuild.interface().append
                if (value := kbuild.appended(name, ""))})
    notes = []
    if SEED_SECRET_ENV in built.seed:
        notes.append(f"The randstruct seed was {built.seed}: export {SEED_SECRET_ENV} as it was.")
    if built.modules:
        notes.append(f"Modules were signed with {built.signing_key}: give the same key "
                     f"({MODULE_KEY_ENV}) for the same modules.")
    return Recipe(profile=plan.profile.name if own else str(plan.profile.path),
                  profile_name=plan.profile.name, kernel=kernel, image=Path(built.image).name,
                  image_sha256=image_sha256, made_by=about.describe(),
                  what=f"Linux {tree.version_text}, {ident.cc_version_text}", env=env,
                  make_vars=plan.make_vars, notes=tuple(notes))


def _publish_modes(folder: Path) -> None:
    """Every shipped file 0644, every folder 0755, whatever made them (mkstemp makes 0600,
    the linker 0755): what dist/ holds is data, readable by whoever gets it."""
    os.chmod(folder, 0o755)
    for entry in folder.rglob("*"):
        if not entry.is_symlink():
            os.chmod(entry, 0o755 if entry.is_dir() else 0o644)


def modules_tarball(root: Path, dest: Path, mtime: int) -> dict[str, int]:
    """lib/modules/ as a tarball whose bytes depend only on the files' contents: sorted
    entries, owner root, normalised modes, the source's timestamp, no gzip name or time.
    Symlinks are left out (modules_install's build link names this machine's folders).
    Returns the module count and how many of them are signed."""
    counts = {"count": 0, "signed": 0, "unknown": 0}
    entries = sorted(root.rglob("*"), key=lambda q: q.relative_to(root).parts)
    with open(dest, "wb") as raw, \
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            if entry.is_symlink():
                continue
            info = tar.gettarinfo(str(entry), arcname=entry.relative_to(root).as_posix())
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = mtime
            info.mode = 0o755 if entry.is_dir() else 0o644
            if entry.is_dir():
                tar.addfile(info)
                continue
            with open(entry, "rb") as f:
                tar.addfile(info, f)
            if ".ko" in entry.suffixes:
                counts["count"] += 1
                signed = _module_signed(entry)
                if signed is None:
                    counts["unknown"] += 1
                elif signed:
                    counts["signed"] += 1
    return counts


def collect(plan: BuildPlan, tree: KernelTree, ident: ToolchainIdentity, built: Built,
            command: list[str]) -> Path:
    started = time.monotonic()
    paths = plan.paths
    dist = paths.dist
    files: dict[str, Path] = {
        Path(built.image).name: built.image,
        "vmlinux": built.vmlinux,
        "System.map": built.system_map,
        "config": paths.config,
        "fragment.config": paths.fragment,
        "cmdline": paths.cmdline,
        "sysctl.conf": paths.sysctl,
        "report.json": paths.report,
        "binary-report.json": paths.binary_report,
    }
    files.update(built_dtbs(plan))  # dist/dtbs/<vendor>/<board>.dtb, as bootloaders expect
    when = build_time(tree)  # the date of all it packs (modules tarball, SBOM) and records
    with replaced_folder(dist) as work:
        for name, src in files.items():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, work / name)
        modules: dict[str, Any] | None = None
        if built.modules:
            if not plan.paths.modules.is_dir():
                raise InfraError(f"{plan.paths.modules}: the installed modules are missing",
                                 f"remove {plan.paths.stamps / 'build.json'} and build again")
            counts = modules_tarball(plan.paths.modules, work / "modules.tar.gz",
                                     int(when.date.timestamp()))
            files["modules.tar.gz"] = work / "modules.tar.gz"
            modules = {**counts, "signing_key": built.signing_key, "depmod": _depmod()}
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
            "modules": modules,
            "reproduce": command,
            **provenance(built),
        }
        manifest["timestamp"] = {"kernel": when.text, "date": when.date.strftime(
            "%Y-%m-%dT%H:%M:%SZ"), "from": when.origin}
        manifest["environment"] = built.environment or {}  # what reached make
        before = recorded_seconds(paths.durations)  # the steps' last runs
        manifest["durations"] = {**{s: before[s] for s in ("tree", "config", "build")
                                    if s in before},
                                 "collect": round(time.monotonic() - started, 1)}
        (work / "reproduce.sh").write_text(script(recipe(
            plan, tree, ident, built, manifest["outputs"][Path(built.image).name])))
        manifest["outputs"]["reproduce.sh"] = sha256_file(work / "reproduce.sh")
        files["reproduce.sh"] = work / "reproduce.sh"
        bom = sbom(SbomInput(
            profile=plan.profile.name, kernel_version=tree.version_text,
            source_location=plan.source.location, source_kind=plan.source.kind,
            source_sha256=tree.identity.split("+")[0] if plan.source.kind != "tree" else None,
            patches=[p.path for p in patches.select(plan.profile.patches, tree.version)[0]],
            toolchain=[(plan.toolchain.tools["CC"], ident.version, ident.cc_version_text,
                        plan.toolchain.cpe.get("CC", "")),
                       (plan.toolchain.tools["LD"], _version(ident.ld_version_text),
                        ident.ld_version_text, plan.toolchain.cpe.get("LD", ""))],
            kernel_cpe=kbuild.interface().sbom_kernel.get("cpe", ""),
            kernel_purl=kbuild.interface().sbom_kernel.get("purl", ""),
            created=when.date.strftime("%Y-%m-%dT%H:%M:%SZ"),
            outputs={name: work / name for name in files}))
        (work / "sbom.spdx.json").write_text(json.dumps(bom, indent=2, sort_keys=True) + "\n")
        manifest["outputs"]["sbom.spdx.json"] = sha256_file(work / "sbom.spdx.json")
        (work / paths.manifest.name).write_text(
            json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        _publish_modes(work)
    return paths.manifest
