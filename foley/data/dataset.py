"""The training dataset: fixed-length crops of manifest clips at the model's rate and channels.

Each item is ``{"audio": FloatTensor [C, T], "caption": str, "index": int}`` with ``C = channels``
and ``T = round(clip_seconds * sample_rate)`` exactly; a DataLoader batches it to ``[B, C, T]``.

- Crops: a random offset per call in the "train" and "all" splits; in "valid" the first ``T`` frames
  (deterministic, and sound effects put their onset first). Clips shorter than ``T`` are padded with
  silence at the end.
- Conversion: channels first (5.1 and stereo fold down, mono becomes centred stereo via
  :meth:`Audio.to_stereo`), then soxr resampling to ``sample_rate``.
- Captions: :func:`clip_captions` (description, captions, AudioCraft sidecar, keywords); a random one
  in train with ``caption_mode="random"``, otherwise the first. A clip without text gives ``""``.
- Split: a clip is in "valid" when a SHA-1 hash of its manifest ``path`` (as written, so relative
  manifests give the same split on every machine) and description falls below ``valid_fraction``;
  it depends neither on manifest order nor on ``seed``. If no clip falls below it but there are two
  or more clips, the clip with the smallest hash alone is "valid", so tiny sets still validate.
- Cache: with ``cache_dir``, each clip is decoded and converted once and kept as float16 ``.npy``
  (keyed by a hash of the file's absolute path, mtime, size and the rate/channels), then read through
  a memory map so only the crop is paged in.
- Randomness: a numpy Generator seeded from ``seed`` and, inside a DataLoader worker, that worker's
  seed (so workers draw different crops and seeding torch makes a run repeatable).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from ..audio import Audio
from ..errors import AudioError, FoleyError, ManifestError
from ..fsutil import atomic_path
from .manifest import Clip, clip_captions, read_manifest

CACHE_VERSION = 1  # bump when the cached array layout or conversion changes


def split_score(clip: Clip) -> float:
    """A number in [0, 1) from the clip's manifest path and description; stable across runs/machines."""
    key = f"{Path(clip.path).as_posix()}\n{clip.description or ''}".encode()
    return int.from_bytes(hashlib.sha1(key).digest()[:8], "big") / 2.0**64


def select_split(clips: Sequence[Clip], split: str, valid_fraction: float) -> list[Clip]:
    """The clips of ``split`` ("train", "valid" or "all"), in manifest order (see the module docstring)."""
    if split == "all":
        return list(clips)
    if split not in ("train", "valid"):
        raise FoleyError(f"split '{split}' is unknown; use train, valid or all")
    if not 0.0 <= valid_fraction < 1.0:
        raise FoleyError(f"valid_fraction {valid_fraction} must be in [0, 1)")
    scores = [split_score(c) for c in clips]
    valid = {i for i, s in enumerate(scores) if s < valid_fraction}
    if not valid and valid_fraction > 0 and len(clips) >= 2:
        valid = {int(np.argmin(scores))}
    return [c for i, c in enumerate(clips) if (i in valid) == (split == "valid")]


class ClipDataset(Dataset):
    """Fixed-length crops of the clips of one or more manifests, as float tensors [C, T].

    Args:
        manifests: JSONL manifests (AudioCraft-compatible), concatenated in order.
        sample_rate: output rate in Hz (the model's).
        channels: output channels, 1 or 2.
        clip_seconds: crop length; ``T = round(clip_seconds * sample_rate)``.
        split: "train" (random crops and captions), "valid" (first crop, first caption) or "all"
            (every clip, cropped and captioned as in train).
        valid_fraction: share of clips in "valid" (see :func:`select_split`).
        cache_dir: folder for decoded audio; None decodes on every access.
        seed: seed of the crop and caption choices.
        caption_mode: "random" (train only) or "first".
    """

    def __init__(self, manifests: Sequence[str | os.PathLike], sample_rate: int, channels: int,
                 clip_seconds: float, split: Literal["train", "valid", "all"] = "train",
                 valid_fraction: float = 0.05, cache_dir: str | os.PathLike | None = None, seed: int = 0,
                 caption_mode: Literal["random", "first"] = "random"):
        if channels not in (1, 2):
            raise FoleyError(f"channels={channels} is not supported; use 1 or 2")
        if caption_mode not in ("random", "first"):
            raise FoleyError(f"caption_mode '{caption_mode}' is unknown; use random or first")
        self.frames = int(round(clip_seconds * sample_rate))
        if self.frames <= 0:
            raise FoleyError(f"clip_seconds={clip_seconds} gives no frames at {sample_rate} Hz")
        if isinstance(manifests, (str, os.PathLike)):
            manifests = [manifests]
        everything = [c for m in manifests for c in read_manifest(m)]
        self.clips: list[Clip] = select_split(everything, split, valid_fraction)
        if not self.clips:
            raise ManifestError(f"no clips in the '{split}' split of {', '.join(map(str, manifests))}")
        self.sample_rate, self.channels, self.clip_seconds = int(sample_rate), int(channels), clip_seconds
        self.split, self.seed, self.caption_mode = split, seed, caption_mode
        self.random_crops = split != "valid"
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.decodes = 0  # how many times a source file was decoded by this process
        self._keys: dict[int, str] = {}
        self._captions: dict[int, list[str]] = {}
        self._rng: np.random.Generator | None = None
        self._rng_owner: int | None = None

    def __len__(self) -> int:
        return len(self.clips)

    # --- randomness --------------------------------------------------------------------------
    def _generator(self) -> np.random.Generator:
        worker = get_worker_info()
        owner = worker.seed if worker is not None else None
        if self._rng is None or owner != self._rng_owner:
            self._rng = np.random.default_rng([self.seed] + ([owner] if owner is not None else []))
            self._rng_owner = owner
        return self._rng

    # --- decoding and cache ------------------------------------------------------------------
    def _decode(self, index: int) -> np.ndarray:
        """The whole clip at the output rate and channels: float32 [C, N]."""
        self.decodes += 1
        path = self.clips[index].resolved_path()
        audio = Audio.load(path, sample_rate=self.sample_rate, channels=self.channels)
        return audio.samples

    def cache_key(self, index: int) -> str:
        """Hash of the source file (absolute path, mtime, size) and the conversion settings."""
        if index not in self._keys:
            path = self.clips[index].resolved_path()
            try:
                st = path.stat()
            except OSError:
                raise AudioError(f"{path}: file not found (listed in a manifest)") from None
            ident = {"path": str(path.absolute()), "mtime_ns": st.st_mtime_ns, "size": st.st_size,
                     "rate": self.sample_rate, "channels": self.channels, "version": CACHE_VERSION}
            self._keys[index] = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:32]
        return self._keys[index]

    def _cache_file(self, index: int) -> Path:
        assert self.cache_dir is not None
        key = self.cache_key(index)
        return self.cache_dir / key[:2] / f"{key}.npy"

    def _fill(self, index: int) -> Path:
        f = self._cache_file(index)
        if not f.exists():
            samples = self._decode(index)
            with atomic_path(f) as tmp:
                np.save(tmp, samples.astype(np.float16))
        return f

    def _samples(self, index: int) -> np.ndarray:
        """Full clip [C, N] (a memory map when cached)."""
        if self.cache_dir is None:
            return self._decode(index)
        return np.load(self._fill(index), mmap_mode="r")

    def preload(self, progress: bool = True) -> int:
        """Decode every clip into the cache (needs ``cache_dir``); returns how many were decoded now."""
        if self.cache_dir is None:
            raise FoleyError("preload needs a cache_dir to fill")
        before = self.decodes
        indices = range(len(self))
        if progress:
            from rich.progress import track

            indices = track(indices, description="caching audio", transient=True)
        for i in indices:
            self._fill(i)
        return self.decodes - before

    # --- items -------------------------------------------------------------------------------
    def captions(self, index: int) -> list[str]:
        if index not in self._captions:
            self._captions[index] = clip_captions(self.clips[index])
        return self._captions[index]

    def crop(self, samples: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        """A float32 [C, T] crop of ``samples`` [C, N]: random offset with ``rng``, else the start;
        zero-padded at the end when N < T."""
        n, t = samples.shape[1], self.frames
        start = int(rng.integers(0, n - t + 1)) if (rng is not None and n > t) else 0
        out = np.zeros((samples.shape[0], t), np.float32)
        piece = samples[:, start:start + t]
        out[:, :piece.shape[1]] = piece
        return out

    def __getitem__(self, index: int) -> dict:
        """``{"audio": FloatTensor [C, T], "caption": str, "index": int}``."""
        if not 0 <= index < len(self):
            raise IndexError(index)
        rng = self._generator() if self.random_crops else None
        audio = self.crop(self._samples(index), rng)
        caps = self.captions(index)
        if not caps:
            caption = ""
        elif rng is not None and self.caption_mode == "random":
            caption = caps[int(rng.integers(len(caps)))]
        else:
            caption = caps[0]
        return {"audio": torch.from_numpy(audio), "caption": caption, "index": index}
