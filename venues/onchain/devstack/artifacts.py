"""Compiled contracts from the protocols' own npm packages (hardhat artifacts), libraries linked.

A hardhat artifact carries ``bytecode`` with 20-byte placeholders for external libraries and
``linkReferences`` saying where they are ({source: {library: [{start, length}]}}, byte offsets into
the code). AAVE's Pool calls seven logic libraries that way; ``link`` writes the deployed library
addresses into those offsets, exactly what hardhat-deploy does in aave-v3-deploy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Mapping

from venues.onchain.devstack.peers import require_package


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list
    bytecode: str  # 0x-hex, may still contain link placeholders
    link_references: Mapping[str, Mapping[str, list]] = field(default_factory=dict)

    @property
    def libraries(self) -> list[str]:
        return sorted({lib for refs in self.link_references.values() for lib in refs})

    def link(self, addresses: Mapping[str, str]) -> str:
        """The creation bytecode with every library placeholder replaced by its address."""
        missing = [lib for lib in self.libraries if lib not in addresses]
        if missing:
            raise ValueError(f"{self.name} needs libraries {', '.join(missing)} linked first")
        # The placeholders (``__$<hash>$__``) are not hex, so the splice works on the hex text.
        code = list(self.bytecode[2:])
        for refs in self.link_references.values():
            for lib, places in refs.items():
                address = addresses[lib].lower().removeprefix("0x")
                for place in places:
                    start, length = int(place["start"]), int(place["length"])
                    if length != 20:
                        raise ValueError(f"{self.name}: unexpected link length {length} for {lib}")
                    code[2 * start : 2 * (start + length)] = address
        linked = "".join(code)
        bytes.fromhex(linked)  # every placeholder filled: fails loudly otherwise
        return "0x" + linked


@lru_cache(maxsize=None)
def _index(package: str) -> dict[str, Path]:
    """Contract name -> artifact file for an npm package (first match wins; names are unique there)."""
    root = require_package(package) / "artifacts"
    out: dict[str, Path] = {}
    for path in sorted(root.rglob("*.json")):
        if path.name.endswith(".dbg.json") or path.parent.name == "build-info":
            continue
        out.setdefault(path.stem, path)
    return out


def load(package: str, name: str, *, source_hint: str | None = None) -> Artifact:
    """Artifact ``name`` of ``package``. ``source_hint`` picks among duplicates (a path fragment)."""
    if source_hint is not None:
        root = require_package(package) / "artifacts"
        matches = [p for p in root.rglob(f"{name}.json") if source_hint in str(p)]
        if len(matches) != 1:
            raise FileNotFoundError(f"{package}: {len(matches)} artifacts named {name} under {source_hint!r}")
        path = matches[0]
    else:
        found = _index(package).get(name)
        if found is None:
            raise FileNotFoundError(f"{package} has no compiled artifact named {name}")
        path = found
    data = json.loads(path.read_text())
    return Artifact(name, data["abi"], data["bytecode"], data.get("linkReferences") or {})
