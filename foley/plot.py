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


LOWEST_HZ = 30.0  # bottom of the log-frequency axis (below it: DC and rumble, not worth a third of the picture)
RANGE_DB = 80.0


def spectrogram_figure(audio: Audio, title: str = ""):
    """A matplotlib figure with one spectrogram panel per channel: log-frequency axis (30 Hz to Nyquist,
    labelled in Hz/kHz) and a colour bar in dB relative to the loudest bin (80 dB range)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    n_fft = 1024
    spec = spectrogram_db(audio, n_fft=n_fft)
    top = spec.max()
    freqs = np.arange(spec.shape[1]) * audio.sample_rate / n_fft
    keep = freqs >= LOWEST_HZ
    times = np.linspace(0, audio.duration, spec.shape[2] + 1)
    edges = np.concatenate([[LOWEST_HZ], (freqs[keep][1:] + freqs[keep][:-1]) / 2, [audio.sample_rate / 2]])
    hz = FuncFormatter(lambda f, _: f"{f / 1000:g}k" if f >= 1000 else f"{f:g}")
    fig, axes = plt.subplots(audio.channels, 1, figsize=(8.6, 2.2 * audio.channels + 0.4), squeeze=False)
    mesh = None
    for c, ax in enumerate(axes[:, 0]):
        mesh = ax.pcolormesh(times, edges, spec[c][keep] - top, cmap="magma", vmin=-RANGE_DB, vmax=0,
                             shading="flat", rasterized=True)
        ax.set_yscale("log")
        ax.set_ylim(LOWEST_HZ, audio.sample_rate / 2)
        ax.yaxis.set_major_formatter(hz)
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda f, _: ""))
        ax.set_ylabel(("L", "R")[c] + " Hz" if audio.channels == 2 else "Hz")
    axes[-1, 0].set_xlabel("seconds")
    if title:
        axes[0, 0].set_title(title[:90], fontsize=9)
    bar = fig.colorbar(mesh, ax=list(axes[:, 0]), pad=0.015, fraction=0.04)
    bar.set_label("dB re. loudest")
    return fig


def save_spectrogram(audio: Audio, path: str | Path, title: str = "") -> Path:
    """Write :func:`spectrogram_figure` as a PNG (atomically)."""
    import matplotlib.pyplot as plt

    fig = spectrogram_figure(audio, title)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png", bbox_inches="tight")
    plt.close(fig)
    return path
