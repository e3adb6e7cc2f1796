"""Fit foley.steering's FLATNESS_FIT and TREMOLO_FIT, and the target levels of curves.QUALITY_LEVELS.

    .venv/bin/python recipes/quality_levels.py [--per 120] [--seed 1]

Clips: ``--per`` clips of each training corpus (synth, music, real_sfx; seeded shuffle), the first 4 s, at least
2 s long. For texture: x = the steering proxy (mel-band log flatness, energy-weighted), y = log of the
spectral_flatness analyzer; for tremolo: x = the proxy's envelope modulation depth, y = the tremolo_depth analyzer.
Prints each least-squares line and its correlation, then the analyzers' quartiles on the synth clips labelled
noisy / tonal and with / without tremolo (the levels the prompt's words are steered to).
"""

from __future__ import annotations

import numpy as np
from training_clips import recipe_args, training_clips


def main() -> None:
    a = recipe_args(__doc__, per=120)
    import torch

    from foley import steering
    from foley.analyzers import spectral_flatness, tremolo_depth
    from foley.features import MelConfig, log_mel_np

    steering.FLATNESS_FIT, steering.TREMOLO_FIT = (1.0, 0.0), (1.0, 0.0)  # the raw proxies
    mel = MelConfig()
    measure = steering.MelCurves(mel)
    rows = []  # (corpus, attributes, flat proxy, log flatness, tremolo proxy, tremolo depth)
    for corpus, rec, clip in training_clips(a.per, a.seed, mel.sample_rate):
        lm = torch.from_numpy(log_mel_np(clip.samples, mel)).float()
        lm = lm[None] if lm.dim() == 3 else lm[None, None]
        with torch.no_grad():
            m = measure(lm, ("texture", "tremolo"))
        rows.append((corpus, rec.get("attributes") or {}, float(m["texture"][0][0, 0]),
                     float(np.log(max(spectral_flatness(clip), 1e-6))), float(m["tremolo"][0][0, 0]),
                     tremolo_depth(clip)))
    for name, xi, yi in (("FLATNESS_FIT", 2, 3), ("TREMOLO_FIT", 4, 5)):
        xs, ys = np.array([r[xi] for r in rows]), np.array([r[yi] for r in rows])
        slope, intercept = np.polyfit(xs, ys, 1)
        print(f"{len(xs)} clips: {name} = ({slope:.3f}, {intercept:.3f}), correlation {np.corrcoef(xs, ys)[0, 1]:.3f}")
    synth = [r for r in rows if r[0].startswith("synth")]
    for key, yi, fmt in (("texture", 3, "log flatness"), ("tremolo", 5, "depth")):
        for label in sorted({str(r[1].get(key)) for r in synth}):
            v = np.array([r[yi] for r in synth if str(r[1].get(key)) == label])
            q = np.percentile(v, [25, 50, 75])
            print(f"synth {key}={label}: n={len(v)}, {fmt} quartiles {q[0]:.3f} {q[1]:.3f} {q[2]:.3f}")


if __name__ == "__main__":
    main()
