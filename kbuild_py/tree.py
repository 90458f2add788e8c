"""The tree step: the kernel source a plan builds from, as a KernelTree.

An owned tree is extracted once from its pinned tarball into out/src/<sha256[:16]>/ and shared
by every profile; a profile's patch queues make a copy beside it (out/src/<sha>-<queues>/),
made once and shared too. A user's local tree is used in place and never written. The step's
record (out/<p>/stamps/tree.json) lets later steps find the tree without redoing it; a record
that no longer describes the plan's source is ignored.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from . import patches
from .errors import UserError
from .fsutil import exclusive_lock, timed, write_json
from .plan import BuildPlan
from .profile import SourcePin
from .source import COMPLETE, HashCache, KernelTree, materialise
from .toolchain import detect
from .ui import note


def tree_identity(plan: BuildPlan) -> str:
    """What the tree step depends on: the source pin and the content of the patch queues."""
    src = source_identity(plan.source, plan.paths.root)
    if plan.profile.patches:
        src += "+" + patches.queues_digest(plan.profile.patches)
    return src


def source_identity(pin: SourcePin, out_root: Path) -> str:
    """Cheap identity of the source for SCons signatures: no extraction, no full hash twice."""
    if pin.kind == "url":
        return f"sha256:{pin.sha256}"
    if pin.kind == "tree":
        return f"tree:{Path(pin.location).resolve()}"
    tarball = Path(pin.location)
    if not tarball.is_file():
        raise UserError(f"source tarball {tarball}: no such file",
                        "install it (apt-get install linux-source-6.12) or set source=")
    sha = HashCache(out_root / "cache" / "hashes.json").sha256(tarball)
    if pin.sha256 and sha != pin.sha256:
        raise UserError(f"source tarball {tarball}: sha256 {sha} does not match the pin "
                        f"{pin.sha256}", "update the pin if the new tarball is trusted")
    return "sha256:" + sha


def patched(plan: BuildPlan, tree: KernelTree) -> KernelTree:
    """The profile's patch queues applied to a copy of the owned tree (shared by profiles)."""
    if not plan.profile.patches:
        return tree
    if not tree.owned:
        raise UserError(
            f"profile {plan.profile.name} has patch queues, but source {tree.path} is a local "
            "tree, which kbuild-py never modifies",
            "build from a tarball, or apply the queues to your tree yourself")
    todo, skipped = patches.select(plan.profile.patches, tree.version)
    for s in skipped:
        note(f"patch   skipped {s.patch.label}: {s.reason} (this kernel is {tree.version_text})")
    pid = patches.identity(todo)
    dest = tree.path.parent / f"{tree.path.name}-{pid[:12]}"
    with exclusive_lock(plan.paths.root / ".locks" / f"src-{dest.name}", "patched kernel tree",
                        wait=True):
        if not (dest / COMPLETE).is_file():
            shutil.rmtree(dest, ignore_errors=True)
            patches.apply(tree.path, dest, todo, skipped)
            for p in todo:
                note(f"patch   applied {p.label}")
    return KernelTree(dest, tree.version, tree.version_text, f"{tree.identity}+{pid}",
                      owned=True)


def step_tree(plan: BuildPlan) -> KernelTree:
    detect(plan.toolchain, plan.arch.name)  # a missing compiler is reported before any work
    with timed(plan.paths.durations, "tree"):
        tree = patched(plan, materialise(plan.source, plan.paths.root))
    write_json(plan.paths.stamps / "tree.json",
               {"path": str(tree.path), "version": list(tree.version),
                "version_text": tree.version_text, "identity": tree.identity,
                "owned": tree.owned})
    return tree


def tree_to_read(plan: BuildPlan) -> KernelTree:
    """The tree for steps that only read it (check, export): a tarball's with the profile's
    patches, as builds use it; a user's tree as it is, with or without them (the profile's
    patch-added options then say which)."""
    if plan.source.kind != "tree":
        return step_tree(plan)
    detect(plan.toolchain, plan.arch.name)
    return materialise(plan.source, plan.paths.root)


def recorded_tree(plan: BuildPlan) -> KernelTree | None:
    """The tree the tree step recorded, if the record still describes this plan's source (an
    owned tree in out/src/, or the user's tree itself)."""
    stamp = plan.paths.stamps / "tree.json"
    try:
        d = json.loads(stamp.read_text())
        tree = KernelTree(Path(d["path"]), tuple(d["version"]), d["version_text"],
                          d["identity"], bool(d["owned"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    expected = (plan.paths.root / "src").resolve() if tree.owned else None
    ok = (tree.path.parent.resolve() == expected if tree.owned
          else plan.source.kind == "tree" and tree.path == Path(plan.source.location))
    return tree if ok and (tree.path / "Makefile").is_file() else None


def load_tree(plan: BuildPlan) -> KernelTree:
    """The recorded tree, else the tree step runs again."""
    return recorded_tree(plan) or step_tree(plan)
