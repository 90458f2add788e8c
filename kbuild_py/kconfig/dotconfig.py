""".config files and fragments, read as Kbuild's conf reads them; no kconfiglib here.

scripts/kconfig/confdata.c (conf_read_simple, conf_set_sym_val) is the reference: lines end at
"\\n" only (one "\\r" before it is dropped), "# CONFIG_X is not set" must be exact, a string is
quoted with backslash escapes, and the last assignment of a symbol wins. A carriage return in
the middle of a line is part of the value, never a line break.

Only regular files are read, within a size limit (compressed and decompressed): a FIFO, a
device or a decompression bomb is refused in one line.
"""

from __future__ import annotations

import lzma
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError

# A distribution's .config is about 300 KB; nothing real comes near these.
MAX_CONFIG_BYTES = 16 << 20

_NAME = re.compile(r"[A-Za-z0-9_]+")
_ESCAPED = re.compile(r"\\(.)", re.S)


def escape(value: str) -> str:
    """A string value as it is written between quotes in a .config."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


def unescape(value: str) -> str:
    return _ESCAPED.sub(r"\1", value)


def read_bytes(path: Path, what: str = "config", limit: int = MAX_CONFIG_BYTES) -> bytes:
    """The content of a regular file (``.xz`` decompressed), refusing anything that is not a
    regular file or that exceeds ``limit`` bytes before or after decompression."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise UserError(f"{path}: no such file", f"check the path of the {what}") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read the {what}: {e.strerror}",
                        "check the path and its permissions") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise UserError(f"{path}: not a regular file", f"give the {what} as a file")
        if st.st_size > limit:
            raise UserError(f"{path}: {st.st_size} bytes, over the {limit >> 20} MiB a {what} "
                            "may have", f"check that this is a {what}")
        try:
            raw = f.read(limit + 1)
        except OSError as e:
            raise UserError(f"{path}: cannot read the {what}: {e.strerror}",
                            "check the file") from None
    if path.suffix != ".xz":
        return raw
    decompressor = lzma.LZMADecompressor()
    try:
        data = decompressor.decompress(raw, max_length=limit + 1)
    except lzma.LZMAError as e:
        raise UserError(f"{path}: cannot decompress: {e}", "check the file") from None
    if len(data) > limit:
        raise UserError(f"{path}: decompresses to over {limit >> 20} MiB",
                        f"check that this is a {what}")
    if not decompressor.eof:
        raise UserError(f"{path}: the xz stream is truncated", "check the file")
    return data


_HEADER = re.compile(r"^# Linux/([^\s/]+) ((\d+)\.(\d+)(?:\.(\d+))?\S*) Kernel Configuration$",
                     re.M)


@dataclass(frozen=True)
class Header:
    """What Kbuild's conf writes at the top of a .config, '# Linux/x86 6.12.118 Kernel
    Configuration': the make ARCH it was configured for and the kernel's version."""

    arch: str
    version: tuple[int, ...]
    version_text: str


def header(data: bytes) -> Header | None:
    """The header of a whole .config (None for a fragment or a defconfig, which have none)."""
    m = _HEADER.search(data[:4096].decode("utf-8", errors="replace"))
    if m is None:
        return None
    version = tuple(int(g) for g in m.group(3, 4, 5) if g is not None)
    return Header(m.group(1), version, m.group(2))


def parse(data: bytes) -> list[tuple[str, str]]:
    """Every assignment in file order, as Kbuild's conf reads it: (symbol, raw value), 'n' for
    '# CONFIG_X is not set'. String values keep their quotes (see value())."""
    out: list[tuple[str, str]] = []
    text = data.decode("utf-8", errors="replace")
    for line in text.split("\n"):
        line = line.split("\0", 1)[0]  # conf reads C strings
        if line.endswith("\r"):
            line = line[:-1]
        if line.startswith("# CONFIG_"):
            name, sep, rest = line[len("# CONFIG_"):].partition(" ")
            if sep and rest == "is not set" and _NAME.fullmatch(name):
                out.append((name, "n"))
        elif line.startswith("CONFIG_"):
            name, sep, raw = line[len("CONFIG_"):].partition("=")
            if sep and _NAME.fullmatch(name):
                out.append((name, raw))
    return out


# What scripts/kconfig/symbol.c:sym_string_valid() accepts; "number" is either, for a symbol
# whose type is not known but whose requirement is a number.
NUMBER_SYNTAX = {
    "int": re.compile(r"-?(0|[1-9][0-9]*)"),
    "hex": re.compile(r"(0[xX])?[0-9a-fA-F]+"),
    "number": re.compile(r"-?(0|[1-9][0-9]*)|0[xX][0-9a-fA-F]+"),
}


def value(raw: str, kind: str = "unknown") -> str | None:
    """A raw value as Kbuild's conf keeps it for a symbol of ``kind`` (None: conf ignores it).

    bool and tristate take the first character (y, n; m for tristates); a string must be
    quoted and terminated, and is unescaped; int and hex are kept as written when Kbuild's
    syntax for them holds. Of a symbol whose kind is unknown, a quoted value is taken as a
    string and anything else as written.
    """
    if kind in ("bool", "tristate"):
        first = raw[:1]
        return first if first and first in ("ymn" if kind == "tristate" else "yn") else None
    if kind in NUMBER_SYNTAX:  # sym_string_valid(): no quotes, no sign but -, no leading 0
        return raw if NUMBER_SYNTAX[kind].fullmatch(raw) else None
    if not raw.startswith('"'):
        return None if kind == "string" else raw
    body = raw[1:]
    i = 0
    while i < len(body):
        if body[i] == "\\":
            i += 2
            continue
        if body[i] == '"':
            return unescape(body[:i])
        i += 1
    return None


def assignments(path: Path, kinds: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """Every assignment in a .config or fragment that Kbuild's conf would take, in file
    order; 'n' for '# ... is not set', strings unquoted. Reads .xz files directly. With
    ``kinds`` (symbol types), values are read as conf reads them for that type."""
    return typed(parse(read_bytes(path)), kinds)


def typed(written: Iterable[tuple[str, str]],
          kinds: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """(symbol, value as written) pairs read as conf reads them for each symbol's type;
    assignments conf would ignore are left out."""
    kinds = kinds or {}
    out = []
    for name, raw in written:
        v = value(raw, kinds.get(name, "unknown"))
        if v is not None:
            out.append((name, v))
    return out


def read_config(path: Path, kinds: dict[str, str] | None = None) -> dict[str, str]:
    """{symbol: value} of a .config or fragment; later assignments win, as in Kbuild's conf."""
    return dict(assignments(path, kinds))


def fragment_line(symbol: str, value: str, kind: str) -> str:
    """One .config line; strings are escaped so no value can inject a line."""
    if any(c in value for c in "\n\r\0"):
        raise UserError(f"CONFIG_{symbol}: value contains a line break or NUL", "remove it")
    if value == "n" and kind in ("bool", "tristate", "unknown"):
        return f"# CONFIG_{symbol} is not set"
    if kind == "string":
        return f'CONFIG_{symbol}="{escape(value)}"'
    return f"CONFIG_{symbol}={value}"


def render(values: list[tuple[str, str]], kinds: dict[str, str]) -> str:
    """Assignments (as read with ``kinds``) as a clean .config, one line each: what kconfiglib
    is given to read, so that it sees exactly what Kbuild's conf sees."""
    return "".join(fragment_line(name, v, kinds.get(name, "string" if not _PLAIN.fullmatch(v)
                                                   else "unknown")) + "\n"
                   for name, v in values)


_PLAIN = re.compile(r"[ynm]|-?[0-9]+|0[xX][0-9a-fA-F]+")
