"""The training clips the calibration recipes (density_level.py, quality_levels.py) fit their constants on, and
their shared command line. Only the training corpora are read (never the evaluation-only packages)."""

from __future__ import annotations

import argparse
import json
import os
import random
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ("real_sfx/balanced.jsonl", "synth/manifest.jsonl", "music/manifest.jsonl")
MAX_SECONDS = 4.0


def recipe_args(doc: str, per: int) -> argparse.Namespace:
    """--per (clips of each corpus) and --seed; hub offline, one torch thread."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--per", type=int, default=per)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(1)
    return args


def training_clips(per: int, seed: int, sample_rate: int,
                   min_seconds: float = 2.0) -> Iterator[tuple[str, dict, object]]:
    """(corpus, manifest record, Audio of its first 4 s) for ``per`` clips of each corpus (seeded shuffle), each at
    least ``min_seconds`` long; exits with the command to build a missing corpus."""
    from foley.audio import Audio

    for rel in CORPORA:
        manifest = ROOT / "corpora" / rel
        if not manifest.is_file():
            raise SystemExit(f"{manifest} is missing: build the corpora first (source recipes/corpora.sh)")
        recs = [json.loads(line) for line in manifest.open()]
        random.Random(seed).shuffle(recs)
        for r in recs[:per]:
            path = r["path"] if r["path"].startswith("/") else str(manifest.parent / r["path"])
            a = Audio.load(path).resample(sample_rate)
            clip = Audio(a.samples[:, : int(MAX_SECONDS * sample_rate)], sample_rate)
            if clip.duration >= min_seconds:
                yield rel, r, clip
