"""Curve adherence of the control adapter and of DITTO steering: target curves from held-out real clips.

    python bench/control_curves.py [--model starter] [--configs none adapter steer10 adapter+steer10] [--seed 0]
        [--steps N] [--threads 1] [--clips N] [--words] [--out runs/control_curves] [--record]
    python bench/control_curves.py --speed 8 [--seconds 10] [--record]   # the adapter's cost: RTF with / without

Held-out clips: sounds of Debian packages that are NOT allowed for training or tuning (DEVELOPERS.md keeps every
package off its list for independent evaluation): ``supertux-data`` (SuperTux effects), ``extremetuxracer-data``
(slides on snow, ice, rock; stereo music) and ``sound-theme-freedesktop`` (desktop alerts). Each clip (cut to at
most 4 s) gives the targets: all five curves measured from it (pan from stereo clips only), with the prompt written
from its file name. The model makes a sound of the clip's length for each configuration, with the same seed:
``none`` (no adapter, no steering: the curves only measured), ``adapter`` (the model's control adapter reads the
curves), ``steerN`` (N DITTO iterations, no adapter), ``adapter+steerN``; ``resynth`` (no generation: the clip
itself through the model's mel, VAE and vocoder, the ceiling of any sound this model renders). The same analyzers
measure the result. Per signal: the mean Pearson correlation over the clips whose target moves (a flat target has
none) and the mean
absolute error; seconds per sound. ``--record`` appends the table to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

ST = "/usr/share/games/supertux2/sounds/"
ETR = "/usr/share/games/etr/"
FD = "/usr/share/sounds/freedesktop/stereo/"
PACKAGES = "supertux-data extremetuxracer-data sound-theme-freedesktop"  # foley.data.gamesfx.EVALUATION_ONLY
# (file, start s, prompt); durations are cut to MAX_SECONDS
CLIPS = [
    (ST + "thunder.wav", 0.0, "a thunder clap rumbling"),
    (ST + "rain.wav", 0.0, "rain falling"),
    (ST + "lava.wav", 0.0, "bubbling lava"),
    (ST + "waterfall.wav", 0.0, "a waterfall"),
    (ST + "saw.wav", 0.0, "a saw cutting"),
    (ST + "explosion.wav", 0.0, "an explosion"),
    (ST + "yeti_roar.wav", 0.0, "a monster roaring"),
    (ST + "fizz.wav", 0.0, "a fizzing sound"),
    (ST + "lifeup.wav", 0.0, "a cheerful game jingle"),
    (ST + "willowisp.wav", 0.0, "a ghostly whoosh"),
    (ST + "door.wav", 0.0, "a door opening"),
    (ST + "savebell2.wav", 0.0, "a bell ringing"),
    (ETR + "sounds/rock_slide.wav", 0.0, "sliding on rocks"),
    (ETR + "sounds/snow_slide.wav", 0.0, "sliding on snow"),
    (ETR + "sounds/mud_slide.wav", 0.0, "sliding through mud"),
    (FD + "alarm-clock-elapsed.oga", 0.0, "an alarm clock ringing"),
    (FD + "phone-incoming-call.oga", 0.0, "a phone ringing"),
    (FD + "service-login.oga", 0.0, "a soft chime"),
    (ETR + "music/race1-jt.ogg", 20.0, "upbeat game music"),
    (ETR + "music/calmrace-ks.ogg", 30.0, "calm game music"),
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
    ap.add_argument("--configs", nargs="+", default=["none", "adapter", "steer10", "adapter+steer10"],
                    help="none, adapter, steerN, adapter+steerN, resynth (the clip through the model's VAE and "
                         "vocoder: the ceiling)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=None, help="sampling steps of the final sound (model default)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--clips", type=int, default=len(CLIPS), help="use the first N clips")
    ap.add_argument("--words", action="store_true", help="targets from words (WORDS) instead of clips")
    ap.add_argument("--out", type=Path, default=Path("runs/control_curves"))
    ap.add_argument("--record", action="store_true", help="append the result to docs/benchmarks.md")
    ap.add_argument("--speed", type=int, default=0, help="rounds of the cost test (adapter on / off alternated)")
    ap.add_argument("--seconds", type=float, default=10.0, help="sound length of the cost test")
    a = ap.parse_args()
    a.configs = [parse_config(c) for c in a.configs]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(a.threads)
    import foley
    from foley import curves as cv

    gen = foley.load(a.model)
    a.out.mkdir(parents=True, exist_ok=True)
    if a.speed:
        return speed(gen, a)
    if a.words:
        return words(gen, a)
    rows = []  # (clip, configuration, name, correlation or None, mean error, moves)
    per_iter, timing = [], {}
    for path, start, prompt in CLIPS[: a.clips]:
        if not Path(path).is_file():
            print(f"skip {path}: not installed (apt-get install {PACKAGES})")
            continue
        clip = load_clip(path, start, gen.sample_rate)
        if clip.duration < MIN_SECONDS:
            continue
        duration = round(clip.duration, 3)
        names = [n for n in cv.NAMES if n != "pan" or clip.channels > 1]
        targets = {n: c for n, c in cv.measure(clip, names).items()}
        moving = {n: moves(c) for n, c in targets.items()}
        for label, adapter, budget in a.configs:
            t0 = time.perf_counter()
            if label == "resynth":
                out = resynth(gen, clip, targets)
            else:
                out = gen.generate(prompt, duration=duration, seed=a.seed, controls=dict(targets.items()),
                                   steer=budget, prior=False, steps=a.steps, control_adapter=adapter)[0]
            spent = time.perf_counter() - t0
            control = out.meta["control"]
            if adapter and "adapter" not in control:
                raise SystemExit(f"model {a.model} has no control adapter (foley train control)")
            run = control.get("steering")
            if run:
                per_iter.append(run["seconds_per_iteration"])
            timing.setdefault(label, []).append(spent)
            stem = f"{Path(path).stem}_{label.replace('+', '_')}"
            out.save(a.out / f"{stem}.wav")
            (a.out / f"{stem}.json").write_text(json.dumps(out.meta, indent=1, default=str))
            for n, d in control["adherence"].items():
                rows.append((Path(path).name, label, n, d["correlation"], d["mean_error"], moving[n]))
            line = ", ".join(f"{n} {d['correlation'] if d['correlation'] is not None else '-'}"
                             for n, d in control["adherence"].items())
            print(f"{Path(path).name:16s} {label:16s} ({spent:5.1f} s): {line}", flush=True)
    body = table(rows, [c[0] for c in a.configs], per_iter, timing)
    print(body)
    (a.out / "summary.md").write_text(body)
    if a.record:
        import sys

        sys.path.insert(0, str(Path(__file__).parent))
        from common import record

        record("Control curves" + (f" ({a.model})" if a.model != "starter" else ""), body)


def speed(gen, a) -> None:
    """RTF of one sound with target curves through the adapter (no steering) and of the same request without the
    adapter (the curves only measured), alternated round by round so both see the same machine; the ratio of
    medians is the adapter's cost."""
    ask = {"duration": a.seconds, "controls": ["pitch=rise 300Hz->1200Hz", "loudness=fade out"], "steer": 0,
           "prior": False}
    times = {True: [], False: []}
    gen.generate("a synth tone", seed=99, **ask)  # warm both paths (adapter load, kernels)
    gen.generate("a synth tone", seed=99, control_adapter=False, **ask)
    for i in range(a.speed):
        for adapter in ((True, False) if i % 2 == 0 else (False, True)):
            t0 = time.perf_counter()
            gen.generate("a synth tone", seed=i, control_adapter=adapter, **ask)
            times[adapter].append(time.perf_counter() - t0)
    on, off = np.median(times[True]), np.median(times[False])
    load = os.getloadavg()[0]
    body = (f"`{a.model}`, {a.seconds:g} s stereo, two target curves, steering off, torch on {a.threads} thread(s), "
            f"{a.speed} rounds alternated (load average {load:.1f} at the end):\n\n"
            "| | median s per sound | RTF |\n|---|---:|---:|\n"
            f"| without the adapter | {off:.2f} | {off / a.seconds:.3f} |\n"
            f"| with the adapter | {on:.2f} | {on / a.seconds:.3f} |\n\n"
            f"Ratio with / without: {on / off:.2f}.\n")
    print(body)
    if a.record:
        import sys

        sys.path.insert(0, str(Path(__file__).parent))
        from common import record

        record("Control adapter: cost", body)


def resynth(gen, clip, targets):
    """The clip through the model's own mel, VAE (posterior mean) and vocoder, with its adherence to ``targets``."""
    import torch

    from foley import curves as cv
    from foley.audio import Audio

    m = gen.model
    if not hasattr(m, "wave_to_mel"):
        raise SystemExit(f"resynth: {gen.name} is not a latent-diffusion model")
    x = clip.samples if clip.channels == m.cfg.channels else np.repeat(clip.samples.mean(0, keepdims=True),
                                                                       m.cfg.channels, 0)
    with torch.no_grad():
        block = m.cfg.mel.hop_length * m.frame_multiple  # the VAE and UNet take whole blocks of mel frames
        pad = (-x.shape[-1]) % block
        wave = torch.from_numpy(np.ascontiguousarray(np.pad(x, ((0, 0), (0, pad))), np.float32))[None]
        y = m.mel_to_wave(m.latent_to_mel(m.mel_to_latent(m.wave_to_mel(wave))))[0].numpy()
    out = Audio(np.ascontiguousarray(y[:, : clip.frames]), clip.sample_rate)
    out.meta = {"control": {"adherence": cv.adherence(targets, out)}}
    return out


def parse_config(text: str) -> tuple[str, bool, int]:
    """"none" | "adapter" | "steerN" | "adapter+steerN" | "resynth" -> (label, adapter, steering iterations)."""
    if text == "resynth":
        return text, False, 0
    adapter, budget = False, 0
    for part in text.split("+"):
        if part == "adapter":
            adapter = True
        elif part.startswith("steer") and part[5:].isdigit():
            budget = int(part[5:])
        elif part != "none":
            raise SystemExit(f"config {text!r}: use none, adapter, steerN or adapter+steerN")
    return text, adapter, budget


def words(gen, a) -> None:
    """One curve from words per prompt: correlation and error per configuration."""
    lines = [f"Targets from words, {WORDS_SECONDS:g} s, seed {a.seed}, one curve per prompt (none = neither adapter "
             "nor steering):",
             "", "| prompt | control | " + " | ".join(f"r / error, {c[0]}" for c in a.configs) + " |",
             "|---|---|" + "---:|" * len(a.configs)]
    per_iter = []
    for prompt, spec in WORDS:
        cells = []
        for label, adapter, budget in a.configs:
            out = gen.generate(prompt, duration=WORDS_SECONDS, seed=a.seed, controls=[spec], steer=budget,
                               prior=False, control_adapter=adapter)[0]
            run = out.meta["control"].get("steering")
            if run:
                per_iter.append(run["seconds_per_iteration"])
            (d,) = out.meta["control"]["adherence"].values()
            r = "-" if d["correlation"] is None else f"{d['correlation']:.2f}"
            cells.append(f"{r} / {d['mean_error']:.1f} {d['unit']}")
            print(f"{prompt:20s} {spec:28s} {label:16s}: {cells[-1]}", flush=True)
        lines.append(f"| {prompt} | `{spec}` | " + " | ".join(cells) + " |")
    if per_iter:
        lines += ["", f"{np.mean(per_iter):.2f} s per steering iteration ({WORDS_SECONDS:g} s sounds)."]
    body = "\n".join(lines) + "\n"
    print(body)
    (a.out / "words.md").write_text(body)
    if a.record:
        import sys

        sys.path.insert(0, str(Path(__file__).parent))
        from common import record

        record("Control curves: targets from words", body)


def table(rows, labels, per_iter, timing) -> str:
    from foley import curves as cv

    clips = sorted({r[0] for r in rows})
    lines = [f"Target curves measured from held-out real clips ({PACKAGES}: packages kept out of training), "
             f"{len(clips)} clips ({', '.join(clips)}), each generated at the clip's length with the clip's five "
             "curves as targets (pan only from stereo clips), seed fixed; none = neither adapter nor steering (the "
             "curves only measured), adapter = the model's control adapter, steerN = N DITTO iterations. "
             "Correlation: mean over the clips whose target moves (n; standard deviation over 3 dB, a quarter "
             "octave, a semitone, 0.5 onsets/s, 1 dB); error: mean absolute error over all clips (loudness "
             "level-aligned).", "",
             "| signal | n | " + " | ".join(f"r, {b}" for b in labels) + " | "
             + " | ".join(f"error, {b}" for b in labels) + " |",
             "|---|---:|" + "---:|" * (2 * len(labels))]
    for name in cv.NAMES:
        cells, errs, n = [], [], 0
        for b in labels:
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
                  + ", ".join(f"{b}: {np.mean(t):.1f} s" for b, t in timing.items()) + "."]
    elif timing:
        lines += ["", "Wall time per sound: " + ", ".join(f"{b}: {np.mean(t):.1f} s" for b, t in timing.items())
                  + "."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
