"""Is the pitch curve reproducible and steerable? The earlier per-frame definition against the current one.

    python bench/pitch_definition.py [--clips 60] [--model starter] [--record]

Clips: the first N of ``corpora/real_sfx/balanced.jsonl`` after a seeded shuffle (allowed training packages; cut to
4 s, 16 kHz), those whose pitch curve moves (as in bench/control_curves.py). Per definition:

- **vocoder round trip**: the correlation of the clip's pitch curve with the curve of the same clip through the
  model's mel and vocoder (no VAE) — a sound any model of this mel could render exactly; the ceiling of adherence;
- **proxy agreement**: the correlation of the clip's pitch curve with what steering measures on the clip's own
  log-mel (:class:`foley.steering.MelCurves`; for the earlier definition, the earlier proxy too).

The earlier definition (kept here only for this side-by-side): per frame, YIN f0 where the frame is periodic
(normalised autocorrelation over 0.5), else the loudest STFT bin; proxy: the power spectrum to the 4th as weights of
the log-frequency mean.
"""

from __future__ import annotations

import argparse
import json
import os
import random
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "corpora" / "real_sfx" / "balanced.jsonl"


def earlier_pitch(audio):
    """The per-frame f0-or-peak pitch curve of commits before c0af712."""
    from foley import analyzers as an
    from foley import curves as cv

    t, f0, w = an.pitch_track(audio)
    S, freqs = an.pitch_spectrogram(audio)
    S = S[:, : len(f0)]
    band = (freqs >= an.PITCH_FMIN) & (freqs <= an.PITCH_FMAX)
    peak = freqs[band][np.argmax(S[band], axis=0)]
    voiced = w > 0
    hz = np.where(voiced, f0[: len(peak)], peak)
    v, s = cv._bin(t[: len(hz)], hz, (an._active(S.sum(axis=0)) | voiced[: len(hz)]).astype(float),
                   audio.duration, "pitch")
    return cv.Curve("pitch", cv.grid(audio.duration), v, s, audio.duration)


def earlier_proxy(mc, logmel):
    """The earlier steering proxy: log-frequency mean weighted by the pseudo-inverse spectrum to the 4th power."""
    import torch

    from foley.steering import CENTROID_SECONDS, _smooth

    mono = torch.relu(torch.einsum("fm,bcmn->bcfn", mc.pinv, torch.exp(logmel))).mean(1)
    band = (mc.freqs >= 40.0) & (mc.freqs <= 4000.0)
    p = mono[:, band] ** 4 + 1e-30
    f = (p * torch.log2(mc.freqs[band])[None, :, None]).sum(1) / p.sum(1)
    return _smooth(f, mc.frames(CENTROID_SECONDS))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=60)
    ap.add_argument("--model", default="starter", help="whose mel and vocoder make the round trip")
    ap.add_argument("--record", action="store_true", help="append the result to docs/benchmarks.md")
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import sys

    import torch

    torch.set_num_threads(1)
    sys.path.insert(0, str(Path(__file__).parent))
    from control_curves import load_clip, moves

    import foley
    from foley import curves as cv
    from foley.audio import Audio
    from foley.features import log_mel
    from foley.steering import MelCurves

    if not MANIFEST.is_file():
        raise SystemExit(f"{MANIFEST} is missing: build the corpora first (source recipes/corpora.sh)")
    model = foley.load(a.model).model
    mel = model.cfg.mel
    mc = MelCurves(mel)
    recs = [json.loads(line) for line in MANIFEST.open()]
    random.Random(0).shuffle(recs)
    defs = {"earlier (per-frame f0 or raw peak)": (earlier_pitch, lambda lm: earlier_proxy(mc, lm)),
            "current (one per sound)": (cv.pitch, lambda lm: mc(lm, ("pitch",))["pitch"][0])}
    res = {k: {"trip": [], "proxy": []} for k in defs}
    used = 0
    for r in recs[: a.clips]:
        path = r["path"] if r["path"].startswith("/") else str(MANIFEST.parent / r["path"])
        clip = load_clip(path, 0.0, mel.sample_rate)
        if clip.duration < 1.0:
            continue
        used += 1
        x = torch.from_numpy(np.ascontiguousarray(clip.samples, np.float32))
        with torch.no_grad():
            logmel = log_mel(x, mel)                                       # [C, M, N]
            wave = model.vocoder(logmel.clamp(min=float(np.log(mel.log_floor)))).reshape(clip.channels, -1)
        trip = Audio(np.ascontiguousarray(wave[:, : clip.frames].numpy()), clip.sample_rate)
        g = cv.grid(clip.duration)
        frames = (np.arange(logmel.shape[-1]) + 0.5) / mc.frame_rate
        for k, (analyzer, proxy) in defs.items():
            target = analyzer(clip)
            if not moves(target):
                continue
            c = cv.compare(target, analyzer(trip), clip.duration)["correlation"]
            if c is not None:
                res[k]["trip"].append(c)
            tv, tw = target.at(g, clip.duration)
            pv = np.interp(g, frames, proxy(logmel[None])[0].numpy())
            c = cv._corr(cv.to_space("pitch", tv), pv, tw)
            if c is not None:
                res[k]["proxy"].append(c)
    lines = [f"{used} clips of {MANIFEST.relative_to(ROOT)} (seeded shuffle, first {a.clips}, at most 4 s), "
             f"the {a.model} model's mel and vocoder. Mean correlation over the clips whose pitch curve moves (n).",
             "", "| definition | n | vocoder round trip r | steering proxy vs analyzer r |", "|---|---:|---:|---:|"]
    for k, d in res.items():
        lines.append(f"| {k} | {len(d['trip'])} | {np.mean(d['trip']):.3f} | {np.mean(d['proxy']):.3f} |")
    body = "\n".join(lines)
    print(body)
    if a.record:
        from common import record

        record("Pitch curve: reproducible and steerable", body)


if __name__ == "__main__":
    main()
