"""Constants shared by the tests."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARBALL_612 = Path("/usr/src/linux-source-6.12.tar.xz")
TARBALL_61 = Path("/usr/src/linux-source-6.1.tar.xz")
TEST_OUT = REPO / "out" / ".test"
