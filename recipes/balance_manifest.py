"""Cap the number of clips per category of a manifest (e.g. the voice-heavy real-SFX corpus).

    python recipes/balance_manifest.py corpora/real_sfx/manifest.jsonl -o corpora/real_sfx/balanced.jsonl \
        --field category --cap voice=600 --seed 0

Writes the output beside the input so relative paths keep resolving.
"""

from __future__ import annotations

import argparse
import random
from collections import defaultdict

from foley.data.manifest import read_manifest, write_manifest


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("manifest")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--field", default="category")
    ap.add_argument("--cap", action="append", default=[], help="VALUE=N (repeatable)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    caps = {k: int(v) for k, v in (c.split("=", 1) for c in args.cap)}
    groups = defaultdict(list)
    for clip in read_manifest(args.manifest):
        data = clip.to_json()
        groups[data.get(args.field) or data.get("attributes", {}).get(args.field)].append(clip)
    rng = random.Random(args.seed)
    kept = []
    for value, clips in sorted(groups.items(), key=lambda kv: str(kv[0])):
        if value in caps and len(clips) > caps[value]:
            clips = rng.sample(clips, caps[value])
        kept += clips
    write_manifest(args.output, kept)
    print(f"kept {len(kept)} clips -> {args.output}")


if __name__ == "__main__":
    main()
