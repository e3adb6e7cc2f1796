"""Resumable stages that write their data in chunks (teacher trajectories, control-adapter windows):
``<stage>/chunk-NNNNN.pt`` files written whole or not at all, the ones already there kept after a kill, each
chunk's seconds in ``times.json``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import torch

from ..errors import FoleyError
from ..fsutil import atomic_path, write_json_atomic


def write_chunks(d: Path, count: int, make: Callable[[int], dict], label: str, total: int, say=print,
                 every: int = 10) -> float | None:
    """Chunks ``0 .. count - 1`` of ``total`` items in ``d``, each ``make(c)`` (a dict of tensors and lists); returns
    the stage's minutes over all its (resumed) runs, None when a chunk's time was not recorded."""
    d = Path(d)
    times = json.loads((d / "times.json").read_text()) if (d / "times.json").exists() else {}
    t0, made, per = time.time(), 0, max(1, -(-total // max(1, count)))
    for c in range(count):
        path = d / f"chunk-{c:05d}.pt"
        if path.exists():
            continue
        started = time.time()
        data = make(c)
        with atomic_path(path) as tmp:
            torch.save(data, tmp)
        times[path.name] = time.time() - started  # kept apart so no chunk is read again for the stage's time
        write_json_atomic(d / "times.json", times)
        made += per
        if c % every == 0:
            rate = made / max(1e-9, time.time() - t0)
            left = (total - min(total, (c + 1) * per)) / max(rate, 1e-9)
            say(f"{label} {min(total, (c + 1) * per)}/{total} ({rate:.1f}/s, ~{left / 60:.0f} min left)")
    chunks = sorted(p.name for p in d.glob("chunk-*.pt"))
    return round(sum(times[c] for c in chunks) / 60, 1) if all(c in times for c in chunks) else None


def load_chunks(d: Path, what: str) -> dict:
    """Every chunk of ``d`` joined: tensors concatenated along their first axis, lists joined; one-line error when
    there is none (``what`` names the missing data and the stage that makes it)."""
    paths = sorted(Path(d).glob("chunk-*.pt"))
    if not paths:
        raise FoleyError(f"{d}: no {what}")
    parts = [torch.load(p, weights_only=True) for p in paths]
    return {k: torch.cat([p[k] for p in parts]) if isinstance(v, torch.Tensor) else sum((p[k] for p in parts), [])
            for k, v in parts[0].items()}
