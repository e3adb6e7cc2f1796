"""Content hashes of model folders (a leaf: every family and the codec package use the same one)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def folder_hash(folder: str | Path, exclude: tuple[str, ...] = ()) -> str:
    """sha256 over every safetensors file in the folder (sorted, with its relative path), first 12 hex digits;
    files under the sub-folders named in ``exclude`` are left out."""
    folder = Path(folder)
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*.safetensors")):
        if p.relative_to(folder).parts[0] in exclude:
            continue
        h.update(p.relative_to(folder).as_posix().encode())
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:12]
