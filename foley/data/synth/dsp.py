"""Signal primitives for the procedural corpus: numpy/scipy only, vectorised, any sample rate.

Signals are float64 arrays shaped [T] (mono) or [2, T] (stereo, left then right) at ``sr`` Hz.
Frequencies are given in Hz and durations in seconds, never in samples, so every recipe renders
the same sound at 16 kHz or 48 kHz. Hand-written: the synthesis building blocks (wavetable
oscillators, event gates, modal hits) exist in no numpy/scipy library; filters, STFTs and
convolution come from scipy.signal.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

TABLE_SIZE = 4096
NYQUIST_SHARE = 0.45       # partials above this share of the sample rate are dropped (anti-aliasing)
STFT_SECONDS = 0.032       # frame of the time-varying noise / filter STFT


def db_to_amp(db):
    return 10.0 ** (np.asarray(db, dtype=np.float64) / 20.0)


def times(n: int, sr: int) -> np.ndarray:
    """Frame times in seconds, shape [n]."""
    return np.arange(n) / sr


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x)))) if x.size else 0.0


def unit_rms(x: np.ndarray) -> np.ndarray:
    r = rms(x)
    return x / r if r > 0 else x


# --- oscillators -------------------------------------------------------------------------------
def harmonic_amps(count: int, rolloff: float, odd_only: bool = False) -> np.ndarray:
    """Amplitudes k^-rolloff of harmonics k = 1..count (even ones zero when ``odd_only``), shape [count]."""
    k = np.arange(1, max(1, count) + 1, dtype=np.float64)
    a = k ** -rolloff
    if odd_only:
        a[1::2] = 0.0
    return a


def wavetable(amps: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """One cycle (TABLE_SIZE + 1 samples, last = first) with harmonic amplitudes ``amps`` [K], peak 1.

    Phases are random when ``rng`` is given (a less peaky waveform), else all sine phase.
    """
    spec = np.zeros(TABLE_SIZE // 2 + 1, np.complex128)
    k = min(len(amps), TABLE_SIZE // 2 - 1)
    ph = rng.uniform(0, 2 * np.pi, k) if rng is not None else np.zeros(k)
    spec[1:k + 1] = amps[:k] * np.exp(1j * (ph - np.pi / 2))
    table = np.fft.irfft(spec, TABLE_SIZE)
    table /= max(np.abs(table).max(), 1e-12)
    return np.append(table, table[0])


def band_limited_count(count: int, f_max: float, sr: int) -> int:
    """How many harmonics of a tone reaching ``f_max`` Hz stay below NYQUIST_SHARE * sr (at least 1)."""
    return int(max(1, min(count, np.floor(NYQUIST_SHARE * sr / max(f_max, 1.0)))))


def osc(table: np.ndarray, freq: np.ndarray, sr: int, phase0: float = 0.0) -> np.ndarray:
    """Read ``table`` (from :func:`wavetable`) at instantaneous frequency ``freq`` [T] Hz -> [T]."""
    ph = (phase0 + np.cumsum(freq) / sr) % 1.0
    idx = ph * TABLE_SIZE
    i0 = idx.astype(np.int64)
    frac = idx - i0
    return table[i0] + frac * (table[i0 + 1] - table[i0])


def harmonic_tone(freq: np.ndarray, sr: int, count: int, rolloff: float, rng: np.random.Generator,
                  odd_only: bool = False) -> np.ndarray:
    """Band-limited harmonic tone following ``freq`` [T] Hz, unit RMS, shape [T]."""
    k = band_limited_count(count, float(np.max(freq)), sr)
    table = wavetable(harmonic_amps(k, rolloff, odd_only), rng)
    return unit_rms(osc(table, freq, sr, rng.uniform()))


def partials(freqs, amps, decays, n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Sum of exponentially decaying sines (modal synthesis), shape [n].

    ``freqs`` Hz, ``amps`` linear, ``decays`` seconds to fall by 60 dB; partials above Nyquist drop.
    """
    t = times(n, sr)
    out = np.zeros(n)
    for f, a, d in zip(freqs, amps, decays, strict=True):
        if f >= NYQUIST_SHARE * sr or f <= 0:
            continue
        m = min(n, int(d * sr) + 1)   # beyond the 60 dB point the partial is inaudible
        out[:m] += a * np.exp(-6.9 * t[:m] / d) * np.sin(2 * np.pi * f * t[:m] + rng.uniform(0, 2 * np.pi))
    return out


# --- noise -------------------------------------------------------------------------------------
def log_gauss(f: np.ndarray, centre: float, width_oct: float) -> np.ndarray:
    """Gaussian bump on a log-frequency axis: 1 at ``centre`` Hz, e^-1/2 at ``width_oct`` octaves away."""
    with np.errstate(divide="ignore"):
        z = np.log2(np.maximum(f, 1e-3) / centre) / width_oct
    return np.exp(-0.5 * z * z)


def colored_noise(n: int, sr: int, rng: np.random.Generator, shape) -> np.ndarray:
    """Stationary noise whose magnitude spectrum is ``shape(freqs_hz)``, unit RMS, shape [n]."""
    f = np.fft.rfftfreq(n, 1.0 / sr)
    spec = (rng.standard_normal(len(f)) + 1j * rng.standard_normal(len(f))) * shape(f)
    spec[0] = 0.0
    return unit_rms(np.fft.irfft(spec, n))


def pink(f: np.ndarray) -> np.ndarray:
    return 1.0 / np.sqrt(np.maximum(f, 20.0))


def brown(f: np.ndarray) -> np.ndarray:
    return 1.0 / np.maximum(f, 20.0)


def _stft_size(sr: int) -> int:
    return int(2 ** np.round(np.log2(STFT_SECONDS * sr)))


def tv_noise(n: int, sr: int, rng: np.random.Generator, gains) -> np.ndarray:
    """Noise with a time-varying spectrum, unit RMS, shape [n].

    ``gains(f [F], t [N]) -> [F, N]`` gives the magnitude per frequency (Hz) and frame time (s);
    random-phase STFT frames are shaped and overlap-added by scipy's istft.
    """
    from scipy.signal import istft

    nfft = _stft_size(sr)
    hop = nfft // 4
    frames = n // hop + 2
    f = np.fft.rfftfreq(nfft, 1.0 / sr)
    t = np.arange(frames) * hop / sr
    z = (rng.standard_normal((len(f), frames)) + 1j * rng.standard_normal((len(f), frames))) * gains(f, t)
    _, y = istft(z, sr, nperseg=nfft, noverlap=nfft - hop)
    return unit_rms(_fit(y, n))


def tv_filter(x: np.ndarray, sr: int, gains) -> np.ndarray:
    """Filter ``x`` [T] with a time-varying magnitude response ``gains(f, t) -> [F, N]`` (STFT domain)."""
    from scipy.signal import istft, stft

    nfft = _stft_size(sr)
    hop = nfft // 4
    f, t, z = stft(x, sr, nperseg=nfft, noverlap=nfft - hop)
    _, y = istft(z * gains(f, t), sr, nperseg=nfft, noverlap=nfft - hop)
    return _fit(y, len(x))


def _fit(y: np.ndarray, n: int) -> np.ndarray:
    return y[:n] if len(y) >= n else np.pad(y, (0, n - len(y)))


@lru_cache(maxsize=512)
def _sos(kind: str, order: int, f1: float, f2: float, sr: int) -> np.ndarray:
    from scipy.signal import butter

    ny = 0.5 * sr
    if kind == "bandpass":
        lo, hi = max(f1, 5.0), min(f2, 0.95 * ny)
        if hi <= lo * 1.05:
            lo, hi = 0.9 * hi, hi
        return butter(order, [lo, hi], btype="bandpass", fs=sr, output="sos")
    return butter(order, min(max(f1, 5.0), 0.95 * ny), btype=kind, fs=sr, output="sos")


def lowpass(x: np.ndarray, sr: int, f: float, order: int = 2) -> np.ndarray:
    from scipy.signal import sosfilt

    return sosfilt(_sos("lowpass", order, round(f, 1), 0.0, sr), x)


def highpass(x: np.ndarray, sr: int, f: float, order: int = 2) -> np.ndarray:
    from scipy.signal import sosfilt

    return sosfilt(_sos("highpass", order, round(f, 1), 0.0, sr), x)


def bandpass(x: np.ndarray, sr: int, lo: float, hi: float, order: int = 2) -> np.ndarray:
    from scipy.signal import sosfilt

    return sosfilt(_sos("bandpass", order, round(lo, 1), round(hi, 1), sr), x)


def resonator_clicks(impulses: np.ndarray, sr: int, centre: float, q_oct: float = 0.3) -> np.ndarray:
    """Ring each impulse of ``impulses`` [T] through a narrow band-pass around ``centre`` Hz."""
    lo, hi = centre * 2 ** (-q_oct / 2), centre * 2 ** (q_oct / 2)
    return bandpass(impulses, sr, lo, hi, order=2)


def sample_hold(x: np.ndarray, factor: int) -> np.ndarray:
    """Crude sample-rate reduction (hold every ``factor``-th sample): the 'digital' aliasing of glitches."""
    if factor <= 1:
        return x
    idx = (np.arange(len(x)) // factor) * factor
    return x[idx]


def bitcrush(x: np.ndarray, bits: int) -> np.ndarray:
    peak = max(np.abs(x).max(initial=0.0), 1e-12)
    q = 2 ** (bits - 1)
    return np.round(x / peak * q) / q * peak


# --- events ------------------------------------------------------------------------------------
def event_times(duration: float, rate_hz: float, rng: np.random.Generator, jitter: float = 0.0,
                start: float | None = None, tail: float = 0.05) -> np.ndarray:
    """Onset times (s) of a pulse train at ``rate_hz``, jittered by ``jitter`` periods (std)."""
    period = 1.0 / rate_hz
    t0 = rng.uniform(0.02, min(0.25, 0.5 * period)) if start is None else start
    t = np.arange(t0, duration - tail, period)
    if jitter > 0 and len(t):
        t = t + rng.normal(0.0, jitter * period, len(t))
        t = np.sort(np.clip(t, 0.0, duration - tail))
    return t


def gate(n: int, sr: int, starts: np.ndarray, lengths, attack: float, release: float) -> np.ndarray:
    """Sum of trapezoid windows (linear ``attack``/``release`` seconds) at ``starts`` s, shape [n]."""
    g = np.zeros(n)
    lengths = np.broadcast_to(np.asarray(lengths, dtype=np.float64), np.shape(starts))
    for s, length in zip(starts, lengths, strict=True):
        a = int(round(s * sr))
        m = max(2, int(round(length * sr)))
        if a >= n:
            continue
        w = np.ones(m)
        na = max(1, min(m // 2, int(attack * sr)))
        nr = max(1, min(m // 2, int(release * sr)))
        w[:na] = np.linspace(0.0, 1.0, na, endpoint=False)
        w[-nr:] = np.linspace(1.0, 0.0, nr)
        b = min(n, a + m)
        g[a:b] = np.maximum(g[a:b], w[: b - a])
    return g


def place(n: int, event: np.ndarray, starts: np.ndarray, sr: int, gains=None) -> np.ndarray:
    """Add copies of ``event`` [L] at ``starts`` seconds (times ``gains``), shape [n]."""
    out = np.zeros(n)
    gains = np.ones(len(starts)) if gains is None else gains
    for s, g in zip(starts, gains, strict=True):
        a = int(round(s * sr))
        if a >= n:
            continue
        b = min(n, a + len(event))
        out[a:b] += g * event[: b - a]
    return out


def perc_env(n: int, sr: int, onset: float, attack: float, decay: float) -> np.ndarray:
    """One percussive envelope: linear attack (s) then exponential decay (s to -60 dB), shape [n]."""
    t = times(n, sr) - onset
    env = np.where(t < 0, 0.0, np.where(t < attack, t / max(attack, 1e-6),
                                        np.exp(-6.9 * np.maximum(t - attack, 0.0) / decay)))
    return env


# --- space -------------------------------------------------------------------------------------
def pan(x: np.ndarray, position: np.ndarray | float) -> np.ndarray:
    """Constant-power pan of mono ``x`` [T] to stereo [2, T]; ``position`` in [-1 (left), 1 (right)]."""
    position = np.asarray(position)
    if position.ndim and np.ptp(position) == 0:   # a static pan needs two gains, not two curves
        position = position[0]
    theta = (np.clip(position, -1.0, 1.0) + 1.0) * np.pi / 4
    return np.stack([x * np.cos(theta), x * np.sin(theta)])


def reverb_ir(sr: int, rt60: float, rng: np.random.Generator, max_seconds: float = 1.2) -> np.ndarray:
    """Synthetic stereo impulse response [2, L]: decorrelated noise with frequency-dependent decay.

    Highs decay twice as fast as lows; a short pre-delay and unit energy per channel.
    """
    n = int(min(rt60, max_seconds) * sr)
    t = times(n, sr)
    noise = rng.standard_normal((2, n))
    low = lowpass(noise, sr, 1500.0, 1) * np.exp(-6.9 * t / rt60)
    high = highpass(noise, sr, 1500.0, 1) * np.exp(-6.9 * t / (0.5 * rt60))
    ir = low + high
    pre = int(rng.uniform(0.005, 0.02) * sr)
    ir = np.pad(ir, ((0, 0), (pre, 0)))[:, :n]
    tail = n // 4                       # fade the truncated tail so a long RT60 does not stop abruptly
    ir[:, -tail:] *= np.linspace(1.0, 0.0, tail)
    ir /= np.sqrt(np.sum(ir ** 2, axis=1, keepdims=True)) + 1e-12
    return ir


def add_reverb(y: np.ndarray, sr: int, rt60: float, wet: float, rng: np.random.Generator) -> np.ndarray:
    """Mix a convolution reverb into stereo ``y`` [2, T]; each side is convolved with its own IR so a
    pan survives in the reverberant tail. ``wet`` is the wet/dry RMS ratio."""
    from scipy.signal import oaconvolve

    ir = reverb_ir(sr, rt60, rng)
    w = oaconvolve(y, ir, axes=1)[:, : y.shape[1]]
    return y + wet * w * (rms(y) / max(rms(w), 1e-12))


def finish(y: np.ndarray, target_rms_db: float, peak_max: float) -> np.ndarray:
    """Remove DC, scale stereo ``y`` [2, T] to ``target_rms_db`` dBFS RMS, then down so the peak is <= ``peak_max``."""
    y = y - y.mean(axis=-1, keepdims=True)
    r = rms(y)
    if r <= 0:
        return y
    y = y * (db_to_amp(target_rms_db) / r)
    peak = float(np.abs(y).max())
    if peak > peak_max:
        y = y * (peak_max / peak)
    return y
