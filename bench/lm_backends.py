"""Token LM backends side by side in one process: torch (the fast loop), onnx (the decoder step in onnxruntime) and
onnx + int8 (`foley generate --backend onnx [--quantize int8]`).

Speed: each round runs every measure on every backend back to back (order rotating): real-time factor for 10 s at
the model's defaults, the first streamed chunk (warm) and the whole 10 s stream. Quality: the backends draw other
codes for a seed (other kernels' last bits), so sounds are compared as sets, not pairs: for P prompts x S seeds of
4 s, the foley-clap score (cosine of each sound with its own prompt) and the cosine between the mean foley-clap
embedding of a prompt's sounds under a backend and under torch with *other* seeds; torch's own row of that column
(its seeds 1..S against S+1..2S) is the floor set by seed-to-seed variation alone.

    python bench/lm_backends.py [--model starter-lm] [--rounds 5] [--threads 2] [--seeds 3] [--no-record]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import peak_rss_mb, record  # noqa: E402

PROMPTS = ["rain on a tin roof", "footsteps on gravel", "a dog barking in the distance", "wind through trees",
           "a church bell ringing", "an electric motor spinning up", "crickets at night", "a piano melody"]
BACKENDS = {"torch": {}, "onnx": {"backend": "onnx"}, "onnx + int8": {"backend": "onnx", "quantize": "int8"}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="starter-lm")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=3, help="seeds per prompt for the quality sets")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    import foley

    gens, export_s = {}, {}
    for name, opts in BACKENDS.items():
        t = time.perf_counter()
        gens[name] = foley.load(args.model, **opts)
        export_s[name] = time.perf_counter() - t
        gens[name].generate(PROMPTS[0], duration=1.0, seed=0)
        list(gens[name].stream(PROMPTS[0], duration=1.0, seed=0))
    names = list(gens)
    rtf, first, total = ({n: [] for n in names} for _ in range(3))
    for r in range(args.rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for n in order:
            prompt = f"{PROMPTS[r % len(PROMPTS)]}, take {r + 1}"  # a new text each round: no cached encoding
            t = time.perf_counter()
            gens[n].generate(prompt, duration=10.0, seed=r + 1)
            rtf[n].append((time.perf_counter() - t) / 10.0)
        for n in order:
            t, got = time.perf_counter(), None
            for _ in gens[n].stream(f"{PROMPTS[(r + 3) % len(PROMPTS)]}, take {r + 1}", duration=10.0, seed=r + 1):
                got = time.perf_counter() - t if got is None else got
            first[n].append(got * 1000)
            total[n].append(time.perf_counter() - t)
        print(f"round {r + 1}: " + ", ".join(f"{n} RTF {rtf[n][-1]:.3f} first {first[n][-1]:.0f} ms"
                                              for n in names), flush=True)

    from foley.clap import load_clap

    clap = load_clap()
    seeds = list(range(1, args.seeds + 1))
    sets = {n: [[gens[n].generate(p, duration=4.0, seed=s)[0] for s in seeds] for p in PROMPTS] for n in names}
    floor = [[gens["torch"].generate(p, duration=4.0, seed=s + args.seeds)[0] for s in seeds] for p in PROMPTS]

    def means(per_prompt):
        e = [clap.embed(a).mean(0) for a in per_prompt]
        return [v / np.linalg.norm(v) for v in e]

    ref = means(floor)
    rows = []
    for n in names:
        flat = [a for per in sets[n] for a in per]
        score = clap.clap_score(flat, [p for p in PROMPTS for _ in seeds])
        sim = [float(a @ b) for a, b in zip(means(sets[n]), ref, strict=True)]
        loud = [20 * np.log10(np.sqrt(np.mean(a.samples ** 2)) + 1e-9) for a in flat]
        ratio = statistics.median([t / o for t, o in zip(rtf["torch"], rtf[n], strict=True)])
        se = np.std(score) / len(score) ** 0.5
        rows.append(f"| {n} | {statistics.median(rtf[n]):.3f} | {ratio:.2f}x | {statistics.median(first[n]):.0f} | "
                    f"{statistics.median(total[n]):.2f} | {np.mean(score):.3f} ± {se:.3f} | "
                    f"{np.mean(sim):.3f} (min {min(sim):.3f}) | {np.mean(loud):.1f} | {export_s[n]:.1f} |")
    body = (f"Model {args.model} at its defaults ({gens['torch'].sampling}), torch/onnxruntime threads "
            f"{args.threads}; "
            f"{args.rounds} rounds, backends back to back in rotating order, a new prompt text each round; "
            f"quality over {len(PROMPTS)} prompts x {args.seeds} seeds of 4 s. Peak RSS {peak_rss_mb():.0f} MB "
            f"(three copies loaded).\n\n"
            "| backend | RTF 10 s (median) | speed vs torch (median of pairs) | first streamed chunk, warm (ms) | "
            "streamed 10 s total (s) | foley-clap score (mean ± s.e.) | prompt-mean embedding cosine to torch's "
            "other seeds | mean RMS (dBFS) | load (+ export/quantise on first use), s |\n"
            "|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
            "torch's row in the cosine column compares its seeds 1..S with S+1..2S: the seed-to-seed floor.\n")
    if args.no_record:
        print(body)
    else:
        record(f"Token LM backends: torch vs onnxruntime vs int8 ({args.model})", body)


if __name__ == "__main__":
    main()
