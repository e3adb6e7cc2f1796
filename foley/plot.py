"""Spectrogram pictures (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .audio import Audio
from .fsutil import atomic_path


def spectrogram_db(audio: Audio, n_fft: int = 1024, hop: int = 256) -> np.ndarray:
    """Per-channel magnitude spectrogram in dB, shape [C, n_fft // 2 + 1, frames]."""
    from scipy.signal import stft

    _, _, z = stft(audio.samples, nperseg=n_fft, noverlap=n_fft - hop, boundary=None)
    return 20 * np.log10(np.abs(z) + 1e-6)


def save_spectrogram(audio: Audio, path: str | Path, title: str = "") -> Path:
    """Write a PNG with one spectrogram panel per channel (0 to Nyquist, 80 dB range)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spec = spectrogram_db(audio)
    top = spec.max()
    fig, axes = plt.subplots(audio.channels, 1, figsize=(8, 2.2 * audio.channels + 0.4), squeeze=False)
    for c, ax in enumerate(axes[:, 0]):
        ax.imshow(spec[c], origin="lower", aspect="auto", cmap="magma", vmin=top - 80, vmax=top,
                  extent=(0, audio.duration, 0, audio.sample_rate / 2000))
        ax.set_ylabel(("L", "R")[c] + " kHz" if audio.channels == 2 else "kHz")
    axes[-1, 0].set_xlabel("seconds")
    if title:
        axes[0, 0].set_title(title[:90], fontsize=9)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return path
