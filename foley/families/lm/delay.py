"""MusicGen's delay pattern: codebook k of a frame is predicted k steps after codebook 0.

Codes are [B, K, T]; for stereo models the K rows interleave channels (L0, R0, L1, R1, ...) and both rows of
a pair share a delay, as transformers' ``MusicgenForCausalLM.build_delay_pattern_mask`` lays them out. The
delayed sequence has a start token at position 0 and is ``T + max_delay + 1`` long: row k holds
``codes[k, p - 1 - delay_k]`` at position p, and ``pad`` where that index is outside ``0..T-1``.
"""

from __future__ import annotations

import torch


def delays(num_codebooks: int, channels: int = 1) -> list[int]:
    """The delay of each codebook row: 0, 1, 2, ... (stereo: 0, 0, 1, 1, ...)."""
    if num_codebooks % channels:
        raise ValueError(f"{num_codebooks} codebooks cannot be split over {channels} channels")
    return [k // channels for k in range(num_codebooks)]


def interleave(codes: torch.Tensor, pad: int, channels: int = 1) -> torch.Tensor:
    """Codes [B, K, T] -> delayed sequence [B, K, T + max_delay + 1] (start token and padding = ``pad``)."""
    b, k, t = codes.shape
    d = delays(k, channels)
    out = torch.full((b, k, t + d[-1] + 1), pad, dtype=codes.dtype, device=codes.device)
    for row, delay in enumerate(d):
        out[:, row, 1 + delay:1 + delay + t] = codes[:, row]
    return out


def deinterleave(seq: torch.Tensor, channels: int = 1) -> torch.Tensor:
    """Delayed sequence [B, K, L] -> codes [B, K, L - max_delay - 1] (inverse of :func:`interleave`)."""
    b, k, length = seq.shape
    d = delays(k, channels)
    t = length - d[-1] - 1
    if t < 0:
        raise ValueError(f"a delayed sequence of {length} steps is shorter than the delay pattern")
    return torch.stack([seq[:, row, 1 + delay:1 + delay + t] for row, delay in enumerate(d)], dim=1)


def targets(seq: torch.Tensor, pad: int, ignore: int = -100) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher forcing: (inputs [B, K, L - 1], labels [B, K, L - 1] with padding positions = ``ignore``)."""
    labels = seq[..., 1:].clone()
    labels[labels == pad] = ignore
    return seq[..., :-1], labels
