#!/usr/bin/env bash
# Fine-tuning measured (issue 17): build the demonstration set (General-MIDI sound-effect programs the starter's
# music corpus never rendered: 16 descriptions, ~1 h of 4 s clips) and run bench/finetune.py on it: LoRA rank 8 and
# full fine-tuning of the starter, each within BUDGET minutes; held-out FD and foley-clap top-1 for base / LoRA /
# full, forgetting (FD on the synth corpus's held-out clips, foley eval control), adapter size, time to first gain.
#
#   bash recipes/finetune-demo.sh                    # the measurement (2 idle cores: about 2 h, see docs/finetune.md)
#   MINUTES=2 BUDGET=1 NGEN=8 CONTROL=--no-control bash recipes/finetune-demo.sh   # a smoke run (~5 min)
#
# Needs: fluidsynth + fluid-soundfont-gm (make sysdeps), the models extra, models/starter and models/foley-clap,
# and for the forgetting part the synth corpus (recipes/corpora.sh; skipped when corpora/synth is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
BASE=${BASE:-starter}
MINUTES=${MINUTES:-60}          # size of the demonstration set
BUDGET=${BUDGET:-20}            # minutes per fine-tune
NGEN=${NGEN:-48}                # general held-out clips generated per model (forgetting)
CONTROL=${CONTROL:-}            # --no-control to skip foley eval control
DATA=${DATA:-corpora/gm-sfx}
OUT=${OUT:-runs/finetune-bench-$BASE}
export HF_HUB_OFFLINE=1

"$PY" bench/finetune.py build -o "$DATA" --minutes "$MINUTES"
GENERAL=()
if [ -f corpora/synth/manifest.jsonl ]; then GENERAL=(--general corpora/synth/manifest.jsonl); fi
"$PY" bench/finetune.py run --data "$DATA" --base "$BASE" --budget "$BUDGET" --n-general "$NGEN" \
    "${GENERAL[@]}" $CONTROL --speed -o "$OUT"
echo "results: $OUT/results.md, $OUT/results.json"
