"""Fit foley.steering.DENSITY_LEVEL: log(1 + onsets/s) against log(mean rise of the log-mel energy per frame).

    .venv/bin/python recipes/density_level.py [--per 70] [--seed 1]

Clips: ``--per`` clips of each training corpus (synth, music, real_sfx; seeded shuffle), the first 4 s, at least
2 s long. x = log of the clip's mean positive frame-to-frame rise of the mean log-mel (the steering proxy's
quantity), y = log(1 + the onset analyzer's mean density). Prints the least-squares line (A, B) and its correlation.
"""

from __future__ import annotations

import numpy as np
from training_clips import recipe_args, training_clips


def main() -> None:
    a = recipe_args(__doc__, per=70)
    import torch

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
