"""How well foley-clap ties sounds to words, on clips it never trained on.

    python bench/clap_eval.py [--model models/foley-clap] [--presets 10] [-o runs/clap_eval]

1. Held-out retrieval: the validation split of the training manifests (the ClipDataset rule, 5 %), per corpus:
   text->audio and audio->text R@1 / R@10, each clip against its own first description.
2. The thesis's 22 descriptions: fresh renders of every preset (a seed the training never used), top-1 among
   the 22 texts (goal >= 90 %).
3. Real SFX categories, top-1 among the 15 category phrases ("a sound of footsteps", ...): the held-out real clips,
   and redeclipse-data (a package left out of training entirely).
Prints markdown tables and writes ``<out>/clap_eval.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TRAIN = ["corpora/synth/captioned.jsonl", "corpora/music/captioned.jsonl", "corpora/real_sfx/captioned_train.jsonl"]
CATEGORY_TEXT = {
    "weapon/sword": "a weapon: a sword clash or a gunshot", "other": "a miscellaneous sound effect",
    "voice": "a person speaking or shouting", "bird/animal": "an animal or a bird calling", "music": "music",
    "ui": "a user interface click or beep", "ambience": "a background ambience", "footsteps": "footsteps",
    "engine/vehicle": "an engine or a vehicle", "impact": "an impact, something hitting", "explosion": "an explosion",
    "water": "water splashing or flowing", "magic": "a magical spell sound", "fire": "fire burning and crackling",
    "door": "a door opening or closing"}


def recall(sim, k):
    import numpy as np

    own = np.diag(sim)[:, None]
    return float(((sim > own).sum(1) < k).mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--presets", type=int, default=10, help="fresh renders per thesis description")
    ap.add_argument("--max-clips", type=int, default=400, help="held-out clips per corpus (first N)")
    ap.add_argument("-o", "--out", type=Path, default=Path("runs/clap_eval"))
    args = ap.parse_args()

    import numpy as np

    from foley.audio import Audio
    from foley.clap import load_clap
    from foley.clap.train import captions_of
    from foley.data.dataset import select_split
    from foley.data.manifest import read_manifest
    from foley.data.synth.presets import PRESETS, render_preset

    clap = load_clap(args.model)
    t0 = time.time()
    report: dict = {"model": clap.name, "retrieval": {}, "categories": {}}
    clips = [(Path(m).parent.name, c) for m in TRAIN for c in read_manifest(m)]
    valid = {id(c) for c in select_split([c for _, c in clips], "valid", 0.05)}
    held: dict[str, list] = {}
    for corpus, c in clips:
        if id(c) in valid and captions_of(c):
            held.setdefault(corpus, []).append(c)
    real_held = []
    for corpus, cs in held.items():
        cs = cs[: args.max_clips]
        audios = [Audio.load(c.resolved_path()) for c in cs]
        emb = clap.embed(audios)
        txt = clap.embed_text([captions_of(c)[0] for c in cs])
        sim = emb @ txt.T
        report["retrieval"][corpus] = {"n": len(cs), "t2a_r1": recall(sim.T, 1), "t2a_r10": recall(sim.T, 10),
                                       "a2t_r1": recall(sim, 1), "a2t_r10": recall(sim, 10)}
        if corpus == "real_sfx":
            real_held = list(zip(cs, emb, strict=True))
    # the thesis's 22 descriptions
    rng = np.random.default_rng([2026, 12, 6])
    slugs = list(PRESETS)
    audios, labels = [], []
    for k, slug in enumerate(slugs):
        for _ in range(args.presets):
            y, _a = render_preset(slug, rng, 4.0, 16000)
            audios.append(Audio(y, 16000))
            labels.append(k)
    sim = clap.embed(audios) @ clap.embed_text([PRESETS[s].text for s in slugs]).T
    report["presets_top1"] = float((sim.argmax(1) == np.array(labels)).mean())
    report["presets_n"] = len(labels)
    # real SFX categories
    cats = list(CATEGORY_TEXT)
    ctext = clap.embed_text([CATEGORY_TEXT[c] for c in cats])

    def cat_top1(items):
        hits = [cats[int(np.argmax(e @ ctext.T))] == c.category for c, e in items if c.category in CATEGORY_TEXT]
        return {"n": len(hits), "top1": float(np.mean(hits)) if hits else None}

    report["categories"]["held-out real_sfx"] = cat_top1(real_held)
    rd = [c for c in read_manifest("corpora/real_sfx/captioned.jsonl") if getattr(c, "package", None) ==
          "redeclipse-data"]
    if rd:
        emb = clap.embed([Audio.load(c.resolved_path()) for c in rd])
        report["categories"]["redeclipse-data (never trained)"] = cat_top1(list(zip(rd, emb, strict=True)))
        txt = clap.embed_text([captions_of(c)[0] for c in rd])
        s = emb @ txt.T
        report["retrieval"]["redeclipse-data (never trained)"] = {
            "n": len(rd), "t2a_r1": recall(s.T, 1), "t2a_r10": recall(s.T, 10), "a2t_r1": recall(s, 1),
            "a2t_r10": recall(s, 10)}
    report["seconds"] = round(time.time() - t0, 1)
    print(f"\n{clap.name} — `python bench/clap_eval.py`, {platform.node()}, {time.strftime('%Y-%m-%d')}\n")
    print("| held-out set | clips | text→audio R@1 | R@10 | audio→text R@1 | R@10 |")
    print("|---|---|---|---|---|---|")
    for k, v in report["retrieval"].items():
        print(f"| {k} | {v['n']} | {v['t2a_r1']:.1%} | {v['t2a_r10']:.1%} | {v['a2t_r1']:.1%} | {v['a2t_r10']:.1%} |")
    print(f"\nthesis descriptions, top-1 among 22 ({report['presets_n']} fresh renders): "
          f"**{report['presets_top1']:.1%}**\n")
    print("| real SFX category top-1 (15 categories) | clips | top-1 |")
    print("|---|---|---|")
    for k, v in report["categories"].items():
        print(f"| {k} | {v['n']} | {v['top1']:.1%} |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "clap_eval.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
