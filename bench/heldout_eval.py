"""Generate from held-out captions and run `foley eval` against the held-out clips themselves.

    python bench/heldout_eval.py --model starter --data corpora/synth/manifest.jsonl \
        --data corpora/real_sfx/balanced.jsonl -n 64 -o runs/heldout

Held-out = the deterministic validation split of :class:`foley.data.dataset.ClipDataset` (never trained
on). Writes ``<out>/reference.jsonl`` (the held-out clips, paths absolute), ``<out>/generated/`` (one
sound per clip, from its first caption, same duration, seed = index) with a manifest whose ids pair
with the reference, then ``<out>/report/report.json`` and ``report.html``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="starter")
    ap.add_argument("--data", action="append", required=True)
    ap.add_argument("-n", type=int, default=64)
    ap.add_argument("--duration", type=float, default=4.0)
    ap.add_argument("-o", "--out", type=Path, default=Path("runs/heldout"))
    args = ap.parse_args()

    import foley
    from foley.data.dataset import select_split
    from foley.data.manifest import clip_captions, read_manifest, write_manifest

    clips = []
    for m in args.data:
        base = Path(m).parent
        for c in select_split(read_manifest(m), "valid", 0.03):
            c = c.model_copy()
            c.path = str(c.resolved_path(base).resolve())
            clips.append(c)
    step = max(1, len(clips) // args.n)
    chosen = clips[::step][: args.n]
    gen = foley.load(args.model)
    rows, ref = [], []
    out_dir = args.out / "generated"
    for i, c in enumerate(chosen):
        cap = clip_captions(c)[0]
        audio = gen.generate(cap, duration=args.duration, seed=i)[0]
        path = audio.save(out_dir / f"{i:04d}.wav")
        rows.append({"id": f"{i:04d}", "path": path.name, "duration": audio.duration,
                     "sample_rate": audio.sample_rate, "description": cap})
        ref.append({**c.to_json(), "id": f"{i:04d}"})
    write_manifest(out_dir / "manifest.jsonl", rows)
    write_manifest(args.out / "reference.jsonl", ref)
    cmd = [sys.executable, "-m", "foley", "eval", "--generated", str(out_dir / "manifest.jsonl"),
           "--reference", str(args.out / "reference.jsonl"), "--clip-seconds", str(args.duration),
           "-o", str(args.out / "report")]
    print("$", " ".join(cmd[2:]), flush=True)
    raise SystemExit(subprocess.call(cmd))


if __name__ == "__main__":
    main()
