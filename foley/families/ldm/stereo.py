"""The model space of log-mels: normalisation and how stereo is represented to the VAE.

``"lr"``: the channels are the left and right log-mels, each normalised by (mean, std).
``"mid_ild"``: channel 0 is the mean of the left and right log-mels (normalised by mean, std),
channel 1 their difference (the inter-channel level difference per band and frame) divided by
``ild_std``. Measured on the first starter VAE (``"lr"``): it reconstructed L == R for clips whose
level moved by ±6-8 dB between the speakers (the pan is a small, highly correlated difference that an
L1 loss on two near-identical channels ignores); making the difference its own unit-variance channel
gives it its full weight in the loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

MODES = ("lr", "mid_ild")


@dataclass(frozen=True)
class MelSpace:
    """Raw log-mel [B, C, n_mels, N] <-> model space [B, C, n_mels, N]."""

    mean: float
    std: float
    stereo: str = "lr"
    ild_std: float = 1.0

    def __post_init__(self):
        if self.stereo not in MODES:
            raise ValueError(f"unknown stereo representation '{self.stereo}'; use one of {MODES}")

    def encode(self, raw: torch.Tensor) -> torch.Tensor:
        if self.stereo == "mid_ild" and raw.shape[1] == 2:
            mid = (raw[:, 0] + raw[:, 1]) / 2
            return torch.stack([(mid - self.mean) / self.std, (raw[:, 0] - raw[:, 1]) / self.ild_std], dim=1)
        return (raw - self.mean) / self.std

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        if self.stereo == "mid_ild" and x.shape[1] == 2:
            mid = x[:, 0] * self.std + self.mean
            half = x[:, 1] * self.ild_std / 2
            return torch.stack([mid + half, mid - half], dim=1)
        return x * self.std + self.mean


def measure(raw_batches, stereo: str) -> dict:
    """Statistics of raw log-mel batches [B, C, n_mels, N] for a :class:`MelSpace`."""
    v = torch.cat([b.flatten() for b in raw_batches])
    stats = {"mean": float(v.mean()), "std": float(v.std()), "stereo": stereo, "ild_std": 1.0}
    if stereo == "mid_ild":
        d = torch.cat([(b[:, 0] - b[:, 1]).flatten() for b in raw_batches if b.shape[1] == 2])
        stats["ild_std"] = max(float(d.std()), 1e-3)
    return stats
