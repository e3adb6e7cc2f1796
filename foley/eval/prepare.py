"""Evaluation settings, audio preparation and the per-set pass (load, sanity, attributes, features).

Preparation order for an extractor (recorded with every number): loudness normalisation (if any,
at the native rate) -> channel policy -> soxr resampling -> crop/pad to a clip length (if any).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..audio import Audio
from ..errors import ModelError
from .cache import FeatureCache
from .extractors import FeatureExtractor
from .inputs import ItemSet, has_nonfinite, load
from .sanity import item_sanity, unreadable_sanity

NORMALISATIONS = ("none", "loudness")
TARGET_LUFS = -23.0
BATCH = 16


@dataclass
class EvalSettings:
    """Everything that changes a number. Stored in every report and in every metric's conditions."""

    sample_rate: int = 16_000                 # rate for paired metrics (extractors use their own)
    resampler: str = "VHQ"                    # soxr quality
    normalisation: str = "none"               # "none" or "loudness" (EBU R128 to -23 LUFS)
    clip_seconds: float | None = None         # None: full length; else first N s, zero-padded if shorter
    expected_duration: float | None = None    # for duration compliance (else from sidecars/manifests)
    seed: int = 0
    n_bootstrap: int = 2000
    subset_size: int | None = None            # default: half the smaller set
    n_subsets: int = 10
    knn_k: int = 3
    cache_dir: Path | None = None             # None: no cache
    extra: dict = field(default_factory=dict)

    def clip_rule(self) -> dict:
        if self.clip_seconds is None:
            return {"seconds": None, "rule": "full length (no crop or pad)"}
        return {"seconds": self.clip_seconds, "rule": f"first {self.clip_seconds:g} s, zero-padded if shorter"}

    def preparation(self, sample_rate: int, channels: int) -> dict:
        """The audio preparation for one target rate and channel count (also a cache-key part)."""
        return {"sample_rate": sample_rate, "resampler": f"soxr {self.resampler}",
                "channel_policy": "mono mix (mean of channels)" if channels == 1
                else "stereo (mono duplicated, more channels folded to two)",
                "normalisation": "none" if self.normalisation == "none"
                else f"EBU R128 integrated loudness to {TARGET_LUFS:g} LUFS, then true-peak limit -1 dBTP",
                "clip": self.clip_rule(),
                "order": "normalise, channels, resample, crop/pad"}

    def to_dict(self) -> dict:
        d = asdict(self)
        d["cache_dir"] = None if self.cache_dir is None else str(self.cache_dir)
        return d


def prepare(audio: Audio, sample_rate: int, channels: int, s: EvalSettings) -> Audio:
    """Apply the recorded preparation to native audio -> Audio at ``sample_rate`` with ``channels``."""
    a = audio
    if s.normalisation == "loudness":
        a = a.normalize_loudness(TARGET_LUFS)
    a = a.to_channels(channels).resample(sample_rate, quality=s.resampler)
    if s.clip_seconds is not None:
        a = a.pad_or_trim(max(1, int(round(s.clip_seconds * sample_rate))))
    return a


@dataclass
class Features:
    """One extractor's output for the usable items of a set (rows follow ``SetData.usable``)."""

    frames: list[np.ndarray]          # per item [T_i, D]
    embeddings: np.ndarray            # [N, D]
    posteriors: np.ndarray | None     # [N, K] or None

    def pooled(self, idx) -> np.ndarray:
        return np.concatenate([self.frames[i] for i in idx], axis=0)

    @property
    def n_frames(self) -> int:
        return int(sum(len(f) for f in self.frames))


@dataclass
class SetData:
    """Results of one pass over a set: per-item records, usable item indices, features per extractor."""

    items: ItemSet
    records: list[dict]
    usable: list[int]
    features: dict[str, Features] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)   # extractor -> reason

    def prompts(self) -> list[str | None]:
        return [self.items.items[i].description for i in self.usable]


def process_set(items: ItemSet, extractors: dict[str, FeatureExtractor], s: EvalSettings,
                cache: FeatureCache, analyzers: bool = True,
                log: Callable[[str], None] | None = None, remote=None) -> SetData:
    """Load every item once; record sanity and attribute values; compute (or fetch) features."""
    from ..analyzers import analyze

    records, usable = [], []
    feats: dict[str, dict] = {n: {"frames": [], "emb": [], "post": []} for n in extractors}
    unavailable: dict[str, str] = {}
    total = len(items.items)
    for start in range(0, total, BATCH):
        batch = []
        for it in items.items[start:start + BATCH]:
            audio, reason = load(it)
            expected = s.expected_duration if s.expected_duration is not None else it.expected_duration
            rec = {"name": it.name, "path": str(it.path), "content_hash": it.content_hash,
                   "description": it.description}
            if audio is None:
                rec["sanity"] = unreadable_sanity(reason, has_nonfinite(it.path))
            else:
                rec["sanity"] = item_sanity(audio, expected)
                if analyzers:
                    rec["attributes"] = analyze(audio)
                usable.append(it.index)
                batch.append((it, audio))
            records.append(rec)
        for name, ex in extractors.items():
            if name in unavailable or not batch:
                continue
            try:
                _features(ex, batch, s, cache, feats[name], remote)
            except ModelError as e:
                unavailable[name] = str(e)
        if log:
            log(f"{items.source}: {min(start + BATCH, total)}/{total} items")
    out = SetData(items, records, usable, unavailable=unavailable)
    for name, f in feats.items():
        if name in unavailable or not f["emb"]:
            continue
        post = np.stack(f["post"]) if f["post"] and f["post"][0] is not None else None
        out.features[name] = Features(f["frames"], np.stack(f["emb"]), post)
    return out


def _features(ex: FeatureExtractor, batch: list, s: EvalSettings, cache: FeatureCache, acc: dict,
              remote=None) -> None:
    prep = s.preparation(ex.sample_rate, ex.channels)
    settings = {"extractor": ex.name, "hash": ex.hash, "preparation": prep}
    found, todo = {}, []
    for it, audio in batch:
        key = cache.key(it.content_hash, settings)
        hit = cache.get(ex.name, key)
        if hit is not None and (not ex.has_posteriors or "posteriors" in hit):
            found[it.index] = hit
        else:
            todo.append((it, audio, key))
    if todo:
        prepared = [prepare(a, ex.sample_rate, ex.channels, s) for _, a, _ in todo]
        if remote is not None:  # Ray actors (foley/eval/remote.py)
            frames, emb, post = remote.compute(ex, prepared)
        else:
            frames = ex.embed_frames(prepared)
            emb = np.asarray(ex.embed(prepared))
            post = np.asarray(ex.posteriors(prepared)) if ex.has_posteriors else None
        for j, (it, _, key) in enumerate(todo):
            arrays = {"frames": np.asarray(frames[j], np.float32), "embedding": emb[j].astype(np.float32)}
            if post is not None:
                arrays["posteriors"] = post[j].astype(np.float32)
            cache.put(ex.name, key, arrays)
            found[it.index] = arrays
    for it, _ in batch:
        a = found[it.index]
        acc["frames"].append(np.asarray(a["frames"], np.float32))
        acc["emb"].append(np.asarray(a["embedding"], np.float32))
        acc["post"].append(np.asarray(a["posteriors"]) if "posteriors" in a else None)
