"""The SBOM is SPDX 2.3 as the reference SPDX tools read it, and deterministic."""

from __future__ import annotations

import json
from pathlib import Path

from kbtest import REPO
from kbuild_py.sbom import SbomInput, sbom


def validate(path: Path) -> list[str]:
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    return [m.validation_message for m in validate_full_spdx_document(parse_file(str(path)))]


def example(tmp_path: Path) -> SbomInput:
    (tmp_path / "bzImage").write_bytes(b"kernel image")
    (tmp_path / "config").write_text("CONFIG_BUG=y\n")
    return SbomInput(
        profile="qemu-x86_64", kernel_version="6.12.117",
        source_location="https://example.invalid/linux-6.12.117.tar.xz", source_kind="url",
        source_sha256="ab" * 32,
        patches=sorted((REPO / "patches" / "hardening-defaults").glob("*.patch")),
        toolchain=[("gcc", "12.2.0", "gcc (Debian 12.2.0-14) 12.2.0", "gnu:gcc"),
                   ("ld", "2.40", "GNU ld (GNU Binutils for Debian) 2.40", "gnu:binutils")],
        kernel_cpe="linux:linux_kernel", kernel_purl="pkg:generic/linux",
        created="2025-11-20T10:00:00Z",
        outputs={"bzImage": tmp_path / "bzImage", "config": tmp_path / "config"})


def test_sbom_is_valid_spdx_and_deterministic(tmp_path: Path) -> None:
    doc = sbom(example(tmp_path))
    path = tmp_path / "sbom.spdx.json"
    path.write_text(json.dumps(doc))
    assert validate(path) == []
    assert doc == sbom(example(tmp_path)), "same inputs, same document (namespace included)"
    names = {p["name"]: p for p in doc["packages"]}
    assert names["linux"]["versionInfo"] == "6.12.117"
    assert names["linux"]["checksums"] == [{"algorithm": "SHA256", "checksumValue": "ab" * 32}]
    assert {"gcc", "ld"} <= set(names)
    refs = {p["name"]: {r["referenceType"]: r["referenceLocator"] for r in p["externalRefs"]}
            for p in doc["packages"] if "externalRefs" in p}
    assert refs["linux"] == {"cpe23Type": "cpe:2.3:o:linux:linux_kernel:6.12.117:*:*:*:*:*:*:*",
                             "purl": "pkg:generic/linux@6.12.117"}
    assert refs["gcc"] == {"cpe23Type": "cpe:2.3:a:gnu:gcc:12.2.0:*:*:*:*:*:*:*",
                           "purl": "pkg:generic/gcc@12.2.0"}
    assert refs["ld"]["cpe23Type"] == "cpe:2.3:a:gnu:binutils:2.40:*:*:*:*:*:*:*"
    kinds = {(r["relationshipType"]) for r in doc["relationships"]}
    assert {"DESCRIBES", "GENERATED_FROM", "BUILD_TOOL_OF", "PATCH_APPLIED", "CONTAINS"} <= kinds
    files = {f["fileName"]: f for f in doc["files"]}
    patches = sorted((REPO / "patches" / "hardening-defaults").glob("*.patch"))
    assert len([f for f in files if f.startswith("./patches/")]) == len(patches) >= 3
    changed = example(tmp_path)
    (tmp_path / "bzImage").write_bytes(b"another image")
    assert sbom(changed)["documentNamespace"] != doc["documentNamespace"]
