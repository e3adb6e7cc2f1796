"""Fit foley.steering.DENSITY_LEVEL: log(1 + onsets/s) against log(mean rise of the log-mel energy per frame).

    .venv/bin/python recipes/density_level.py [--per 70] [--seed 1]

Clips: ``--per`` clips of each training corpus (synth, music, real_sfx; seeded shuffle), the first 4 s, at least
2 s long. x = log of the clip's mean positive frame-to-frame rise of the mean log-mel (the steering proxy's
quantity), y = log(1 + the onset analyzer's mean density). Prints the least-squares line (A, B) and its correlation.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ("real_sfx/balanced.jsonl", "synth/manifest.jsonl", "music/manifest.jsonl")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per", type=int, default=70)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(1)
    sys.path.insert(0, str(ROOT / "bench"))
    from control_curves import load_clip

    from foley import curves as cv
    from foley.features import MelConfig, log_mel_np

    mel = MelConfig()
    xs, ys = [], []
    for rel in CORPORA:
        manifest = ROOT / "corpora" / rel
        if not manifest.is_file():
            raise SystemExit(f"{manifest} is missing: build the corpora first (source recipes/corpora.sh)")
        recs = [json.loads(line) for line in manifest.open()]
        random.Random(a.seed).shuffle(recs)
        for r in recs[: a.per]:
            path = r["path"] if r["path"].startswith("/") else str(manifest.parent / r["path"])
            clip = load_clip(path, 0.0, mel.sample_rate)
            if clip.duration < 2.0:
                continue
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
