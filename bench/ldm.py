"""Latent-diffusion speed and step-count benchmark.

    python bench/ldm.py [--model starter] [--threads 2] [--no-record]

Prints and records: real-time factor for 10 s of stereo at default settings, cold start (first
audio), peak RSS, batched vs one-at-a-time cost per clip, and the step sweep: for each scheduler and
step count, the log-mel L1 distance to 100-step DDIM samples of the same prompts and seeds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from common import peak_rss_mb, record  # noqa: E402

PROMPTS = ["a deep drone slowly rising in pitch", "rapid high beeps moving from left to right",
           "heavy rain on a roof", "a metallic impact with a long reverberant tail",
           "Continuous, rapid, sizzling elements", "a slow cello melody in a low register",
           "footsteps on gravel", "wind howling through trees"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="starter")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sweep-duration", type=float, default=4.0)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    import foley

    gen = foley.load(args.model)
    gen.generate(PROMPTS[0], duration=1.0, seed=0)
    cold = time.perf_counter() - t0

    d = gen.model.cfg.defaults
    times = []
    for i in range(args.repeats):
        t = time.perf_counter()
        gen.generate(PROMPTS[i % len(PROMPTS)], duration=10.0, seed=i)
        times.append(time.perf_counter() - t)
    med = statistics.median(times)

    t = time.perf_counter()
    for p in PROMPTS[:4]:
        gen.generate(p, duration=4.0, seed=1)
    single = (time.perf_counter() - t) / 4
    t = time.perf_counter()
    gen.generate(PROMPTS[:4], duration=4.0, seed=1)
    batched = (time.perf_counter() - t) / 4

    from foley.features import log_mel_np

    cfg = gen.model.cfg.mel
    ref = gen.generate(PROMPTS, duration=args.sweep_duration, seed=7, scheduler="ddim", steps=100)
    ref_mels = [log_mel_np(a.samples, cfg) for a in ref]
    rows = []
    for sched in ("dpm++", "ddim", "unipc"):
        for steps in (5, 10, 15, 20, 25, 50):
            t = time.perf_counter()
            outs = gen.generate(PROMPTS, duration=args.sweep_duration, seed=7, scheduler=sched, steps=steps)
            dt = (time.perf_counter() - t) / len(PROMPTS)
            dist = float(np.mean([np.abs(log_mel_np(o.samples, cfg) - r).mean() for o, r in zip(outs, ref_mels,
                                                                                               strict=True)]))
            rows.append((sched, steps, dist, dt))
            print(f"{sched:6s} {steps:3d} steps: log-mel L1 to DDIM-100 {dist:.3f}, {dt:.2f} s/clip", flush=True)
    # the same-seed distance between two 100-step runs with another solver is the floor we can reach
    floor = float(np.mean([np.abs(log_mel_np(o.samples, cfg) - r).mean() for o, r in zip(
        gen.generate(PROMPTS, duration=args.sweep_duration, seed=7, scheduler="dpm++", steps=100), ref_mels,
        strict=True)]))

    body = [f"Model `{args.model}` (weights {gen.weight_hash()}), torch threads {args.threads}, defaults "
            f"{d}.", "",
            "| measure | value |", "|---|---|",
            f"| 10 s stereo at defaults, median of {args.repeats} | {med:.2f} s (RTF {med / 10:.3f}) |",
            f"| all runs | {', '.join(f'{x:.2f}' for x in times)} s |",
            f"| cold start: import + load + first 1 s sound | {cold:.2f} s |",
            f"| 4 s clip, one at a time vs batch of 4 (per clip) | {single:.2f} s vs {batched:.2f} s "
            f"(ratio {single / batched:.2f}) |",
            f"| peak RSS | {peak_rss_mb():.0f} MB |", "",
            f"Step sweep ({len(PROMPTS)} prompts × {args.sweep_duration:g} s, seed 7): mean log-mel L1 distance "
            f"to 100-step DDIM samples; floor = DPM-Solver++ at 100 steps: {floor:.3f}.", "",
            "| scheduler | steps | log-mel L1 to DDIM-100 | s per clip |", "|---|---|---|---|"]
    body += [f"| {s} | {n} | {dist:.3f} | {dt:.2f} |" for s, n, dist, dt in rows]
    text = "\n".join(body)
    if args.no_record:
        print(text)
    else:
        record("Latent diffusion: speed and steps", text)


if __name__ == "__main__":
    main()
