"""The VAE decoder adapter of `foley train finetune --vae` alone: held-out log-mel SNR of the user's clips through the
base VAE before and after, per LoRA rank and time budget, on one set of clips.

    python bench/vae_adapter.py --data corpora/gm-sfx/manifest.jsonl [--base starter] [--ranks 8 32]
                                [--minutes 8] [--threads 1] [--no-record]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import record  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True, help="the user's manifest")
    ap.add_argument("--base", default="starter")
    ap.add_argument("--ranks", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--minutes", type=float, default=8.0)
    ap.add_argument("--valid-fraction", type=float, default=0.1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from foley.families.ldm import finetune as LF
    from foley.registry import resolve

    folder, _ = resolve(args.base)
    user_db, ref_db = LF.reconstruction(folder, args.data, args.valid_fraction)
    rows = []
    for rank in args.ranks:
        with tempfile.TemporaryDirectory() as tmp:
            rec = LF.tune_decoder(folder, args.data, args.valid_fraction, Path(tmp) / "vae", rank, args.minutes,
                                  say=lambda s: None)
        rows.append(f"| {rank} | {rec['minutes']:.1f} | {rec['steps']} | {rec['heldout_db_before']:.2f} | "
                    f"{rec['heldout_db_after']:.2f} | {rec['heldout_db_after'] - rec['heldout_db_before']:+.2f} | "
                    f"{'kept' if rec['kept'] else 'not kept'} |")
        print(rows[-1], flush=True)
    body = (f"Base {args.base}, user clips {args.data} (held-out {args.valid_fraction:.0%}); torch threads "
            f"{args.threads}. Before training, the fine-tune's own report: the user's clips reconstruct at "
            f"{user_db:.1f} dB, the synth corpus at {ref_db:.1f} dB. Per rank: {LF.VAE_WINDOWS} training windows of "
            f"2 s, batch 8, AdamW 1e-3, L1 on the normalised log-mel, for the budget; held-out = the fine-tune's "
            f"held-out clips (a window each).\n\n| rank | minutes | steps | held-out dB before | after | gain | "
            f"(>= +{LF.VAE_GAIN_DB} dB kept) |\n|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")
    if args.no_record:
        print(body)
    else:
        record(f"VAE decoder adapter ({args.base})", body)


if __name__ == "__main__":
    main()
