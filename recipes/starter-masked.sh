#!/usr/bin/env bash
# Build models/starter-masked (masked-token transformer over starter-lm's codec tokens) from this repository.
#   bash recipes/starter-masked.sh        (8,000 steps, then on to 11,500: ~4.5 CPU-hours in 100-min sittings; run
#                                          it again after a kill or a budget stop and it trains on from its checkpoint)
# Needs: models/starter-lm/codec (shipped) and the corpora of recipes/corpora.sh (built when missing).
# The masked stage stops after [train] max_minutes = 100 per run (recipes/starter-masked.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
source recipes/corpora.sh   # corpora (built when missing), FOLEY, PY, DATA

# 1. tokenise the corpora with starter-lm's codec (reuses runs/lm/tokens when it fits), train the transformer
$FOLEY train masked $DATA --recipe recipes/starter-masked.toml --run runs/masked --stages tokens,masked
if [ ! -f runs/masked/masked/final/transformer/config.json ]; then
  echo "the 8,000-step stage stopped at its time budget: run this script again to train on"; exit 0
fi
# 2. train on to 11,500 steps from the 8,000-step checkpoint in its own run folder (the cosine schedule stretched to
#    11,500: a warm restart at lr 1.7e-4 decaying to 6e-5), as the shipped weights were (2026-12-08)
mkdir -p runs/masked-c/masked/ckpt
[ -e runs/masked-c/tokens ] || cp -r runs/masked/tokens runs/masked-c/
[ -e runs/masked-c/masked/ckpt/last.pt ] || cp runs/masked/masked/ckpt/last.pt runs/masked-c/masked/ckpt/
[ -e runs/masked-c/masked/log.jsonl ] || cp runs/masked/masked/log.jsonl runs/masked-c/masked/
$FOLEY train masked $DATA --recipe recipes/starter-masked.toml --run runs/masked-c --stages tokens,masked \
    --set masked.steps=11500
if [ ! -f runs/masked-c/masked/final/transformer/config.json ]; then
  echo "the 11,500-step stage stopped at its time budget: run this script again to train on"; exit 0
fi
# 3. assemble the model folder (+ README.md model card with data and CPU-hours)
$FOLEY train masked $DATA --recipe recipes/starter-masked.toml --run runs/masked-c --stages export \
    --set masked.steps=11500 -o models/starter-masked
