"""Feature cache keyed by file content hash and every setting that changes the features.

Never keyed by a folder or file name: renaming a file hits the cache, changing one byte misses.
Entries are ``.npz`` files under ``$FOLEY_HOME/cache/eval/<extractor>/<key[:2]>/<key>.npz``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from ..fsutil import atomic_path


def default_dir() -> Path:
    from ..registry import home

    return home() / "cache" / "eval"


class FeatureCache:
    """Arrays per (content hash, settings). ``root=None`` disables caching (every lookup misses)."""

    def __init__(self, root: Path | None):
        self.root = Path(root) if root is not None else None
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(content_hash: str, settings: dict) -> str:
        blob = json.dumps({"content": content_hash, "settings": settings}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()

    def _path(self, extractor: str, key: str) -> Path:
        return self.root / extractor / key[:2] / f"{key}.npz"

    def get(self, extractor: str, key: str) -> dict[str, np.ndarray] | None:
        if self.root is None:
            self.misses += 1
            return None
        p = self._path(extractor, key)
        try:
            with np.load(p, allow_pickle=False) as z:
                out = {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError):  # absent or a damaged entry: recompute
            self.misses += 1
            return None
        self.hits += 1
        return out

    def put(self, extractor: str, key: str, arrays: dict[str, np.ndarray]) -> None:
        if self.root is None:
            return
        p = self._path(extractor, key)
        with atomic_path(p) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)

    def describe(self) -> dict:
        return {"dir": None if self.root is None else str(self.root), "hits": self.hits,
                "misses": self.misses, "key": "sha256(file content) + extractor hash + preparation settings"}
