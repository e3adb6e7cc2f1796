"""The WaveGAN starter next to the diffusion starter on the same one-shot prompts, in one run.

    .venv/bin/python bench/wavegan_vs_ldm.py --run runs/wavegan            # builds <run>/clips when missing
    .venv/bin/python bench/wavegan_vs_ldm.py --run runs/wavegan --record   # also append to docs/benchmarks.md

- **Speed**: 100 one-shots of 1 s from one prompt in one ``generate`` call (WaveGAN: one batch); the diffusion
  starter makes ``--ldm-n`` of them the same way (its own default steps and batching), reported per sound and
  as the ratio of the per-sound times measured here (models loaded and warmed up first; loading reported apart).
- **Diversity**: per prompt, ``--diversity-n`` sounds (seeds 0..N-1); the mean over pairs of the mean absolute
  difference of their log-mel spectrograms (64 bands, dB, mono) — higher = more varied; also ``foley eval``'s
  within-prompt ratio on the FD sets below.
- **FD**: the held-out one-shots of the WaveGAN run (``<run>/clips/valid.pt``: the same one-shot filter on the
  corpora's validation split, never trained on; when the run is not on this machine, the recipe's ``clips`` stage
  alone rebuilds them from the corpora: a few minutes, no GAN training) are the reference; each model makes one
  sound per held-out clip from its first caption (seed = index, 1 s, mono mix-down), scored with ``foley eval``
  (``fd_logmel``, ``kid_logmel``, and FD/KID with the foley-encoder backbone when models/foley-encoder is there).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

PROMPTS = ["a metal impact", "footsteps on gravel", "a kick drum", "a short UI click", "a wooden knock",
           "a snare drum hit", "a door slam", "a glass bottle breaking"]


def logmel_db(samples, sample_rate: int):
    import librosa
    import numpy as np

    mono = samples.mean(axis=0) if samples.ndim == 2 else samples
    m = librosa.feature.melspectrogram(y=mono.astype(np.float32), sr=sample_rate, n_fft=1024, hop_length=256,
                                       n_mels=64)
    return 10 * np.log10(np.maximum(m, 1e-10))


def diversity(audios) -> float:
    import numpy as np

    mels = [logmel_db(a.samples, a.sample_rate) for a in audios]
    n = min(m.shape[1] for m in mels)
    return float(np.mean([np.abs(a[:, :n] - b[:, :n]).mean() for a, b in itertools.combinations(mels, 2)]))


def timed(gen, prompt: str, n: int) -> float:
    t = time.perf_counter()
    out = gen.generate(prompt, duration=1.0, num_variations=n, seed=0)
    assert len(out) == n
    return time.perf_counter() - t


def ensure_clips(run: Path) -> Path:
    """``<run>/clips/valid.pt``, built by the recipe's clips stage (the corpora of recipes/corpora.sh) if missing."""
    import subprocess

    valid = run / "clips" / "valid.pt"
    if not valid.is_file():
        root = Path(__file__).resolve().parent.parent
        cmd = ("source recipes/corpora.sh && $FOLEY train wavegan $CAPTIONED --recipe recipes/starter-wavegan.toml "
               f"--run {run.resolve()} --stages clips")
        print(f"{valid} is missing: building the held-out one-shots ({cmd})", flush=True)
        subprocess.run(["bash", "-c", cmd], cwd=root, check=True)
    return valid


def write_reference(run: Path, out: Path, limit: int | None) -> tuple[Path, list[str], list[str]]:
    """The held-out one-shots of the run as wav files + a manifest; returns it, their ids and first captions."""
    import torch

    from foley.audio import Audio
    from foley.data.manifest import write_manifest

    blob = torch.load(ensure_clips(run), weights_only=True)
    audio, sr = blob["audio"], int(blob["sample_rate"])
    k = audio.shape[0] if limit is None else min(limit, audio.shape[0])
    rows, captions = [], []
    for i in range(k):
        ids = blob["caption_ids"][i]
        cap = blob["captions"][ids[0]] if ids else ""
        if not cap:
            continue
        path = Audio(audio[i].float().numpy()[None] / 32767, sr).save(out / "reference" / f"{i:04d}.wav")
        rows.append({"id": f"{i:04d}", "path": path.name, "duration": audio.shape[1] / sr, "sample_rate": sr,
                     "description": cap})
        captions.append(cap)
    manifest = write_manifest(out / "reference" / "manifest.jsonl", rows)
    return manifest, [r["id"] for r in rows], captions


def write_generated(gen, name: str, ids: list[str], captions: list[str], out: Path) -> Path:
    from foley.data.manifest import write_manifest

    rows = []
    for i, (id_, cap) in enumerate(zip(ids, captions, strict=True)):
        a = gen.generate(cap, duration=1.0, seed=i)[0]
        a = a.to_channels(1) if a.channels != 1 else a
        path = a.save(out / name / f"{id_}.wav")
        rows.append({"id": id_, "path": path.name, "duration": a.duration, "sample_rate": a.sample_rate,
                     "description": cap})
    return write_manifest(out / name / "manifest.jsonl", rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wavegan", default="starter-wavegan")
    ap.add_argument("--ldm", default="starter")
    ap.add_argument("--run", type=Path, default=Path("runs/wavegan"), help="the WaveGAN run (its clips/valid.pt)")
    ap.add_argument("--ldm-n", type=int, default=20, help="one-shots the diffusion starter makes for the speed test")
    ap.add_argument("--diversity-n", type=int, default=8)
    ap.add_argument("--fd-items", type=int, default=None, help="held-out clips used (default: all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("-o", "--out", type=Path, default=Path("runs/wavegan_vs_ldm"))
    ap.add_argument("--record", action="store_true", help="append the table to docs/benchmarks.md")
    args = ap.parse_args()

    import torch

    import foley
    from foley.eval.extractors import extractor_names
    from foley.eval.run import evaluate

    torch.set_num_threads(args.threads)
    models, load_s = {}, {}
    for key, name in (("wavegan", args.wavegan), ("ldm", args.ldm)):
        t = time.perf_counter()
        models[key] = foley.load(name)
        load_s[key] = time.perf_counter() - t
        models[key].generate(PROMPTS[0], duration=1.0, seed=0)  # warm-up (text encoder, allocations)

    t_wg = timed(models["wavegan"], PROMPTS[0], 100)
    t_ldm = timed(models["ldm"], PROMPTS[0], args.ldm_n)
    per_wg, per_ldm = t_wg / 100, t_ldm / args.ldm_n

    div = {k: {p: diversity(m.generate(p, duration=1.0, num_variations=args.diversity_n, seed=0)) for p in PROMPTS}
           for k, m in models.items()}

    ref, ids, captions = write_reference(args.run, args.out, args.fd_items)
    encoders = [n for n in extractor_names() if n.startswith("foley-encoder")]
    metrics = ["fd_logmel", "kid_logmel", "diversity"] + [f"{p}{n}" for n in encoders for p in ("fd_", "kid_")]
    scores = {}
    for key, m in models.items():
        gen_manifest = write_generated(m, key, ids, captions, args.out)
        report = evaluate(gen_manifest, ref, metrics).report
        scores[key] = {k: (v.get("value"), v.get("status")) for k, v in report["metrics"].items()
                       if k.startswith(("fd_", "kid_"))}
        d = report["metrics"]["diversity"]
        scores[key]["diversity_ratio"] = (d.get("ratio"), d.get("status", "missing") if d.get("ratio") is None
                                          else "ok")

    lines = [f"One-shot prompts ({len(PROMPTS)}): {', '.join(PROMPTS)}; {args.threads} threads; "
             f"{len(ids)} held-out one-shots from `{args.run}/clips/valid.pt`.", "",
             "| | WaveGAN (`" + args.wavegan + "`) | diffusion (`" + args.ldm + "`) | ratio |", "|---|---|---|---|",
             f"| 100 one-shots of 1 s, one call | {t_wg:.2f} s | {per_ldm * 100:.1f} s (timed on {args.ldm_n}) | "
             f"{per_ldm / per_wg:.0f}x faster |",
             f"| per sound | {per_wg * 1000:.1f} ms | {per_ldm * 1000:.0f} ms | |",
             f"| load | {load_s['wavegan']:.2f} s | {load_s['ldm']:.2f} s | |",
             f"| diversity: mean pairwise log-mel distance, {args.diversity_n} per prompt (dB) | "
             f"{sum(div['wavegan'].values()) / len(PROMPTS):.2f} | {sum(div['ldm'].values()) / len(PROMPTS):.2f} | |"]
    for k in sorted(set(scores["wavegan"]) | set(scores["ldm"])):
        def cell(key, k=k):
            v, status = scores[key].get(k, (None, "missing"))
            return f"{v:.4g}" if isinstance(v, (int, float)) else status
        lines.append(f"| {k} (held-out one-shots) | {cell('wavegan')} | {cell('ldm')} | |")
    lines += ["", "Per-prompt diversity (dB): " + "; ".join(
        f"{p}: {div['wavegan'][p]:.2f} vs {div['ldm'][p]:.2f}" for p in PROMPTS)]
    body = "\n".join(lines)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "result.json").write_text(json.dumps({"seconds_100": t_wg, "ldm_per_sound": per_ldm,
                                                      "diversity": div, "scores": scores}, indent=2))
    if args.record:
        from common import record

        record("WaveGAN vs diffusion starter on one-shots", body)
    else:
        print(body)


if __name__ == "__main__":
    main()
