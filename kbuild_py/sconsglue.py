"""The SCons side: one chain of targets per profile, fingerprinted by content, never by the tree.

SCons sees stamps and Value() signatures of the inputs (profile files, toolchain identity, source
pin), so a rerun with nothing changed neither parses Kconfig nor starts make. Kbuild does the
fine-grained incrementality inside the build step.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import KbuildError, UserError

TARGETS = ("config", "build", "collect", "boot")
_SWITCHES = ("strict", "ccache")


def _check_variables(variables: Any, env: Any, arguments: dict[str, str]
                     ) -> tuple[int, bool, bool]:
    """jobs, strict, ccache from the command line; a typo is an error, not a silent default."""
    from .catalog import suggest

    known = [opt.key for opt in variables.options]
    for name in arguments:
        if name not in known:
            raise UserError(f"unknown variable '{name}'{suggest(name, known)}",
                            f"variables: {', '.join(known)} (scons -h)")
    jobs = str(env["jobs"])
    if not jobs.isdigit() or int(jobs) < 1:
        raise UserError(f"jobs={jobs}: must be a whole number of 1 or more", "e.g. jobs=2")
    flags = []
    for name in _SWITCHES:
        value = str(env[name])
        if value not in ("0", "1"):
            raise UserError(f"{name}={value}: must be 0 or 1", f"e.g. {name}=1")
        flags.append(value == "1")
    return int(jobs), flags[0], flags[1]


def _report(e: KbuildError) -> int:
    print(f"kbuild-py: {e.kind}: {e.one_line()}", file=sys.stderr)
    return e.exit_code


def _action(fn: Callable[[], object], label: str) -> Any:
    def run(target: Any, source: Any, env: Any) -> int:
        try:
            fn()
        except KbuildError as e:
            return _report(e)
        return 0

    from SCons.Script import Action

    return Action(run, f"kbuild-py: {label}")


def declare(arguments: dict[str, str], root: str) -> None:
    """Declare variables, help and the target chain for the chosen profile."""
    from SCons.Script import (
        Alias,
        AlwaysBuild,
        Clean,
        Default,
        Environment,
        Exit,
        Help,
        NoClean,
        Precious,
        SConsignFile,
        Value,
        Variables,
    )

    from .build import secrets_digest
    from .pipeline import (
        boot_inputs_digest,
        inputs_digest,
        locked,
        step_boot,
        step_build,
        step_collect,
        step_config,
        step_tree,
        tree_identity,
    )
    from .plan import make_plan
    from .source import parse_source_arg

    variables = Variables(None, arguments)
    variables.Add("profile", "profile name (profiles/<name>.yaml) or path to a YAML file",
                  "qemu-x86_64")
    variables.Add("source", "kernel tarball, tree, or URL#sha256=<hex> (default: the "
                  "profile's pin)", "")
    variables.Add("jobs", "parallel jobs given to make (SCons itself runs one step at a time)",
                  str(os.cpu_count() or 1))
    variables.Add("out", "output folder", "out")
    variables.Add("strict", "1: unmet required options fail the build; 0: report only", "1")
    variables.Add("ccache", "1: compile through ccache when it is installed; 0: never", "1")
    variables.Add("hosts", "distcc hosts to spread compiles over (DISTCC_HOSTS syntax, e.g. "
                  "'localhost/2 buildbox/8'); empty: compile here", "")
    env = Environment(variables=variables, ENV=os.environ, tools=[])
    Help("kbuild-py: scons profile=<name> [config|build|collect|boot]\n\n"
         "Targets: config (verified .config and report), build (kernel), collect (default: "
         "out/<p>/dist/), boot (QEMU + LKDTM: out/<p>/boot/)\n\nVariables:\n"
         + variables.GenerateHelpText(env), append=False)

    try:
        jobs, strict, ccache = _check_variables(variables, env, arguments)
        out = Path(root) / env["out"]
        source = parse_source_arg(env["source"]) if env["source"] else None
        plan = make_plan(env["profile"], out.resolve(), source, jobs, ccache=ccache,
                         distcc_hosts=str(env["hosts"]))
        src_id = tree_identity(plan)
        digest = inputs_digest(plan)
    except KbuildError as e:
        Exit(_report(e))
    from SCons.Script import COMMAND_LINE_TARGETS

    for target in COMMAND_LINE_TARGETS:
        if target not in TARGETS and "/" not in target:  # file targets are fine
            from .catalog import suggest

            Exit(_report(UserError(f"unknown target '{target}'{suggest(target, list(TARGETS))}",
                                   f"targets: {', '.join(TARGETS)}")))
    out.mkdir(parents=True, exist_ok=True)
    SConsignFile(str(out / ".sconsign"))
    paths = plan.paths

    command = ["scons", f"profile={env['profile']}"] + (
        [f"source={env['source']}"] if env["source"] else []) + [f"jobs={jobs}"]

    def guarded(fn: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            with locked(plan):
                return fn()
        return run

    tree = env.Command(str(paths.stamps / "tree.json"), [Value(src_id)],
                       _action(guarded(lambda: step_tree(plan)), "tree"))
    config = env.Command(
        [str(paths.config), str(paths.profile / "report.json")],
        [tree[0], Value(digest), Value(str(strict))],
        _action(guarded(lambda: step_config(plan, strict=strict)), "configure + verify"))
    build = env.Command(
        [str(paths.stamps / "build.json"), str(paths.build / plan.arch.image_path),
         str(paths.profile / "binary-report.json")],
        [config[0], Value(secrets_digest(plan)), Value(" ".join(plan.profile.dtbs))],
        _action(guarded(lambda: step_build(plan, strict=strict)), "build"))
    collect = env.Command(str(paths.dist / "manifest.json"), [build[0], build[2], config[1]],
                          _action(guarded(lambda: step_collect(plan, command)), "collect"))
    boot = env.Command(str(paths.boot / "boot-report.json"),
                       [collect[0], Value(boot_inputs_digest())],
                       _action(guarded(lambda: step_boot(plan, strict=strict)), "boot + LKDTM"))
    Precious(tree, config, build, collect, boot)
    if plan.source.kind == "tree":
        AlwaysBuild(build)  # the user's tree may change under us: Kbuild decides
    Alias("config", config)
    Alias("build", build)
    Alias("collect", collect)
    Alias("boot", boot)
    Default(collect)
    Clean(collect, [str(paths.profile)])
    NoClean(str(out / "src"), str(out / "cache"))
