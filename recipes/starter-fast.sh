#!/usr/bin/env bash
# Reproduce models/starter-fast (the starter distilled to 4 steps) from the shipped starter and its corpora.
#   bash recipes/starter-fast.sh   (on 2 idle CPU cores: ~15 min of teacher trajectories, ~30 min of training;
#                                   resumable: run it again after a kill)
set -euo pipefail
cd "$(dirname "$0")/.."
source recipes/corpora.sh   # corpora (built when missing), FOLEY, PY, DATA, CAPTIONED
$FOLEY train distill --from starter $DATA --recipe recipes/starter-fast.toml --run runs/distill-starter-fast \
  -o models/starter-fast "$@"
# Figures side by side with the starter (steps vs quality, RTF, control, held-out FD):
#   .venv/bin/python bench/distill.py --fast models/starter-fast
