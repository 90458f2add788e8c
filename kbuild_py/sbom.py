"""An SPDX 2.3 (JSON) software bill of materials for a collected build.

What went in: the kernel source (version, where it came from, its sha256), the patches applied
to it, the toolchain that compiled it; what came out: every file of dist/ with its checksums.
Deterministic: the same build gives the same document (its date is the source's timestamp,
its namespace a digest of its content).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __version__

KERNEL_LICENSE = "GPL-2.0-only WITH Linux-syscall-note"


@dataclass(frozen=True)
class SbomInput:
    profile: str
    kernel_version: str
    source_location: str
    source_kind: str
    source_sha256: str | None
    patches: list[Path]
    toolchain: list[tuple[str, str, str, str]]  # (name, version, description, CPE vendor:product)
    created: str  # ISO 8601, from the source
    outputs: dict[str, Path]
    kernel_cpe: str = ""  # CPE vendor:product of the kernel ("" for none)
    kernel_purl: str = ""  # purl type/name of the kernel, without the version


def _checksums(path: Path) -> list[dict[str, str]]:
    sha1, sha256 = hashlib.sha1(), hashlib.sha256()  # SPDX 2.3 requires SHA1 for files
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            sha1.update(block)
            sha256.update(block)
    return [{"algorithm": "SHA1", "checksumValue": sha1.hexdigest()},
            {"algorithm": "SHA256", "checksumValue": sha256.hexdigest()}]


def identifiers(cpe: str, version: str, part: str = "a", purl: str = "") -> list[dict[str, str]]:
    """SPDX externalRefs naming a package as vulnerability databases do: a CPE 2.3 from
    ``vendor:product`` and the version, and a purl (pkg:generic/<product>@<version> unless
    given)."""
    if not cpe or version in ("", "NOASSERTION"):
        return []
    vendor, product = cpe.split(":", 1)
    clean = re.sub(r"[^A-Za-z0-9._-]", "_", version)
    return [{"referenceCategory": "SECURITY", "referenceType": "cpe23Type",
             "referenceLocator": f"cpe:2.3:{part}:{vendor}:{product}:{clean}:*:*:*:*:*:*:*"},
            {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
             "referenceLocator": f"{purl or 'pkg:generic/' + product}@{clean}"}]


def _ref(kind: str, name: str) -> str:
    return f"SPDXRef-{kind}-" + re.sub(r"[^A-Za-z0-9.-]", "-", name)


def sbom(data: SbomInput) -> dict[str, Any]:
    image = _ref("Package", f"kernel-{data.profile}")
    source = _ref("Package", "linux-source")
    source_pkg: dict[str, Any] = {
        "SPDXID": source, "name": "linux", "versionInfo": data.kernel_version,
        "downloadLocation": data.source_location if data.source_kind == "url" else "NOASSERTION",
        "filesAnalyzed": False, "licenseConcluded": "NOASSERTION",
        "licenseDeclared": KERNEL_LICENSE, "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "SOURCE",
        "comment": f"{data.source_kind}: {data.source_location}",
    }
    if refs := identifiers(data.kernel_cpe, data.kernel_version, "o", data.kernel_purl):
        source_pkg["externalRefs"] = refs
    if data.source_sha256:
        source_pkg["checksums"] = [{"algorithm": "SHA256", "checksumValue": data.source_sha256}]
    out_sums = {name: _checksums(path) for name, path in data.outputs.items()}
    verification = hashlib.sha1("".join(sorted(c[0]["checksumValue"] for c in out_sums.values()))
                                .encode()).hexdigest()  # SPDX 2.3 section 7.9
    packages: list[dict[str, Any]] = [
        {"SPDXID": image, "name": f"linux-{data.profile}", "versionInfo": data.kernel_version,
         "downloadLocation": "NOASSERTION", "filesAnalyzed": True,
         "packageVerificationCode": {"packageVerificationCodeValue": verification},
         "licenseConcluded": "NOASSERTION", "licenseDeclared": KERNEL_LICENSE,
         "copyrightText": "NOASSERTION", "primaryPackagePurpose": "OPERATING-SYSTEM",
         "comment": f"Linux kernel built by kbuild-py from profile {data.profile}"},
        source_pkg,
    ]
    relationships = [
        {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
         "relatedSpdxElement": image},
        {"spdxElementId": image, "relationshipType": "GENERATED_FROM",
         "relatedSpdxElement": source},
    ]
    for name, version, description, cpe in data.toolchain:
        ref = _ref("Package", f"tool-{name}")
        tool: dict[str, Any] = {
            "SPDXID": ref, "name": name, "versionInfo": version,
            "downloadLocation": "NOASSERTION", "filesAnalyzed": False,
            "licenseConcluded": "NOASSERTION", "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION", "primaryPackagePurpose": "APPLICATION",
            "comment": description}
        if refs := identifiers(cpe, version):
            tool["externalRefs"] = refs
        packages.append(tool)
        relationships.append({"spdxElementId": ref, "relationshipType": "BUILD_TOOL_OF",
                              "relatedSpdxElement": image})
    files: list[dict[str, Any]] = []
    for patch in data.patches:
        ref = _ref("File", f"patch-{patch.parent.name}-{patch.name}")
        files.append({"SPDXID": ref, "fileName": f"./patches/{patch.parent.name}/{patch.name}",
                      "checksums": _checksums(patch), "fileTypes": ["SOURCE"],
                      "licenseConcluded": "NOASSERTION", "copyrightText": "NOASSERTION"})
        relationships.append({"spdxElementId": ref, "relationshipType": "PATCH_APPLIED",
                              "relatedSpdxElement": source})
    for name in sorted(data.outputs):
        ref = _ref("File", name)
        files.append({"SPDXID": ref, "fileName": f"./{name}",
                      "checksums": out_sums[name],
                      "fileTypes": ["BINARY" if name not in ("config", "fragment.config",
                                                             "cmdline", "sysctl.conf")
                                    else "TEXT"],
                      "licenseConcluded": "NOASSERTION", "copyrightText": "NOASSERTION"})
        relationships.append({"spdxElementId": image, "relationshipType": "CONTAINS",
                              "relatedSpdxElement": ref})
    doc: dict[str, Any] = {
        "spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"kbuild-py {data.profile} {data.kernel_version}",
        "creationInfo": {"created": data.created,
                         "creators": [f"Tool: kbuild-py-{__version__}"]},
        "packages": packages, "files": files, "relationships": relationships,
    }
    digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
    doc["documentNamespace"] = f"https://kbuild-py.invalid/spdx/{data.profile}/{digest}"
    return doc
