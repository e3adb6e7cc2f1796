"""The encoder as a :class:`~foley.eval.extractors.FeatureExtractor`: FD on its embedding, KL/IS on its
class posteriors.

Its registry name carries the weights' hash: ``foley-encoder-<first 8 hex of sha256(model.safetensors)>``,
so every metric name says which weights made it (``fd_foley-encoder-1a2b3c4d``); ``hash`` is the full hex.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ...audio import Audio
from ...errors import AudioError, ModelError
from ..extractors import FeatureExtractor

BASE_NAME = "foley-encoder"


def extractor_name(weights_hash: str) -> str:
    """``foley-encoder-<hash[:8]>``."""
    return f"{BASE_NAME}-{weights_hash[:8]}"


class EncoderExtractor(FeatureExtractor):
    """Clip embeddings ``[N, embed_dim]`` and softmax posteriors ``[N, K]`` of a foley-encoder folder.

    Input: prepared mono audio at the encoder's mel rate (16 kHz for the shipped model). Each clip is
    encoded whole (no crop; clips shorter than the conv stack's reach are padded with silence), one at
    a time, so a clip's numbers never depend on its batch.
    """

    channels = 1
    has_posteriors = True

    def __init__(self, folder: str | os.PathLike, expected_hash: str | None = None):
        from .model import load_encoder

        self.folder = Path(folder)
        self.model, self._hash = load_encoder(self.folder)
        if expected_hash is not None and expected_hash != self._hash:
            raise ModelError(f"{self.folder}: weights changed since they were registered; run again")
        self.config = self.model.config
        self.sample_rate = self.config.mel.sample_rate
        self.name = extractor_name(self._hash)
        self._memo: tuple[list, tuple[np.ndarray, np.ndarray]] | None = None

    @property
    def hash(self) -> str:
        return self._hash

    def run(self, audios: list[Audio]) -> tuple[np.ndarray, np.ndarray]:
        """(embeddings [N, D] float32, posteriors [N, K] float64, rows summing to 1)."""
        if self._memo is not None and self._memo[0] is audios:  # embed() then posteriors() on one batch
            return self._memo[1]
        import torch

        from ...features import log_mel

        emb, post = [], []
        with torch.no_grad():
            for a in audios:
                if a.sample_rate != self.sample_rate:
                    raise AudioError(f"{self.name} expects {self.sample_rate} Hz audio, got {a.sample_rate} Hz")
                x = a.to_mono().samples.astype(np.float32)
                x = np.pad(x, ((0, 0), (0, max(0, self.config.mel.n_fft - x.shape[1]))))
                out = self.model(log_mel(torch.from_numpy(x), self.config.mel))
                emb.append(out["embedding"][0].numpy())
                post.append(torch.softmax(out["main"][0].double(), dim=0).numpy())
        result = (np.stack(emb).astype(np.float32), np.stack(post))
        self._memo = (audios, result)  # holding the list keeps its identity unique while memoised
        return result

    def embed(self, audios: list[Audio]) -> np.ndarray:
        return self.run(audios)[0]

    def posteriors(self, audios: list[Audio]) -> np.ndarray:
        return self.run(audios)[1]

    def describe(self) -> dict:
        d = super().describe()
        c = self.config
        d.update(kind="our audio encoder (CNN on log-mel, trained on the foley corpora)",
                 folder=str(self.folder), weights_file="model.safetensors", hash_of="sha256 of model.safetensors",
                 mel=c.mel.to_dict(), embedding=f"pooled penultimate layer [{c.embed_dim}]",
                 frames="one clip embedding per item (clip encoded whole)",
                 posteriors=f"softmax over {len(c.labels)} corpus classes (synth:<recipe>, music:<family>, "
                            "sfx:<category>)",
                 labels=list(c.labels), training=_training_summary(c.info))
        return d


def _training_summary(info: dict) -> dict:
    """Data, steps and held-out accuracy (overall and per corpus) from the config's training info."""
    valid = info.get("valid") or {}
    return {k: v for k, v in {
        "data": info.get("data"), "steps": info.get("steps"), "parameters": info.get("parameters"),
        "valid_accuracy": valid.get("accuracy"),
        "valid_accuracy_per_corpus": {c: r["accuracy"] for c, r in valid.get("per_corpus", {}).items()} or None,
    }.items() if v is not None}
