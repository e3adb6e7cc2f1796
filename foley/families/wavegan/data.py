"""The one-shot filter: which clips of the corpora are one-shots, and the onset-aligned window of each.

The rule (recipe section ``[clips]``; defaults in :data:`FILTER_DEFAULTS`):

1. Read the clip's first ``read_seconds`` as mono at the model's rate; level envelope = RMS of 10 ms frames (dB).
   A clip whose loudest frame is under ``silent_dbfs`` is rejected (*silent*).
2. Onset = the first frame within ``onset_db`` of the loudest one; the window (the model's ``samples``, 1.024 s
   at 16 kHz) starts ``pre_roll`` seconds before it, zero-padded past the clip's end.
3. Kept when
   - **short**: the clip lasts at most ``max_clip_seconds`` (1.5 s): a one-shot by its length (UI sounds, single
     hits and notes), or
   - **onset strength**: the window's loudest frame lies in its first ``attack_seconds`` (0.15 s) *and* its last
     quarter is at least ``decay_db`` (20 dB) below that frame: an attack that dies away within the second
     (impacts, footsteps, drum hits), not a texture, a drone, speech or music.
   Otherwise rejected (*slow attack* or *sustained*).
4. The kept window is scaled to a peak of ``peak`` (WaveGAN normalises its clips alike).
"""

from __future__ import annotations

import math

import numpy as np

FILTER_DEFAULTS = {"max_clip_seconds": 1.5, "attack_seconds": 0.15, "decay_db": 20.0, "onset_db": 30.0,
                   "pre_roll": 0.005, "silent_dbfs": -50.0, "read_seconds": 3.0, "peak": 0.9}
FRAME_SECONDS = 0.01


def envelope_db(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """RMS level (dBFS) of consecutive ``FRAME_SECONDS`` frames of a mono signal (the last partial frame padded)."""
    hop = max(1, int(round(FRAME_SECONDS * sample_rate)))
    n = -(-len(x) // hop)
    fr = np.zeros(n * hop, np.float64)
    fr[:len(x)] = x
    rms = np.sqrt((fr.reshape(n, hop) ** 2).mean(axis=1))
    return 20 * np.log10(np.maximum(rms, 1e-10))


def one_shot(x: np.ndarray, sample_rate: int, duration: float, samples: int, rule: dict | None = None
             ) -> tuple[np.ndarray | None, str]:
    """Apply the rule to a mono clip ``x`` (its first ``read_seconds`` at ``sample_rate``; ``duration``: the whole
    clip's length in seconds). Returns (the float32 window [samples] or None, the reason: short, onset, silent,
    slow attack, sustained)."""
    r = {**FILTER_DEFAULTS, **(rule or {})}
    env = envelope_db(x, sample_rate)
    if len(env) == 0 or env.max() < r["silent_dbfs"]:
        return None, "silent"
    hop = int(round(FRAME_SECONDS * sample_rate))
    onset = int(np.argmax(env >= env.max() - r["onset_db"]))
    start = max(0, onset * hop - int(round(r["pre_roll"] * sample_rate)))
    win = np.zeros(samples, np.float32)
    piece = x[start:start + samples]
    win[:len(piece)] = piece
    if duration <= r["max_clip_seconds"]:
        reason = "short"
    else:
        w_env = envelope_db(win, sample_rate)
        peak_at = int(np.argmax(w_env))
        if peak_at * FRAME_SECONDS > r["attack_seconds"]:
            return None, "slow attack"
        tail = win[-samples // 4:]
        tail_db = 10 * math.log10(max(float((tail.astype(np.float64) ** 2).mean()), 1e-20))
        if tail_db > w_env[peak_at] - r["decay_db"]:
            return None, "sustained"
        reason = "onset"
    peak = float(np.abs(win).max())
    return (win * (r["peak"] / peak)).astype(np.float32), reason


def read_start(path, sample_rate: int, seconds: float) -> np.ndarray:
    """The first ``seconds`` of an audio file as float32 mono at ``sample_rate`` (only that much is decoded)."""
    import soundfile as sf

    from ...audio import Audio
    from ...errors import AudioError

    try:
        with sf.SoundFile(str(path)) as f:
            data = f.read(frames=int(math.ceil(seconds * f.samplerate)), dtype="float32", always_2d=True)
            rate = f.samplerate
    except (RuntimeError, sf.LibsndfileError, ValueError, TypeError, OSError) as e:
        raise AudioError(f"{path}: unreadable audio ({e})") from None
    if data.shape[0] == 0:
        raise AudioError(f"{path}: audio has zero length")
    return Audio(np.nan_to_num(data.T), rate).to_channels(1).resample(sample_rate).samples[0]
