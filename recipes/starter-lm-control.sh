#!/usr/bin/env bash
# Reproduce models/starter-lm/control (starter-lm's control adapter: curves + melody) from the shipped starter-lm and
# its corpora.
#   bash recipes/starter-lm-control.sh   (resumable: run it again after a kill; minutes in models/starter-lm/control/control.json)
# The shipped one: bash recipes/starter-lm-control.sh --minutes 35 (1 thread, the machine shared with another training).
set -euo pipefail
cd "$(dirname "$0")/.."
FOLEY=".venv/bin/foley"
# the starter's corpora (recipes/corpora.sh builds them); their captions are used, the curves and chroma are measured
[ -f corpora/synth/manifest.jsonl ] || $FOLEY data synth -n 6000 -o corpora/synth --seed 0 --format wav
[ -f corpora/music/manifest.jsonl ] || $FOLEY data music -n 800 -o corpora/music --seed 0
[ -f corpora/real_sfx/balanced.jsonl ] || { echo "corpora/real_sfx: build it with recipes/corpora.sh first" >&2; exit 1; }
HF_HUB_OFFLINE=1 $FOLEY train control --from starter-lm --data corpora/synth/manifest.jsonl \
  --data corpora/music/manifest.jsonl --data corpora/real_sfx/balanced.jsonl --recipe recipes/starter-lm-control.toml \
  --run runs/control-starter-lm -o models/starter-lm/control --threads 1 "$@"
# Figures with and without the adapter: .venv/bin/python bench/control_curves.py --model starter-lm --configs none adapter
# and .venv/bin/python bench/lm_melody.py
