#!/usr/bin/env bash
# Build models/starter-masked (masked-token transformer over starter-lm's codec tokens) from this repository.
#   bash recipes/starter-masked.sh        (8,000 steps: ~2-3 h on 2 CPU cores in 100-min sittings; run it again
#                                          after a kill or a budget stop and it trains on from its checkpoint)
# Needs: models/starter-lm/codec (shipped) and the corpora of recipes/corpora.sh (built when missing).
# The masked stage stops after [train] max_minutes = 100 per run (recipes/starter-masked.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
source recipes/corpora.sh   # corpora (built when missing), FOLEY, PY, DATA

# 1. tokenise the corpora with starter-lm's codec (reuses runs/lm/tokens when it fits), train the transformer
$FOLEY train masked $DATA --recipe recipes/starter-masked.toml --run runs/masked --stages tokens,masked
# 2. assemble the model folder (+ README.md model card with data and CPU-hours)
$FOLEY train masked $DATA --recipe recipes/starter-masked.toml --run runs/masked --stages export -o models/starter-masked
