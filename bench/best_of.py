"""Best-of-N: what reranking buys and what it costs, side by side in one process.

    python bench/best_of.py --model starter --n 1 2 4 --seeds 3 [--threads 2] [-o runs/best_of]

For each N: the minimal-pair control test (`foley eval control`'s 51 pairs in held-out wording, seeds 0..S-1,
4 s; a trial is right when the "high" prompt's analyzer value is larger), the mean foley-clap score of the
kept sounds with their own prompts (NB: the reranker itself maximises it, so it is not an independent judge;
the control test's analyzers are partly used by the reranker too, for prompts that name the attribute), and
the wall time of the whole test (every N generates in batches of 8 prompts). Prints a markdown table and writes
``<out>/best_of.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="starter")
    ap.add_argument("--n", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=4.0)
    ap.add_argument("--threads", default=None)
    ap.add_argument("-o", "--out", type=Path, default=Path("runs/best_of"))
    args = ap.parse_args()
    if args.threads:
        os.environ["FOLEY_THREADS"] = str(args.threads)

    import numpy as np

    import foley
    from foley.clap import load_clap
    from foley.data.synth.control import minimal_pairs
    from foley.eval.control import control_test

    gen = foley.load(args.model)
    clap = load_clap()
    pairs = minimal_pairs()
    rows = []
    for n in args.n:
        t0 = time.perf_counter()
        res = control_test(gen, pairs, args.seeds, args.duration, **({"best_of": n} if n > 1 else {}))
        wall = time.perf_counter() - t0
        # foley-clap score of the kept sounds of 16 of the prompts (not timed)
        prompts = sorted({p for pr in pairs for p in (pr.low_prompt, pr.high_prompt)})
        scores = []
        for seed in range(args.seeds):
            outs = gen.generate(prompts[:16], duration=args.duration, seed=seed, **({"best_of": n} if n > 1 else {}))
            scores += clap.clap_score(outs, prompts[:16]).tolist()
        rows.append({"n": n, "overall": res["overall"]["share"], "ci95": res["overall"]["ci95"],
                     "attributes": {a: v["share"] for a, v in res["attributes"].items()},
                     "clap_mean": float(np.mean(scores)), "clap_prompts": 16,
                     "seconds": wall, "trials": res["overall"]["n"]})
        print(f"N={n}: control {res['overall']['share']:.3f}  clap {np.mean(scores):.4f}  {wall:.0f} s", flush=True)
    base = rows[0]["seconds"]
    attrs = list(rows[0]["attributes"])
    print(f"\n{args.model}, {args.seeds} seeds, {args.duration:g} s, clap {clap.name}, "
          f"{platform.node()} {time.strftime('%Y-%m-%d')}\n")
    print("| N | control overall (95 % CI) | " + " | ".join(attrs) + " | foley-clap score | time | cost vs N=1 |")
    print("|---|---|" + "---|" * len(attrs) + "---|---|---|")
    for r in rows:
        print(f"| {r['n']} | {r['overall']:.0%} ({r['ci95'][0]:.0%}–{r['ci95'][1]:.0%}) | "
              + " | ".join(f"{r['attributes'][a]:.0%}" for a in attrs)
              + f" | {r['clap_mean']:.3f} | {r['seconds']:.0f} s | {r['seconds'] / base:.2f}× |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "best_of.json").write_text(json.dumps({"model": args.model, "clap": clap.name, "rows": rows},
                                                      indent=1))


if __name__ == "__main__":
    main()
