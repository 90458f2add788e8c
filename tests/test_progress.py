"""Progress in a log (not a terminal): a plain line at a steady rate with the elapsed time,
and one at the end of a long step; nothing for a step shorter than one interval."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kbuild_py.ui import Progress


def test_a_log_gets_plain_lines_with_the_elapsed_time(capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Progress, "every", 0.05)
    with Progress("extract linux.tar.xz", "extracted", binary=True) as shown:
        for _ in range(3):
            time.sleep(0.06)
            shown.update(3 << 20)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "kbuild-py: extract linux.tar.xz: 3 MiB extracted, 0:00"
    assert lines[2] == "kbuild-py: extract linux.tar.xz: 9 MiB extracted, 0:00"
    assert lines[-1] == "kbuild-py: extract linux.tar.xz: 9 MiB extracted, 0:00 (done)"


def test_a_total_is_shown_and_a_short_step_says_nothing(capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Progress, "every", 0.05)
    with Progress("boot qemu-arm64", "LKDTM tests booted", total=68) as shown:
        time.sleep(0.06)
        shown.update(5)
    assert capsys.readouterr().out.splitlines()[0] == (
        "kbuild-py: boot qemu-arm64: 5 of 68 LKDTM tests booted, 0:00")
    monkeypatch.setattr(Progress, "every", 60.0)
    with Progress("configure t", "steps", total=2) as shown:
        shown.update(2)
    assert capsys.readouterr().out == ""


def test_a_whole_build_takes_its_total_from_the_last_whole_build(tmp_path: Path) -> None:
    from kbuild_py.build import StepsRecord
    from kbuild_py.signed import Signer

    record = StepsRecord(tmp_path / "steps" / "k", Signer(tmp_path))
    assert record.total() is None
    record.keep(958)
    assert record.total() == 958
    (tmp_path / "steps" / "k").write_text("99999")  # not signed by this user's runs: unused
    assert record.total() is None
