"""The training clips the calibration recipes (density_level.py, quality_levels.py) fit their constants on."""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ("real_sfx/balanced.jsonl", "synth/manifest.jsonl", "music/manifest.jsonl")


def training_clips(per: int, seed: int, sample_rate: int,
                   min_seconds: float = 2.0) -> Iterator[tuple[str, dict, object]]:
    """(corpus, manifest record, Audio of its first 4 s) for ``per`` clips of each corpus (seeded shuffle), each at
    least ``min_seconds`` long; exits with the command to build a missing corpus."""
    sys.path.insert(0, str(ROOT / "bench"))
    from control_curves import load_clip

    for rel in CORPORA:
        manifest = ROOT / "corpora" / rel
        if not manifest.is_file():
            raise SystemExit(f"{manifest} is missing: build the corpora first (source recipes/corpora.sh)")
        recs = [json.loads(line) for line in manifest.open()]
        random.Random(seed).shuffle(recs)
        for r in recs[:per]:
            path = r["path"] if r["path"].startswith("/") else str(manifest.parent / r["path"])
            clip = load_clip(path, 0.0, sample_rate)
            if clip.duration >= min_seconds:
                yield rel, r, clip
