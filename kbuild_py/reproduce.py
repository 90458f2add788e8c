"""dist/reproduce.sh: builds the same kernel again, in another folder or on another machine,
and says whether the image came out byte for byte the same. Every value in it is quoted for
the shell (shlex.quote): a profile name, path or variable cannot become a command."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Recipe:
    profile: str  # a profile name of the data root, or a profile file's path
    profile_name: str  # its folder in out/
    kernel: str  # what --kernel takes: tarball, tree, or URL#sha256=<hex>
    image: str  # the image's name in dist/
    image_sha256: str
    made_by: str  # "kbuild-py 0.1.0 (commit ...)"
    what: str  # "Linux 7.3.4, gcc-12 (Debian 12.2.0-14) 12.2.0"
    env: dict[str, str] = field(default_factory=dict)  # the caller's variables the build took
    make_vars: tuple[tuple[str, str], ...] = ()  # the user's make variables (--make-var)
    notes: tuple[str, ...] = ()  # what the script cannot carry (secrets, keys)


def _comment(text: str) -> str:
    return "# " + re.sub(r"[\x00-\x1f\x7f]", " ", text)


def script(r: Recipe) -> str:
    q = shlex.quote
    same = f"reproduced: {r.image} is byte for byte the recorded one ({r.image_sha256})"
    differs = f"not reproduced: {r.image} differs from the recorded one ({r.image_sha256})"
    lines = [
        "#!/bin/sh",
        _comment(f"Builds {r.profile_name} again as manifest.json beside this file records it:"),
        _comment(f"{r.what}; made by {r.made_by}."),
        "# Usage: sh reproduce.sh [OUT] [more kbuild-py build options, e.g. --hosts ...]",
        "# Needs kbuild-py of that version on PATH (or KBUILD_PY=/path/to/kbuild-py), the same",
        "# toolchain, and the kernel source named below. Exit 0: the image is identical.",
        *(_comment(n) for n in r.notes),
        "set -eu",
        'out="${1:-reproduced}"',
        'if [ "$#" -gt 0 ]; then shift; fi',
        *(f"export {name}={q(value)}" for name, value in sorted(r.env.items())),
        f'"${{KBUILD_PY:-kbuild-py}}" build --profile {q(r.profile)} --kernel {q(r.kernel)} '
        + "".join(f"--make-var {q(f'{n}={v}')} " for n, v in r.make_vars)
        + '--out "$out" "$@"',
        f"want={q(r.image_sha256)}",
        f'got=$(sha256sum "$out"/{q(r.profile_name)}/dist/{q(r.image)} | cut -d " " -f 1)',
        'if [ "$got" = "$want" ]; then',
        f"  echo {q(same)}",
        "else",
        f"  echo {q(differs)} >&2",
        "  exit 1",
        "fi",
    ]
    return "\n".join(lines) + "\n"
