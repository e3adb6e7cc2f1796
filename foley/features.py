"""One definition of every spectral setting: STFT, mel filterbank, log-mel and its inverse.

All models and metrics that speak "mel" take a :class:`MelConfig`, stored in their config.json,
so a model never depends on a magic number tied to one sample rate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class MelConfig:
    """Mel-spectrogram settings. ``frames = samples // hop_length`` exactly (no centre frame)."""

    sample_rate: int = 16_000
    n_fft: int = 1024
    hop_length: int = 256
    win_length: int = 1024
    n_mels: int = 64
    f_min: float = 0.0
    f_max: float = 8_000.0
    log_floor: float = 1e-5  # natural log of magnitude mel, clamped here (HiFi-GAN convention)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> MelConfig:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    def frames_for(self, seconds: float, multiple: int = 1) -> int:
        """Number of mel frames covering ``seconds``, rounded up to a multiple of ``multiple``."""
        n = int(np.ceil(seconds * self.frame_rate))
        return int(np.ceil(n / multiple) * multiple)


_F_SP, _LOG_HZ, _LOG_STEP = 200.0 / 3, 1000.0, np.log(6.4) / 27.0  # Slaney's mel scale (librosa's default)
_LOG_MEL = _LOG_HZ / _F_SP  # 14.999999999999998, as librosa computes it


def _hz_to_mel(hz: float) -> float:
    """Slaney's mel scale: linear to 1 kHz, logarithmic above."""
    return hz / _F_SP if hz < _LOG_HZ else _LOG_MEL + np.log(hz / _LOG_HZ) / _LOG_STEP


@lru_cache(maxsize=8)
def mel_filterbank(cfg: MelConfig) -> np.ndarray:
    """Slaney-normalised mel filterbank, shape [n_mels, n_fft // 2 + 1]: ``librosa.filters.mel``'s numbers.

    Hand-written (librosa's own steps, bit-identical, tested): importing librosa.filters imports numba, 1.4 s of a
    cold start that needs nothing else from it."""
    mels = np.linspace(_hz_to_mel(cfg.f_min), _hz_to_mel(cfg.f_max), cfg.n_mels + 2)
    mel_f = _F_SP * mels
    log_t = mels >= _LOG_MEL
    mel_f[log_t] = _LOG_HZ * np.exp(_LOG_STEP * (mels[log_t] - _LOG_MEL))
    ramps = np.subtract.outer(mel_f, np.fft.rfftfreq(n=cfg.n_fft, d=1.0 / cfg.sample_rate))
    fdiff = np.diff(mel_f)
    weights = np.zeros((cfg.n_mels, cfg.n_fft // 2 + 1), dtype=np.float32)
    for i in range(cfg.n_mels):
        weights[i] = np.maximum(0, np.minimum(-ramps[i] / fdiff[i], ramps[i + 2] / fdiff[i + 1]))
    weights *= (2.0 / (mel_f[2: cfg.n_mels + 2] - mel_f[: cfg.n_mels]))[:, np.newaxis]
    return weights


def _torch():
    import torch

    return torch


def stft(wave, cfg: MelConfig):
    """Complex STFT of ``wave`` [B, T] -> [B, n_fft//2+1, T//hop] (centred, reflect-padded)."""
    torch = _torch()
    window = torch.hann_window(cfg.win_length, device=wave.device, dtype=wave.dtype)
    spec = torch.stft(wave, cfg.n_fft, cfg.hop_length, cfg.win_length, window, center=True,
                      pad_mode="reflect", return_complex=True)
    return spec[..., : wave.shape[-1] // cfg.hop_length]


def istft(spec, cfg: MelConfig, length: int):
    """Inverse of :func:`stft`; ``spec`` [B, F, N] -> wave [B, length]."""
    torch = _torch()
    frames = length // cfg.hop_length + 1
    if spec.shape[-1] < frames:  # restore the dropped trailing frame(s) as silence
        spec = torch.nn.functional.pad(spec, (0, frames - spec.shape[-1]))
    window = torch.hann_window(cfg.win_length, device=spec.device, dtype=torch.float32)
    return torch.istft(spec, cfg.n_fft, cfg.hop_length, cfg.win_length, window, center=True, length=length)


def log_mel(wave, cfg: MelConfig):
    """Log-magnitude mel spectrogram of ``wave`` [B, T] -> [B, n_mels, T // hop]."""
    torch = _torch()
    fb = torch.from_numpy(mel_filterbank(cfg)).to(wave.device, wave.dtype)
    mag = stft(wave, cfg).abs()
    return torch.log(torch.clamp(fb @ mag, min=cfg.log_floor))


def log_mel_np(samples: np.ndarray, cfg: MelConfig) -> np.ndarray:
    """NumPy convenience: samples [C, T] float32 -> log-mel [C, n_mels, T // hop]."""
    torch = _torch()
    with torch.no_grad():
        return log_mel(torch.from_numpy(np.ascontiguousarray(samples, np.float32)), cfg).numpy()


def mel_to_linear(mel_mag, cfg: MelConfig):
    """Least-squares linear magnitude from mel magnitude [B, n_mels, N] -> [B, F, N] (non-negative)."""
    torch = _torch()
    fb = torch.from_numpy(mel_filterbank(cfg)).to(mel_mag.device, mel_mag.dtype)
    inv = torch.linalg.pinv(fb)
    return torch.clamp(inv @ mel_mag, min=0.0)
