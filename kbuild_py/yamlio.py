"""YAML loading that fixes YAML's traps for Kconfig data.

- Only safe constructs: the document is composed into nodes and converted by hand, so no tag
  can build a Python object.
- Duplicate keys are an error (PyYAML silently keeps the last one).
- YAML 1.1 booleans (y/n/yes/no/on/off/true/false, unquoted) become Kconfig's "y"/"n".
- Unquoted integers become int; hex such as 0x1000 stays a string, as Kconfig writes it.
- Each node's line is recorded by its path, so errors can point at ``file:line``.
- Bounded: a data file is a regular file of at most 1 MiB, nested at most 32 deep, with no
  anchors or aliases (an alias "bomb" of a few hundred bytes expands to gigabytes).
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import UserError

_BOOL_WORDS = {
    "y": "y", "yes": "y", "true": "y", "on": "y",
    "n": "n", "no": "n", "false": "n", "off": "n",
}
_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"[-+]?([0-9]+\.[0-9]*|\.[0-9]+)$")
_NULL = {"", "~", "null", "Null", "NULL"}
MAX_BYTES = 1 << 20
MAX_DEPTH = 32

Path_ = tuple[str | int, ...]


@dataclass
class Document:
    path: Path
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, key_path: Path_) -> int | None:
        """Line of the deepest recorded node on ``key_path``."""
        p = tuple(key_path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get((), None)

    def where(self, key_path: Path_ = ()) -> str:
        line = self.line_of(key_path)
        return f"{self.path}:{line}" if line else str(self.path)


def _scalar(node: yaml.ScalarNode) -> Any:
    value = node.value
    if node.style:  # quoted or block: always a string (plain is None, or '' from libyaml)
        return value
    if value in _NULL:
        return None
    low = value.lower()
    if low in _BOOL_WORDS:
        return _BOOL_WORDS[low]
    if _INT.match(value):
        return int(value)
    if _FLOAT.match(value):
        return float(value)
    return value


def _convert(node: yaml.Node, path: Path_, doc: Document, source: str) -> Any:
    doc.lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.ScalarNode):
        return _scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, path + (i,), doc, source) for i, item in enumerate(node.value)]
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise UserError(
                    f"{source}:{key_node.start_mark.line + 1}: a key must be a plain word",
                    "write keys as plain text",
                )
            key = key_node.value
            if key == "<<":
                raise UserError(
                    f"{source}:{key_node.start_mark.line + 1}: YAML merge keys (<<) are not "
                    "supported", "use 'extends' to share settings between profiles",
                )
            if key in out:
                raise UserError(
                    f"{source}:{key_node.start_mark.line + 1}: duplicate key '{key}' "
                    f"(first at line {doc.lines[path + (key,)]})",
                    "remove one of them: YAML would silently keep only the last",
                )
            doc.lines[path + (key,)] = key_node.start_mark.line + 1
            out[key] = _convert(value_node, path + (key,), doc, source)
            doc.lines[path + (key,)] = key_node.start_mark.line + 1
        return out
    raise UserError(f"{source}: unsupported YAML node", "use plain maps, lists and scalars")


def _compose(text: str) -> yaml.Node | None:
    """libyaml's composer when present (10x faster); PyYAML's own for its clearer messages."""
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None:
        try:
            return yaml.compose(text, Loader=fast)
        except yaml.YAMLError:
            pass  # report the error in PyYAML's words (tabs, line and column)
    return yaml.compose(text, Loader=yaml.SafeLoader)


# YAML 1.1 numbers (ints with _ and :, floats) longer than this are refused before PyYAML turns
# them into Python numbers (which for thousands of digits is slow or an error).
MAX_SCALAR_DIGITS = 64
_NUMBERISH = re.compile(r"[-+]?(0[xX][0-9a-fA-F_]+|[0-9][0-9_:]*(\.[0-9_]*)?([eE][-+]?[0-9]+)?"
                        r"|\.[0-9_]+([eE][-+]?[0-9]+)?)")


def _check_events(text: str, source: str) -> None:
    """Refuse anchors, aliases and deep nesting before anything is built from the text
    (libyaml's parser when present; PyYAML's own for its clearer messages on bad syntax)."""
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None:
        try:
            _scan(text, source, fast)
            return
        except yaml.YAMLError:
            pass
    _scan(text, source, yaml.SafeLoader)


def _scan(text: str, source: str, loader: Any) -> None:
    depth = 0
    for event in yaml.parse(text, Loader=loader):
        line = event.start_mark.line + 1 if event.start_mark else 0
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise UserError(f"{source}:{line}: YAML anchors and aliases (& and *) are not "
                            "supported", "write the values out, or share them with 'extends'")
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise UserError(f"{source}:{line}: nested more than {MAX_DEPTH} levels deep",
                                "flatten the data")
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            depth -= 1
        elif (isinstance(event, yaml.ScalarEvent) and event.implicit[0]
              and len(event.value) > MAX_SCALAR_DIGITS and _NUMBERISH.fullmatch(event.value)):
            raise UserError(f"{source}:{line}: a number of {len(event.value)} digits",
                            "no value of a kernel config or profile is that long; check it")


def read_text(path: Path, source: str, limit: int = MAX_BYTES, strict: bool = True) -> str:
    """A regular UTF-8 file of at most ``limit`` bytes; anything else is a one-line error
    (with ``strict`` false, bytes that are not UTF-8 are replaced instead)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise UserError(f"{source}: no such file", "check the name or path") from None
    except OSError as e:
        raise UserError(f"{source}: cannot read: {e.strerror}", "check the file") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise UserError(f"{source}: not a regular file", "give a YAML file")
        if st.st_size > limit:
            raise UserError(f"{source}: {st.st_size} bytes, over the {limit >> 10} KiB a data "
                            "file may have", "split it up")
        try:
            raw = f.read(limit + 1)
        except OSError as e:
            raise UserError(f"{source}: cannot read: {e.strerror}", "check the file") from None
    if len(raw) > limit:
        raise UserError(f"{source}: over the {limit >> 10} KiB a data file may have",
                        "split it up")
    if not strict:
        return raw.decode("utf-8", errors="replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise UserError(f"{source}:{line}: not UTF-8 text", "save the file as UTF-8") from None


def load_document(path: Path, display: str | None = None) -> Document:
    """Read and convert one YAML file; every failure is a one-line UserError."""
    source = display or str(path)
    text = read_text(path, source)
    doc = Document(path=Path(source), data=None)
    try:
        _check_events(text, source)
        node = _compose(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = f":{mark.line + 1}" if mark else ""
        problem = e.problem or e.context or "invalid YAML"
        tabs = "\\t" in problem or "\t" in problem
        hint = "indent with spaces, not tabs" if tabs else "fix the YAML syntax"
        raise UserError(f"{source}{line}: invalid YAML: {problem}", hint) from None
    except yaml.YAMLError as e:
        raise UserError(f"{source}: invalid YAML: {' '.join(str(e).split())}",
                        "fix the YAML syntax") from None
    if node is None:
        raise UserError(f"{source}: the file is empty", "see docs/PROFILES.md for the format")
    doc.data = _convert(node, (), doc, source)
    return doc
