"""The one exception family. Library code raises these; only cli.main (and the SCons glue)
maps them to exit codes.

Exit codes: 0 all requirements met; 1 requirements unmet; 2 bad input; 3 infrastructure
failure (missing tool, build failure, disk full, read-only folder); 4 busy (another run holds
the lock) or interrupted (Ctrl-C, SIGTERM).

Every message names what and where (file, line, key) and, through ``hint``, the next step.
"""

from __future__ import annotations

import errno
import re

_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def printable(text: str) -> str:
    """Text safe for a terminal and a report: control characters (an escape sequence would
    drive the terminal) and bytes that were not UTF-8 are shown as escapes, like \\x1b."""
    def escaped(m: re.Match[str]) -> str:
        c = ord(m.group(0))
        return f"\\x{c - 0xDC00:02x}" if 0xDC80 <= c <= 0xDCFF else f"\\x{c:02x}" if c < 256 \
            else f"\\u{c:04x}"
    return _UNPRINTABLE.sub(escaped, text)


class KbuildError(Exception):
    """Base of every error kbuild-py reports to a user."""

    exit_code = 3
    kind = "error"

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        text = " ".join(self.message.split())
        hint = " ".join(self.hint.split()) if self.hint else ""
        return printable(redact(f"{text} ({hint})" if hint else text))


class UserError(KbuildError):
    """Bad input: profile, toolchain file, patch series, argument. Fix the input and rerun."""

    exit_code = 2
    kind = "error"


class InfraError(KbuildError):
    """The machine failed us: missing tool, download failed, compiler crashed, disk full."""

    exit_code = 3
    kind = "failure"


class RequirementsUnmet(KbuildError):
    """The kernel was configured or built, but requested protections did not stick."""

    exit_code = 1
    kind = "unmet"


class Busy(KbuildError):
    """Another kbuild-py run holds what this one needs."""

    exit_code = 4
    kind = "busy"


class Interrupted(KbuildError):
    """Ctrl-C or SIGTERM: stopped, cleaned up, finished steps kept."""

    exit_code = 4
    kind = "interrupted"


_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/@\s]*@", re.I)


def redact(text: str) -> str:
    """A URL's user and password never reach a message."""
    return _USERINFO.sub(r"\1***@", text)


def from_os_error(e: OSError, doing: str) -> KbuildError:
    """An OSError that escaped the step that met it, as one line with the next step."""
    where = f" ({e.filename})" if e.filename else ""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return InfraError(f"{doing}: no space left on the device{where}",
                          "free some space (an out/ folder can be removed), then rerun")
    if e.errno == errno.EROFS:
        return InfraError(f"{doing}: the file system is read-only{where}",
                          "give a writable output folder with --out / out=")
    if e.errno in (errno.EACCES, errno.EPERM):
        return InfraError(f"{doing}: permission denied{where}",
                          "give a folder you can write, with --out / out=")
    if e.errno in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
        return UserError(f"{doing}: not a folder, or a file is in the way{where}",
                         "give a path whose folders are folders")
    if e.errno == errno.ENAMETOOLONG:
        return UserError(f"{doing}: a file name is too long{where}",
                         "use shorter names or a shorter --out path")
    return InfraError(f"{doing}: {e.strerror or e}{where}", "check the file system, then rerun")
