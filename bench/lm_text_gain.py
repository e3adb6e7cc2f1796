"""How much does the token LM use its text? Held-out token loss with the right captions, with captions of
other clips (shuffled) and with no caption (the guidance's unconditional branch), in nats per token.

    python bench/lm_text_gain.py --run runs/lm [--parts runs/lm/lm/final] [--items 256] [--threads 1]

A decoder that ignores text scores the same in all three columns; "text gain" = shuffled - right.
Reads the run's pre-tokenised held-out windows (runs/<run>/tokens/valid.pt) and a decoder folder
(decoder/ + text_projection/, as written by `foley train lm`).
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=Path("runs/lm"))
    ap.add_argument("--parts", type=Path, action="append",
                    help="decoder folder(s) to compare (default: <run>/lm/final)")
    ap.add_argument("--items", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from transformers import MusicgenDecoderConfig, MusicgenForCausalLM

    from foley.codec.storage import load_model
    from foley.families.lm.model import load_projection
    from foley.families.lm.train import lm_loss
    from foley.text import get_text_encoder

    recipe = json.loads((a.run / "recipe.json").read_text())
    ch = int(recipe["lm"]["channels"])
    val = torch.load(a.run / "tokens" / "valid.pt")
    k = min(a.items, val["codes"].shape[0])
    caps = [c[0] if c else "" for c in val["captions"][:k]]
    order = list(range(k))
    random.Random(0).shuffle(order)
    shuffled = caps[:]  # each window gets the caption of the next window in a random cycle (never its own)
    for i, j in zip(order, order[1:] + order[:1], strict=True):
        shuffled[i] = caps[j]
    text = get_text_encoder()
    print(f"held-out windows: {k} of {val['codes'].shape[0]}; threads {a.threads}")
    print("| decoder | right caption | shuffled captions | no caption | text gain (shuffled - right) |")
    print("|---|---|---|---|---|")
    for parts in a.parts or [a.run / "lm" / "final"]:
        dec = load_model(MusicgenDecoderConfig, MusicgenForCausalLM, parts / "decoder").float().eval()
        proj = load_projection(parts / "text_projection").float()
        row = []
        with torch.no_grad():
            for cs, dropped in ((caps, False), (shuffled, False), (caps, True)):
                tot = 0.0
                for s in range(0, k, 16):
                    codes = val["codes"][s:min(k, s + 16)].long()
                    drop = torch.tensor([dropped or not c for c in cs[s:s + codes.shape[0]]])
                    tot += float(lm_loss(dec, proj, text, codes, cs[s:s + codes.shape[0]], drop, ch)) * len(codes)
                row.append(tot / k)
        print(f"| {parts} | {row[0]:.3f} | {row[1]:.3f} | {row[2]:.3f} | {row[1] - row[0]:+.3f} |")


if __name__ == "__main__":
    main()
