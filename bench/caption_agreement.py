"""Agreement of the measured caption words (foley.data.captions) with the procedural corpus' ground truth.

    python bench/caption_agreement.py corpora/synth/captioned.jsonl     # measurements already in the file
    python bench/caption_agreement.py corpora/synth/manifest.jsonl -j 2  # measures every clip (~3 min)

For each word: how many clips it is given to, its precision (share of those whose ground-truth attributes
make the word true, foley.data.captions.TRUTH) and its recall (share of the clips the truth makes it true
for that get it). Words are recomputed from the ``measured`` field with the current thresholds, before the
veto that `foley data caption` applies to procedural clips, so the table is the words' own accuracy.
Prints a markdown table (the one in docs/data.md).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from foley.data.captions import (  # noqa: E402
    GROUPS,
    TRUTH,
    WORDS,
    attribute_words,
    has_synth_truth,
    measure_file,
    read_rows,
)


def _measure(args: tuple[str, float]) -> list[dict]:
    return measure_file(*args)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("manifest", type=Path, help="procedural manifest (captioned or not)")
    ap.add_argument("-j", "--jobs", type=int, default=1, help="processes measuring clips without `measured`")
    args = ap.parse_args()
    rows = [r for r in read_rows(args.manifest) if has_synth_truth(r.get("attributes"))]
    if not rows:
        print(f"{args.manifest}: no clips with procedural ground truth", file=sys.stderr)
        return 2
    todo = [i for i, r in enumerate(rows) if not r.get("measured")]
    if todo:
        base = args.manifest.resolve().parent
        tasks = [(str(base / rows[i]["path"]), float(rows[i]["duration"])) for i in todo]
        if args.jobs > 1:
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(args.jobs) as ex:
                measured = list(ex.map(_measure, tasks, chunksize=16))
        else:
            measured = [_measure(t) for t in tasks]
        for i, m in zip(todo, measured, strict=True):
            rows[i]["measured"] = m
    given, right, relevant, found = Counter(), Counter(), Counter(), Counter()
    for r in rows:
        words = set(attribute_words(r["measured"], float(r["duration"])).values())
        for word, rule in TRUTH.items():
            true = bool(rule(r["attributes"]))
            relevant[word] += true
            if word in words:
                given[word] += 1
                right[word] += true
                found[word] += true
    print(f"{len(rows)} procedural clips ({len(todo)} measured now)\n")
    print("| word | clips given | precision | recall | true when the ground truth says |")
    print("|---|---:|---:|---:|---|")
    for group in GROUPS:
        for word in WORDS[group]:
            if word not in TRUTH:
                print(f"| {word} | {given[word]} | - | - | (no rule: every procedural clip lasts "
                      f"{rows[0]['duration']:g} s) |")
                continue
            p = f"{right[word] / given[word]:.3f}" if given[word] else "-"
            rec = f"{found[word] / relevant[word]:.3f}" if relevant[word] else "-"
            print(f"| {word} | {given[word]} | {p} | {rec} | {RULES[word]} |")
    return 0


RULES = {  # TRUTH in words, for the table
    "short": "rate single or envelope hit", "sharp hit": "rate single or envelope hit",
    "deep": "register deep or low", "dark": "register deep or low, or brightness dark",
    "bright": "register high or brightness bright", "rising": "pitch rising", "falling": "pitch falling",
    "fading out": "envelope fade_out or decay", "getting louder": "envelope fade_in",
    "rapid": "rate rapid; or rate steady with tremolo or a texture of events (crackle, rain, granular, "
             "cricket, glitch)",
    "repeated": "rate slow or rapid; or as for rapid", "noisy": "texture noisy", "tonal": "texture tonal",
    "left to right": "motion left_to_right", "right to left": "motion right_to_left",
}

if __name__ == "__main__":
    sys.exit(main())
