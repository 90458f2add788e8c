"""Weakening is visible: a profile whose own command line or sysctl turns a protection it
requires off again (checks/switches.yaml) does not meet that requirement, whatever its .config
says; `config` fails with the parameter that undoes it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kbtest import TARBALL_612, kbuild_py, shared_out
from kbuild_py import catalog, switches
from kbuild_py.profile import load_profile
from kbuild_py.resolve import resolve_without_tree, runtime_params

WEAKENED = """schema_version: 1
name: weakened
extends: [qemu-x86_64]
cmdline:
  init_on_free: {value: "0", why: "test", override: "a boot-time cost the vendor will not pay"}
  nokaslr: {why: "test: a flag"}
sysctl:
  kernel.kptr_restrict: {value: 1, why: "test", override: "tools that read addresses"}
"""


def _undone(profile_path: str, version: tuple[int, ...] = (6, 12, 0)) -> dict[str, str]:
    profile = load_profile(profile_path)
    family = ("gcc", "gcc")
    resolved = resolve_without_tree(profile, version, family, {})
    return switches.undone(resolved, *runtime_params(profile, version, family))


@pytest.mark.parametrize("name", catalog.names("profiles"))
def test_no_shipped_profile_undoes_its_own_protections(name: str) -> None:
    for version in ((6, 1, 0), (6, 12, 0), (7, 3, 0)):
        assert _undone(name, version) == {}, (name, version)


def test_a_cmdline_or_sysctl_that_turns_a_protection_off_is_named(tmp_path: Path) -> None:
    (tmp_path / "weakened.yaml").write_text(WEAKENED)
    got = _undone(str(tmp_path / "weakened.yaml"))
    assert set(got) == {"INIT_ON_FREE_DEFAULT_ON", "RANDOMIZE_BASE",
                        "SECURITY_KPTR_RESTRICT_DEFAULT"}, got
    assert got["INIT_ON_FREE_DEFAULT_ON"].startswith(
        f"the profile's cmdline 'init_on_free=0' ({tmp_path / 'weakened.yaml'}:5) turns "
        "CONFIG_INIT_ON_FREE_DEFAULT_ON off again at run time")
    assert "sysctl 'kernel.kptr_restrict = 1'" in got["SECURITY_KPTR_RESTRICT_DEFAULT"]


def test_a_waived_protection_may_be_switched_off(tmp_path: Path) -> None:
    (tmp_path / "weakened.yaml").write_text(
        WEAKENED + "options:\n  INIT_ON_FREE_DEFAULT_ON: {waive: \"measured: 7% on the "
        "vendor's storage benchmark; init_on_alloc stays\"}\n")
    assert "INIT_ON_FREE_DEFAULT_ON" not in _undone(str(tmp_path / "weakened.yaml"))


def test_values_that_keep_the_protection_are_not_flagged(tmp_path: Path) -> None:
    (tmp_path / "kept.yaml").write_text(
        "schema_version: 1\nname: kept\nextends: [qemu-x86_64]\ncmdline:\n"
        "  init_on_free: {value: \"on\", why: t, override: t}\n"
        "  mitigations: {value: \"auto\", why: t, override: t}\n"
        "sysctl:\n  kernel.kptr_restrict: {value: 3, why: t, override: t}\n")
    assert _undone(str(tmp_path / "kept.yaml")) == {}


@pytest.mark.kernel
def test_config_fails_with_the_parameter_that_undoes_it(tree612, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "weakened.yaml").write_text(WEAKENED)
    out = shared_out(tmp_path / "out", [tree612.path])
    r = kbuild_py("config", "--profile", str(tmp_path / "weakened.yaml"), "--kernel",
                  str(TARBALL_612), "--out", str(out))
    assert r.returncode == 1, r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("kbuild-py: unmet: profile weakened: the profile's cmdline "
                           "'init_on_free=0'"), line
    report = json.loads((out / "weakened" / "report.json").read_text())
    checks = {c["symbol"]: c for c in report["checks"]}
    for symbol in ("INIT_ON_FREE_DEFAULT_ON", "RANDOMIZE_BASE", "SECURITY_KPTR_RESTRICT_DEFAULT"):
        assert checks[symbol]["status"] == "unmet", checks[symbol]
        assert checks[symbol]["final"] is not None, "the .config has it; the run time does not"
    text = (out / "weakened" / "report.txt").read_text()
    assert "turns CONFIG_INIT_ON_FREE_DEFAULT_ON off again" in text
    # The text report (and the console, which prints it) lists what the profile changed.
    assert "cmdline init_on_free: 1 -> 0 [KSPP] (" in text, text
    assert "sysctl kernel.kptr_restrict: 2 -> 1 [KSPP] (" in r.stdout, r.stdout
