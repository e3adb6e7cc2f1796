"""The starter three ways, side by side in one process: float torch, dynamic int8 (--quantize int8) and the UNet
in onnxruntime (--backend onnx). Same prompts and seeds for all three.
(Named onnx_int8.py, not onnx.py: bench/ is on sys.path, and a bench/onnx.py would shadow the onnx package.)

    python bench/onnx_int8.py [--model starter] [--seconds 10] [--repeats 3] [--threads 2] [--no-record]

Speed: wall time of one `generate` (10 s of stereo at the model's default steps), the three variants in turn
(A B C A B C ...) so that a busy machine slows them alike; ratios are per round, then the median. Quality against
float torch on the same seeds: max abs difference of the final audio, log-mel L1 distance (foley.features, the
model's own mel settings), and the foley-clap score of each variant (own-prompt cosine; models/foley-clap).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from common import peak_rss_mb, record  # noqa: E402

PROMPTS = ["rain on a tin roof", "footsteps on gravel", "a dog barking in the distance", "wind through trees"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="starter")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()

    import numpy as np
    import torch

    import foley
    from foley.features import MelConfig, log_mel

    torch.set_num_threads(args.threads)
    t = time.perf_counter()
    variants = {"torch fp32": foley.load(args.model)}
    variants["int8 (dynamic, Linear)"] = foley.load(args.model, quantize="int8")
    t = time.perf_counter()
    variants["onnxruntime UNet"] = foley.load(args.model, backend="onnx")
    onnx_load = time.perf_counter() - t
    names = list(variants)

    outs = {n: [g.generate(p, duration=args.seconds, seed=i)[0] for i, p in enumerate(PROMPTS)]
            for n, g in variants.items()}  # also the warm-up
    times = {n: [] for n in names}
    for r in range(args.repeats):
        for n in names:
            t = time.perf_counter()
            variants[n].generate(PROMPTS[r % len(PROMPTS)], duration=args.seconds, seed=100 + r)
            times[n].append(time.perf_counter() - t)

    mel = MelConfig(**variants[names[0]].model.cfg.mel.to_dict())

    def lm(a):
        return log_mel(torch.from_numpy(a.samples), mel).numpy()

    ref = outs[names[0]]
    try:
        from foley.clap import load_clap

        clap = load_clap()
        scores = {n: float(np.mean(clap.clap_score(outs[n], PROMPTS))) for n in names}
    except Exception as e:  # noqa: BLE001  the table says why the column is empty
        scores, why = {}, f"{type(e).__name__}: {e}"
    rows = ["| variant | s per generate (median) | speed vs torch (median of rounds) | max abs diff vs torch | "
            "log-mel L1 vs torch | foley-clap score |", "|---|---|---|---|---|---|"]
    for n in names:
        ratio = statistics.median(a / b for a, b in zip(times[names[0]], times[n], strict=True))
        diff = max(float(np.abs(o.samples - r.samples).max()) for o, r in zip(outs[n], ref, strict=True))
        dist = float(np.mean([np.abs(lm(o) - lm(r)).mean() for o, r in zip(outs[n], ref, strict=True)]))
        score = f"{scores[n]:.3f}" if n in scores else "n/a"
        rows.append(f"| {n} | {statistics.median(times[n]):.2f} | {ratio:.2f}× | {diff:.2g} | {dist:.4f} | {score} |")
    body = (f"Model `{args.model}`, {args.seconds:g} s stereo, default steps, {args.threads} torch/ORT threads, "
            f"{args.repeats} interleaved rounds after a warm-up; quality over {len(PROMPTS)} prompts × seed "
            f"(`{'`, `'.join(PROMPTS)}`); audio peak ≈ {max(float(np.abs(r.samples).max()) for r in ref):.2f}. "
            f"ONNX export + check on first use: {onnx_load:.1f} s (cached after). Peak RSS {peak_rss_mb():.0f} MB.\n\n"
            + "\n".join(rows) + ("" if scores else f"\n\nfoley-clap unavailable: {why}"))
    if args.no_record:
        print(body)
    else:
        record(f"Latent diffusion: int8 and ONNX Runtime vs torch ({args.model})", body)


if __name__ == "__main__":
    main()
