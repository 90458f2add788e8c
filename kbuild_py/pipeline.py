"""The fixed sequence of named steps: tree -> config (configure + verify) -> build -> collect.

Each step can run alone (SCons runs them as separate actions) and reads what earlier steps
left in out/<p>/stamps/. Used by both the CLI and the SConstruct.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from . import boot, switches
from . import report as render
from .build import Built, build, built_dtbs
from .collect import collect
from .configure import configure
from .errors import RequirementsUnmet
from .fsutil import (
    atomic_write,
    exclusive_lock,
    sha256_text,
    sweep_partials,
    timed,
    write_json,
)
from .plan import BuildPlan
from .resolve import cmdline, runtime_params, sysctl_conf
from .status import Status
from .toolchain import detect
from .tree import load_tree, recorded_tree
from .ui import block, note
from .verify import Report, verify


def inputs_digest(plan: BuildPlan) -> str:
    """Content signature of every input that shapes the config: profile files, toolchain."""
    from .collect import input_files

    parts = [p.read_text() for p in input_files(plan)]
    parts.append(detect(plan.toolchain, plan.arch.name).key())
    return sha256_text("\n".join(parts))


def write_runtime_files(plan: BuildPlan, version: tuple[int, ...]) -> None:
    """The kernel command line and sysctl.conf the profile asks for on this kernel version."""
    family = (plan.toolchain.family, plan.toolchain.name)
    atomic_write(plan.paths.cmdline, cmdline(plan.profile, version, family))
    atomic_write(plan.paths.sysctl, sysctl_conf(plan.profile, version, family))


def step_config(plan: BuildPlan, *, strict: bool = True, show: bool = True) -> Report:
    """Configure and verify; reports are written before an unmet requirement is raised.
    ``show``: print the text report (the matrix prints one table instead)."""
    tree = load_tree(plan)
    with timed(plan.paths.durations, "config"):
        configured = configure(plan, tree)
        write_runtime_files(plan, tree.version)
    family = (plan.toolchain.family, plan.toolchain.name)
    undone = switches.undone(configured.resolved,
                             *runtime_params(plan.profile, tree.version, family))
    result = verify(plan.profile, configured.resolved, configured.final, configured.explain,
                    kernel=tree.version_text, toolchain=configured.toolchain.cc_version_text,
                    config=str(plan.paths.config),
                    mismatches=[m.__dict__ for m in configured.mismatches], undone=undone)
    render.write_all(result, plan.paths.profile)
    if show:
        block(render.text(result))
    if strict and result.failed:
        off = [c for c in result.failed if c.symbol in undone]
        stuck = [c for c in result.failed if c.symbol not in undone]
        parts = [f"{len(stuck)} required option(s) did not stick with "
                 f"{configured.toolchain.cc_version_text}: "
                 f"{', '.join(c.headline() for c in stuck[:5])}"
                 f"{', ...' if len(stuck) > 5 else ''}"] if stuck else []
        parts += [undone[c.symbol] for c in off[:3]] + (["..."] if len(off) > 3 else [])
        raise RequirementsUnmet(
            f"profile {plan.profile.name}: {'; '.join(parts)}",
            f"see {plan.paths.report.with_suffix('.txt')} for the reasons and fixes")
    return result


def step_build(plan: BuildPlan, *, strict: bool = True) -> None:
    """Build, then check the binary for the protections the .config claims."""
    from .binary import check_binary
    from .kconfig.dotconfig import read_config

    tree = load_tree(plan)
    with timed(plan.paths.durations, "build"):
        built = build(plan, tree)
    checks = check_binary(built.vmlinux, built.system_map, plan.arch.name,
                          read_config(plan.paths.config))
    write_json(plan.paths.binary_report,
               {"schema": "kbuild-py/binary-report/1", "profile": plan.profile.name,
                "vmlinux": str(built.vmlinux), "checks": [c.to_dict() for c in checks]})
    for c in checks:
        note(f"binary  {c.status:5} {c.name}: {c.detail}")
    # What collect ships, by content: a build that changed anything makes collect run again.
    write_json(plan.paths.stamps / "build.json",
               {"image": str(built.image), "argv": list(built.argv), "ccache": built.ccache,
                "seed": built.seed, "distcc": built.distcc, "modules": built.modules,
                "signing_key": built.signing_key, "environment": built.environment,
                "fingerprint": fingerprint(plan, built)})
    unmet = [c for c in checks if c.status == Status.UNMET]
    if strict and unmet:
        raise RequirementsUnmet(
            f"profile {plan.profile.name}: the built vmlinux lacks "
            f"{', '.join(c.name for c in unmet)}",
            f"see {plan.paths.binary_report}")


def fingerprint(plan: BuildPlan, built: Built) -> str:
    """Names, sizes and times of what a build made (image, vmlinux, device trees, installed
    modules): make rewrites only what changed, so a change here means collect has work."""
    files = [built.image, built.vmlinux, *built_dtbs(plan).values()]
    if built.modules:
        files += sorted(p for p in plan.paths.modules.rglob("*") if p.is_file())
    return sha256_text("\n".join(f"{f}:{f.stat().st_size}:{f.stat().st_mtime_ns}"
                                  for f in files))


def step_collect(plan: BuildPlan, command: list[str]) -> Path:
    tree = load_tree(plan)
    stamp = json.loads((plan.paths.stamps / "build.json").read_text())
    b = plan.paths.build.resolve()
    built = Built(Path(stamp["image"]), b / "vmlinux", b / "System.map",
                  bool(stamp.get("modules")), tuple(stamp["argv"]), stamp.get("ccache"),
                  stamp.get("seed", ""), stamp.get("distcc"), stamp.get("signing_key", ""),
                  stamp.get("environment"))
    return collect(plan, tree, detect(plan.toolchain, plan.arch.name), built, command)


def planned_make(plan: BuildPlan, step: str) -> list[str]:
    """The make command lines a step would run now (`scons -n`), as shell lines; a note where
    they depend on an earlier step that has not run."""
    import shlex

    from .build import build_command, shown_argv
    from .configure import make_commands
    from .kconfig.dotconfig import read_config

    tree = recorded_tree(plan)
    if tree is None:
        return ["  (make lines follow once the tree step has extracted the kernel)"]
    if step == "config":
        return ["  " + shlex.join(argv) for argv in make_commands(plan, tree)]
    if not plan.paths.config.is_file():
        return ["  (make line follows once the config step has written the .config)"]
    made = build_command(plan, tree, read_config(plan.paths.config))
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(made.env.items()))
    return [f"  {env} {shlex.join(shown_argv(made.argv, made.key))}"]


@contextmanager
def locked(plan: BuildPlan) -> Iterator[None]:
    """One run per profile at a time; what a killed run left half-written is swept first."""
    with exclusive_lock(plan.paths.lock, f"profile {plan.profile.name}"):
        atomic_write(plan.paths.marker, plan.profile.name + "\n")
        for folder in (plan.paths.profile, plan.paths.stamps, plan.paths.build):
            sweep_partials(folder)
        yield


def boot_inputs_digest() -> str:
    """What the boot step reads besides the built kernel: LKDTM expectations and the init."""
    from . import catalog

    root = catalog.data_root()
    files = sorted((root / "lkdtm").glob("*.yaml")) + [root / "initramfs" / "init.c"]
    return sha256_text("\n".join(f"{f.name}:{f.read_text()}" for f in files if f.is_file()))


def step_boot(plan: BuildPlan, *, tests: list[str] | None = None, extra_cmdline: str = "",
              timeout: float = 30, strict: bool = True) -> None:
    """Boot the built kernel once per LKDTM test; fail when a claimed protection is not seen."""
    result = boot.run_suite(plan, tests=tests, jobs=plan.jobs, extra_cmdline=extra_cmdline,
                            timeout=timeout)
    render.write_boot_reports(result, plan.paths.boot)
    block(render.boot_text(result))
    defaults = boot.run_default_checks(plan, timeout=timeout) if not extra_cmdline else []
    write_json(plan.paths.boot / "defaults-report.json",
               {"schema": "kbuild-py/defaults-report/1", "profile": plan.profile.name,
                "checks": [d.to_dict() for d in defaults]})
    for d in defaults:
        note(f"default {d.status:5} {d.path} = {d.observed} (wanted {d.expected}, "
              f"{d.option}): {d.why}")
    unmet = [d for d in defaults if d.status == Status.UNMET]
    if strict and unmet:
        raise RequirementsUnmet(
            f"profile {plan.profile.name}: built-in default not in force at run time: "
            f"{unmet[0].path} is {unmet[0].observed}, wanted {unmet[0].expected}",
            f"see {plan.paths.boot / 'defaults-report.json'}")
    if strict and result.failed:
        names = ", ".join(v.test for v in result.failed[:5])
        raise RequirementsUnmet(
            f"profile {plan.profile.name}: {len(result.failed)} claimed protection(s) not "
            f"observed at run time: {names}",
            f"see {plan.paths.boot / 'boot-report.txt'} and the console logs beside it")
