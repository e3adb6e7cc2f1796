"""Attribute control of a token LM under other sampling settings (the minimal-pair test, 3 seeds).

    python bench/lm_sampling_sweep.py TOP_K TEMPERATURE [--model starter-lm]

Prints one JSON line: the overall share of pairs that move the right way (Wilson CI) and per-attribute counts.
"""
import argparse
import json

import torch

import foley
from foley.data.synth.control import minimal_pairs
from foley.eval.control import control_test


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("top_k", type=int)
    ap.add_argument("temperature", type=float)
    ap.add_argument("--model", default="starter-lm")
    ap.add_argument("--seeds", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(1)
    gen = foley.load(a.model, top_k=a.top_k, temperature=a.temperature)
    res = control_test(gen, minimal_pairs(), a.seeds, 4.0)
    print(json.dumps({"model": a.model, "top_k": a.top_k, "temperature": a.temperature, "overall": res["overall"],
                      "attributes": {k: v.get("correct") for k, v in res["attributes"].items()}}))


if __name__ == "__main__":
    main()
