"""Quality figures of a text-to-audio model for its card (run after training; ~10 min on 2 cores).

    python bench/quality_ldm.py --model starter --real corpora/real_sfx/balanced.jsonl -o runs/quality

1. The 22 thesis presets: generate each preset's exact text, classify by nearest centroid among
   freshly rendered preset references (weight-free log-mel features).
2. Real sound-effect prompts (footsteps, fire, water, explosions, doors, birds, swords, engines):
   the same test against the real game clips of each category.
3. Sanity over N generations (NaN, clipping, silence, DC) with varied prompts and seeds.
Writes quality.json and quality.md into the output folder and prints the markdown.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SFX_PROMPTS = {
    "footsteps": ["footsteps on gravel", "a person walking, footsteps", "running footsteps"],
    "fire": ["a crackling fire", "flames burning", "a campfire crackling"],
    "water": ["water splashing", "a stream of running water", "a splash in water"],
    "explosion": ["a loud explosion", "a distant explosion", "an explosion with debris"],
    "door": ["a door opening and closing", "a wooden door creaking", "a door slam"],
    "bird/animal": ["birds chirping", "a bird singing", "an animal growling"],
    "weapon/sword": ["sword clashing", "a sword swing and hit", "metal blades clanging"],
    "engine/vehicle": ["an engine running", "a vehicle driving past", "a motor revving"],
}


def presets_test(gen, seeds, tmp: Path) -> dict:
    from foley.audio import Audio
    from foley.data.manifest import read_manifest
    from foley.data.synth import PRESETS, write_corpus
    from foley.eval.resemblance import resemblance

    ref_dir = tmp / "preset_refs"
    if not (ref_dir / "manifest.jsonl").exists():
        write_corpus(ref_dir, n=4 * len(PRESETS), seed=12345, presets_only=True, workers=1)
    refs = defaultdict(list)
    for c in read_manifest(ref_dir / "manifest.jsonl"):
        refs[c.attributes["preset"]].append(Audio.load(c.resolved_path(ref_dir)))
    prompts = {slug: [p.text] for slug, p in PRESETS.items()}
    return resemblance(gen, dict(refs), prompts, seeds=seeds)


def sfx_test(gen, manifest: Path, seeds, max_refs: int = 40) -> dict:
    import random

    from foley.audio import Audio
    from foley.data.manifest import read_manifest
    from foley.eval.resemblance import resemblance

    refs = defaultdict(list)
    clips = read_manifest(manifest)
    random.Random(0).shuffle(clips)
    for c in clips:
        cat = c.to_json().get("category")
        if cat in SFX_PROMPTS and len(refs[cat]) < max_refs:
            a = Audio.load(c.resolved_path(manifest.parent), sample_rate=gen.sample_rate, channels=2)
            refs[cat].append(a.pad_or_trim(int(4.0 * gen.sample_rate)) if a.duration > 4.0 else a)
    return resemblance(gen, dict(refs), {k: v for k, v in SFX_PROMPTS.items() if k in refs}, seeds=seeds)


def sanity_test(gen, n: int) -> dict:
    import numpy as np

    from foley.data.synth.control import minimal_pairs

    prompts = sorted({p for pair in minimal_pairs() for p in (pair.low_prompt, pair.high_prompt)})
    prompts += [p for v in SFX_PROMPTS.values() for p in v]
    counts = {"nan": 0, "clipping": 0, "silent": 0, "dc": 0, "redrawn": 0}
    silent_items = []
    done = 0
    seed = 0
    while done < n:
        batch = prompts[(done % len(prompts)):(done % len(prompts)) + 8] or prompts[:8]
        batch = batch[: n - done]
        for a in gen.generate(batch, duration=4.0, seed=seed):
            x = a.samples
            counts["nan"] += int(not np.isfinite(x).all())
            counts["clipping"] += int((np.abs(x) >= 0.999).mean() > 1e-3)
            counts["silent"] += int(a.rms_db() < -60)
            counts["redrawn"] += int("redrawn" in a.meta)  # the generator's own silence guard fired
            if a.rms_db() < -60:
                silent_items.append({"prompt": a.meta["request"]["prompt"], "seed": a.meta["seed"],
                                     "rms_db": round(float(a.rms_db()), 1)})
            counts["dc"] += int(np.abs(x.mean(axis=1)).max() > 0.02)
        done += len(batch)
        seed += 1
    return {"generations": done, **counts, "silent_items": silent_items}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="starter")
    ap.add_argument("--real", type=Path, default=Path("corpora/real_sfx/balanced.jsonl"))
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--sanity", type=int, default=500)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--parts", default="presets,real,sanity", help="comma-separated subset to run")
    ap.add_argument("-o", "--out", type=Path, default=Path("runs/quality"))
    args = ap.parse_args()
    import torch

    import foley
    from foley.eval.resemblance import markdown
    from foley.fsutil import write_json_atomic, write_text_atomic

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    gen = foley.load(args.model)
    seeds = list(range(args.seeds))
    result = {"model": args.model, "weight_hash": gen.weight_hash()}
    parts = set(args.parts.split(","))
    md = []
    if "presets" in parts:
        result["presets"] = presets_test(gen, seeds, args.out)
        md.append(markdown(result["presets"], "The 22 thesis presets"))
        print(md[-1], flush=True)
    if "real" in parts and args.real.exists():
        result["real_sfx"] = sfx_test(gen, args.real, seeds)
        md.append(markdown(result["real_sfx"], "Real sound-effect prompts vs real game clips"))
        print(md[-1], flush=True)
    if "sanity" in parts:
        result["sanity"] = sanity_test(gen, args.sanity)
        s = result["sanity"]
        md.append(f"### Sanity\n\n{s['generations']} generations of 4 s: NaN {s['nan']}, clipping {s['clipping']}, "
                  f"silent (< -60 dBFS RMS) {s['silent']}, DC offset > 0.02: {s['dc']}; "
                  f"redrawn by the generator's silence guard: {s['redrawn']}; silent: {s['silent_items']}.")
    text = "\n\n".join(md)
    write_json_atomic(args.out / "quality.json", result)
    write_text_atomic(args.out / "quality.md", text + "\n")
    print(text)


if __name__ == "__main__":
    main()
