"""The one audio type every module speaks: float32 samples shaped (channels, frames) plus a rate."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import AudioError
from .fsutil import atomic_path

LOAD_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".oga": "OGG", ".mp3": "MP3",
                ".aif": "AIFF", ".aiff": "AIFF"}
SAVE_FORMATS = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS")}
MIN_RATE, MAX_RATE = 1_000, 768_000
MAX_CHANNELS = 64


@dataclass
class Audio:
    """Audio samples.

    Attributes:
        samples: float32 array of shape [C, T] (channels, frames), nominally in [-1, 1].
        sample_rate: frames per second.
        meta: free provenance (a generator puts the request, seed and model here); not saved in the file.
    """

    samples: np.ndarray
    sample_rate: int
    meta: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        x = np.asarray(self.samples, dtype=np.float32)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2:
            raise AudioError(f"audio must be shaped (channels, frames), got {x.ndim} dimensions")
        if not (1 <= x.shape[0] <= MAX_CHANNELS):
            raise AudioError(f"audio has {x.shape[0]} channels; expected 1 to {MAX_CHANNELS}")
        self.samples = np.ascontiguousarray(x)
        _check_rate(int(self.sample_rate), "audio")
        self.sample_rate = int(self.sample_rate)

    # --- basic facts -------------------------------------------------------------------------
    @property
    def channels(self) -> int:
        return self.samples.shape[0]

    @property
    def frames(self) -> int:
        return self.samples.shape[1]

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate

    def __repr__(self) -> str:
        return f"Audio(channels={self.channels}, frames={self.frames}, sample_rate={self.sample_rate})"

    def copy(self) -> Audio:
        return Audio(self.samples.copy(), self.sample_rate)

    @classmethod
    def silence(cls, duration: float, sample_rate: int, channels: int = 1) -> Audio:
        return cls(np.zeros((channels, int(round(duration * sample_rate))), np.float32), sample_rate)

    # --- I/O ---------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike, sample_rate: int | None = None,
             channels: int | None = None) -> Audio:
        """Load wav, flac, ogg, mp3 (or aiff); optionally resample and convert channels.

        The header is checked (rate, channels, length) before anything is decoded. Every failure is an
        AudioError of one line naming the file.
        """
        import soundfile as sf

        path = _check_path(path)
        try:
            with sf.SoundFile(str(path)) as f:
                _check_header(path, f.samplerate, f.channels, f.frames)
                data = f.read(dtype="float32", always_2d=True)
                rate = f.samplerate
        except (RuntimeError, sf.LibsndfileError, ValueError, TypeError) as e:  # corrupt or undecodable
            raise AudioError(f"{path}: unreadable or corrupt audio ({_sf_reason(e)})") from None
        except OSError as e:
            raise AudioError(f"{path}: cannot read file ({e.strerror or e})") from None
        if data.shape[0] == 0:
            raise AudioError(f"{path}: audio has zero length")
        if not np.isfinite(data).all():
            raise AudioError(f"{path}: audio contains NaN or infinite samples")
        audio = cls(data.T, rate)
        # Reduce channels before resampling (cheaper); expand after.
        if channels is not None and channels < audio.channels:
            audio = audio.to_channels(channels)
        if sample_rate is not None:
            audio = audio.resample(sample_rate)
        if channels is not None and channels != audio.channels:
            audio = audio.to_channels(channels)
        return audio

    def save(self, path: str | os.PathLike, format: str | None = None, subtype: str | None = None) -> Path:
        """Write atomically as wav, flac or ogg (chosen by ``format`` or the file suffix)."""
        import soundfile as sf

        path = Path(path)
        fmt = (format or path.suffix.lstrip(".")).lower()
        if fmt not in SAVE_FORMATS:
            raise AudioError(f"{path}: cannot write format '{fmt or '(none)'}'; use wav, flac or ogg")
        if self.frames == 0:
            raise AudioError(f"{path}: refusing to write zero-length audio")
        if not np.isfinite(self.samples).all():
            raise AudioError(f"{path}: refusing to write audio with NaN or infinite samples")
        sf_format, default_subtype = SAVE_FORMATS[fmt]
        data = np.clip(self.samples, -1.0, 1.0).T
        try:
            with atomic_path(path) as tmp:
                sf.write(str(tmp), data, self.sample_rate, format=sf_format, subtype=subtype or default_subtype)
        except (RuntimeError, ValueError, TypeError) as e:  # libsndfile refused (subtype, rate, channels)
            raise AudioError(f"{path}: cannot write {fmt} ({_sf_reason(e)})") from None
        except OSError as e:  # disk full, permissions, missing folder
            raise AudioError(f"{path}: cannot write file ({e.strerror or e})") from None
        return path

    # --- conversions -------------------------------------------------------------------------
    def resample(self, sample_rate: int, quality: str = "HQ") -> Audio:
        """Resample with soxr (quality 'HQ' by default; 'VHQ' for evaluation)."""
        import soxr

        _check_rate(int(sample_rate), "target")
        if int(sample_rate) == self.sample_rate:
            return self.copy()
        y = soxr.resample(self.samples.T, self.sample_rate, int(sample_rate), quality=quality)
        return Audio(np.asarray(y, np.float32).T, int(sample_rate))

    def to_mono(self) -> Audio:
        return Audio(self.samples.mean(axis=0, keepdims=True), self.sample_rate)

    def to_stereo(self) -> Audio:
        """Mono is duplicated to both sides (centred); more channels are folded down to two.

        Six channels are taken as 5.1 in WAV order (L R C LFE Ls Rs) and down-mixed as in ITU-R BS.775
        (centre and surrounds at -3 dB, LFE dropped), scaled so the sum cannot exceed full scale.
        Other counts fold even channels to the left and odd ones to the right.
        """
        if self.channels == 2:
            return self.copy()
        if self.channels == 1:
            return Audio(np.repeat(self.samples, 2, axis=0), self.sample_rate)
        if self.channels == 6:
            fl, fr, c, _lfe, sl, sr = self.samples
            k = np.float32(np.sqrt(0.5))
            norm = np.float32(1.0 + 2.0 * k)
            return Audio(np.stack([fl + k * c + k * sl, fr + k * c + k * sr]) / norm, self.sample_rate)
        left = self.samples[0::2].mean(axis=0)
        right = self.samples[1::2].mean(axis=0)
        return Audio(np.stack([left, right]), self.sample_rate)

    def to_channels(self, channels: int) -> Audio:
        if channels == 1:
            return self.to_mono()
        if channels == 2:
            return self.to_stereo()
        raise AudioError(f"channel conversion to {channels} channels is not supported; use 1 or 2")

    # --- editing -----------------------------------------------------------------------------
    def pad_or_trim(self, frames: int) -> Audio:
        if self.frames >= frames:
            return Audio(self.samples[:, :frames], self.sample_rate)
        pad = np.zeros((self.channels, frames - self.frames), np.float32)
        return Audio(np.concatenate([self.samples, pad], axis=1), self.sample_rate)

    def gain_db(self, db: float) -> Audio:
        return Audio(self.samples * np.float32(10 ** (db / 20)), self.sample_rate)

    def fade(self, fade_in: float = 0.0, fade_out: float = 0.0, shape: str = "cosine") -> Audio:
        """Fade in/out over the given seconds; shape 'linear' or 'cosine' (equal-power-like)."""
        x = self.samples.copy()
        for seconds, rising in ((fade_in, True), (fade_out, False)):
            n = min(int(round(seconds * self.sample_rate)), self.frames)
            if n <= 0:
                continue
            t = np.linspace(0.0, 1.0, n, dtype=np.float32)
            ramp = t if shape == "linear" else np.sin(0.5 * np.pi * t) ** 2
            if rising:
                x[:, :n] *= ramp
            else:
                x[:, -n:] *= ramp[::-1]
        return Audio(x, self.sample_rate)

    def trim_silence(self, threshold_db: float = -50.0, pad: float = 0.01) -> Audio:
        """Remove leading and trailing frames quieter than ``threshold_db`` (dBFS, 10 ms windows)."""
        win = max(1, int(0.01 * self.sample_rate))
        if self.frames == 0:
            return self.copy()
        env = np.abs(self.samples).max(axis=0)
        env = np.pad(env, (0, -len(env) % win))  # the last, partial window counts too
        blocks = env.reshape(-1, win).max(axis=1)
        loud = np.flatnonzero(blocks > 10 ** (threshold_db / 20))
        if loud.size == 0:
            return Audio(self.samples[:, :0], self.sample_rate)
        p = int(pad * self.sample_rate)
        a = max(0, loud[0] * win - p)
        b = min(self.frames, (loud[-1] + 1) * win + p)
        return Audio(self.samples[:, a:b], self.sample_rate)

    # --- loudness ----------------------------------------------------------------------------
    def loudness(self) -> float:
        """Integrated loudness in LUFS (ITU-R BS.1770 / EBU R128); -inf for silence."""
        import pyloudnorm as pyln

        data = self.samples.T.astype(np.float64)
        min_frames = int(0.4 * self.sample_rate) + 1
        if data.shape[0] < min_frames:  # the meter needs one 400 ms block
            data = np.concatenate([data, np.zeros((min_frames - data.shape[0], data.shape[1]))])
        with np.errstate(divide="ignore"):
            return float(pyln.Meter(self.sample_rate).integrated_loudness(data))

    def true_peak_db(self, oversample: int = 4) -> float:
        """True peak in dBTP, estimated by 4x oversampling as in ITU-R BS.1770-4 (never below the
        sample peak)."""
        up = np.abs(_oversample(self.samples, self.sample_rate, oversample)).max(initial=0.0)
        peak = max(float(up), self.peak())
        return 20 * np.log10(peak) if peak > 0 else float("-inf")

    def normalize_loudness(self, target_lufs: float = -23.0, true_peak_db: float = -1.0) -> Audio:
        """EBU R128 loudness normalisation followed by a true-peak-safe limiter.

        Silent audio is returned unchanged.
        """
        current = self.loudness()
        if not np.isfinite(current):
            return self.copy()
        return self.gain_db(target_lufs - current).limit(true_peak_db)

    def limit(self, ceiling_db: float = -1.0, lookahead: float = 0.005, oversample: int = 4) -> Audio:
        """Look-ahead peak limiter whose ceiling holds for the true (inter-sample) peak.

        Hand-written: pyloudnorm measures but does not limit. The gain is the running minimum of the
        required gain over a window, smoothed by a moving average of the same window, which can only
        lower the gain at every frame; a final static trim covers any residual overshoot.
        """
        from scipy.ndimage import minimum_filter1d, uniform_filter1d

        ceiling = 10 ** (ceiling_db / 20)
        up = np.abs(_oversample(self.samples, self.sample_rate, oversample)).max(axis=0)
        n = self.frames
        env = np.zeros(n, np.float32)
        m = min(len(up) // oversample, n)
        env[:m] = up[: m * oversample].reshape(m, oversample).max(axis=1)
        env[m:] = np.abs(self.samples[:, m:]).max(axis=0) if m < n else env[m:]
        env = np.maximum(env, np.abs(self.samples).max(axis=0))
        need = np.minimum(1.0, ceiling / np.maximum(env, 1e-12))
        if need.min() >= 1.0:
            return self.copy()
        size = max(1, int(lookahead * self.sample_rate)) * 2 + 1
        gain = uniform_filter1d(minimum_filter1d(need, size=size, mode="nearest"), size=size, mode="nearest")
        out = Audio(self.samples * gain[None, :].astype(np.float32), self.sample_rate)
        tp = out.true_peak_db(oversample)
        if tp > ceiling_db:
            out = out.gain_db(ceiling_db - tp - 0.01)
        return out

    def peak(self) -> float:
        return float(np.abs(self.samples).max(initial=0.0))

    def rms_db(self) -> float:
        rms = float(np.sqrt(np.mean(self.samples.astype(np.float64) ** 2))) if self.frames else 0.0
        return 20 * np.log10(rms) if rms > 0 else float("-inf")


def pcm16(samples: np.ndarray) -> bytes:
    """Float samples [C, n] -> interleaved little-endian 16-bit PCM, converted exactly as ``Audio.save`` writes a
    WAV (libsndfile, after clipping to [-1, 1]): raw streams (CLI ``-o -``, HTTP) equal the saved file's data."""
    import io

    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.clip(samples, -1.0, 1.0).T, 8000, format="RAW", subtype="PCM_16", endian="LITTLE")
    return buf.getvalue()


def _check_rate(rate: int, what: str) -> None:
    if not (MIN_RATE <= int(rate) <= MAX_RATE):
        raise AudioError(f"{what}: sample rate {rate} Hz is not plausible "
                         f"(expected {MIN_RATE}-{MAX_RATE} Hz)")


def _oversample(x: np.ndarray, rate: int, factor: int) -> np.ndarray:
    """[C, T] -> [C, T * factor] by polyphase FIR interpolation (zero delay: input frame k lands on
    output frame k * factor). Not soxr: its steep anti-alias band under Nyquist hides the peaks of
    full-band material, so a true-peak estimate could come out below the sample peak."""
    from scipy.signal import resample_poly

    if factor <= 1:
        return x
    return np.asarray(resample_poly(x, factor, 1, axis=1), np.float32)


def info(path: str | os.PathLike) -> dict:
    """Cheap header facts (duration, rate, channels, frames) without decoding; raises AudioError."""
    import soundfile as sf

    path = _check_path(path)
    try:
        i = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError, ValueError, TypeError) as e:
        raise AudioError(f"{path}: unreadable or corrupt audio ({_sf_reason(e)})") from None
    except OSError as e:
        raise AudioError(f"{path}: cannot read file ({e.strerror or e})") from None
    _check_header(path, i.samplerate, i.channels, i.frames)
    return {"duration": i.frames / i.samplerate, "sample_rate": i.samplerate,
            "channels": i.channels, "frames": i.frames}


def _check_path(path: str | os.PathLike) -> Path:
    """The checks that need no decoder: exists, is a file, known suffix, not empty."""
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: file not found")
    if path.is_dir():
        raise AudioError(f"{path}: is a folder, not an audio file")
    ext = path.suffix.lower()
    if ext not in LOAD_FORMATS:
        raise AudioError(f"{path}: unsupported format '{ext or '(none)'}'; "
                         f"use one of {', '.join(sorted(LOAD_FORMATS))}")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: file is empty (0 bytes)")
    return path


def _check_header(path: Path, rate: int, channels: int, frames: int) -> None:
    _check_rate(rate, str(path))
    if not (1 <= channels <= MAX_CHANNELS):
        raise AudioError(f"{path}: {channels} channels is not plausible (expected 1 to {MAX_CHANNELS})")
    if frames <= 0:
        raise AudioError(f"{path}: audio has zero length")


def _sf_reason(e: Exception) -> str:
    """libsndfile's reason without the 'Error opening <path>:' prefix."""
    return str(e).split(":")[-1].strip() or type(e).__name__
