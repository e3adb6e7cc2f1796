"""Fit foley.steering.DENSITY_LEVEL: log(1 + onsets/s) against log(mean rise of the log-mel energy per frame).

    .venv/bin/python recipes/density_level.py [--per 70] [--seed 1]

Clips: ``--per`` clips of each training corpus (synth, music, real_sfx; seeded shuffle), the first 4 s, at least
2 s long. x = log of the clip's mean positive frame-to-frame rise of the mean log-mel (the steering proxy's
quantity), y = log(1 + the onset analyzer's mean density). Prints the least-squares line (A, B) and its correlation.
"""

from __future__ import annotations

import argparse
import os

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per", type=int, default=70)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(1)
    from training_clips import training_clips

    from foley import curves as cv
    from foley.features import MelConfig, log_mel_np

    mel = MelConfig()
    xs, ys = [], []
    for _corpus, _rec, clip in training_clips(a.per, a.seed, mel.sample_rate):
        lm = torch.from_numpy(log_mel_np(clip.samples, mel))
        e = torch.log(torch.exp(lm).mean(0).clamp(min=1e-5)).mean(0)      # mean log-mel per frame
        rise = float(torch.relu(e[1:] - e[:-1]).mean())
        xs.append(np.log(max(rise, 1e-6)))
        ys.append(np.log1p(float(cv.density(clip).values.mean())))
    slope, intercept = np.polyfit(xs, ys, 1)
    r = float(np.corrcoef(xs, ys)[0, 1])
    print(f"{len(xs)} clips: DENSITY_LEVEL = ({slope:.3f}, {intercept:.3f}), correlation {r:.3f}")


if __name__ == "__main__":
    main()
