"""Checks of the built vmlinux: no writable+executable segment, and the markers of the
protections the .config claims (checks/binary.yaml). Pure Python ELF reading: no tool needed."""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import catalog
from .errors import UserError
from .status import Status

PF_X, PF_W = 1, 2
SHF_EXECINSTR = 4
PT_LOAD = 1


@dataclass(frozen=True)
class Section:
    name: str
    offset: int
    size: int
    addr: int
    flags: int
    type: int


@dataclass(frozen=True)
class Segment:
    type: int
    flags: int
    offset: int
    vaddr: int
    filesz: int
    memsz: int


class Elf:
    """The parts of an ELF64 little-endian file the checks need."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data = path.read_bytes()
        d = self.data
        if d[:4] != b"\x7fELF" or d[4] != 2 or d[5] != 1:
            raise UserError(f"{path}: not a 64-bit little-endian ELF file",
                            "point the check at vmlinux")
        (phoff, shoff) = struct.unpack_from("<QQ", d, 0x20)
        (phentsize, phnum, shentsize, shnum, shstrndx) = struct.unpack_from("<HHHHH", d, 0x36)
        self.segments = []
        for i in range(phnum):
            p_type, p_flags, p_off, p_vaddr, _p, p_filesz, p_memsz, _a = struct.unpack_from(
                "<IIQQQQQQ", d, phoff + i * phentsize)
            self.segments.append(Segment(p_type, p_flags, p_off, p_vaddr, p_filesz, p_memsz))
        raw = []
        for i in range(shnum):
            (name, s_type, flags, addr, off, size) = struct.unpack_from(
                "<IIQQQQ", d, shoff + i * shentsize)
            raw.append((name, s_type, flags, addr, off, size))
        strtab = raw[shstrndx][4] if shnum else 0
        self.sections = []
        for name, s_type, flags, addr, off, size in raw:
            end = d.index(b"\0", strtab + name)
            self.sections.append(Section(d[strtab + name:end].decode(), off, size, addr, flags,
                                         s_type))

    def sections_in(self, seg: Segment) -> list[Section]:
        return [s for s in self.sections if s.addr and s.size
                and seg.vaddr <= s.addr < seg.vaddr + seg.memsz]

    def executable_bytes(self) -> list[bytes]:
        return [self.data[s.offset:s.offset + s.size] for s in self.sections
                if s.flags & SHF_EXECINSTR and s.type != 8]  # 8: SHT_NOBITS


@dataclass(frozen=True)
class BinaryCheck:
    name: str
    status: str  # ok | unmet | n/a
    detail: str
    options: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "detail": self.detail,
                "options": list(self.options)}


def _load_rules() -> dict[str, Any]:
    path = catalog.data_root() / "checks" / "binary.yaml"
    data: dict[str, Any] = catalog.load_validated(path, "binary", "binary checks").data
    return data


def _count(elf: Elf, marker: dict[str, Any]) -> int:
    if "bytes" in marker:
        needle = bytes.fromhex(marker["bytes"])
        return sum(chunk.count(needle) for chunk in elf.executable_bytes())
    word = struct.pack("<I", int(marker["insn"], 16))
    mask = struct.pack("<I", int(marker.get("mask", "ffffffff"), 16))
    # One character class per byte (a mask splits into bytes), in a lookahead so that a match
    # at an unaligned offset cannot hide an aligned one.
    classes = b"".join(
        b"[" + b"".join(re.escape(bytes([v])) for v in range(256) if v & m == w) + b"]"
        for w, m in zip(word, mask, strict=True))
    pattern = re.compile(b"(?=" + classes + b")", re.S)
    return sum(1 for chunk in elf.executable_bytes()
               for m in pattern.finditer(chunk) if m.start() % 4 == 0)


def check_binary(vmlinux: Path, system_map: Path, arch: str,
                 config: dict[str, str]) -> list[BinaryCheck]:
    rules = _load_rules()
    elf = Elf(vmlinux)
    out: list[BinaryCheck] = []

    exempt = rules.get("wx_exempt", {}).get(arch)
    patterns = [re.compile(p) for p in (exempt or {}).get("sections", [])]
    bad = []
    for seg in elf.segments:
        if seg.type == PT_LOAD and seg.flags & PF_W and seg.flags & PF_X:
            names = [s.name for s in elf.sections_in(seg)]
            unexplained = [n for n in names if not any(p.search(n) for p in patterns)]
            bad.append((seg, names, unexplained))
    wx_unexplained = [n for _, _, u in bad for n in u]
    if not bad:
        out.append(BinaryCheck("no-wx-segment", "ok", "no PT_LOAD is both writable and "
                               "executable"))
    elif not wx_unexplained:
        out.append(BinaryCheck("no-wx-segment", "ok", "RWX PT_LOAD holds only sections the "
                               f"kernel remaps or frees at boot: {exempt['why'].strip()}"))
    else:
        out.append(BinaryCheck("no-wx-segment", Status.UNMET, "writable+executable PT_LOAD holds "
                               f"{', '.join(wx_unexplained[:6])}"))

    symbols = [line.split()[2] for line in system_map.read_text().splitlines()
               if len(line.split()) >= 3]
    for marker in rules["markers"]:
        groups = [(o,) if isinstance(o, str) else tuple(o) for o in marker["options"]]
        # One option may have other names in other kernels: the name set here, else the first.
        options = tuple(next((o for o in g if config.get(o, "n") == "y"), g[0]) for g in groups)
        if marker.get("arch") and arch not in marker["arch"]:
            out.append(BinaryCheck(marker["name"], Status.NOT_APPLICABLE,
                                   f"only on {', '.join(marker['arch'])}", options))
            continue
        off = [o for o in options if config.get(o, "n") != "y"]
        if off:
            out.append(BinaryCheck(marker["name"], Status.NOT_APPLICABLE,
                                   f"{', '.join(off)} not set", options))
            continue
        instead = [o for o in marker.get("unless", []) if config.get(o, "n") == "y"]
        if instead:
            out.append(BinaryCheck(marker["name"], Status.NOT_APPLICABLE,
                                   f"{', '.join(instead)} is set instead", options))
            continue
        wanted = int(marker.get("min", 1))
        if "symbol" in marker:
            rx = re.compile(marker["symbol"])
            found = sum(1 for s in symbols if rx.search(s))
            what = f"symbols /{marker['symbol']}/"
        else:
            found = _count(elf, marker)
            what = (f"{marker.get('bytes') or marker.get('insn')}"
                    f"{'/' + marker['mask'] if 'mask' in marker else ''} in executable sections")
        status = Status.OK if found >= wanted else Status.UNMET
        out.append(BinaryCheck(marker["name"], status,
                               f"{found} x {what} (need {wanted}): {marker['why']}", options))
    return out
