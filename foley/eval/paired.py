"""Paired metrics: one generated clip against its own reference clip.

Both clips must already share a sample rate and be mono ([1, T]); :func:`align` crops both to the
shorter length (the rule recorded in reports). Frame sizes are given in seconds.
"""

from __future__ import annotations

import numpy as np

from ..audio import Audio

LSD_SECONDS = 0.064                    # STFT frame for LSD (1024 samples at 16 kHz), hop a quarter
MEL_RESOLUTIONS = (0.016, 0.032, 0.064, 0.128)   # multi-resolution mel windows, seconds
MEL_BANDS = 64
LOG_FLOOR = 1e-5
PAIRED_UNITS = {"lsd": "dB", "mel_distance": "mean |Δ ln mel|", "si_sdr": "dB",
                "chroma_cosine": "cosine -1..1", "loudness_diff": "LU (generated - reference)"}
HIGHER_IS_BETTER = {"lsd": False, "mel_distance": False, "si_sdr": True, "chroma_cosine": True,
                    "loudness_diff": None}


def align(gen: Audio, ref: Audio) -> tuple[np.ndarray, np.ndarray]:
    """Mono float64 signals cropped to the shorter of the two: ([T], [T])."""
    if gen.sample_rate != ref.sample_rate:
        raise ValueError(f"paired metrics need one sample rate, got {gen.sample_rate} and {ref.sample_rate}")
    g = gen.samples.astype(np.float64).mean(axis=0)
    r = ref.samples.astype(np.float64).mean(axis=0)
    n = min(len(g), len(r))
    return g[:n], r[:n]


def _nfft(sr: int, seconds: float) -> int:
    return int(2 ** np.round(np.log2(max(seconds * sr, 16))))


def lsd(gen: Audio, ref: Audio) -> float:
    """Log-spectral distance in dB: mean over frames of the RMS over bins of 10 log10 P_g - 10 log10 P_r."""
    import librosa

    g, r = align(gen, ref)
    n = _nfft(gen.sample_rate, LSD_SECONDS)
    pg = np.abs(librosa.stft(g, n_fft=n, hop_length=n // 4)) ** 2
    pr = np.abs(librosa.stft(r, n_fft=n, hop_length=n // 4)) ** 2
    floor = 1e-10
    d = 10 * np.log10(pg + floor) - 10 * np.log10(pr + floor)
    return float(np.mean(np.sqrt(np.mean(d ** 2, axis=0))))


def mel_distance(gen: Audio, ref: Audio) -> float:
    """Multi-resolution mel distance: mean over 16/32/64/128 ms windows of mean |ln mel_g - ln mel_r|."""
    import librosa

    g, r = align(gen, ref)
    sr = gen.sample_rate
    out = []
    for sec in MEL_RESOLUTIONS:
        n = _nfft(sr, sec)
        kw = dict(sr=sr, n_fft=n, hop_length=n // 4, n_mels=min(MEL_BANDS, n // 4), power=1.0)
        mg = librosa.feature.melspectrogram(y=g, **kw)
        mr = librosa.feature.melspectrogram(y=r, **kw)
        out.append(np.mean(np.abs(np.log(np.maximum(mg, LOG_FLOOR)) - np.log(np.maximum(mr, LOG_FLOOR)))))
    return float(np.mean(out))


def si_sdr(gen: Audio, ref: Audio) -> float:
    """Scale-invariant signal-to-distortion ratio in dB (Le Roux et al. 2019); zero-mean signals."""
    g, r = align(gen, ref)
    g, r = g - g.mean(), r - r.mean()
    eps = 1e-12
    alpha = np.dot(g, r) / (np.dot(r, r) + eps)
    target = alpha * r
    noise = g - target
    return float(10 * np.log10((np.dot(target, target) + eps) / (np.dot(noise, noise) + eps)))


def chroma_cosine(gen: Audio, ref: Audio) -> float:
    """Mean over frames of the cosine similarity of chroma vectors (librosa chroma_stft)."""
    import librosa

    g, r = align(gen, ref)
    sr = gen.sample_rate
    n = _nfft(sr, 0.128)
    cg = librosa.feature.chroma_stft(y=g, sr=sr, n_fft=n, hop_length=n // 4, norm=None)
    cr = librosa.feature.chroma_stft(y=r, sr=sr, n_fft=n, hop_length=n // 4, norm=None)
    num = (cg * cr).sum(axis=0)
    den = np.linalg.norm(cg, axis=0) * np.linalg.norm(cr, axis=0)
    ok = den > 0
    return float(np.mean(num[ok] / den[ok])) if ok.any() else 0.0


def loudness_diff(gen: Audio, ref: Audio) -> float:
    """Integrated loudness (BS.1770, pyloudnorm) of generated minus reference, in LU.

    Silent clips are floored at -70 LUFS (the absolute gate of BS.1770), so the difference is finite.
    """
    g, r = align(gen, ref)
    lg = Audio(g[None].astype(np.float32), gen.sample_rate).loudness()
    lr = Audio(r[None].astype(np.float32), ref.sample_rate).loudness()
    return float(max(lg, -70.0) - max(lr, -70.0))


PAIRED_METRICS = {"lsd": lsd, "mel_distance": mel_distance, "si_sdr": si_sdr,
                  "chroma_cosine": chroma_cosine, "loudness_diff": loudness_diff}
