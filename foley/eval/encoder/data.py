"""Labelled log-mel clips for training the encoder: decoded once, cached, cropped in the mel domain.

Each clip of the manifests is read (at most ``max_seconds`` from its start), mixed to mono, resampled
with soxr to the mel rate and turned into a log-mel ``[n_mels, T]`` (:func:`foley.features.log_mel`),
kept as float16 in memory and in ``cache_dir`` (keyed by the file's absolute path, mtime, size, the
MelConfig and ``max_seconds``). Cropping log-mel frames instead of samples is the same as cropping
audio up to the STFT's edge frames, and costs no STFT per step.

Split: the ClipDataset rule (:func:`foley.data.dataset.select_split`, a hash of each clip's path and
description over the concatenated manifests), so "valid" here is ClipDataset's "valid". Crops: random
offsets in "train"; the first ``frames`` in "valid"; shorter clips are padded with silence at the end.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...audio import Audio
from ...data.dataset import select_split
from ...data.manifest import Clip, read_manifest
from ...errors import AudioError, ManifestError
from ...features import MelConfig
from ...fsutil import atomic_path
from .labels import aux_labels, corpus_of, main_label

CACHE_VERSION = 1
IGNORE = -100  # torch cross_entropy's ignore_index: "this clip has no label for this head"


@dataclass
class LabelledMel:
    mel: np.ndarray            # float16 [n_mels, T]
    main: int                  # index into the main labels
    aux: dict[str, int]        # head -> index (heads without ground truth absent)
    name: str                  # the clip's manifest path


def read_clips(manifests: Sequence[str | os.PathLike]) -> list[Clip]:
    """Every clip of the manifests, concatenated in order."""
    return [c for m in manifests for c in read_manifest(m)]


def _read_audio(clip: Clip, cfg: MelConfig, max_seconds: float) -> np.ndarray:
    """Mono float32 [1, N] at ``cfg.sample_rate`` of the first ``max_seconds`` of the clip's file."""
    import soundfile as sf

    path = clip.resolved_path()
    try:
        with sf.SoundFile(str(path)) as f:
            n = min(f.frames, int(max_seconds * f.samplerate)) if f.frames > 0 else int(max_seconds * f.samplerate)
            data = f.read(n, dtype="float32", always_2d=True)
            rate = f.samplerate
    except (RuntimeError, sf.LibsndfileError, ValueError, TypeError, OSError) as e:
        raise AudioError(f"{path}: unreadable audio ({e})") from None
    if data.shape[0] == 0 or not np.isfinite(data).all():
        raise AudioError(f"{path}: empty or non-finite audio")
    return Audio(data.T, rate).to_mono().resample(cfg.sample_rate).samples


def _cache_key(clip: Clip, cfg: MelConfig, max_seconds: float) -> str:
    path = clip.resolved_path()
    st = path.stat()
    ident = {"path": str(path.absolute()), "mtime_ns": st.st_mtime_ns, "size": st.st_size,
             "mel": cfg.to_dict(), "max_seconds": max_seconds, "version": CACHE_VERSION}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:32]


def clip_mel(clip: Clip, cfg: MelConfig, max_seconds: float, cache_dir: Path | None) -> np.ndarray:
    """Log-mel float16 [n_mels, T] of a clip (from the cache when present)."""
    from ...features import log_mel_np

    f = None
    if cache_dir is not None:
        key = _cache_key(clip, cfg, max_seconds)
        f = cache_dir / key[:2] / f"{key}.npy"
        if f.exists():
            return np.load(f)
    x = _read_audio(clip, cfg, max_seconds)
    x = np.pad(x, ((0, 0), (0, max(0, cfg.n_fft - x.shape[1]))))
    mel = log_mel_np(x, cfg)[0].astype(np.float16)
    if f is not None:
        with atomic_path(f) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, mel)
    return mel


class MelClips:
    """Labelled log-mel clips of one split, with crop sampling.

    Args:
        clips: all clips of the manifests (the split is taken here).
        labels, aux: the label space (:func:`.labels.build_label_space`); clips whose main label is not
            in ``labels`` are left out.
        split: "train", "valid" or "all".
        cfg: mel settings; ``max_seconds``: read at most this much of each file.
        cache_dir: log-mel cache folder (None: recompute).
        log: called with progress lines.
    """

    def __init__(self, clips: Sequence[Clip], labels: list[str], aux: dict[str, list[str]], split: str,
                 cfg: MelConfig, max_seconds: float = 30.0, valid_fraction: float = 0.05,
                 cache_dir: str | os.PathLike | None = None, log: Callable[[str], None] | None = None):
        self.cfg, self.labels, self.aux = cfg, list(labels), dict(aux)
        index = {lab: i for i, lab in enumerate(labels)}
        aux_index = {h: {lab: i for i, lab in enumerate(v)} for h, v in aux.items()}
        cache = Path(cache_dir) if cache_dir is not None else None
        self.items: list[LabelledMel] = []
        self.skipped: list[str] = []
        chosen = [c for c in select_split(clips, split, valid_fraction) if main_label(c) in index]
        for k, c in enumerate(chosen):
            try:
                mel = clip_mel(c, cfg, max_seconds, cache)
            except (AudioError, OSError) as e:
                self.skipped.append(str(e))
                continue
            a = {h: aux_index[h][v] for h, v in aux_labels(c).items() if h in aux_index and v in aux_index[h]}
            self.items.append(LabelledMel(mel, index[main_label(c)], a, c.path))
            if log and (k + 1) % 500 == 0:
                log(f"{split}: {k + 1}/{len(chosen)} clips decoded")
        if not self.items:
            raise ManifestError(f"no labelled clips in the '{split}' split of the given manifests")
        counts = Counter(it.main for it in self.items)
        w = np.array([1.0 / np.sqrt(counts[it.main]) for it in self.items])
        self.weights = w / w.sum()  # class-balanced-ish sampling: each class's share grows as sqrt(count)

    def __len__(self) -> int:
        return len(self.items)

    def corpus(self, i: int) -> str:
        return corpus_of(self.labels[self.items[i].main])

    def batch(self, idx: Sequence[int], frames: int, rng: np.random.Generator | None,
              gain_db: float = 0.0) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Crops of ``frames`` frames -> (mel float32 [B, n_mels, frames], main [B], {head: [B]}).

        ``rng`` None: crops start at frame 0 (valid). ``gain_db``: a random gain in +-gain_db per clip,
        applied in the log domain (then clamped at the log floor again).
        """
        floor = float(np.log(self.cfg.log_floor))
        out = np.full((len(idx), self.cfg.n_mels, frames), floor, np.float32)
        for j, i in enumerate(idx):
            m = self.items[i].mel
            t = m.shape[1]
            start = int(rng.integers(0, t - frames + 1)) if (rng is not None and t > frames) else 0
            piece = m[:, start:start + frames].astype(np.float32)
            if rng is not None and gain_db > 0:
                piece = np.maximum(piece + rng.uniform(-gain_db, gain_db) * np.log(10.0) / 20.0, floor)
            out[j, :, :piece.shape[1]] = piece
        main = np.array([self.items[i].main for i in idx], np.int64)
        aux = {h: np.array([self.items[i].aux.get(h, IGNORE) for i in idx], np.int64) for h in self.aux}
        return out, main, aux
