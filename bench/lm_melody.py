"""Melody conditioning of a token LM (its control adapter): does the sound follow a reference's melody?

    python bench/lm_melody.py [--model starter-lm] [--seeds 0 1] [--per-kind 6] [--seconds 4] [--threads 1]
        [--out runs/lm_melody] [--record]
    python bench/lm_melody.py --ceiling [--record]   # the same references through the model's codec and back

References, none of them training audio: **hummed** (a voice-like tone: a few harmonics, vibrato, soft note onsets and
breaths between phrases) and **whistled** (a near-sine an octave or two higher, with slides) melodies drawn from a
seeded random walk over a major or minor scale (0.25-0.6 s notes), and **played** ones: clips of the procedural music
corpus rendered with a seed the corpus never used (``foley.data.music.corpus.render_corpus``, melodic instruments
only, their first ``--seconds``). Per reference and seed the model makes a sound of the reference's length from a
prompt (hummed: "a synth lead melody"; whistled: "a flute melody"; played: the clip's own caption) with the melody
(``edit(ref, prompt, task="melody")``) and without (``generate(prompt)``: the base's sound). Measured with
:func:`foley.curves.melody_adherence` on 1/8 s bins where both sound: the share of bins whose strongest pitch class
agrees with the reference's (chance ~ 1/12), and the mean correlation of the 12-bin chroma; ``other ref`` is the
adapter's sound against another reference of the same kind (what agreement by chance looks like here).
``--ceiling``: each reference encoded by the model's codec and decoded again, measured the same way (how much of the
melody its tokens can carry at all).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

PLAYED_SEED = 9_176_431  # a seed the music corpus (recipes/corpora.sh: seed 0) never used
PROMPTS = {"hummed": "a synth lead melody", "whistled": "a flute melody"}


def melody_notes(rng, seconds: float) -> list[tuple[float, float]]:
    """(midi note, seconds) of a random walk over a scale, filling ``seconds``."""
    root = int(rng.integers(55, 67))
    scale = [0, 2, 4, 5, 7, 9, 11] if rng.random() < 0.5 else [0, 2, 3, 5, 7, 8, 10]
    degree, out, t = int(rng.integers(0, 7)), [], 0.0
    while t < seconds:
        degree = int(np.clip(degree + rng.choice([-2, -1, -1, 1, 1, 2, 0, 3, -3]), -3, 10))
        note = root + 12 * (degree // 7) + scale[degree % 7]
        d = float(rng.choice([0.25, 0.3, 0.4, 0.5, 0.6]))
        out.append((note, d))
        t += d
    return out


def synth(kind: str, seed: int, seconds: float, rate: int):
    from foley.audio import Audio

    rng = np.random.default_rng(seed)
    notes = melody_notes(rng, seconds)
    n = int(seconds * rate)
    f = np.zeros(n)
    env = np.zeros(n)
    i = 0
    for k, (note, d) in enumerate(notes):
        m = min(n - i, int(d * rate))
        if m <= 0:
            break
        hz = 440.0 * 2 ** ((note - 69 + (12 if kind == "whistled" else 0)) / 12)
        f[i:i + m] = hz
        a = np.ones(m)
        ramp = min(m // 2, int(0.04 * rate))
        a[:ramp] = np.linspace(0, 1, ramp)
        a[m - ramp:] = np.linspace(1, 0.2 if kind == "whistled" else 0.0, ramp)
        if k % 5 == 4:  # a breath
            a[int(0.7 * m):] = 0.0
        env[i:i + m] = a
        i += m
    if kind == "whistled":  # slides between notes
        w = int(0.03 * rate)
        f = np.convolve(np.pad(f, (w, w), mode="edge"), np.ones(2 * w + 1) / (2 * w + 1), mode="same")[w:-w]
    t = np.arange(n) / rate
    vib = 1 + 0.012 * np.sin(2 * np.pi * 5.5 * t)
    phase = 2 * np.pi * np.cumsum(f * vib) / rate
    if kind == "hummed":
        x = sum(a * np.sin(h * phase) for h, a in ((1, 1.0), (2, 0.5), (3, 0.25), (4, 0.12)))
        x += 0.01 * rng.standard_normal(n)
    else:
        x = np.sin(phase) + 0.03 * rng.standard_normal(n) * env
    x = 0.4 * x * env / max(1e-9, np.abs(x).max())
    return Audio(x.astype(np.float32)[None], rate)


def played(count: int, seconds: float, rate: int, folder: Path):
    """``count`` melodic clips of the music corpus rendered with :data:`PLAYED_SEED` (cached in ``folder``)."""
    from foley.audio import Audio
    from foley.data.manifest import read_manifest
    from foley.data.music.corpus import render_corpus

    manifest = folder / "manifest.jsonl"
    if not manifest.exists():
        render_corpus(count * 3, folder, seed=PLAYED_SEED, jobs=1)
    out = []
    for c in read_manifest(manifest):
        if "drum" in (c.description or "").lower() or "beat" in (c.description or "").lower():
            continue
        a = Audio.load(c.resolved_path()).resample(rate)
        out.append((Audio(a.samples[:, :int(seconds * rate)], rate), c.description))
        if len(out) == count:
            break
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="starter-lm")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--per-kind", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("runs/lm_melody"))
    ap.add_argument("--record", action="store_true", help="append the result to docs/benchmarks.md")
    ap.add_argument("--ceiling", action="store_true", help="only the codec round trip of the references")
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(a.threads)
    import foley
    from foley import curves as cv

    gen = foley.load(a.model)
    if a.ceiling:
        return ceiling(gen, a)
    if "melody" not in gen.card.tasks:
        raise SystemExit(f"model {a.model} has no control adapter (foley train control --from {a.model})")
    a.out.mkdir(parents=True, exist_ok=True)
    refs = references(gen, a)
    rows, timing = [], {"melody": [], "none": []}
    for kind, items in refs.items():
        for j, (ref, prompt) in enumerate(items):
            ref.save(a.out / f"{kind}{j}_ref.wav")
            other = items[(j + 1) % len(items)][0]
            for seed in a.seeds:
                t0 = time.perf_counter()
                mel = gen.edit(ref, prompt, task="melody", seed=seed, duration=round(ref.duration, 3))[0]
                timing["melody"].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                base = gen.generate(prompt, duration=round(ref.duration, 3), seed=seed)[0]
                timing["none"].append(time.perf_counter() - t0)
                mel.save(a.out / f"{kind}{j}_s{seed}_melody.wav")
                base.save(a.out / f"{kind}{j}_s{seed}_none.wav")
                r = {"kind": kind, "ref": j, "seed": seed, "melody": cv.melody_adherence(ref, mel),
                     "none": cv.melody_adherence(ref, base), "other": cv.melody_adherence(other, mel)}
                rows.append(r)
                print(f"{kind:9s} {j} s{seed}: agreement melody {r['melody']['pitch_class_agreement']} none "
                      f"{r['none']['pitch_class_agreement']} other ref {r['other']['pitch_class_agreement']}",
                      flush=True)
    (a.out / "rows.json").write_text(json.dumps(rows, indent=1))
    body = table(rows, a, timing)
    print(body)
    (a.out / "summary.md").write_text(body)
    if a.record:
        import sys

        sys.path.insert(0, str(Path(__file__).parent))
        from common import record

        record(f"Melody conditioning ({a.model})", body)


def references(gen, a) -> dict:
    refs = {k: [(synth(k, 1000 * j + (k == "whistled"), a.seconds, gen.sample_rate), PROMPTS[k])
                for j in range(a.per_kind)] for k in PROMPTS}
    refs["played"] = played(a.per_kind, a.seconds, gen.sample_rate, a.out / "played")
    return refs


def ceiling(gen, a) -> None:
    """The references through the model's codec (all its codebooks the LM models) and back."""
    from foley import curves as cv
    from foley.audio import Audio

    lm = gen.lm
    lines = [f"The references of `bench/lm_melody.py` ({a.per_kind} per kind, {a.seconds:g} s) encoded by "
             f"`{a.model}`'s codec ({lm.n_q} codebooks) and decoded again: how much of a melody its tokens carry "
             "(the most melody conditioning can give back).", "",
             "| references | agreement, codec round trip | chroma r, codec round trip |", "|---|---:|---:|"]
    for kind, items in references(gen, a).items():
        got = []
        for ref, _ in items:
            dec = lm.chunk_decoder(lm.cfg.channels)
            out = np.concatenate([dec.push(lm.per_channel(lm.audio_codes(ref))), dec.flush()], -1)
            got.append(cv.melody_adherence(ref, Audio(out[:, :ref.frames].astype(np.float32), ref.sample_rate)))
        vals = [np.mean([g[k] for g in got if g[k] is not None]) for k in ("pitch_class_agreement",
                                                                             "chroma_correlation")]
        lines.append(f"| {kind} | {vals[0]:.2f} | {vals[1]:.2f} |")
    body = "\n".join(lines) + "\n"
    print(body)
    if a.record:
        import sys

        sys.path.insert(0, str(Path(__file__).parent))
        from common import record

        record(f"Melody conditioning ({a.model}): the codec's ceiling", body)


def table(rows, a, timing) -> str:
    def mean(kind, config, key):
        xs = [r[config][key] for r in rows if (kind is None or r["kind"] == kind) and r[config][key] is not None]
        return (f"{np.mean(xs):.2f}", len(xs)) if xs else ("-", 0)

    lines = [f"Model {a.model}, references of {a.seconds:g} s ({a.per_kind} per kind: hummed and whistled melodies "
             "synthesised from seeded random walks over a scale, played clips of the music corpus rendered with an "
             f"unused seed), seeds {' '.join(map(str, a.seeds))}. melody = `edit(ref, prompt, task=\"melody\")` "
             "through the control adapter; none = `generate(prompt)` (the base, no melody); other ref = the melody "
             "sound against another reference of the same kind. Pitch-class agreement: share of 1/8 s bins (where "
             "both sound) whose strongest pitch class matches the reference's (chance ~0.08); chroma r: mean "
             "correlation of the 12-bin chroma per bin.", "",
             "| references | pairs | agreement, melody | agreement, none | agreement, other ref | chroma r, melody | "
             "chroma r, none | chroma r, other ref |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for kind in (*sorted({r["kind"] for r in rows}), None):
        cells = []
        for key in ("pitch_class_agreement", "chroma_correlation"):
            for config in ("melody", "none", "other"):
                cells.append(mean(kind, config, key)[0])
        n = len([r for r in rows if kind is None or r["kind"] == kind])
        lines.append(f"| {kind or 'all'} | {n} | " + " | ".join(cells) + " |")
    lines += ["", "Wall time per sound: " + ", ".join(f"{k}: {np.mean(v):.1f} s" for k, v in timing.items() if v)
              + "."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
