"""The statuses every check of kbuild-py reports, in one place: a requirement of the .config,
a marker in the binary, a default at run time, an LKDTM verdict. Their values are what the JSON
reports have always said."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    OK = "ok"
    UNMET = "unmet"
    WAIVED = "waived"
    NOT_APPLICABLE = "n/a"
    PROTECTED = "protected"
    NOT_PROTECTED = "NOT protected"
    INCONCLUSIVE = "inconclusive"
