#!/usr/bin/env bash
# Build models/starter-masked (masked-token transformer over starter-lm's codec tokens) from this repository.
#   bash recipes/starter-masked.sh        (about 40-45 min on 2 CPU cores; resumable: run it again after a kill)
# Needs: models/starter-lm/codec (shipped) and the corpora of recipes/corpora.sh (built when missing).
# The masked stage stops after [train] max_minutes = 30 at the latest (recipes/starter-masked.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
source recipes/corpora.sh   # corpora (built when missing), FOLEY, PY, DATA

# 1. tokenise the corpora with starter-lm's codec (reuses runs/lm/tokens when it fits), train the transformer
$FOLEY train masked $DATA --recipe recipes/starter-masked.toml --run runs/masked --stages tokens,masked
# 2. assemble the model folder (+ README.md model card with data and CPU-hours)
$FOLEY train masked $DATA --recipe recipes/starter-masked.toml --run runs/masked --stages export -o models/starter-masked
