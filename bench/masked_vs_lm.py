"""Masked-token starter vs the autoregressive token LM, in one run: speed for 10 s and quality per number of passes.

    python bench/masked_vs_lm.py [--masked starter-masked [--masked OTHER]] [--lm starter-lm] [--passes 4,8,12,16] \
        [--items 24] [--offset 0] [--seconds 4] [--data corpora/real_sfx/balanced.jsonl ...] [--threads 2] [--record]

- RTF: wall time / audio time of one 10 s stereo sound (after a warm-up), ``--repeats`` times, median; the
  masked model at every pass count, the LM at its defaults; the same prompt and seeds; the rows are timed
  interleaved (each repeat times every row once), so the speed-up column is a side-by-side ratio. Issue 16's goal: >= 3x
  faster than the LM at equal or better quality.
- Quality, on ``--items`` held-out clips of ``--data`` (the training split's complement, valid_fraction 0.03 as in
  the recipes; their first caption is the prompt): foley-clap score (own-prompt cosine, mean and 95 % CI) and the
  Fréchet distance between foley-clap embeddings of the generated and the held-out clips (few items: read it as a
  ranking, not an absolute number). Both models use the same prompts, seeds and duration.
- ``--record`` appends the tables to docs/benchmarks.md (bench/common.py).

Needs models/starter-masked (bash recipes/starter-masked.sh), models/starter-lm and models/foley-clap.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

PROMPT = "heavy rain on a tin roof with distant thunder"
DATA = ["corpora/synth/manifest.jsonl", "corpora/music/manifest.jsonl", "corpora/real_sfx/balanced.jsonl"]


def heldout(manifests: list[str], items: int, seconds: float, rate: int, channels: int, offset: int = 0):
    """(captions, Audio crops) of ``items`` held-out clips spread over the manifests' validation splits."""
    from foley.data.dataset import ClipDataset
    from foley.data.manifest import clip_captions

    per = [ClipDataset([m], sample_rate=rate, channels=channels, clip_seconds=seconds, split="valid",
                       valid_fraction=0.03) for m in manifests if Path(m).exists()]
    if not per:
        raise SystemExit(f"no held-out data: none of {', '.join(manifests)} exists (bash recipes/starter-lm.sh "
                         "builds the corpora)")
    from foley.audio import Audio

    caps, audios = [], []
    i = 0
    while len(caps) < offset + items and any(i < len(ds) for ds in per):
        for ds in per:
            if i < len(ds) and len(caps) < offset + items:
                c = clip_captions(ds.clips[i])
                if c:
                    caps.append(c[0])
                    audios.append(Audio(ds[i]["audio"].numpy(), rate))
        i += 1
    return caps[offset:], audios[offset:]


def rtfs(runs: list, seconds: float, repeats: int) -> list[float]:
    """RTF of each (generator, kwargs) in ``runs``, timed interleaved (run 1, run 2, ..., again) so a busy spell of
    the machine hits them alike; median of ``repeats`` per run."""
    for gen, kw in runs:
        gen.generate(PROMPT, duration=1.0, seed=0, **kw)  # warm-up: weights paged in, MiniLM loaded
    times = [[] for _ in runs]
    for r in range(repeats):
        for (gen, kw), t in zip(runs, times, strict=True):
            start = time.perf_counter()
            gen.generate(PROMPT, duration=seconds, seed=r, **kw)
            t.append(time.perf_counter() - start)
    return [statistics.median(t) / seconds for t in times]


def quality(gen, clap, prompts, ref_emb, seconds: float, **kw) -> tuple[float, float, float]:
    from foley.eval.metrics import fd

    outs = [gen.generate(p, duration=seconds, seed=1000 + i, **kw)[0] for i, p in enumerate(prompts)]
    scores = np.asarray(clap.clap_score(outs, prompts), np.float64)
    ci = 1.96 * scores.std(ddof=1) / np.sqrt(len(scores)) if len(scores) > 1 else float("nan")
    return float(scores.mean()), float(ci), fd(clap.embed(outs), ref_emb)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--masked", action="append", help="masked model(s) to compare (default: starter-masked)")
    ap.add_argument("--lm", default="starter-lm")
    ap.add_argument("--passes", default="4,8,12,16")
    ap.add_argument("--rtf-seconds", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--items", type=int, default=24)
    ap.add_argument("--offset", type=int, default=0, help="skip this many held-out items (bench/masked_sampling.py "
                    "tunes on items 24..119)")
    ap.add_argument("--seconds", type=float, default=4.0, help="length of each quality clip")
    ap.add_argument("--data", action="append", help=f"held-out manifests (default: {', '.join(DATA)})")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--record", action="store_true", help="append to docs/benchmarks.md")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    import foley
    from foley.clap import load_clap

    names = a.masked or ["starter-masked"]
    models, lm = [foley.load(n) for n in names], foley.load(a.lm)
    clap = load_clap()
    passes = [int(p) for p in a.passes.split(",") if p.strip()]
    prompts, refs = heldout(a.data or DATA, a.items, a.seconds, models[0].sample_rate, models[0].channels, a.offset)
    ref_emb = clap.embed(refs)
    ref_score = np.asarray(clap.clap_score(refs, prompts), np.float64).mean()

    runs = [(f"{name}, {n} passes", masked, {"steps": n}) for name, masked in zip(names, models, strict=True)
            for n in passes] + [(f"{a.lm} (autoregressive)", lm, {})]
    speeds = rtfs([(gen, kw) for _, gen, kw in runs], a.rtf_seconds, a.repeats)
    rows = []
    for (label, gen, kw), speed in zip(runs, speeds, strict=True):
        rows.append((label, speed, *quality(gen, clap, prompts, ref_emb, a.seconds, **kw)))
        print(rows[-1], flush=True)
    lm_speed = speeds[-1]
    body = [f"{len(prompts)} held-out prompts (validation items {a.offset}..{a.offset + len(prompts) - 1}, "
            f"{a.seconds:g} s each, seeds 1000+i), foley-clap `{clap.name}`; "
            f"the held-out clips themselves score {ref_score:.3f}. RTF: median of {a.repeats} x "
            f"{a.rtf_seconds:g} s stereo at {a.threads} thread(s), every row timed in turn within each repeat "
            "(interleaved), lower is faster.", "",
            "| model | RTF (10 s) | speed-up vs LM | foley-clap score (95 % CI) | FD vs held-out (foley-clap) |",
            "|---|---|---|---|---|"]
    for name, speed, score, ci, dist in rows:
        body.append(f"| {name} | {speed:.3f} | {lm_speed / speed:.2f}x | {score:.3f} ± {ci:.3f} | {dist:.3f} |")
    text = "\n".join(body)
    if a.record:
        from common import record

        record("Masked-token starter vs token LM (speed, quality per pass count)", text)
    else:
        print(text)


if __name__ == "__main__":
    main()
