"""The parsed Kconfig model is cached on disk, keyed by everything that can change it, signed, and
never trusted when stale, damaged or not written by this user's own runs. A parse sees only the
environment it is given and runs its probes in a scratch folder: the process's environment and
working directory are never changed."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import kconfiglib
import pytest

from kbuild_py.configure import load_model
from kbuild_py.kconfig.model import KconfigModel
from kbuild_py.plan import make_plan
from kbuild_py.signed import Signer
from kbuild_py.source import KernelTree
from kbuild_py.toolchain import ToolchainIdentity

KCONFIG = """\
config A
\tbool "a"
\tdefault y

config B
\tbool "b"
\tdepends on A

config C
\tint "c"
\trange 8 32
\tdefault 16
"""

pytestmark = pytest.mark.own_cache  # the cache of one out/ is what these test


@pytest.fixture
def tiny_tree(tmp_path: Path) -> KernelTree:
    root = tmp_path / "linux"
    root.mkdir()
    (root / "Kconfig").write_text(KCONFIG)
    (root / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 0\n")
    return KernelTree(root, (6, 12, 0), "6.12.0", "sha256-of-the-tarball", owned=True)


def test_cache_hit_miss_and_damage(tiny_tree: KernelTree, tmp_path: Path) -> None:
    cache, signer = tmp_path / "model.pickle", Signer(tmp_path)

    def parse() -> KconfigModel:
        return KconfigModel.parse(tiny_tree.path, {"SRCARCH": "x86"}, (6, 12), cache, signer)

    first = parse()
    assert not first.from_cache and cache.is_file()
    second = parse()
    assert second.from_cache
    assert second.value("A") == "y" and second.value("C") == "16"
    cache.write_bytes(b"not a pickle")
    assert not parse().from_cache, "a damaged cache is parsed again"
    assert parse().from_cache


class _Planted:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (PLANTED,))


PLANTED = Path("/tmp/kbuild-py-pwned")


def test_a_pickle_this_user_did_not_sign_is_never_loaded(tiny_tree: KernelTree,
                                                          tmp_path: Path) -> None:
    """A pickle is code: one planted in the cache (unsigned, or signed with another key)
    is never unpickled."""
    import pickle

    cache, signer = tmp_path / "model.pickle", Signer(tmp_path)
    KconfigModel.parse(tiny_tree.path, {"SRCARCH": "x86"}, (6, 12), cache, signer)
    PLANTED.unlink(missing_ok=True)
    for planted in (pickle.dumps(_Planted()),
                    cache.read_bytes()[:51] + pickle.dumps(_Planted()),
                    Signer(tmp_path / "elsewhere").key() and b""):
        if planted:
            cache.write_bytes(planted)
        else:  # signed, but with another out/'s key
            Signer(tmp_path / "elsewhere").dump(cache, pickle.dumps(_Planted()))
        model = KconfigModel.parse(tiny_tree.path, {"SRCARCH": "x86"}, (6, 12), cache, signer)
        assert not model.from_cache
        assert not PLANTED.exists(), "the planted pickle ran"
    key = tmp_path / ".kbuild-py-key"
    key.chmod(0o644)
    from kbuild_py.errors import UserError

    with pytest.raises(UserError, match="not a private file"):
        Signer(tmp_path).key()


IDENT = ToolchainIdentity("gcc", "gcc", "gcc (Debian 12.2.0-14) 12.2.0", "12.2.0", "GNU ld 2.40")


def _cached(plan, tree: KernelTree, ident: ToolchainIdentity) -> bool:  # type: ignore[no-untyped-def]
    return load_model(plan, tree, ident).from_cache


def test_each_key_part_forces_a_reparse(tiny_tree: KernelTree, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    plan = make_plan("qemu-x86_64", tmp_path / "out")
    assert not _cached(plan, tiny_tree, IDENT)
    assert _cached(plan, tiny_tree, IDENT), "nothing changed: from the cache"

    other_tree = dataclasses.replace(tiny_tree, identity="sha256-of-another-tarball")
    assert not _cached(plan, other_tree, IDENT), "tree identity is in the key"

    other_cc = dataclasses.replace(IDENT, cc_version_text="gcc (Debian 12.3.0-1) 12.3.0")
    assert not _cached(plan, tiny_tree, other_cc), "toolchain identity is in the key"

    arm = make_plan("qemu-arm64", tmp_path / "out")
    arm_ident = dataclasses.replace(IDENT, name="aarch64-gcc")
    assert not _cached(arm, tiny_tree, arm_ident), "arch is in the key"

    with monkeypatch.context() as patched:  # only this: the test's environment stays
        patched.setattr(kconfiglib, "VERSION", (99, 0, 0), raising=False)
        assert not _cached(plan, tiny_tree, IDENT), "kconfiglib's version is in the key"
    assert _cached(plan, tiny_tree, IDENT)


def test_local_trees_are_never_cached(tiny_tree: KernelTree, tmp_path: Path) -> None:
    plan = make_plan("qemu-x86_64", tmp_path / "out")
    user_tree = dataclasses.replace(tiny_tree, owned=False, identity=f"tree:{tiny_tree.path}")
    assert not _cached(plan, user_tree, IDENT)
    assert not _cached(plan, user_tree, IDENT)
    assert not (tmp_path / "out" / "cache").exists()


PROBED = """\
config HAS_FLAG
\tdef_bool $(shell,echo y)

config OTHER_FLAG
\tdef_bool $(shell,test -e /nonexistent && echo y || echo n)

config STAMP
\tstring
\tdefault "$(shell,echo $KBUILD_PY_PROBE_MARK)"
"""


def test_probe_hint_runs_probes_ahead_but_never_decides(tmp_path: Path) -> None:
    """The hint lists commands only: results come from running them now; a stale hint (a
    command that no longer appears, one missing) changes nothing."""
    root = tmp_path / "linux"
    root.mkdir()
    (root / "Kconfig").write_text(PROBED)
    env = {"SRCARCH": "x86", "PATH": "/usr/bin:/bin", "KBUILD_PY_PROBE_MARK": "first"}
    plain = KconfigModel.parse(root, env, (6, 12))
    assert plain.probe_commands, "the commands of this parse are kept as the next hint"
    assert all(str(root) not in c for c in plain.probe_commands)
    hint = ["echo stale-command-that-no-longer-appears", "echo y"]
    ahead = KconfigModel.parse(root, {**env, "KBUILD_PY_PROBE_MARK": "second"}, (6, 12),
                               hint=hint)
    assert [plain.value(s) for s in ("HAS_FLAG", "OTHER_FLAG")] == ["y", "n"]
    assert [ahead.value(s) for s in ("HAS_FLAG", "OTHER_FLAG")] == ["y", "n"]
    assert plain.value("STAMP") == "first"
    assert ahead.value("STAMP") == "second", "a probe's result is never taken from the hint"
    assert not any("stale-command" in c for c in ahead.probe_commands)


def test_a_parse_sees_only_its_environment_and_changes_nothing(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    import os

    root = tmp_path / "linux"
    root.mkdir()
    (root / "Kconfig").write_text(PROBED)
    monkeypatch.setenv("KBUILD_PY_PROBE_MARK", "from-the-process")
    before_env, before_cwd = dict(os.environ), os.getcwd()
    model = KconfigModel.parse(root, {"SRCARCH": "x86", "PATH": "/usr/bin:/bin"}, (6, 12))
    assert model.value("STAMP") == "", "the process's environment is not the parse's"
    assert dict(os.environ) == before_env and os.getcwd() == before_cwd
    assert not list(Path(before_cwd).glob(".tmp_*"))


PRESCANNED = """\
log-probe = $(shell,echo '$(1)' >> $KBUILD_PY_PROBE_LOG; echo $(2))
prefix := $(log-probe,prefix,pre)
source "sub/Kconfig"

config USES_PREFIX
\tstring
\tdefault "$(log-probe,$(prefix)-probe,$(prefix)-value)"
\thelp
\t  Help text is not expanded: $(shell,touch $KBUILD_PY_PROBE_LOG.help)
\t  not even here $(log-probe,help,help)

# nor is a comment $(shell,touch $KBUILD_PY_PROBE_LOG.comment)

config NESTED
\tstring
\tdefault "$(log-probe,nested-$(log-probe,inner,in),out)"
"""

SUB = """\
rsource "more/Kconfig"

config IN_SUB
\tstring
\tdefault "$(log-probe,sub,sub)"
"""


def test_prescan_starts_probes_but_the_parse_decides(tmp_path: Path) -> None:
    """The prescan reads ahead through source/rsource, := assignments and nested probes;
    never runs what is in help text or comments; each probe runs once, and values are what
    a plain parse gives."""
    root = tmp_path / "linux"
    (root / "sub" / "more").mkdir(parents=True)
    (root / "Kconfig").write_text(PRESCANNED)
    (root / "sub" / "Kconfig").write_text(SUB)
    (root / "sub" / "more" / "Kconfig").write_text(
        'config IN_MORE\n\tstring\n\tdefault "$(log-probe,more,more)"\n')
    log = tmp_path / "probes.log"
    model = KconfigModel.parse(root, {"SRCARCH": "x86", "srctree": str(root),
                                      "PATH": "/usr/bin:/bin", "KBUILD_PY_PROBE_LOG": str(log)},
                               (6, 12))
    assert {s: model.value(s) for s in ("USES_PREFIX", "NESTED", "IN_SUB", "IN_MORE")} == {
        "USES_PREFIX": "pre-value", "NESTED": "out", "IN_SUB": "sub", "IN_MORE": "more"}
    ran = log.read_text().split()
    assert len(ran) == len(set(ran)), "no probe runs twice: the parse takes the prescan's run"
    needed = {"prefix", "pre-probe", "inner", "nested-in", "sub", "more"}
    assert needed <= set(ran)
    # The one wasted guess: the nested line's outer probe, before its inner result was known.
    assert set(ran) - needed <= {"nested-"}
    assert not (tmp_path / "probes.log.help").exists()
    assert not (tmp_path / "probes.log.comment").exists()
