"""Our codec's transformers ``EncodecConfig`` from a recipe, and its bandwidth ladder.

A codec with ``n_q`` codebooks of ``codebook_size`` entries at ``frame_rate`` frames per second carries
``n * frame_rate * log2(codebook_size)`` bit/s when the first ``n`` codebooks are used (quantizer dropout
trains every ``n``); transformers picks ``n`` from a bandwidth in kbps, so the ladder lists one bandwidth
per ``n``.
"""

from __future__ import annotations

import math

from ..errors import FoleyError

DEFAULTS = {
    "sample_rate": 16000,
    "ratios": [8, 5, 4, 2],        # hop 320 samples -> 50 frames/s at 16 kHz
    "num_filters": 16,
    "hidden_size": 64,             # latent (and codebook) dimension
    "codebook_size": 1024,
    "n_q": 4,
    "num_lstm_layers": 1,
    "num_residual_layers": 1,
    "causal": True,                # causal convolutions: chunked decoding for streaming has no look-ahead
}


def bandwidths(frame_rate: float, codebook_size: int, n_q: int) -> list[float]:
    """Kbps for 1..n_q codebooks, each nudged up so transformers' floor() maps it back to exactly n."""
    per_q = frame_rate * math.log2(codebook_size)
    out = []
    for n in range(1, n_q + 1):
        bw = round(n * per_q / 1000, 6)
        while math.floor(bw * 1000 / per_q) < n:
            bw = math.nextafter(bw, math.inf)
        out.append(bw)
    return out


def codec_config(recipe: dict | None = None):
    """A transformers ``EncodecConfig`` (mono, unnormalised, unchunked) from ``recipe["codec"]`` values."""
    from transformers import EncodecConfig

    r = {**DEFAULTS, **(recipe or {})}
    size = int(r["codebook_size"])
    if size & (size - 1):
        raise FoleyError(f"codebook_size {size} must be a power of two")
    ratios = [int(x) for x in r["ratios"]]
    hop = math.prod(ratios)
    sr = int(r["sample_rate"])
    if sr % hop:
        raise FoleyError(f"sample rate {sr} is not a multiple of the hop {hop} (product of ratios {ratios})")
    cfg = EncodecConfig(
        sampling_rate=sr, audio_channels=1, num_filters=int(r["num_filters"]), upsampling_ratios=ratios,
        hidden_size=int(r["hidden_size"]), codebook_size=size, num_lstm_layers=int(r["num_lstm_layers"]),
        num_residual_layers=int(r["num_residual_layers"]), use_causal_conv=bool(r["causal"]), normalize=False,
        chunk_length_s=None, overlap=None, target_bandwidths=bandwidths(sr / hop, size, int(r["n_q"])))
    if cfg.num_quantizers != int(r["n_q"]):
        raise FoleyError(f"codec config gives {cfg.num_quantizers} quantizers instead of {r['n_q']}")
    return cfg
