"""The profiles themselves: KSPP coverage, loading and resolving on both kernels, documentation.

The KSPP reference is read from the per-arch .config files in shared/reference/kspp/ rather than
from the research table (kspp-recommended-6.12-status.tsv): the .config files are KSPP's own
list, one complete file per arch, with exact values (including "is not set") and nothing
derived; whether a symbol exists in 6.12 is decided here by the real Kconfig tree, not by the
table's precomputed column. Command-line and sysctl recommendations come from
kspp-cmdline-x86-64.txt and kspp-sysctl.txt.

No symbol names are hard-coded here except the two the android profile must resolve to
(the knowledge itself lives in profiles/).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from kbtest import REPO, TEST_OUT, kbuild_py
from kbuild_py import catalog
from kbuild_py.profile import Profile, Requirement, load_profile
from kbuild_py.resolve import resolve
from kbuild_py.toolchain import load_toolchain
from kbuild_py.verify import satisfied
from kbuild_py.yamlio import load_document

pytestmark = pytest.mark.kernel

REFERENCE = Path(REPO).parent / "shared" / "reference"
KSPP_KCONFIG = {"x86_64": "kspp-kconfig-x86-64.config", "arm64": "kspp-kconfig-arm64.config"}
TARGETS = ["android-arm64", "automotive-arm64", "server-x86_64"]
PROFILES = sorted(p.stem for p in (REPO / "profiles").glob("*.yaml"))
LAYERS = sorted(p.stem for p in (REPO / "profiles" / "layers").glob("*.yaml"))
DOC = REPO / "docs" / "PROFILES.md"


# --------------------------------------------------------------------------- reference data


def _reference(name: str) -> Path:
    path = REFERENCE / "kspp" / name
    if not path.is_file():
        pytest.skip(f"KSPP reference {path} not present (shared/reference is not checked out)")
    return path


def kspp_kconfig(arch: str) -> list[tuple[str, str]]:
    """(symbol, value) in file order; "n" for '# CONFIG_X is not set', quotes stripped."""
    out = []
    for line in _reference(KSPP_KCONFIG[arch]).read_text().splitlines():
        line = line.strip()
        m = re.fullmatch(r"CONFIG_([A-Z0-9_]+)=(.*)", line)
        if m:
            out.append((m[1], m[2].strip('"')))
            continue
        m = re.fullmatch(r"# CONFIG_([A-Z0-9_]+) is not set", line)
        if m:
            out.append((m[1], "n"))
    assert len(out) > 100, f"{KSPP_KCONFIG[arch]}: too few settings parsed ({len(out)})"
    return out


def kspp_cmdline() -> list[tuple[str, str | None]]:
    """(name, value or None for a flag); a name may repeat (slub_debug=ZF slub_debug=P)."""
    words = _reference("kspp-cmdline-x86-64.txt").read_text().split()
    return [(w.split("=", 1)[0], w.split("=", 1)[1] if "=" in w else None) for w in words]


def kspp_sysctl() -> list[tuple[str, str]]:
    out = []
    for line in _reference("kspp-sysctl.txt").read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            name, value = line.split("=", 1)
            out.append((name.strip(), " ".join(value.split())))
    return out


# --------------------------------------------------------------------------- helpers


def _number(text: str) -> int | None:
    try:
        return int(text, 0)
    except ValueError:
        return None


def accepts(req: Requirement, value: str) -> bool:
    """Would KSPP's value satisfy the requirement? Integers compare by value (KSPP writes the
    hex SysRq mask in decimal)."""
    if satisfied(req, value):
        return True
    if req.value is None:
        return False
    a, b = _number(req.value), _number(value)
    return a is not None and a == b


def by_any_name(profile: Profile) -> dict[str, Requirement]:
    """Requirements by current name and by every older name (renamed_from)."""
    out: dict[str, Requirement] = {}
    for req in profile.requirements.values():
        out[req.symbol] = req
        for rename in req.renamed_from:
            out[rename.name] = req
    return out


def waivers_by_any_name(profile: Profile) -> dict[str, Any]:
    """Waivers by the waived requirement's current name and by each of its older names."""
    out: dict[str, Any] = {}
    for waiver in profile.waivers:
        out[waiver.symbol] = waiver
        for rename in getattr(waiver.replaced, "renamed_from", ()):
            out[rename.name] = waiver
    return out


def param_decisions(profile: Profile, kind: str) -> dict[str, tuple[str, str]]:
    """{name: (waive|override, reason)} for cmdline or sysctl entries of every merged file.

    The engine records waivers and overrides of Kconfig options in Profile.waivers, but not
    those of cmdline and sysctl parameters (it only applies them), so they are read from the
    files here.
    """
    out: dict[str, tuple[str, str]] = {}
    for path in profile.files:
        entries = load_document(path).data.get(kind) or {}
        for name, raw in entries.items():
            for key in ("waive", "override"):
                if key in raw:
                    out[name] = (key, str(raw[key]).strip())
    return out


def family(profile: Profile) -> tuple[str, str]:
    tc = load_toolchain(profile.toolchain)
    return (tc.family, tc.name)


# --------------------------------------------------------------------------- KSPP coverage


@pytest.mark.parametrize("name", TARGETS)
def test_every_kspp_kconfig_recommendation_is_required_or_waived(  # type: ignore[no-untyped-def]
        name: str, tree612, model_for) -> None:
    profile = load_profile(name)
    recommendations = kspp_kconfig(profile.arch)
    model = model_for(tree612, profile.arch, profile.toolchain)
    required = by_any_name(profile)
    waivers = waivers_by_any_name(profile)
    resolved = {r.requirement.symbol: r for r in
                resolve(profile, tree612.version, family(profile), model)}

    problems = []
    checked = 0
    for symbol, value in recommendations:
        if not model.has(symbol):
            continue  # gone before 6.12, newer than 6.12, or not on this arch
        checked += 1
        req = required.get(symbol)
        waiver = waivers.get(symbol)
        if req is None:
            if waiver is None or waiver.replacement is not None:
                problems.append(f"{symbol}={value}: neither required nor waived")
            continue
        overridden = waiver is not None and waiver.replacement is not None
        if not accepts(req, value) and not overridden:
            problems.append(f"{symbol}: KSPP asks {value}, the profile requires {req.wanted()} "
                            f"({req.origin}) without an override")
        if not overridden and req.ref != "KSPP":
            problems.append(f"{symbol}: a KSPP recommendation without ref: KSPP ({req.origin})")
        r = resolved[req.symbol]
        if not r.applicable and r.reason.startswith("only for kernel"):
            problems.append(f"{symbol} exists in 6.12 but is gated out of it: {r.reason} "
                            f"({req.origin})")
    assert checked > 80, f"only {checked} KSPP symbols found in the 6.12 tree"
    assert not problems, f"{name}:\n  " + "\n  ".join(problems)


HARDENING_FRAGMENTS = {
    "x86_64": ["kernel/configs/hardening.config", "arch/x86/configs/hardening.config"],
    "arm64": ["kernel/configs/hardening.config", "arch/arm64/configs/hardening.config"],
}


@pytest.mark.parametrize("name", TARGETS)
def test_every_option_of_the_kernels_own_hardening_config_is_required_or_waived(  # type: ignore[no-untyped-def]
        name: str, tree73, model_for) -> None:
    """7.3's own hardening fragments (maintained by KSPP in the tree), read from the tree: each
    option that exists for the target's arch is required with that value, or waived with a
    reason, under its 7.3 name."""
    from kbuild_py.kconfig.dotconfig import assignments

    profile = load_profile(name)
    model = model_for(tree73, profile.arch, profile.toolchain)
    kinds = model.symbol_table().kinds()
    required = by_any_name(profile)
    waivers = waivers_by_any_name(profile)
    resolved = {r.requirement.symbol: r for r in
                resolve(profile, tree73.version, family(profile), model)}
    problems, checked = [], 0
    for fragment in HARDENING_FRAGMENTS[profile.arch]:
        for symbol, value in assignments(tree73.path / fragment, kinds):
            if not model.has(symbol):
                continue
            checked += 1
            req = required.get(symbol)
            waiver = waivers.get(symbol)
            if waiver is not None and waiver.replacement is None:
                assert waiver.reason.strip(), f"{symbol}: a waiver without a reason"
                continue
            if req is None:
                problems.append(f"{symbol}={value} ({fragment}): neither required nor waived")
            elif not accepts(req, value.strip('"')) and waiver is None:
                problems.append(f"{symbol}: {fragment} asks {value}, the profile requires "
                                f"{req.wanted()} ({req.origin}) without an override")
            elif resolved[req.symbol].reason.startswith("only for kernel"):
                problems.append(f"{symbol} exists in 7.3 but is n/a there: "
                                f"{resolved[req.symbol].reason} ({req.origin})")
    assert checked > 40, f"only {checked} options of the hardening fragments found in 7.3"
    assert not problems, f"{name}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("name", TARGETS)
def test_every_kspp_cmdline_and_sysctl_recommendation_is_set_or_waived(name: str) -> None:
    profile = load_profile(name)
    problems = []
    for kind, recommendations, present in (
            ("cmdline", kspp_cmdline(), profile.cmdline),
            ("sysctl", kspp_sysctl(), profile.sysctl)):
        decided = param_decisions(profile, kind)
        wanted: dict[str, set[str | None]] = {}
        for param, value in recommendations:
            wanted.setdefault(param, set()).add(value)
        for param, values in wanted.items():
            how = decided.get(param)
            if param not in present:
                if not how or how[0] != "waive":
                    problems.append(f"{kind} {param}: neither set nor waived")
                continue
            value = present[param].value
            norm = None if value is None else " ".join(value.split())
            if norm not in values and not (how and how[0] == "override"):
                problems.append(f"{kind} {param}: KSPP asks {sorted(map(str, values))}, the "
                                f"profile sets {value} without an override")
            if not present[param].why.strip():
                problems.append(f"{kind} {param}: blank why")
        for param, (key, reason) in decided.items():
            if not reason:
                problems.append(f"{kind} {param}: {key} without a reason")
    assert not problems, f"{name}:\n  " + "\n  ".join(problems)


# --------------------------------------------------------------------------- loading, resolving


def tree_for(name: str, tree):  # type: ignore[no-untyped-def]
    """The tree the profile is built from: its patch queues applied (symbols they add exist)."""
    from kbuild_py.plan import make_plan
    from kbuild_py.tree import patched

    return patched(make_plan(name, TEST_OUT), tree)


@pytest.mark.parametrize("name", PROFILES)
def test_profile_loads_and_resolves_on_7_3_and_6_12(name: str, tree73, tree612, model_for) -> None:  # type: ignore[no-untyped-def]
    profile = load_profile(name)
    assert profile.kernel.max == "7.3" and profile.kernel.min == "6.1"
    for req in profile.requirements.values():
        assert req.why.strip(), f"{req.symbol}: blank why ({req.origin})"
    for w in profile.waivers:
        assert w.reason.strip(), f"{w.symbol}: waiver without a reason ({w.origin})"
    for tree in (tree73, tree612):
        model = model_for(tree_for(name, tree), profile.arch, profile.toolchain)
        # Strict on the newest supported kernel (7.3): an unknown symbol raises.
        resolved = resolve(profile, tree.version, family(profile), model)
        assert any(r.applicable for r in resolved)
        # Outside the newest kernel a missing symbol is n/a, with the reason, never dropped.
        assert all(r.applicable or r.reason for r in resolved)


@pytest.mark.parametrize("name", PROFILES)
def test_profile_resolves_on_6_1(name: str, tree61, model_for) -> None:  # type: ignore[no-untyped-def]
    profile = load_profile(name)
    model = model_for(tree_for(name, tree61), profile.arch, profile.toolchain)
    resolved = resolve(profile, tree61.version, family(profile), model)
    renamed = [r for r in resolved if r.applicable and r.symbol != r.requirement.symbol]
    for r in renamed:
        assert model.has(r.symbol), f"{r.requirement.symbol}: old name {r.symbol} not in 6.1"


@pytest.mark.parametrize("name", TARGETS)
def test_target_configures_with_kbuild_and_every_requirement_sticks(name: str, tree612) -> None:  # type: ignore[no-untyped-def]
    """The real targets through Kbuild's own conf (a full build is an hour, outside CI): every
    required option sticks in the .config Kbuild writes, and kconfiglib, which explains any
    that would not, predicts that .config exactly."""
    r = kbuild_py("config", "--profile", name, "--out", str(TEST_OUT))
    assert r.returncode == 0, r.stderr
    report = json.loads((TEST_OUT / name / "report.json").read_text())
    assert report["passed"] and report["counts"]["unmet"] == 0
    assert report["prediction_mismatches"] == [], "kconfiglib and Kbuild agree"


def test_android_gets_kcfi_and_shadow_call_stack_from_clang(tree612, model_for) -> None:  # type: ignore[no-untyped-def]
    profile = load_profile("android-arm64")
    assert profile.toolchain == "clang-19"
    model = model_for(tree612, profile.arch, profile.toolchain)
    resolved = {r.symbol: r for r in resolve(profile, tree612.version, family(profile), model)}
    for symbol in ("CFI_CLANG", "SHADOW_CALL_STACK"):
        r = resolved[symbol]
        assert r.applicable, f"{symbol}: {r.reason}"
        assert r.requirement.value == "y" and r.requirement.severity == "required"


def test_gcc_profiles_do_not_require_clang_only_protections(tree612, model_for) -> None:  # type: ignore[no-untyped-def]
    """The same layers on a gcc build: kCFI is not applicable rather than unmet."""
    profile = load_profile("automotive-arm64")
    model = model_for(tree612, profile.arch, profile.toolchain)
    resolved = {r.symbol: r for r in resolve(profile, tree612.version, family(profile), model)}
    assert not resolved["CFI_CLANG"].applicable
    assert "toolchain" in resolved["CFI_CLANG"].reason


# --------------------------------------------------------------------------- documentation


def _doc() -> str:
    assert DOC.is_file(), "docs/PROFILES.md is missing"
    return DOC.read_text()


@pytest.mark.parametrize("name", PROFILES + LAYERS)
def test_every_profile_and_layer_is_documented(name: str) -> None:
    assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", _doc()), (
        f"{name} is not mentioned in docs/PROFILES.md")


def test_every_schema_property_is_documented() -> None:
    schema: dict[str, Any] = json.loads(
        (REPO / "kbuild_py" / "schema" / "profile.schema.json").read_text())
    names = set(schema["properties"])
    for part in ("option", "cmdline_param", "sysctl_param", "condition", "version_range"):
        names |= set(schema["$defs"][part]["properties"])
    names |= set(schema["$defs"]["option"]["properties"]["cost"]["properties"])
    names |= set(schema["$defs"]["option"]["properties"]["renamed_from"]["items"]["properties"])
    doc = _doc()
    missing = sorted(n for n in names if not re.search(rf"`{re.escape(n)}`", doc))
    assert not missing, f"schema properties not documented (as `name`): {missing}"


def test_profile_files_are_valid_against_the_schema() -> None:
    for path in sorted((REPO / "profiles").rglob("*.yaml")):
        catalog.load_validated(path, "profile", "profile")
