#!/usr/bin/env bash
# Reproduce models/starter/control (the starter's control adapter) from the shipped starter and its corpora.
#   bash recipes/starter-control.sh   (resumable: run it again after a kill; minutes in models/starter/control/control.json)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
FOLEY=".venv/bin/foley"
# the starter's corpora (recipes/corpora.sh builds them); their captions are not needed: the curves are measured
[ -f corpora/synth/manifest.jsonl ] || $FOLEY data synth -n 6000 -o corpora/synth --seed 0 --format wav
[ -f corpora/music/manifest.jsonl ] || $FOLEY data music -n 800 -o corpora/music --seed 0
[ -f corpora/real_sfx/balanced.jsonl ] || { echo "corpora/real_sfx: build it with recipes/corpora.sh first" >&2; exit 1; }
$FOLEY train control --from starter --data corpora/synth/manifest.jsonl --data corpora/music/manifest.jsonl \
  --data corpora/real_sfx/balanced.jsonl --recipe recipes/starter-control.toml --run runs/control-starter \
  -o models/starter/control "$@"
# Figures with and without the adapter: .venv/bin/python bench/control_curves.py
