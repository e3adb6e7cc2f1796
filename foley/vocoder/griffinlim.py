"""Fast Griffin-Lim: the always-available vocoder, log-mel -> waveform with no trained weights.

Pseudo-inverse mel -> linear magnitude, then fast Griffin-Lim with momentum (Perraudin, Balazs and
Søndergaard, 2013). The initial phase is a fixed pseudo-random field shared by every batch item, so
the two channels of a stereo pair (vocoded as a batch of two) start from the same phase and stay
coherent. Hand-written because librosa's Griffin-Lim is NumPy (~8x slower here) and torchaudio's
does not import on this machine.
"""

from __future__ import annotations

import torch

from ..features import MelConfig, mel_to_linear

PHASE_SEED = 0  # seed of the shared initial phase field; any fixed value gives coherent stereo


def _window(cfg: MelConfig, device, dtype) -> torch.Tensor:
    return torch.hann_window(cfg.win_length, device=device, dtype=dtype)


def _stft(wave: torch.Tensor, cfg: MelConfig, window: torch.Tensor) -> torch.Tensor:
    """Centred complex STFT [B, T] -> [B, F, T // hop + 1] (all frames, unlike ``features.stft``)."""
    return torch.stft(wave, cfg.n_fft, cfg.hop_length, cfg.win_length, window, center=True,
                      pad_mode="reflect", return_complex=True)


def _istft(spec: torch.Tensor, cfg: MelConfig, window: torch.Tensor, length: int) -> torch.Tensor:
    return torch.istft(spec, cfg.n_fft, cfg.hop_length, cfg.win_length, window, center=True, length=length)


def initial_phase(n_freqs: int, n_frames: int, device=None) -> torch.Tensor:
    """Deterministic unit-modulus phase field [n_freqs, n_frames] (complex64), same on every call."""
    gen = torch.Generator().manual_seed(PHASE_SEED)
    angle = torch.rand(n_freqs, n_frames, generator=gen) * (2 * torch.pi)
    return torch.polar(torch.ones_like(angle), angle).to(device)


def linear_magnitude(log_mel: torch.Tensor, cfg: MelConfig) -> torch.Tensor:
    """Log-mel [B, n_mels, N] -> non-negative linear STFT magnitude [B, n_fft // 2 + 1, N + 1].

    The centred STFT of ``N * hop`` samples has ``N + 1`` frames; the mel drops the last one, so it
    is restored as a copy of frame ``N - 1``.
    """
    mag = mel_to_linear(torch.exp(log_mel.float()), cfg)
    return torch.cat([mag, mag[..., -1:]], dim=-1)


@torch.no_grad()
def griffin_lim(log_mel: torch.Tensor, cfg: MelConfig | None = None, n_iter: int = 32,
                momentum: float = 0.99) -> torch.Tensor:
    """Vocode a log-mel spectrogram with fast Griffin-Lim.

    Args:
        log_mel: [B, n_mels, N] natural-log magnitude mel as made by ``features.log_mel``.
        cfg: the mel settings of ``log_mel`` (default ``MelConfig()``, 16 kHz, hop 256).
        n_iter: Griffin-Lim iterations (0 returns the initial-phase reconstruction).
        momentum: fast Griffin-Lim momentum in [0, 1); 0 is classic Griffin-Lim.

    Returns:
        wave [B, N * hop] float32 at ``cfg.sample_rate``.
    """
    cfg = cfg or MelConfig()
    if log_mel.ndim != 3 or log_mel.shape[1] != cfg.n_mels:
        raise ValueError(f"log_mel must be [B, {cfg.n_mels}, N], got {tuple(log_mel.shape)}")
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    length = log_mel.shape[-1] * cfg.hop_length
    if length == 0:
        return torch.zeros(log_mel.shape[0], 0, device=log_mel.device)
    window = _window(cfg, log_mel.device, torch.float32)
    mag = linear_magnitude(log_mel, cfg)
    angles = initial_phase(mag.shape[-2], mag.shape[-1], log_mel.device).expand_as(mag)
    previous = torch.zeros_like(angles)
    alpha = momentum / (1.0 + momentum)
    for _ in range(n_iter):
        rebuilt = _stft(_istft(mag * angles, cfg, window, length), cfg, window)
        angles = rebuilt - alpha * previous
        angles = angles / (angles.abs() + 1e-16)
        previous = rebuilt
    return _istft(mag * angles, cfg, window, length)


def spectral_convergence(wave: torch.Tensor, log_mel: torch.Tensor, cfg: MelConfig | None = None) -> float:
    """Griffin-Lim's own objective: ||target| - |STFT(wave)|| / ||target|| over the linear magnitude.

    ``wave`` [B, N * hop], ``log_mel`` [B, n_mels, N]; lower is better (0 = consistent).
    """
    cfg = cfg or MelConfig()
    target = linear_magnitude(log_mel, cfg)
    got = _stft(wave.float(), cfg, _window(cfg, wave.device, torch.float32)).abs()
    return float(torch.linalg.norm(got - target) / torch.linalg.norm(target).clamp_min(1e-12))


class GriffinLim:
    """The fallback vocoder object: ``GriffinLim()(log_mel [B, n_mels, N]) -> wave [B, N * hop]``."""

    name = "griffin-lim"

    def __init__(self, mel_config: MelConfig | None = None, n_iter: int = 32, momentum: float = 0.99):
        self.mel_config = mel_config or MelConfig()
        self.n_iter = n_iter
        self.momentum = momentum

    def __call__(self, log_mel: torch.Tensor) -> torch.Tensor:
        return griffin_lim(log_mel, self.mel_config, self.n_iter, self.momentum)

    def __repr__(self) -> str:
        return f"GriffinLim(n_iter={self.n_iter}, momentum={self.momentum})"
