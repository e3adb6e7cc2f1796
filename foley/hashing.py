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


# a model folder's control adapter (``foley train control``) lives in CONTROL_DIR with its card CONTROL_JSON; the card
# holds the hash of the rest of the folder (the weights it was trained for)
CONTROL_DIR = "control"
CONTROL_JSON = "control.json"
NOT_BASE = (CONTROL_DIR, CONTROL_DIR + ".partial")


def base_hash(folder: str | Path) -> str:
    """:func:`folder_hash` of a model folder without its control adapter (and an unfinished one)."""
    return folder_hash(folder, exclude=NOT_BASE)
