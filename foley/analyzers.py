"""Attribute analyzers: DSP measurements of what captions promise (deep/high, rising/falling, ...).

Every analyzer takes an :class:`~foley.audio.Audio` of any sample rate and channel count and
returns one float whose unit is given in :data:`UNITS`. Frame sizes are set in seconds and
converted with the audio's own rate, so no number depends on one sample rate. Silent input gives
0.0 (no pitch movement, no onsets, no motion, ...), never an error.

Sign conventions: larger = more of the property; ``pitch_slope`` > 0 is rising,
``stereo_direction`` > 0 moves towards the right channel, ``loudness_trend`` > 0 gets louder.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .audio import Audio

FRAME_SECONDS = 0.046        # STFT frame ~46 ms (2048 samples at 44.1 kHz), hop a quarter of it
SILENCE_DB = -60.0           # frames this far below the loudest frame are treated as silence
PITCH_RATE = 16_000          # pitch is tracked at this rate (YIN cost and range: 40 Hz - 4 kHz)
PITCH_FMIN, PITCH_FMAX = 40.0, 4_000.0
PITCH_JUMP_SEMITONES = 5.0   # larger frame-to-frame jumps are octave/fifth errors or note changes
ONSET_DELTA_DB = 2.0         # an onset's flux must exceed its local mean by this (dB, mel-band mean)
ENVELOPE_SECONDS = 0.010     # short-term envelope frame for impulsiveness / tremolo
LEVEL_SECONDS = 0.100        # short-term level frame for loudness trend and stereo level difference
ILD_LIMIT_DB = 30.0          # |level difference| is clipped here (a hard-panned side is -inf dB)
TREMOLO_BAND = (2.0, 20.0)   # Hz, amplitude-modulation band for tremolo depth
IMPULSE_TOP_SHARE = 0.05     # impulsiveness = energy share of the loudest 5 % of envelope frames

UNITS: dict[str, str] = {
    "spectral_centroid": "Hz",
    "pitch_slope": "semitones/s",
    "onset_rate": "onsets/s",
    "spectral_flatness": "ratio 0..1",
    "stereo_motion": "dB",
    "stereo_direction": "dB/s",
    "impulsiveness": "energy share 0.05..1",
    "loudness_trend": "dB/s",
    "tremolo_depth": "modulation depth 0..1",
}


# --- helpers -----------------------------------------------------------------------------------
def _mono(audio: Audio) -> np.ndarray:
    """Mono mix as float64 [T]."""
    return audio.samples.astype(np.float64).mean(axis=0)


def _fft_size(sample_rate: int, seconds: float = FRAME_SECONDS) -> int:
    return int(2 ** np.round(np.log2(max(seconds * sample_rate, 64))))


def _frames(x: np.ndarray, length: int, hop: int) -> np.ndarray:
    """Non-centred full frames of ``x`` [T] -> [N, length] (a clip shorter than a frame is zero-padded)."""
    if len(x) < length:
        x = np.pad(x, (0, length - len(x)))
    n = 1 + (len(x) - length) // hop
    idx = np.arange(length)[None, :] + hop * np.arange(n)[:, None]
    return x[idx]


def _power_spectrogram(audio: Audio) -> np.ndarray:
    """Power STFT of the mono mix, [F, N] with a Hann window of ~FRAME_SECONDS."""
    import librosa

    n_fft = _fft_size(audio.sample_rate)
    return np.abs(librosa.stft(_mono(audio), n_fft=n_fft, hop_length=n_fft // 4)) ** 2


def _active(energy: np.ndarray) -> np.ndarray:
    """Boolean mask of frames within SILENCE_DB of the loudest frame (all False for silence)."""
    peak = energy.max(initial=0.0)
    if peak <= 0:
        return np.zeros(energy.shape, bool)
    return energy > peak * 10 ** (SILENCE_DB / 10)


def _weighted_slope(t: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """Slope of the weighted least-squares line y ~ a + b t (0.0 if undetermined)."""
    if w.sum() <= 0 or np.count_nonzero(w) < 2:
        return 0.0
    tm = np.average(t, weights=w)
    ym = np.average(y, weights=w)
    var = np.sum(w * (t - tm) ** 2)
    return float(np.sum(w * (t - tm) * (y - ym)) / var) if var > 0 else 0.0


def _level_db(x: np.ndarray, sample_rate: int, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """Short-term power per frame of ``x`` [T] (half-overlapping) and the frame-centre times (s)."""
    n = max(1, int(round(seconds * sample_rate)))
    hop = max(1, n // 2)
    fr = _frames(x, n, hop)
    power = (fr ** 2).mean(axis=1)
    t = (np.arange(len(power)) * hop + n / 2) / sample_rate
    return power, t


# --- analyzers ---------------------------------------------------------------------------------
def spectral_centroid(audio: Audio) -> float:
    """Energy-weighted mean over frames of the mono mix's spectral centroid, in Hz."""
    import librosa

    S = _power_spectrogram(audio)
    energy = S.sum(axis=0)
    mask = _active(energy)
    if not mask.any():
        return 0.0
    n_fft = 2 * (S.shape[0] - 1)
    c = librosa.feature.spectral_centroid(S=np.sqrt(S), sr=audio.sample_rate, n_fft=n_fft)[0]
    return float(np.average(c[mask], weights=energy[mask]))


def spectral_flatness(audio: Audio) -> float:
    """Energy-weighted mean of per-frame spectral flatness (geometric / arithmetic mean of power), 0..1.

    A sine gives ~0; white noise gives ~0.56 per frame (the flatness of an exponential spectrum).
    """
    import librosa

    S = _power_spectrogram(audio)
    energy = S.sum(axis=0)
    mask = _active(energy)
    if not mask.any():
        return 0.0
    f = librosa.feature.spectral_flatness(S=S, power=1.0)[0]
    return float(np.clip(np.average(f[mask], weights=energy[mask]), 0.0, 1.0))


def _pitch_signal(audio: Audio) -> tuple[np.ndarray, int]:
    """The mono mix at :data:`PITCH_RATE` (float64, at least one frame long) and the pitch frame size (~64 ms)."""
    x = audio.to_mono()
    if x.sample_rate != PITCH_RATE:
        x = x.resample(PITCH_RATE)
    y = x.samples[0].astype(np.float64)
    n_fft = _fft_size(PITCH_RATE, 0.064)
    return (np.pad(y, (0, n_fft - len(y))) if len(y) < n_fft else y), n_fft


def pitch_spectrogram(audio: Audio) -> tuple[np.ndarray, np.ndarray]:
    """Power STFT of the mono mix on the frames of :func:`periodicity_track` ([bins, frames]) and its bin
    frequencies in Hz."""
    import librosa

    y, n_fft = _pitch_signal(audio)
    S = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=n_fft // 4, center=True)) ** 2
    return S, np.fft.rfftfreq(n_fft, 1.0 / PITCH_RATE)


def periodicity_track(audio: Audio) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """YIN f0 of the mono mix (librosa, 40 Hz - 4 kHz at 16 kHz) per ~64 ms frame (hop a quarter of it):
    (frame times in s, f0 in Hz, periodicity = normalised autocorrelation at the YIN period (1 = periodic),
    frame RMS with silent frames at 0)."""
    import librosa

    y, n_fft = _pitch_signal(audio)
    hop = n_fft // 4
    f0 = librosa.yin(y, fmin=PITCH_FMIN, fmax=PITCH_FMAX, sr=PITCH_RATE, frame_length=n_fft,
                     hop_length=hop, center=True)
    # Hand-written periodicity: librosa.yin hides its aperiodicity and pyin costs ~20 s per 4 s clip.
    yp = np.pad(y, n_fft // 2)
    fr = _frames(yp, n_fft, hop)[: len(f0)]
    lag = np.clip(np.round(PITCH_RATE / f0).astype(int), 1, n_fft // 2)
    half = n_fft // 2
    a = fr[:, :half]
    b = fr[np.arange(len(fr))[:, None], np.arange(half)[None, :] + lag[:, None]]
    den = np.sqrt((a ** 2).sum(1) * (b ** 2).sum(1))
    r = np.where(den > 0, (a * b).sum(1) / np.maximum(den, 1e-30), 0.0)
    rms = np.sqrt((fr ** 2).mean(axis=1))
    return np.arange(len(f0)) * hop / PITCH_RATE, f0, r, rms * _active(rms ** 2)


def pitch_track(audio: Audio) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """YIN f0 per frame as :func:`periodicity_track`: (frame times in s, f0 in Hz, weights). A frame's weight is
    its RMS times its periodicity (0.5 -> 0, 1 -> 1), 0 for silent frames: > 0 means voiced."""
    t, f0, r, rms = periodicity_track(audio)
    return t, f0, rms * np.clip((r - 0.5) / 0.5, 0.0, 1.0)


def pitch_slope(audio: Audio) -> float:
    """Pitch movement in semitones per second (+ = rising), robust to octave errors and noise.

    A weighted straight line fitted to the voiced frames of :func:`pitch_track`, after unwrapping the
    track by removing jumps over 5 semitones. Unpitched or silent audio gives 0.0.
    """
    t, f0, w = pitch_track(audio)
    voiced = np.flatnonzero(w > 0)
    if len(voiced) < 2:
        return 0.0
    p = 12.0 * np.log2(f0[voiced])
    d = np.diff(p)
    d[np.abs(d) > PITCH_JUMP_SEMITONES] = 0.0
    track = np.concatenate([[0.0], np.cumsum(d)])
    return _weighted_slope(t[voiced], track, w[voiced])


def onset_times(audio: Audio) -> np.ndarray:
    """Onset times (s) of the mono mix (librosa spectral-flux onsets, absolute threshold).

    The onset envelope is not normalised per clip, so a steady tone or steady noise gives none while
    clicks, hits and notes count; peaks must exceed their local mean by 2 dB of mean mel-band flux.
    """
    import librosa

    y = _mono(audio)
    if not np.any(y):
        return np.zeros(0)
    sr = audio.sample_rate
    hop = _fft_size(sr) // 4
    env = librosa.onset.onset_strength(y=y, sr=sr, hop_length=hop, n_fft=4 * hop)
    frame_rate = sr / hop
    k = max(1, int(round(0.03 * frame_rate)))
    frames = librosa.onset.onset_detect(onset_envelope=env, sr=sr, hop_length=hop, normalize=False,
                                        delta=ONSET_DELTA_DB, pre_max=k, post_max=k + 1,
                                        pre_avg=max(1, int(round(0.1 * frame_rate))), post_avg=k + 1,
                                        wait=k)
    return np.asarray(frames) * hop / sr


def onset_rate(audio: Audio) -> float:
    """Detected onsets per second of the mono mix (:func:`onset_times`)."""
    return float(len(onset_times(audio)) / audio.duration)


def _ild(audio: Audio) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inter-channel level difference per 100 ms frame (dB, + = right louder), times, weights."""
    st = audio.to_stereo().samples.astype(np.float64)
    pl, t = _level_db(st[0], audio.sample_rate, LEVEL_SECONDS)
    pr, _ = _level_db(st[1], audio.sample_rate, LEVEL_SECONDS)
    mask = _active(pl + pr)
    floor = 1e-12 * max((pl + pr).max(initial=0.0), 1e-30)
    ild = 10 * np.log10((pr + floor) / (pl + floor))
    return np.clip(ild, -ILD_LIMIT_DB, ILD_LIMIT_DB), t, mask.astype(float)


def stereo_motion(audio: Audio) -> float:
    """Spread (standard deviation) over time of the inter-channel level difference, in dB.

    ~0 for mono or a static pan; a left-to-right sweep gives several dB.
    """
    if audio.channels < 2:
        return 0.0
    ild, _, w = _ild(audio)
    if w.sum() <= 0:
        return 0.0
    m = np.average(ild, weights=w)
    return float(np.sqrt(np.average((ild - m) ** 2, weights=w)))


def stereo_direction(audio: Audio) -> float:
    """Slope of the inter-channel level difference over time, dB/s (+ = moving towards the right)."""
    if audio.channels < 2:
        return 0.0
    ild, t, w = _ild(audio)
    return _weighted_slope(t, ild, w)


def impulsiveness(audio: Audio) -> float:
    """Share of the energy held by the loudest 5 % of 10 ms envelope frames (0.05..1).

    A steady sound gives ~0.05; a single hit or a sparse train of clicks approaches 1; a sound that
    decays faster concentrates more energy in its first frames. Comparable across equal durations.
    """
    power, _ = _level_db(_mono(audio), audio.sample_rate, ENVELOPE_SECONDS)
    total = power.sum()
    if total <= 0:
        return 0.0
    k = max(1, int(np.ceil(IMPULSE_TOP_SHARE * len(power))))
    return float(np.sort(power)[-k:].sum() / total)


def loudness_trend(audio: Audio) -> float:
    """Slope of the short-term level (100 ms RMS in dB, floored 60 dB below the peak), dB/s.

    + = getting louder (fade in), - = getting quieter (fade out or a decaying hit).
    """
    power, t = _level_db(_mono(audio), audio.sample_rate, LEVEL_SECONDS)
    peak = power.max(initial=0.0)
    if peak <= 0 or len(power) < 2:
        return 0.0
    db = 10 * np.log10(np.maximum(power, peak * 10 ** (SILENCE_DB / 10)))
    return _weighted_slope(t, db, np.ones_like(db))


def tremolo_depth(audio: Audio) -> float:
    """Amplitude-modulation depth m (0..1) of the strongest component in 2-20 Hz.

    The RMS envelope (10 ms frames, 5 ms hop) is linearly detrended, Hann-windowed and zero-padded;
    m = 2 |E(f_peak)| / (sum(window) * mean envelope), so a tone scaled by (1 + m sin 2 pi f t) gives m.
    """
    power, _ = _level_db(_mono(audio), audio.sample_rate, ENVELOPE_SECONDS)
    env = np.sqrt(power)
    frame_rate = 1.0 / (max(1, int(round(ENVELOPE_SECONDS * audio.sample_rate))) // 2 / audio.sample_rate)
    mean = env.mean() if len(env) else 0.0
    if mean <= 0 or len(env) < 8:
        return 0.0
    from scipy.signal import detrend

    e = detrend(env)
    w = np.hanning(len(e))
    n = int(2 ** np.ceil(np.log2(len(e) * 8)))
    spec = np.abs(np.fft.rfft(e * w, n=n))
    f = np.fft.rfftfreq(n, 1.0 / frame_rate)
    band = (f >= TREMOLO_BAND[0]) & (f <= TREMOLO_BAND[1])
    if not band.any():
        return 0.0
    return float(np.clip(2 * spec[band].max() / (w.sum() * mean), 0.0, 1.0))


ANALYZERS: dict[str, Callable[[Audio], float]] = {
    "spectral_centroid": spectral_centroid,
    "pitch_slope": pitch_slope,
    "onset_rate": onset_rate,
    "spectral_flatness": spectral_flatness,
    "stereo_motion": stereo_motion,
    "stereo_direction": stereo_direction,
    "impulsiveness": impulsiveness,
    "loudness_trend": loudness_trend,
    "tremolo_depth": tremolo_depth,
}


def analyze(audio: Audio, names: list[str] | None = None) -> dict[str, float]:
    """Run the named analyzers (all by default) on ``audio``; returns {name: value} (see UNITS)."""
    from .errors import FoleyError

    names = list(ANALYZERS) if names is None else names
    unknown = [n for n in names if n not in ANALYZERS]
    if unknown:
        raise FoleyError(f"unknown analyzer '{unknown[0]}'; choose from {', '.join(ANALYZERS)}")
    return {n: ANALYZERS[n](audio) for n in names}
