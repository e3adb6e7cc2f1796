"""Curve adherence of DITTO steering: target curves from held-out real clips, with and without steering.

    python bench/control_curves.py [--model starter] [--budgets 0 10 30 60] [--seed 0] [--steps N] [--threads 1]
        [--clips N] [--out runs/control_curves] [--record]

Held-out clips: sounds of two Debian game packages that are NOT among the ten training packages of
docs/data.md: ``redeclipse-data`` (Red Eclipse: ambience, weapons, effects, announcer voice, stereo music) and
``neverball-data`` (Neverball effects). Each clip (cut to at most 4 s) gives the targets: all five curves
measured from it (loudness, brightness, pitch, density; pan from the stereo music excerpts only, the others
being mono), with the prompt written from its file name. The model makes a sound of the clip's length for
each budget (0 = unsteered, the same seed), and the same analyzers measure it. Per signal: the mean Pearson
correlation over the clips whose target moves (a flat target has none) and the mean absolute error;
seconds per steering iteration. ``--record`` appends the table to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

RE = "/usr/share/games/redeclipse/data/sounds/"
NB = "/usr/share/games/neverball/snd/"
# (file, start s, prompt); durations are cut to MAX_SECONDS
CLIPS = [
    (RE + "ambience/teleport.ogg", 0.0, "a sci-fi teleport whoosh"),
    (RE + "ambience/hum.ogg", 0.0, "an electric hum"),
    (RE + "ambience/switch.ogg", 0.0, "a mechanical switch"),
    (RE + "ambience/pneumatic.ogg", 0.0, "a pneumatic hiss"),
    (RE + "weapons/energy.ogg", 0.0, "an energy weapon charging"),
    (RE + "weapons/explode.ogg", 0.0, "an explosion"),
    (RE + "sfx/itemspawn.ogg", 0.0, "a magical item appearing"),
    (RE + "sfx/splashin.ogg", 0.0, "a splash into water"),
    (RE + "sfx/burnfire.ogg", 0.0, "fire burning"),
    (RE + "announcer/revenge.ogg", 0.0, "a male announcer voice saying revenge"),
    (NB + "jump.ogg", 0.0, "a cartoon jump"),
    (RE + "music/track_03.ogg", 30.0, "electronic game music"),
    (RE + "music/track_07.ogg", 20.0, "electronic game music"),
]
# --words: one target curve from words per prompt, 4 s
WORDS = [("a synth tone", "pitch=rise 300Hz->1200Hz"), ("a whistle", "pitch=fall"),
         ("a steady hum", "loudness=fade out"), ("a wind gust", "loudness=swell"),
         ("a noise sweep", "brightness=dark->bright"), ("footsteps on gravel", "density=faster"),
         ("a car engine", "pan=left->right"), ("a buzzing fly", "pan=back and forth")]
WORDS_SECONDS = 4.0
MAX_SECONDS = 4.0
MIN_SECONDS = 1.0
# a target "moves" (has a shape to follow; correlations of near-flat curves are noise) when its weighted standard
# deviation exceeds this in the comparison space: 3 dB, a quarter octave, a semitone, 0.5 onsets/s, 1 dB
MOVES = {"loudness": 3.0, "brightness": 0.25, "pitch": 1.0 / 12, "density": 0.5, "pan": 1.0}


def load_clip(path: str, start: float, rate: int):
    from foley.audio import Audio

    a = Audio.load(path)
    a = Audio(a.samples[:, int(start * a.sample_rate):], a.sample_rate).resample(rate)
    n = min(a.frames, int(MAX_SECONDS * rate))
    return Audio(a.samples[:, :n], rate)


def moves(curve) -> bool:
    from foley import curves as cv

    w = curve.weights
    if (w > 0).sum() < 3:
        return False
    v = cv.to_space(curve.name, curve.values)
    m = np.average(v, weights=w)
    return float(np.sqrt(np.average((v - m) ** 2, weights=w))) > MOVES[curve.name]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="starter")
    ap.add_argument("--budgets", type=int, nargs="+", default=[0, 10, 30, 60])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=None, help="sampling steps of the final sound (model default)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--clips", type=int, default=len(CLIPS), help="use the first N clips")
    ap.add_argument("--words", action="store_true", help="targets from words (WORDS) instead of clips")
    ap.add_argument("--out", type=Path, default=Path("runs/control_curves"))
    ap.add_argument("--record", action="store_true", help="append the result to docs/benchmarks.md")
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(a.threads)
    import foley
    from foley import curves as cv

    gen = foley.load(a.model)
    a.out.mkdir(parents=True, exist_ok=True)
    if a.words:
        return words(gen, a)
    rows = []  # (clip, budget, name, correlation or None, mean error, moves)
    per_iter, timing = [], {}
    for path, start, prompt in CLIPS[: a.clips]:
        if not Path(path).is_file():
            print(f"skip {path}: not installed (apt-get install redeclipse-data neverball-data)")
            continue
        clip = load_clip(path, start, gen.sample_rate)
        if clip.duration < MIN_SECONDS:
            continue
        duration = round(clip.duration, 3)
        names = [n for n in cv.NAMES if n != "pan" or clip.channels > 1]
        targets = {n: c for n, c in cv.measure(clip, names).items()}
        moving = {n: moves(c) for n, c in targets.items()}
        for budget in a.budgets:
            t0 = time.perf_counter()
            out = gen.generate(prompt, duration=duration, seed=a.seed, controls=dict(targets.items()), steer=budget,
                               prior=False, steps=a.steps)[0]
            spent = time.perf_counter() - t0
            control = out.meta["control"]
            run = control.get("steering")
            if run:
                per_iter.append(run["seconds_per_iteration"])
            timing.setdefault(budget, []).append(spent)
            stem = f"{Path(path).stem}_{budget}"
            out.save(a.out / f"{stem}.wav")
            (a.out / f"{stem}.json").write_text(json.dumps(out.meta, indent=1, default=str))
            for n, d in control["adherence"].items():
                rows.append((Path(path).name, budget, n, d["correlation"], d["mean_error"], moving[n]))
            line = ", ".join(f"{n} {d['correlation'] if d['correlation'] is not None else '-'}"
                             for n, d in control["adherence"].items())
            print(f"{Path(path).name:16s} steer {budget:3d} ({spent:5.1f} s): {line}", flush=True)
    body = table(rows, a.budgets, per_iter, timing)
    print(body)
    (a.out / "summary.md").write_text(body)
    if a.record:
        import sys

        sys.path.insert(0, str(Path(__file__).parent))
        from common import record

        record("Control curves", body)


def words(gen, a) -> None:
    """One curve from words per prompt: correlation and error per budget."""
    lines = [f"Targets from words, {WORDS_SECONDS:g} s, seed {a.seed}, one curve per prompt (budget 0 = unsteered):",
             "", "| prompt | control | " + " | ".join(f"r / error, steer {b}" for b in a.budgets) + " |",
             "|---|---|" + "---:|" * len(a.budgets)]
    per_iter = []
    for prompt, spec in WORDS:
        cells = []
        for budget in a.budgets:
            out = gen.generate(prompt, duration=WORDS_SECONDS, seed=a.seed, controls=[spec], steer=budget,
                               prior=False)[0]
            run = out.meta["control"].get("steering")
            if run:
                per_iter.append(run["seconds_per_iteration"])
            (d,) = out.meta["control"]["adherence"].values()
            r = "-" if d["correlation"] is None else f"{d['correlation']:.2f}"
            cells.append(f"{r} / {d['mean_error']:.1f} {d['unit']}")
            print(f"{prompt:20s} {spec:28s} steer {budget:3d}: {cells[-1]}", flush=True)
        lines.append(f"| {prompt} | `{spec}` | " + " | ".join(cells) + " |")
    lines += ["", f"{np.mean(per_iter):.2f} s per iteration ({WORDS_SECONDS:g} s sounds)."]
    body = "\n".join(lines) + "\n"
    print(body)
    (a.out / "words.md").write_text(body)
    if a.record:
        import sys

        sys.path.insert(0, str(Path(__file__).parent))
        from common import record

        record("Control curves: targets from words", body)


def table(rows, budgets, per_iter, timing) -> str:
    from foley import curves as cv

    clips = sorted({r[0] for r in rows})
    lines = ["Target curves measured from held-out real clips (redeclipse-data, neverball-data: not training "
             f"packages), {len(clips)} clips ({', '.join(clips)}), each generated at the clip's length with the "
             "clip's five curves as targets (pan only from the stereo music excerpts), seed fixed, budget 0 = "
             "unsteered. Correlation: mean over the clips whose target moves (n; standard deviation over 3 dB, a "
             "quarter octave, a semitone, 0.5 onsets/s, 1 dB); error: mean absolute error over all clips (loudness "
             "level-aligned).", "",
             "| signal | n | " + " | ".join(f"r, steer {b}" for b in budgets) + " | "
             + " | ".join(f"error, steer {b}" for b in budgets) + " |",
             "|---|---:|" + "---:|" * (2 * len(budgets))]
    for name in cv.NAMES:
        cells, errs, n = [], [], 0
        for b in budgets:
            sel = [r for r in rows if r[2] == name and r[1] == b]
            rs = [r[3] for r in sel if r[5] and r[3] is not None]
            n = len(rs)
            cells.append(f"{np.mean(rs):.2f}" if rs else "-")
            es = [r[4] for r in sel if r[4] is not None]
            errs.append(f"{np.mean(es):.2f} {cv.ERROR_UNITS[name]}" if es else "-")
        lines.append(f"| {name} | {n} | " + " | ".join(cells) + " | " + " | ".join(errs) + " |")
    if per_iter:
        lines += ["", f"Steering cost: {np.mean(per_iter):.2f} s per iteration (median {np.median(per_iter):.2f}, "
                      f"clips of 1-4 s, {len(per_iter)} runs; one iteration = a {6}-step DPM-Solver++ sample with "
                      "guidance, the VAE decoder and the backward pass through both). Wall time per sound: "
                  + ", ".join(f"steer {b}: {np.mean(t):.1f} s" for b, t in sorted(timing.items())) + "."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
