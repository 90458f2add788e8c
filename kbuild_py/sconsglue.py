"""The SCons side: one chain of targets per profile, fingerprinted by content, never by the tree.

SCons sees stamps and Value() signatures of the inputs (profile files, toolchain identity, source
pin), so a rerun with nothing changed neither parses Kconfig nor starts make. Kbuild does the
fine-grained incrementality inside the build step.

Failures are kbuild-py's: one line on stderr, and scons exits with kbuild-py's code (1 unmet,
2 bad input, 3 infrastructure, 4 busy or interrupted) instead of SCons's 2 for everything.
Ctrl-C and SIGTERM stop the running step at once (SCons alone would let it finish).
"""

from __future__ import annotations

import atexit
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import KbuildError, UserError

TARGETS = ("config", "build", "collect", "boot", "matrix")
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
    if not re.fullmatch(r"[0-9]{1,4}", jobs) or not 1 <= int(jobs) <= 1024:
        raise UserError(f"jobs={jobs!r}: must be a whole number from 1 to 1024", "e.g. jobs=2")
    flags = []
    for name in _SWITCHES:
        value = str(env[name])
        if value not in ("0", "1"):
            raise UserError(f"{name}={value}: must be 0 or 1", f"e.g. {name}=1")
        flags.append(value == "1")
    return int(jobs), flags[0], flags[1]


def _report(e: KbuildError) -> int:
    print(f"kbuild-py: {e.kind}: {e.one_line()}", file=sys.stderr, flush=True)
    return e.exit_code


class _Reported(Exception):
    """A step failed and kbuild-py has said why; the exit code travels with it."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.exitstatus = code


def _action(fn: Callable[[], object], label: str,
            planned: Callable[[], list[str]] | None = None) -> Any:
    """A step as an SCons action; under `scons -n` it also prints ``planned()`` (the make
    command lines the step would run)."""
    def run(target: Any, source: Any, env: Any) -> int:
        from .cli import run as run_reported

        code = run_reported(lambda: (fn(), 0)[1], _debug(), label, signals=False)
        if code:
            raise _Reported(code)
        return 0

    def shown(target: Any, source: Any, env: Any) -> str:
        from SCons.Script import GetOption

        lines = [f"kbuild-py: {label}"]
        if planned is not None and GetOption("no_exec"):
            from .cli import run as run_reported

            def add() -> int:
                lines.extend(planned())
                return 0

            code = run_reported(add, _debug(), label, signals=False)
            if code:
                raise _Reported(code)
        return "\n".join(lines)

    from SCons.Script import Action

    return Action(run, strfunction=shown)


def _interrupted_exit() -> None:
    """SCons ends an interrupted build with 2; kbuild-py's code for it is 4."""
    from . import interrupt

    if interrupt.STOP.is_set():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(4)


def _debug() -> bool:
    return os.environ.get("KBUILD_PY_DEBUG", "").strip().lower() in ("1", "yes", "true", "on", "y")


def _install_scons_hooks() -> None:
    """A failed step's exit code becomes scons's, with no second error line; Ctrl-C and
    SIGTERM reach the running step."""
    import SCons.Script.Main as scons_main
    from SCons.Taskmaster import Job

    from . import interrupt

    base = scons_main.BuildTask
    if getattr(base, "_kbuild_py", False):
        return

    class BuildTask(base):  # type: ignore[misc, valid-type]
        _kbuild_py = True

        def failed(self) -> None:
            exc = self.exc_info()[1]
            wrapped = (getattr(exc, "exc_info", None) or (None, None))[1]
            reported = next((e for e in (exc, wrapped) if isinstance(e, _Reported)), None)
            if reported is None and interrupt.STOP.is_set():
                reported = _Reported(4)  # the step has said so already, in one line
            if reported is None:
                super().failed()
                return
            import SCons.Errors

            error = SCons.Errors.BuildError(node=self.node, errstr="reported",
                                            status=reported.exitstatus,
                                            exitstatus=reported.exitstatus)
            self.exception = (reported, error, None)
            self.do_failed(reported.exitstatus)
            self.exc_clear()

    scons_main.BuildTask = BuildTask
    atexit.register(_interrupted_exit)
    setup = Job.Jobs._setup_sig_handler

    def chained_setup(jobs: Any) -> None:
        import signal

        setup(jobs)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, interrupt.chained(signal.getsignal(sig)))

    Job.Jobs._setup_sig_handler = chained_setup


def declare(arguments: dict[str, str], root: str) -> None:
    """Declare variables, help and the target chain for the chosen profile."""
    from SCons.Script import (
        Alias,
        AlwaysBuild,
        Clean,
        Default,
        Environment,
        Exit,
        GetOption,
        Help,
        NoClean,
        Precious,
        SConsignFile,
        Value,
        Variables,
    )

    from .build import secrets_digest
    from .fsutil import code_digest
    from .pipeline import (
        boot_inputs_digest,
        inputs_digest,
        locked,
        planned_make,
        step_boot,
        step_build,
        step_collect,
        step_config,
    )
    from .plan import make_plan, out_folder
    from .source import parse_source_arg
    from .tree import step_tree, tree_identity

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
    variables.Add("make_vars", "make variables for the build, space-separated NAME=VALUE (e.g. "
                  "'W=1 LOCALVERSION=-acme'; not one kbuild-py sets itself)", "")
    variables.Add("hosts", "distcc hosts to spread compiles over (DISTCC_HOSTS syntax, e.g. "
                  "'localhost/2 buildbox/8'); empty: compile here", "")
    variables.Add("profiles", "matrix: the profiles to configure (space-separated; default: all)",
                  "")
    variables.Add("kernels", "matrix: the kernels to configure them against (space-separated "
                  "tarballs or trees; default: every installed linux-source tarball)", "")
    env = Environment(variables=variables, ENV=os.environ, tools=[])
    Help("kbuild-py: scons profile=<name> [config|build|collect|boot], or scons matrix\n\n"
         "Targets: config (verified .config and report), build (kernel), collect (default: "
         "out/<p>/dist/), boot (QEMU + LKDTM: out/<p>/boot/), matrix (every profile x every "
         "kernel, configured and verified: out/matrix/matrix.txt; run pairs in parallel with "
         "-j)\n\nVariables:\n" + variables.GenerateHelpText(env), append=False)

    _install_scons_hooks()
    from SCons.Script import COMMAND_LINE_TARGETS

    from .cli import run as run_reported

    if "matrix" in COMMAND_LINE_TARGETS:
        _declare_matrix(env, variables, arguments, root)
        return

    prepared: dict[str, Any] = {}

    def prepare() -> int:
        jobs, strict, ccache = _check_variables(variables, env, arguments)
        out_text = str(env["out"])
        out = out_folder(out_text if not out_text.strip() or Path(out_text).is_absolute()
                         else str(Path(root) / out_text))
        source = parse_source_arg(env["source"]) if env["source"] else None
        from .kbuild import user_make_vars

        plan = make_plan(env["profile"], out, source, jobs, ccache=ccache,
                         make_vars=user_make_vars(str(env["make_vars"]).split(), "make_vars="),
                         distcc_hosts=str(env["hosts"]))
        prepared.update(jobs=jobs, strict=strict, out=out, plan=plan,
                        src_id=tree_identity(plan), digest=inputs_digest(plan),
                        secrets=secrets_digest(plan), boot=boot_inputs_digest(),
                        code=code_digest(Path(__file__).resolve().parent))
        if GetOption("clean"):
            prepared["clean_lock"] = _hold_for_clean(plan)
        out.mkdir(parents=True, exist_ok=True)
        return 0

    code = run_reported(prepare, _debug(), "scons", signals=False)
    if code:
        Exit(code)
    jobs, strict, out, plan = (prepared[k] for k in ("jobs", "strict", "out", "plan"))
    src_id, digest = prepared["src_id"], prepared["digest"]

    for target in COMMAND_LINE_TARGETS:
        if target not in TARGETS and "/" not in target:  # file targets are fine
            from .catalog import suggest

            Exit(_report(UserError(f"unknown target '{target}'{suggest(target, list(TARGETS))}",
                                   f"targets: {', '.join(TARGETS)}")))
    # One signature database per profile: SCons reads it whole at the start and writes it whole
    # at the end, so runs of two profiles at once in one out/ would each drop the other's.
    SConsignFile(str(out / f".sconsign-{plan.profile.name}"))
    paths = plan.paths

    command = ["scons", f"profile={env['profile']}"] + (
        [f"source={env['source']}"] if env["source"] else []) + [f"jobs={jobs}"]

    def guarded(fn: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            with locked(plan):
                return fn()
        return run

    # kbuild-py's own code is an input of every step after the tree: an upgrade redoes them
    # (Kbuild itself decides what a build step has left to compile).
    code = Value(prepared["code"])
    tree = env.Command(str(paths.stamps / "tree.json"), [Value(src_id)],
                       _action(guarded(lambda: step_tree(plan)), "tree"))
    config = env.Command(
        [str(paths.config), str(paths.report)],
        [tree[0], Value(digest), Value(str(strict)), code],
        _action(guarded(lambda: step_config(plan, strict=strict)), "configure + verify",
                lambda: planned_make(plan, "config")))
    build = env.Command(
        [str(paths.stamps / "build.json"), str(paths.build / plan.arch.image_path),
         str(paths.binary_report)],
        [config[0], Value(prepared["secrets"]), Value(" ".join(plan.profile.dtbs)), code],
        _action(guarded(lambda: step_build(plan, strict=strict)), "build",
                lambda: planned_make(plan, "build")))
    collect = env.Command(str(paths.manifest),
                          [build[0], build[2], config[1], code],
                          _action(guarded(lambda: step_collect(plan, command)), "collect"))
    boot = env.Command(str(paths.boot / "boot-report.json"),
                       [collect[0], Value(prepared["boot"]), code],
                       _action(guarded(lambda: step_boot(plan, strict=strict)), "boot + LKDTM"))
    Precious(tree, config, build, collect, boot)
    if plan.source.kind == "tree":
        AlwaysBuild(build)  # the user's tree may change under us: Kbuild decides
    Alias("config", config)
    Alias("build", build)
    Alias("collect", collect)
    Alias("boot", boot)
    Default(collect)
    if _ours(plan):  # only a folder kbuild-py made for this profile is ever removed
        Clean(collect, [str(paths.profile)])
    NoClean(str(out / "src"), str(out / "cache"))


_MATRIX_PAIRS: dict[str, tuple[Any, str]] = {}


def _matrix_pair_step(key: str) -> Callable[[], None]:
    """The step of one pair, closing over its key only (a string: stable contents)."""
    def step() -> None:
        from . import matrix

        plan, error = _MATRIX_PAIRS[key]
        matrix.run_pair(plan, error)
    return step


def _declare_matrix(env: Any, variables: Any, arguments: dict[str, str], root: str) -> None:
    """`scons matrix`: tree + configure + verify for every profile x kernel pair (independent
    nodes, so -j runs them in parallel), then one table. A pair that fails is a cell."""
    from SCons.Script import Alias, AlwaysBuild, Exit, SConsignFile, Value

    from . import catalog, matrix
    from .cli import run as run_reported
    from .fsutil import code_digest
    from .plan import make_plan, out_folder
    from .source import parse_source_arg

    pairs: list[tuple[Any, str]] = []
    signatures: list[tuple[str, str]] = []
    folder: list[Path] = []

    def prepare() -> int:
        jobs, _, ccache = _check_variables(variables, env, arguments)
        out_text = str(env["out"])
        out = out_folder(out_text if not out_text.strip() or Path(out_text).is_absolute()
                         else str(Path(root) / out_text))
        names = str(env["profiles"]).split() or catalog.names("profiles")
        kernels = str(env["kernels"]).split() or matrix.installed_kernels()
        if not kernels:
            raise UserError("matrix: no kernel given and none installed",
                            "give kernels=<tarball ...> or install linux-source-<version>")
        for kernel in kernels:
            pin = parse_source_arg(kernel)
            label = matrix.kernel_label(pin)
            for name in names:
                plan = make_plan(name, out / "matrix" / label, pin, jobs, ccache=ccache)
                pairs.append((plan, label))
                signatures.append(matrix.planned(plan))
        folder.append(out / "matrix")
        folder[0].mkdir(parents=True, exist_ok=True)
        return 0

    code = run_reported(prepare, _debug(), "scons", signals=False)
    if code:
        Exit(code)
    SConsignFile(str(folder[0] / ".sconsign"))
    own = Value(code_digest(Path(__file__).resolve().parent))
    reports = []
    for (plan, label), (signature, error) in zip(pairs, signatures, strict=True):
        key = f"{label}/{plan.profile.name}"
        _MATRIX_PAIRS[key] = (plan, error)
        # The action names its pair by a string: SCons signs an action by its contents, and a
        # plan object in them would differ from run to run.
        node = env.Command(
            [str(matrix.error_file(plan))], [Value(signature or error), own],
            _action(_matrix_pair_step(key),
                    f"configure + verify {plan.profile.name} on {label}"))
        reports.append(node[0])
    table = env.Command(str(folder[0] / "matrix.txt"), reports, _action(
        lambda: matrix.write(folder[0], [matrix.read_cell(p, k) for p, k in pairs]), "matrix"))
    AlwaysBuild(table)
    Alias("matrix", table)


def _ours(plan: Any) -> bool:
    try:
        return bool(plan.paths.marker.read_text().strip() == plan.profile.name)
    except OSError:
        return False


def _hold_for_clean(plan: Any) -> Any:
    """scons -c takes the profile's lock (held until scons exits): a run in progress is never
    cleaned under it."""
    from .fsutil import exclusive_lock

    if not plan.paths.profile.is_dir():
        return None
    held = exclusive_lock(plan.paths.lock, f"profile {plan.profile.name}")
    held.__enter__()
    return held
