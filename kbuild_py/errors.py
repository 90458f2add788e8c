"""The one exception family. Library code raises these; only cli.main maps them to exit codes.

Every message names what and where (file, line, key) and, through ``hint``, the next step.
"""

from __future__ import annotations


class KbuildError(Exception):
    """Base of every error kbuild-py reports to a user."""

    exit_code = 3
    kind = "error"

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        text = " ".join(self.message.split("\n"))
        return f"{text} ({self.hint})" if self.hint else text


class UserError(KbuildError):
    """Bad input: profile, toolchain file, patch series, argument. Fix the input and rerun."""

    exit_code = 2
    kind = "error"


class InfraError(KbuildError):
    """The machine failed us: missing tool, download failed, compiler crashed."""

    exit_code = 3
    kind = "failure"


class RequirementsUnmet(KbuildError):
    """The kernel was configured or built, but requested protections did not stick."""

    exit_code = 1
    kind = "unmet"
