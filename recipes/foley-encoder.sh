#!/usr/bin/env bash
# The foley encoder shipped in models/foley-encoder (tier 2 of `foley eval`): a ~1 M-parameter CNN on
# 16 kHz mono log-mel, trained on the three corpora's labels (synth recipe, music family, real-SFX
# category) with attribute heads. One CPU thread, about 18 minutes (1 of them decoding the clips to
# cached log-mels).
# Reproduce from the repository root after rendering the corpora (see docs / `foley data`):
#     bash recipes/foley-encoder.sh
set -euo pipefail
OUT=${OUT:-runs/encoder}
.venv/bin/python -m foley.eval.encoder.train \
  --data corpora/synth_v0/manifest.jsonl \
  --data corpora/music/manifest.jsonl \
  --data corpora/real_sfx/balanced.jsonl \
  --out "$OUT" --steps 1900 --batch-size 32 --lr 2e-3 --min-seconds 2 --max-seconds 4 \
  --valid-fraction 0.05 --max-clip-seconds 20 --channels 16,64,128,256,256 --embed-dim 128 \
  --ema-decay 0.995 --seed 0 --num-threads 1 --valid-every 250 --save-every 250 --max-minutes 23
# Ship it: the EMA weights and their config (the model card is models/foley-encoder/README.md).
mkdir -p models/foley-encoder
cp "$OUT/encoder/final/config.json" "$OUT/encoder/final/model.safetensors" models/foley-encoder/
sha256sum models/foley-encoder/model.safetensors
