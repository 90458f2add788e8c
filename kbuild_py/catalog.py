"""Where the project's knowledge lives, and how a name becomes a file.

One data file per item, found by listing a folder: adding a profile, layer, toolchain or arch
needs no Python change.
"""

from __future__ import annotations

import difflib
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from .errors import UserError
from .yamlio import Document, load_document

PACKAGE_DIR = Path(__file__).resolve().parent
# The folders of the data root (knowledge, one file per item).
DATA_FOLDERS = ("profiles", "toolchains", "arches", "patches", "checks", "lkdtm", "kbuild",
                "initramfs", "export")


def data_root() -> Path:
    """The folder holding profiles/, toolchains/, arches/ and patches/: KBUILD_PY_DATA, else
    the copy a wheel installs inside the package (kbuild_py/data/), else the checkout's."""
    env = os.environ.get("KBUILD_PY_DATA")
    if not env:
        bundled = PACKAGE_DIR / "data"
        return bundled if (bundled / "profiles").is_dir() else PACKAGE_DIR.parent
    try:
        return Path(env).resolve()
    except (RuntimeError, OSError) as e:  # a loop of links
        raise UserError(f"KBUILD_PY_DATA={env}: cannot follow the path ({e})",
                        "point it at a folder holding profiles/, toolchains/ and arches/") from None


def folder(kind: str) -> Path:
    return data_root() / kind


def names(kind: str) -> list[str]:
    d = folder(kind)
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


def suggest(word: str, choices: list[str] | set[str]) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def find(kind: str, name: str, what: str) -> Path:
    """profiles/<name>.yaml and friends; a path (with / or .yaml) is taken as it is."""
    if "/" in name or name.endswith((".yaml", ".yml")):
        path = Path(name)
        if path.exists() and not path.is_file():
            raise UserError(f"{what} file {name}: not a regular file", f"give the {what} as a "
                            "YAML file")
        if not path.is_file():
            raise UserError(f"{what} file {name}: no such file", "check the path")
        return path
    path = folder(kind) / f"{name}.yaml"
    if not path.is_file():
        known = names(kind)
        raise UserError(
            f"unknown {what} '{name}'{suggest(name, known)}",
            f"known: {', '.join(known) or 'none'} (files in {kind}/)",
        )
    return path


def display(path: Path) -> str:
    """Path as shown in messages: relative to the data root where possible."""
    try:
        return str(path.resolve().relative_to(data_root()))
    except ValueError:
        return str(path)


@cache
def schema(name: str) -> dict[str, Any]:
    with open(PACKAGE_DIR / "schema" / f"{name}.schema.json", encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


# Where each format is documented (the hint of a validation error); PROFILES.md otherwise.
FORMAT_DOCS = {"lkdtm": "docs/BOOT.md"}


def _dotted(path: list[str | int] | tuple[str | int, ...]) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def describe(err: jsonschema.ValidationError) -> str:
    """A human message for one schema error, with did-you-mean for unknown keys."""
    v = err.validator
    sch = err.schema if isinstance(err.schema, dict) else {}
    expected: Any = err.validator_value
    if v == "additionalProperties" and isinstance(err.instance, dict):
        allowed = set(sch.get("properties", {}))
        extra = [k for k in err.instance if k not in allowed]
        key = extra[0] if extra else "?"
        return f"unknown key '{key}'{suggest(key, allowed)}"
    if v == "required" and isinstance(err.instance, dict):
        missing = [k for k in expected if k not in err.instance]
        return f"missing key '{missing[0]}'" if missing else err.message
    if v == "const":
        return f"must be {expected!r}, not {err.instance!r}"
    if v == "enum":
        return f"must be one of {', '.join(map(str, expected))}, not {err.instance!r}"
    if v == "type":
        return f"must be {expected}, not {type(err.instance).__name__} {err.instance!r}"
    if v == "pattern" and "propertyNames" in err.schema_path:
        return f"bad name {err.instance!r} (must match {expected})"
    if v == "pattern":
        return _describe_pattern(str(expected), err.instance)
    if v == "minLength":
        return "must not be blank"
    if v == "maxLength":
        return f"longer than {expected} characters"
    if v == "anyOf" and "required" in str(expected):
        keys = sorted({next(iter(s["required"])) for s in expected})
        return f"needs one of: {', '.join(keys)}"
    if v == "oneOf":
        patterns = [e for e in err.context if e.validator == "pattern"]
        if patterns:
            return describe(patterns[0])
        return "is not one of the accepted forms: " + str(sch.get("description", "the schema"))
    return str(err.message)


def _describe_pattern(expected: str, instance: Any) -> str:
    text = str(instance)
    if expected == "\\S":
        return "must not be blank"
    prose = "\\u0008\\u000b" in expected  # line breaks allowed, other control characters not
    if ("\n" in text or "\r" in text) and not prose:
        return f"{_short(text)} must be one line"
    if any(ord(c) < 32 and c not in "\n\t" or ord(c) == 127 for c in text):
        return f"{_short(text)} must not contain control characters"
    if '"' in expected and "\\\\" in expected and any(c in text for c in '"\\'):
        return f"{_short(text)} must not contain quotes or backslashes"
    if (expected.endswith(("]+\\Z", ")+\\Z")) and " " not in expected
            and any(c.isspace() for c in text)):
        return f"{_short(text)} must be one word (no spaces)"
    return f"{_short(text)} does not match {expected}"


def _short(text: str) -> str:
    shown = repr(text)
    return shown if len(shown) <= 60 else shown[:57] + "...'"


def validate(doc: Document, schema_name: str, what: str) -> None:
    """Check the format version first, then the whole document; report each error on one line."""
    data = doc.data
    docs = FORMAT_DOCS.get(schema_name, "docs/PROFILES.md")
    if not isinstance(data, dict):
        raise UserError(f"{doc.where()}: a {what} must be a YAML mapping", f"see {docs}")
    if data.get("schema_version") != 1:
        raise UserError(
            f"{doc.where(('schema_version',))}: schema_version must be 1, "
            f"not {data.get('schema_version')!r}",
            "this kbuild-py reads format version 1",
        )
    validator = jsonschema.Draft202012Validator(schema(schema_name))
    errors = sorted(validator.iter_errors(data), key=lambda e: (list(map(str, e.path)), e.message))
    if not errors:
        return
    # Report the most specific errors (deepest path) first; one line, all of them counted.
    errors.sort(key=lambda e: -len(e.path))
    parts = []
    for err in errors[:3]:
        path = list(err.path)
        if "propertyNames" in err.schema_path:
            path = path + [str(err.instance)]
        elif err.validator == "additionalProperties" and isinstance(err.instance, dict):
            schema_ = err.schema if isinstance(err.schema, dict) else {}
            allowed = schema_.get("properties", {})
            path = path + [next((k for k in err.instance if k not in allowed), "?")]
        parts.append(f"{doc.where(tuple(path))}: {_dotted(path)}: {describe(err)}")
    more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
    raise UserError("; ".join(parts) + more, f"see {docs} for the {what} format")


def load_validated(path: Path, schema_name: str, what: str) -> Document:
    doc = load_document(path, display(path))
    validate(doc, schema_name, what)
    return doc


def check_name(doc: Document, requested: str) -> None:
    """An item found by name must call itself that name (profiles refer to it by name)."""
    if "/" in requested or requested.endswith((".yaml", ".yml")):
        return
    if doc.data.get("name") != requested:
        raise UserError(f"{doc.where(('name',))}: name: '{doc.data.get('name')}' differs from "
                        f"the file name '{requested}'", "make the name and the file name agree")
