#!/usr/bin/env bash
# Reproduce models/starter (v1) from nothing but Debian packages, this repository and its git history.
#   bash recipes/starter-ldm.sh            (about 1 h 15 min on 2 CPU cores after v0; resumable: run it again after a kill)
# Needs: make's .venv, `fluidsynth fluid-soundfont-gm`, and the game data packages listed in docs/data.md.
# v1 starts from v0 (recipes/starter-ldm-v0.toml, about 2 hours), taken from git history: commit 333f724.
set -euo pipefail
cd "$(dirname "$0")/.."
source recipes/corpora.sh   # corpora (built when missing), FOLEY, PY, DATA

# v0: the shipped weights of commit 333f724 (to retrain it instead: git show 333f724:recipes/starter-ldm.sh)
if [ ! -f runs/starter-v0/models/starter/foley.json ]; then
  mkdir -p runs/starter-v0 && git archive 333f724 models/starter | tar -x -C runs/starter-v0
fi

$FOLEY train ldm $DATA --recipe recipes/starter-ldm.toml --run runs/starter-v1 --stages vae,latents,unet
$FOLEY train ldm $DATA --recipe recipes/starter-ldm.toml --run runs/starter-v1 --stages export -o models/starter
