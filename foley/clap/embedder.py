"""Inference with a foley-clap folder: audio and text embeddings, CLAP scores, ranking.

The same surface as the evaluation suite's LAION-CLAP backbone (``embed``, ``embed_text``, ``clap_score``,
``name``, ``hash``, ``describe``), so either can score, rerank or search.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..audio import Audio
from ..errors import RequestError
from .model import ClapNet, clap_features, load_clap_net

BATCH = 16


class FoleyClap:
    """A loaded foley-clap: ``embed(audios) -> [N, D]``, ``embed_text(texts) -> [M, D]`` (L2-normalised numpy),
    ``clap_score(audios, texts) -> [N]`` (cosine of each pair), ``similarity(audios, texts) -> [N, M]``."""

    def __init__(self, net: ClapNet, sha256: str, folder: Path | None = None):
        self.net, self.sha256, self.folder = net.eval(), sha256, folder
        self.config = net.config
        self.hash = sha256[:12]
        self.name = f"foley-clap-{sha256[:8]}"
        self.sample_rate = net.config.mel.sample_rate
        self.dim = net.config.embed_dim
        self._text_cache: dict[str, np.ndarray] = {}

    @classmethod
    def from_folder(cls, folder) -> FoleyClap:
        net, sha = load_clap_net(folder)
        return cls(net, sha, Path(folder))

    # --- audio -------------------------------------------------------------------------------------------
    def _windows(self, audio: Audio) -> list[np.ndarray]:
        c = self.config
        feats = clap_features(audio, c.mel)
        win = c.mel.frames_for(c.window_seconds)
        if feats.shape[-1] <= win:
            return [feats]
        n = feats.shape[-1]
        starts = list(range(0, n - win + 1, win))
        if starts[-1] + win < n:  # the tail, as a window ending with the clip
            starts.append(n - win)
        starts = starts[: c.max_windows]
        return [feats[..., s:s + win] for s in starts]

    @torch.no_grad()
    def embed(self, audios: Sequence[Audio]) -> np.ndarray:
        """One L2-normalised row per clip (windows of equal length are batched together)."""
        if not len(audios):
            return np.zeros((0, self.dim), np.float32)
        items = []  # (clip index, features)
        for i, a in enumerate(audios):
            if not isinstance(a, Audio):
                raise RequestError(f"CLAP embeds foley.audio.Audio objects, got {type(a).__name__}")
            items += [(i, w) for w in self._windows(a)]
        sums = np.zeros((len(audios), self.dim), np.float64)
        by_len: dict[int, list[int]] = {}
        for k, (_, f) in enumerate(items):
            by_len.setdefault(f.shape[-1], []).append(k)
        for ks in by_len.values():
            for s in range(0, len(ks), BATCH):
                chunk = ks[s:s + BATCH]
                emb = self.net.audio(torch.from_numpy(np.stack([items[k][1] for k in chunk]))).numpy()
                for k, e in zip(chunk, emb, strict=True):
                    sums[items[k][0]] += e
        return (sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    # --- text --------------------------------------------------------------------------------------------
    @torch.no_grad()
    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        texts = [" ".join(str(t).split()) for t in texts]
        if any(not t for t in texts):
            raise RequestError("a CLAP text is empty; describe the sound, e.g. 'rain on a tin roof'")
        todo = sorted({t for t in texts if t not in self._text_cache})
        if todo:
            from ..text import get_text_encoder

            enc = get_text_encoder(self.config.text_encoder)
            for s in range(0, len(todo), 64):
                part = todo[s:s + 64]
                pooled = enc(part).pooled.float()
                for t, e in zip(part, self.net.text(pooled).numpy(), strict=True):
                    self._text_cache[t] = e
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([self._text_cache[t] for t in texts]).astype(np.float32)

    # --- scores ------------------------------------------------------------------------------------------
    def similarity(self, audios: Sequence[Audio], texts: Sequence[str]) -> np.ndarray:
        return self.embed(audios) @ self.embed_text(texts).T

    def clap_score(self, audios: Sequence[Audio], texts: Sequence[str]) -> np.ndarray:
        """Cosine of each (audio, text) pair; one text is broadcast over all the audios."""
        texts = list(texts)
        if len(texts) == 1 and len(audios) > 1:
            texts = texts * len(audios)
        if len(texts) != len(audios):
            raise RequestError(f"{len(audios)} sounds and {len(texts)} texts; give one text, or one per sound")
        return np.sum(self.embed(audios) * self.embed_text(texts), axis=1)

    def describe(self) -> dict:
        c = self.config
        return {"name": self.name, "sha256": self.sha256, "folder": str(self.folder) if self.folder else None,
                "sample_rate": self.sample_rate, "dim": self.dim, "text_encoder": c.text_encoder,
                "window_seconds": c.window_seconds, "max_windows": c.max_windows,
                "input": "16 kHz stereo (mono is duplicated): log-mel of the mid and the L-R log-mel difference"}
