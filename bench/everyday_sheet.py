"""A spectrogram sheet of the 12 everyday prompts of issue 14, for one or more models side by side.

    python bench/everyday_sheet.py --model runs/starter-v1/models/starter --label v1 \
        --model models/starter --label v2 -o docs/img/everyday.png [--seed 1] [--duration 4]

One column per model, one row per prompt (log-frequency axis, dB), plus each sound's foley-clap score with its
prompt in the row title.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PROMPTS = ["a dog barking", "birds chirping", "rain on a roof", "wind howling",
           "footsteps on gravel, steps that continue", "an electric motor spinning up", "church bells",
           "a car engine revving", "a door slam", "a crowd murmuring", "a piano melody", "thunder"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--label", action="append", default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--duration", type=float, default=4.0)
    ap.add_argument("-o", "--out", type=Path, default=Path("docs/img/everyday.png"))
    args = ap.parse_args()
    labels = args.label or args.model
    if len(labels) != len(args.model):
        raise SystemExit("give one --label per --model")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    import foley
    from foley.clap import load_clap
    from foley.plot import spectrogram_db

    clap = load_clap()
    cols = []
    for m in args.model:
        gen = foley.load(m)
        audios = gen.generate(PROMPTS, duration=args.duration, seed=args.seed)
        cols.append((audios, clap.clap_score(audios, PROMPTS)))
    fig, axes = plt.subplots(len(PROMPTS), len(cols), figsize=(4.2 * len(cols), 1.5 * len(PROMPTS)),
                             squeeze=False)
    for j, ((audios, scores), label) in enumerate(zip(cols, labels, strict=True)):
        for i, (a, s) in enumerate(zip(audios, scores, strict=True)):
            ax = axes[i, j]
            db = spectrogram_db(a.to_mono())[0]
            freqs = np.linspace(0, a.sample_rate / 2, db.shape[0])
            ax.pcolormesh(np.arange(db.shape[1]) * 256 / a.sample_rate, freqs[1:], db[1:], shading="auto",
                          vmin=db.max() - 80, vmax=db.max(), cmap="magma")
            ax.set_yscale("log")
            ax.set_ylim(50, a.sample_rate / 2)
            ax.set_title(f"{label}: {PROMPTS[i]}  (CLAP {s:+.2f})", fontsize=7)
            ax.tick_params(labelsize=5)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=80)
    means = ", ".join(f"{label} {np.mean(s):+.3f}" for (_, s), label in zip(cols, labels, strict=True))
    print(f"wrote {args.out}; mean foley-clap score with the prompts: {means}")


if __name__ == "__main__":
    main()
