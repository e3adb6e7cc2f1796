"""Describe one or more manifests: counts, hours, durations, formats, sources, caption vocabulary.

Only the manifests (and, for clips without captions, their AudioCraft sidecars) are read; no audio.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from .manifest import clip_captions, read_manifest

# Duration histogram bin edges in seconds; the last bin is open-ended.
DURATION_EDGES = (0.0, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)
# Hand-written: a short English stop list so the top words are about sounds (no dependency for 40 words).
STOPWORDS = set("""a an the and or of in on at to with by for from as is are be it its this that into onto
over under then than very some while through like one two""".split())
_WORD = re.compile(r"[a-z][a-z'-]*")


def _bin_label(lo: float, hi: float | None) -> str:
    return f"{lo:g}-{hi:g} s" if hi is not None else f">= {lo:g} s"


def manifest_stats(manifests: Sequence[str | os.PathLike], top: int = 20) -> dict[str, Any]:
    """Statistics over all clips of ``manifests`` (JSON-serialisable).

    Keys: ``manifests`` ({path: clips}), ``clips``, ``total_seconds``, ``total_hours``, ``duration``
    (min/median/mean/max seconds), ``histogram`` (list of {bin, clips}), ``sample_rates``,
    ``channels``, ``sources`` ({value: clips}), ``captioned`` (clips with text), ``vocabulary_size``
    and ``top_words`` (list of [word, count]).
    """
    per_manifest: dict[str, int] = {}
    durations: list[float] = []
    rates: Counter = Counter()
    channels: Counter = Counter()
    sources: Counter = Counter()
    words: Counter = Counter()
    captioned = 0
    for m in manifests:
        clips = read_manifest(m)
        per_manifest[str(m)] = len(clips)
        for clip in clips:
            durations.append(clip.duration)
            rates[str(clip.sample_rate)] += 1
            channels[str(clip.channels) if clip.channels is not None else "unknown"] += 1
            sources[clip.source or "unknown"] += 1
            texts = clip_captions(clip)
            captioned += bool(texts)
            for t in texts:
                words.update(w for w in _WORD.findall(t.lower()) if w not in STOPWORDS and len(w) > 1)
    d = np.asarray(durations, dtype=np.float64)
    edges = list(DURATION_EDGES) + [float("inf")]
    counts = np.histogram(d, bins=edges)[0] if d.size else np.zeros(len(edges) - 1, int)
    hist = [{"bin": _bin_label(lo, hi if np.isfinite(hi) else None), "clips": int(c)}
            for lo, hi, c in zip(edges[:-1], edges[1:], counts, strict=True)]
    total = float(d.sum())
    return {
        "manifests": per_manifest,
        "clips": int(d.size),
        "total_seconds": round(total, 3),
        "total_hours": round(total / 3600, 4),
        "duration": ({"min": float(d.min()), "median": float(np.median(d)), "mean": float(d.mean()),
                      "max": float(d.max())} if d.size else {}),
        "histogram": hist,
        "sample_rates": dict(rates.most_common()),
        "channels": dict(channels.most_common()),
        "sources": dict(sources.most_common()),
        "captioned": captioned,
        "vocabulary_size": len(words),
        "top_words": [[w, c] for w, c in words.most_common(top)],
    }
