"""Command line. The only place that turns errors into exit codes.

Exit codes: 0 all requirements met; 1 requirements unmet; 2 bad input; 3 infrastructure
failure; 4 busy (another run holds the lock) or interrupted (docs/ERRORS.md).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from .errors import InfraError, KbuildError, UserError, from_os_error

if TYPE_CHECKING:
    from .plan import BuildPlan

EXIT_OK, EXIT_UNMET, EXIT_USER, EXIT_INFRA = 0, 1, 2, 3
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a tool its reader left


def _plan(args: argparse.Namespace) -> BuildPlan:
    from .plan import make_plan
    from .source import parse_source_arg

    source = parse_source_arg(args.kernel) if getattr(args, "kernel", None) else None
    from .kbuild import user_make_vars
    from .plan import out_folder

    return make_plan(args.profile, out_folder(args.out), source, getattr(args, "jobs", None),
                     ccache=getattr(args, "ccache", True), distcc_hosts=getattr(args, "hosts", ""),
                     make_vars=user_make_vars(getattr(args, "make_var", None) or [],
                                              "--make-var"))


def cmd_resolve(args: argparse.Namespace) -> int:
    """Write the merged fragment, cmdline and sysctl files, without building."""
    from .configure import fragment_text, resolved_for
    from .fsutil import atomic_write
    from .pipeline import write_runtime_files
    from .tree import step_tree

    plan = _plan(args)
    with _lock(plan):
        tree = step_tree(plan)
        resolved = resolved_for(plan, tree)
        atomic_write(plan.paths.fragment, fragment_text(plan, tree, resolved))
        write_runtime_files(plan, tree.version)
    na = [r for r in resolved if not r.applicable]
    print(f"{plan.paths.fragment}: {len(resolved) - len(na)} options "
          f"({len(na)} not applicable to {tree.version_text})")
    for r in na:
        print(f"  n/a {r.symbol}: {r.reason}")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """Write what another build system needs to apply the profile (docs/INTEGRATION.md)."""
    from .export import export, format_files
    from .tree import tree_to_read

    format_files(args.format)
    plan = _plan(args)
    with _lock(plan):
        folder, files = export(plan, tree_to_read(plan), args.format)
    print(f"{folder}: {len(files)} files for {args.format}")
    for name in files:
        print(f"  {name}")
    return EXIT_OK


def cmd_config(args: argparse.Namespace) -> int:
    from .pipeline import step_config
    from .tree import step_tree

    plan = _plan(args)
    with _lock(plan):
        step_tree(plan)
        step_config(plan, strict=not args.report_only)
    return EXIT_OK


def cmd_build(args: argparse.Namespace) -> int:
    from .build import preflight
    from .pipeline import step_build, step_collect, step_config
    from .tree import step_tree

    plan = _plan(args)
    preflight()
    with _lock(plan):
        step_tree(plan)
        step_config(plan, strict=not args.report_only)
        step_build(plan, strict=not args.report_only)
        manifest = step_collect(plan, ["kbuild-py", *sys.argv[1:]])
    print(f"{manifest.parent}: kernel, config and manifest")
    return EXIT_OK


def cmd_boot(args: argparse.Namespace) -> int:
    """Prove the protections at run time: QEMU + LKDTM, one boot per test."""
    from .pipeline import step_boot

    plan = _plan(args)
    with _lock(plan):
        step_boot(plan, tests=args.test or None, extra_cmdline=args.cmdline,
                  timeout=args.timeout, strict=not args.report_only)
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    """Check an existing .config against a profile, without building."""
    from . import report as render
    from .check import check
    from .plan import out_folder

    result = check(args.profile, Path(args.config), kernel=args.kernel, version=args.version,
                   out=out_folder(args.out), search=args.find_kernel)
    print(render.text(result, verbose=args.verbose), end="")
    if args.reports:
        folder = Path(args.reports)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            render.write_all(result, folder)
        except OSError as e:
            raise UserError(f"--reports {folder}: not a folder ({e.strerror})",
                            "give a folder for the reports") from None
    return EXIT_UNMET if result.failed and not args.report_only else EXIT_OK


def cmd_explain(args: argparse.Namespace) -> int:
    from .configure import load_model
    from .toolchain import detect
    from .tree import load_tree

    plan = _plan(args)
    if not plan.paths.config.is_file():
        raise UserError(f"{plan.paths.config}: no configured kernel for {plan.profile.name}",
                        f"run: scons profile={args.profile} config")
    tree = load_tree(plan)
    model = load_model(plan, tree, detect(plan.toolchain, plan.arch.name))
    base = plan.paths.base_dir / ".config"
    if base.is_file() and plan.paths.fragment.is_file():
        model.load(base, plan.paths.fragment)  # so a value is named after what set it
    else:
        model.load(plan.paths.config)
    symbol = args.symbol.removeprefix("CONFIG_")
    if not model.has(symbol):
        from .catalog import suggest

        raise UserError(f"unknown symbol CONFIG_{symbol}{suggest(symbol, model.names())}",
                        "check the name")
    req = plan.profile.requirements.get(symbol)
    wanted = args.want or (req.fragment_value() if req else None) or "y"
    exp = model.explain(symbol, wanted)
    print(f"CONFIG_{symbol}={model.value(symbol)} ({model.info(symbol).location})")  # type: ignore[union-attr]
    if req:
        print(f"  the profile requires {req.wanted()} ({req.origin}): {req.why}")
    if model.value(symbol) == wanted:
        print(f"  it is {wanted}, as wanted")
        return EXIT_OK
    for b in exp.chain:
        print(f"  {'  ' * b.depth}<- {b.detail} [{b.source}]")
    print(f"  fix: {exp.fix}")
    return EXIT_OK


def cmd_patches(args: argparse.Namespace) -> int:
    """Would the profile's patch queues apply to this kernel? Patch by patch, without building."""
    from . import patches
    from .source import materialise

    plan = _plan(args)
    if not plan.profile.patches:
        print(f"profile {plan.profile.name} has no patch queues")
        return EXIT_OK
    tree = materialise(plan.source, plan.paths.root)
    results = patches.check(tree.path, plan.profile.patches, tree.version)
    for r in results:
        print(f"{r.status:8} {r.patch.label}" + (f": {r.detail}" if r.detail else ""))
    failed = [r for r in results if r.status == "fails"]
    print(f"{tree.version_text}: {sum(r.status == 'applies' for r in results)} apply, "
          f"{len(failed)} fail, {sum(r.status == 'skipped' for r in results)} skipped")
    if failed:
        raise UserError(f"{failed[0].patch.label} does not apply to {tree.version_text}"
                        + (f" (+{len(failed) - 1} more)" if len(failed) > 1 else ""),
                        "refresh the patches, or gate them with Kbuild-Py-Kernel:")
    return EXIT_OK


def cmd_profiles(args: argparse.Namespace) -> int:
    from . import catalog
    from .profile import load_profile

    for name in catalog.names("profiles"):
        p = load_profile(name)
        print(f"{name:20} {p.arch:8} {p.toolchain:12} base={p.base:18} "
              f"{len(p.requirements)} options, {len(p.waivers)} waivers")
    return EXIT_OK


def _lock(plan: BuildPlan) -> AbstractContextManager[None]:
    from .pipeline import locked

    return locked(plan)


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line like every other error (exit 2)."""

    def error(self, message: str) -> NoReturn:
        print(f"kbuild-py: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(EXIT_USER)


def _positive(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"invalid {'whole-number' if kind is int else 'number'} value: {text!r}"
            ) from None
        if kind is int and value < 1:
            raise argparse.ArgumentTypeError(f"must be 1 or more, not {text}")
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
        return value
    return parse


class _Version(argparse.Action):
    """--version: computed only when asked (it may run git)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS,
                 default: str = argparse.SUPPRESS, help: str | None = None) -> None:
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        from .about import describe

        print(describe())
        parser.exit()


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="kbuild-py", description=__doc__)
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.add_argument("--version", action=_Version, help="print kbuild-py's version and commit")
    sub = p.add_subparsers(dest="command", required=True)

    def add(name: str, fn: Callable[[argparse.Namespace], int], help: str,
            kernel: bool = True) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help)
        sp.set_defaults(fn=fn)
        if name != "profiles":
            sp.add_argument("--profile", "-p", required=True,
                            help="profile name (profiles/<name>.yaml) or path to a YAML file")
            sp.add_argument("--out", default=os.environ.get("KBUILD_PY_OUT", "out"),
                            help="output folder (default: out)")
        if kernel:
            sp.add_argument("--kernel", help="kernel tarball, tree, or URL#sha256=<hex> "
                            "(default: the profile's source)")
        return sp

    add("resolve", cmd_resolve, "write the merged fragment, cmdline and sysctl files")
    sp = add("export", cmd_export, "write the profile for another build system: fragment, "
             "patches, cmdline, sysctl and the format's recipes (docs/INTEGRATION.md)")
    sp.add_argument("--format", required=True, metavar="FORMAT",
                    help="plain (merge_config.sh), yocto or kleaf (export/formats.yaml)")
    sp = add("config", cmd_config, "configure and verify (no build)")
    sp.add_argument("--report-only", action="store_true", help="report unmet requirements, "
                    "exit 0")
    sp = add("build", cmd_build, "configure, verify, build and collect")
    sp.add_argument("--report-only", action="store_true")
    sp.add_argument("--jobs", "-j", type=_positive(int))
    sp.add_argument("--no-ccache", dest="ccache", action="store_false",
                    help="compile everything, not through ccache")
    sp.add_argument("--make-var", action="append", metavar="NAME=VALUE",
                    help="a make variable for the build, e.g. W=1 or LOCALVERSION=-acme "
                    "(repeatable; not one kbuild-py sets itself)")
    sp.add_argument("--hosts", default="", help="distcc hosts for the compiles (DISTCC_HOSTS "
                    "syntax, e.g. 'localhost/2 buildbox/8')")
    sp = add("boot", cmd_boot, "boot the built kernel in QEMU and run LKDTM, one boot per test",
             kernel=False)
    sp.add_argument("--test", action="append", help="run only this LKDTM test (repeatable)")
    sp.add_argument("--jobs", "-j", type=_positive(int),
                    help="boots in parallel (default: cores)")
    sp.add_argument("--cmdline", default="", help="extra kernel parameters for every boot")
    sp.add_argument("--timeout", type=_positive(float), default=30,
                    help="seconds per boot (default 30)")
    sp.add_argument("--report-only", action="store_true")
    sp = add("check", cmd_check, "check an existing .config against a profile")
    sp.add_argument("--config", required=True, help=".config to check (.xz is read directly)")
    sp.add_argument("--version", help="the config's kernel version, for a config without "
                    "the header Kbuild writes (a fragment)")
    sp.add_argument("--no-find-kernel", dest="find_kernel", action="store_false",
                    help="without --kernel, do not look for an installed tree of the config's "
                    "kernel (no explanations; fast)")
    sp.add_argument("--report-only", action="store_true")
    sp.add_argument("--verbose", "-v", action="store_true")
    sp.add_argument("--reports", metavar="DIR", help="also write report.{json,txt,xml} here")
    sp = add("explain", cmd_explain, "why a symbol has its value in the configured kernel")
    sp.add_argument("symbol")
    sp.add_argument("--want", help="the value you want (default: the profile's, else y)")
    sp = add("patches", cmd_patches, "check that the profile's patch queues apply (no build)")
    sp.add_argument("--check", action="store_true", help="the only mode: check, patch by patch")
    add("profiles", cmd_profiles, "list the profiles", kernel=False)
    return p


def debug_wanted(args: argparse.Namespace) -> bool:
    """--debug, or KBUILD_PY_DEBUG set to 1, yes, true or on."""
    flag = os.environ.get("KBUILD_PY_DEBUG", "").strip().lower()
    return bool(args.debug) or flag in ("1", "yes", "true", "on", "y")


def report(e: KbuildError) -> int:
    """The one line of an error on stderr; its exit code."""
    print(f"kbuild-py: {e.kind}: {e.one_line()}", file=sys.stderr, flush=True)
    return e.exit_code


def run(fn: Callable[[], int], debug: bool, doing: str, signals: bool = True) -> int:
    """Run a command, mapping every way it can fail to one line and an exit code. With
    ``signals``, Ctrl-C, SIGTERM and SIGHUP end it at once (as an Interrupted error)."""
    import contextlib

    from . import interrupt

    try:
        with interrupt.handled() if signals else contextlib.nullcontext():
            return int(fn())
    except KbuildError as e:
        if debug:
            raise
        return report(e)
    except KeyboardInterrupt:
        if debug:
            raise
        return report(interrupt.interrupted(2))
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as a Unix tool does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except OSError as e:
        if debug:
            raise
        return report(from_os_error(e, doing))
    except RecursionError:
        if debug:
            raise
        return report(UserError(f"{doing}: the input nests too deeply", "simplify it"))
    except MemoryError:
        return report(InfraError(f"{doing}: out of memory", "check the input's size"))
    except Exception as e:  # a bug: still one line, and the way to see more
        if debug:
            raise
        return report(InfraError(f"{doing}: internal error: {type(e).__name__}: {e}",
                                 "rerun with --debug and report it"))


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return run(lambda: int(args.fn(args)), debug_wanted(args), f"kbuild-py {args.command}")


if __name__ == "__main__":
    sys.exit(main())
