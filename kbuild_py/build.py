"""build: `make O=out/<p>/build -jN` with the toolchain's variables, reproducibly."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from . import kbuild
from .errors import InfraError, UserError
from .fsutil import replaced_folder, sha256_text, user_path
from .kconfig.dotconfig import read_bytes, read_config
from .kmake import make_argv, plain_path, run_make
from .plan import BuildPlan
from .signed import Signer
from .source import KernelTree
from .toolchain import make_variables
from .ui import Progress

_STEP = re.compile(r"^\s+(CC|AS|LD|AR|HOSTCC|HOSTLD|OBJCOPY|GEN|GZIP|XZ)\s")
_COMPILE = re.compile(r"^\s+(CC|AS|TEST)\s")  # what goes through $(CC), and so to distcc
# distcc's own words when a compile it was given ran here after all (refused or failed remotely).
_DISTCC_LOCAL = re.compile(r"^distcc\[\d+\] .*(running|retrying) locally")


@dataclass(frozen=True)
class Built:
    image: Path
    vmlinux: Path
    system_map: Path
    modules: bool
    argv: tuple[str, ...]
    ccache: dict[str, int] | None = None
    seed: str = ""  # where the randstruct / latent-entropy seed came from
    distcc: dict[str, str | int] | None = None  # hosts, compiles, ran_locally
    signing_key: str = ""  # where the module-signing key came from ("" without MODULE_SIG)
    environment: dict[str, str] | None = None  # what reached make besides its variables


def ccache_stats() -> dict[str, int]:
    """ccache's counters (ccache >= 4: --print-stats is machine-readable)."""
    r = subprocess.run([kbuild.interface().wrappers["ccache"]["command"], "--print-stats"],
                       capture_output=True, text=True, check=False)
    out: dict[str, int] = {}
    for line in r.stdout.splitlines():
        key, _, value = line.partition("\t")
        if value.strip().isdigit():
            out[key] = int(value)
    return out


def _ccache_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    keys = ("direct_cache_hit", "preprocessed_cache_hit", "cache_miss")
    return {k: after.get(k, 0) - before.get(k, 0) for k in keys}


@dataclass(frozen=True)
class BuildTime:
    date: datetime  # of what kbuild-py packs, and of the kernel unless ``text`` was given
    text: str  # the timestamp Kbuild writes into the kernel
    origin: str  # where they came from, for the manifest


# A timestamp text Kbuild quotes into a shell command line (init/Makefile): date words only.
_STAMP_TEXT = re.compile(r"[A-Za-z0-9 :,.+-]{1,64}")


def callers_time() -> tuple[int | None, str]:
    """The caller's epoch (SOURCE_DATE_EPOCH) and timestamp text (KBUILD_BUILD_TIMESTAMP),
    checked: Kbuild quotes the text into a shell command line."""
    names = kbuild.interface().build_identity
    epoch = os.environ.get(names["epoch"], "")
    if epoch and not re.fullmatch(r"[0-9]{1,11}", epoch):
        raise UserError(f"{names['epoch']}={epoch[:40]!r}: not a number of seconds since 1970",
                        f"unset it, or give one, e.g. {names['epoch']}=1700000000")
    text = os.environ.get(names["timestamp"], "")
    if text and not _STAMP_TEXT.fullmatch(text):
        raise UserError(f"{names['timestamp']}={text[:40]!r}: not a date Kbuild can quote "
                        "(letters, digits, spaces and :,.+- only, up to 64)",
                        "give one like 'Thu Jan 1 00:00:00 UTC 2026', or unset it")
    return (int(epoch) if epoch else None), text


def build_time(tree: KernelTree) -> BuildTime:
    """The build's date: the caller's epoch variable (SOURCE_DATE_EPOCH) when set, else the
    source's (its Makefile's mtime, as the tarball recorded it); the kernel's timestamp text
    is the caller's KBUILD_BUILD_TIMESTAMP when set, else that date."""
    names = kbuild.interface().build_identity
    epoch, text = callers_time()
    if epoch is not None:
        date, origin = datetime.fromtimestamp(epoch, UTC), names["epoch"]
    else:
        date = datetime.fromtimestamp(int((tree.path / "Makefile").stat().st_mtime), UTC)
        origin = "the source's date"
    if text:
        origin = f"{names['timestamp']} (the kernel's), {origin} (what kbuild-py packs)"
    return BuildTime(date, text or date.strftime("%a %b %d %H:%M:%S UTC %Y"), origin)


def reproducible_env(tree: KernelTree) -> dict[str, str]:
    """Fixed build identity: user, host and number fixed, the timestamp of build_time."""
    names = kbuild.interface().build_identity
    return {names["timestamp"]: build_time(tree).text, **names["fixed"]}


SEED_SECRET_ENV = "KBUILD_PY_RANDSTRUCT_SECRET"


def build_seed(plan: BuildPlan, tree: KernelTree) -> tuple[str, str]:
    """The build's secret-or-derived seed, and where it came from (for the manifest).

    KBUILD_PY_RANDSTRUCT_SECRET keeps the structure layout private to whoever holds it while
    still giving reproducible builds; without it the seed follows from public inputs.
    """
    secret = os.environ.get(SEED_SECRET_ENV, "")
    seed = sha256_text(f"kbuild-py seed|{plan.profile.name}|{tree.identity}|{secret}")
    origin = ("derived from KBUILD_PY_RANDSTRUCT_SECRET, the profile and the source" if secret
              else "derived from the profile and the source (public: set "
              "KBUILD_PY_RANDSTRUCT_SECRET to keep the layout private)")
    return seed, origin


def seed_randstruct(build_dir: Path, tree: KernelTree, seed: str) -> None:
    """Give Kbuild the structure-randomisation seed it would otherwise draw from /dev/urandom in
    every clean build (Documentation/kbuild/reproducible-builds.rst): the seed file, its hash
    header, and the saved command that makes Kbuild consider them up to date.

    Objects built with another seed are never mixed in: a build folder holding a different
    seed is emptied (but for its .config) first.
    """
    names = kbuild.interface().seed
    script = tree.path.resolve() / names["script"]  # Kbuild's srctree is the real path
    if not script.is_file():
        return
    seed_file = build_dir / names["file"]
    if seed_file.is_file():
        if seed_file.read_text().strip() == seed:
            return
        for child in build_dir.iterdir():
            if child.name == ".config":
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    header = build_dir / names["header"]
    seed_file.parent.mkdir(parents=True, exist_ok=True)
    header.parent.mkdir(parents=True, exist_ok=True)
    header.write_text(f'#define RANDSTRUCT_HASHED_SEED "{sha256_text(seed)}"\n')
    (seed_file.parent / f".{seed_file.name}.cmd").write_text(
        f"savedcmd_{names['file']} := sh {script} {names['file']} ./{names['header']}\n")
    seed_file.write_text(seed + "\n")


def check_seed(build_dir: Path, seed: str) -> None:
    """The seed must have stuck: had Kbuild drawn its own, the build would not be reproducible
    (and ccache would miss everything built with the randstruct plugin)."""
    seed_file = build_dir / kbuild.interface().seed["file"]
    if seed_file.is_file() and seed_file.read_text().strip() != seed:
        raise InfraError(f"Kbuild replaced the randstruct seed in {seed_file}: this build is "
                         "not reproducible", f"delete {build_dir} and build again")


MODULE_KEY_ENV = "KBUILD_PY_MODULE_SIG_KEY"
_MAKE_UNSAFE = re.compile(r"[\s$#:%\"'\\]")


@dataclass(frozen=True)
class SigningKey:
    variables: dict[str, str]  # make variables that point Kbuild at the key
    origin: str  # for the manifest
    digest: str  # sha256 of the key file ("" when Kbuild generates one)


def signing_key(config: dict[str, str]) -> SigningKey:
    """The module-signing key: the vendor's (KBUILD_PY_MODULE_SIG_KEY, a PEM file with the
    private key and its X.509 certificate) or one Kbuild generates for this build.

    The vendor key is given to make as the key symbol's variable on the command line, which
    overrides include/config/auto.conf for Kbuild's makefiles only: the .config, autoconf.h and
    so every object stay the same, and Kbuild no longer generates a key. A generated key makes
    every clean build differ (vmlinux embeds its certificate, each module its signature).
    """
    names = kbuild.interface().modules
    if config.get(names["signed_by"]) != "y":
        return SigningKey({}, "", "")
    name = os.environ.get(MODULE_KEY_ENV, "")
    if not name:
        key = config.get(names["key_symbol"], "")
        if key == names["generated_key"]:
            return SigningKey({}, f"generated by Kbuild for this build ({key} in the build "
                              f"folder): not reproducible; set {MODULE_KEY_ENV}", "")
        return SigningKey({}, f"{key} (the profile's {names['key_symbol']})", "")
    path = user_path(name, f"{MODULE_KEY_ENV}=").resolve()
    if _MAKE_UNSAFE.search(str(path)) or not plain_path(path):
        raise UserError(f"{MODULE_KEY_ENV}={name}: the path holds a space or one of $#:%\"'\\, "
                        "which Kbuild's makefiles cannot carry", "move the key to a plain path")
    text = _key_text(path)
    if "PRIVATE KEY-----" not in text or "-----BEGIN CERTIFICATE-----" not in text:
        raise UserError(f"{MODULE_KEY_ENV}={name}: not a PEM file with both a private key and "
                        "an X.509 certificate", "make one as Documentation/admin-guide/"
                        "module-signing.rst says (openssl req -x509 ... -keyout K -out K)")
    digest = sha256_text(text)
    return SigningKey({kbuild.make_symbol(names["key_symbol"]): str(path)},
                      f"{MODULE_KEY_ENV} (key file sha256 {digest[:16]}...)", digest)


def _key_text(path: Path) -> str:
    """The key file's text: a regular file of at most 1 MiB (not a FIFO or a device)."""
    try:
        raw = read_bytes(path, "PEM key file", limit=1 << 20)
    except UserError as e:
        raise UserError(f"{MODULE_KEY_ENV}={path}: {e.message.split(': ', 1)[-1]}",
                        "point it at a PEM file holding the private key and its certificate"
                        ) from None
    return raw.decode("ascii", errors="replace")


def preflight() -> None:
    """What a build takes from the caller's environment, checked before any step runs: the
    timestamp and epoch, and what is appended to make variables (KCFLAGS)."""
    callers_time()
    for name in kbuild.interface().append:
        kbuild.require_safe_value(name, kbuild.appended(name, ""))


def secrets_digest(plan: BuildPlan) -> str:
    """A digest of what a build takes from outside its inputs (the seed secret, the signing
    key, what the caller appends to KCFLAGS): a change rebuilds. Only hashes of hashes leave
    this function."""
    secret = os.environ.get(SEED_SECRET_ENV, "")
    key = os.environ.get(MODULE_KEY_ENV, "")
    key_text = ""
    if key:
        try:
            key_text = _key_text(user_path(key, f"{MODULE_KEY_ENV}="))
        except UserError:
            key_text = "unreadable"  # the build itself says so, in one line
    appended = "|".join(f"{name}={kbuild.appended(name, '')}" for name in kbuild.interface().append)
    preflight()  # SCons computes this before any step runs: bad input stops it there
    stamp = "|".join(map(str, callers_time())) + f"|{plan.make_vars}"
    return sha256_text(f"{sha256_text(secret)}|{key}|{sha256_text(key_text)}|{appended}|{stamp}")


def modules_enabled(config: dict[str, str]) -> bool:
    return config.get(kbuild.interface().modules["enabled_by"]) == "y"


def targets(plan: BuildPlan, config: dict[str, str]) -> list[str]:
    out = [plan.arch.image_target, "vmlinux"]
    if modules_enabled(config):
        out.append("modules")
    return out + list(plan.profile.dtbs)


def built_dtbs(plan: BuildPlan) -> dict[str, Path]:
    """The device trees a build makes, by their name in dist/ (dtbs/<vendor>/<board>.dtb)."""
    return {f"dtbs/{dtb}": plan.paths.build.resolve() / plan.arch.dts / dtb
            for dtb in plan.profile.dtbs}


def check_dtbs(plan: BuildPlan, tree: KernelTree) -> None:
    """Every device tree the profile asks for has its source in this tree (before make): a
    .dts, or a composite (`<board>-dtbs := base.dtb overlay.dtbo` in the folder's Makefile)."""
    for dtb in plan.profile.dtbs:
        dts = Path(plan.arch.dts) / Path(dtb).with_suffix(".dts")
        makefile = tree.path / dts.parent / "Makefile"
        composite = re.compile(rf"^{re.escape(dts.stem)}-dtbs\s*[:+]?=", re.M)
        if not (tree.path / dts).is_file() and not (
                makefile.is_file() and composite.search(makefile.read_text(errors="replace"))):
            raise UserError(f"{plan.profile.path}: dtbs: {dtb}: no {dts} in linux "
                            f"{tree.version_text}", "check the name against the tree's "
                            f"{plan.arch.dts}, or drop it for this kernel")


@dataclass(frozen=True)
class BuildCommand:
    """The make that builds the kernel: argv, the environment it adds, and what it took."""

    argv: list[str]
    env: dict[str, str]
    variables: dict[str, str]
    key: SigningKey
    seed: str
    seed_origin: str
    ccache: bool


def build_command(plan: BuildPlan, tree: KernelTree, config: dict[str, str]) -> BuildCommand:
    """The build's make command for this configured kernel, without running anything."""
    build_dir = plan.paths.build.resolve()
    variables = make_variables(plan.toolchain, plan.arch)
    key = signing_key(config)
    variables.update(key.variables)
    variables.update(dict(plan.make_vars))  # the user's W=1, LOCALVERSION=... (checked in plan)
    env = reproducible_env(tree)
    seed, seed_origin = build_seed(plan, tree)
    # e.g. gcc's latent_entropy plugin needs -frandom-seed; the caller's KCFLAGS come after
    own = plan.toolchain.seed_flags.format(seed=seed[:16]) if plan.toolchain.seed_flags else ""
    kcflags = kbuild.appended("KCFLAGS", own)
    if kcflags:
        variables["KCFLAGS"] = kcflags
    wrappers = kbuild.interface().wrappers  # how ccache and distcc wrap CC (data)
    ccache, remote = wrappers["ccache"], wrappers["distcc"]
    use_ccache = plan.ccache and shutil.which(ccache["command"]) is not None
    cc = plan.toolchain.tools["CC"]
    if plan.distcc_hosts:
        if shutil.which(remote["command"]) is None:
            raise InfraError("distcc hosts given, but distcc is not installed",
                             "apt-get install distcc, or drop hosts=")
        env[remote["hosts_variable"]] = plan.distcc_hosts
    if use_ccache:  # the same compiler through ccache; its misses go to distcc with hosts
        variables["CC"] = f"{ccache['command']} {cc}"
        env.update(ccache["env"])
        if plan.distcc_hosts:
            env.update(ccache["then_distcc"])
    elif plan.distcc_hosts:
        variables["CC"] = f"{remote['command']} {cc}"
    argv = make_argv(tree.path, build_dir, variables, targets(plan, config), plan.jobs)
    return BuildCommand(argv, env, variables, key, seed, seed_origin, use_ccache)


@dataclass(frozen=True)
class StepsRecord:
    """How many steps a whole build of this profile on this tree took last time: the total of
    the next whole build's progress bar (kept signed in the cache folder, which outlives
    `scons -c`)."""

    path: Path
    signer: Signer

    def total(self) -> int | None:
        text = self.signer.load_text(self.path)
        return int(text) if text and text.strip().isdigit() else None

    def keep(self, steps: int) -> None:
        if steps:
            self.signer.dump(self.path, str(steps))


def steps_record(plan: BuildPlan, tree: KernelTree) -> StepsRecord:
    key = sha256_text(f"{plan.profile.name}|{tree.identity}|{plan.arch.name}")[:24]
    return StepsRecord(plan.paths.cache / "steps" / key, Signer(plan.paths.cache))


def build(plan: BuildPlan, tree: KernelTree) -> Built:
    build_dir = plan.paths.build.resolve()
    config = read_config(build_dir / ".config")
    check_dtbs(plan, tree)
    made = build_command(plan, tree, config)
    argv, env, variables, key = made.argv, made.env, made.variables, made.key
    seed_randstruct(build_dir, tree, made.seed)
    before = ccache_stats() if made.ccache else {}
    plan.paths.log.unlink(missing_ok=True)
    counts = {"compiles": 0, "ran_locally": 0}

    def on_line(line: str) -> None:
        if _STEP.match(line):
            shown.update(1)
        if _COMPILE.match(line):
            counts["compiles"] += 1
        elif _DISTCC_LOCAL.match(line):
            counts["ran_locally"] += 1

    clean = not (build_dir / "vmlinux").exists()  # a whole build: its count is a total
    steps = steps_record(plan, tree)
    with Progress(f"build {plan.profile.name}", "steps (compile, link, ...)",
                  total=steps.total() if clean else None) as shown:
        run_make(argv, plan.paths.log, env=env, on_line=on_line,
                 what=f"build of {plan.profile.name}")
    if clean:
        steps.keep(shown.done)
    stats = _ccache_delta(before, ccache_stats()) if made.ccache else None
    check_seed(build_dir, made.seed)
    modules = modules_enabled(config)
    if modules:
        install_modules(plan, tree, variables, env)
    else:
        shutil.rmtree(plan.paths.modules, ignore_errors=True)
    distcc: dict[str, str | int] | None = None
    if plan.distcc_hosts:
        distcc = {"hosts": plan.distcc_hosts, **counts}
        if counts["ran_locally"]:
            print(f"kbuild-py: warning: distcc: {counts['ran_locally']} of {counts['compiles']} "
                  "compiles ran here, not on the hosts (refused or failed there; distccd refuses "
                  f"GCC plugins, -fplugin=): see {plan.paths.log}", file=sys.stderr)
    return Built(build_dir / plan.arch.image_path, build_dir / "vmlinux",
                 build_dir / "System.map", modules, tuple(shown_argv(argv, key)), stats,
                 made.seed_origin, distcc, key.origin, {**kbuild.environment(), **env})


def shown_argv(argv: list[str], key: SigningKey) -> list[str]:
    """The make command as recorded (build stamp, manifest): a vendor key by its variable's
    name, not by where it lies on this machine."""
    given = {f"{k}={v}": f"{k}=${MODULE_KEY_ENV}" for k, v in key.variables.items()}
    return [given.get(a, a) for a in argv]


def install_modules(plan: BuildPlan, tree: KernelTree, variables: dict[str, str],
                    env: dict[str, str]) -> Path:
    """`make modules_install` (which signs them, with MODULE_SIG_ALL) into out/<p>/modules,
    replaced whole: a killed install leaves only a partial that the next run sweeps."""
    dest = plan.paths.modules
    with replaced_folder(dest) as work:
        variables = {**variables, "INSTALL_MOD_PATH": str(work.resolve())}
        argv = make_argv(tree.path, plan.paths.build.resolve(), variables, ["modules_install"],
                         plan.jobs)
        run_make(argv, plan.paths.log, env=env, what=f"modules_install of {plan.profile.name}")
    return dest
