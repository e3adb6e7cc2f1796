#!/usr/bin/env bash
# Reproduce models/starter-lm (mel codec + token LM) from this repository's corpora.
#   bash recipes/starter-lm.sh            (about 1 h 45 min on 2 CPU cores; resumable: run it again after a kill)
# Needs: the corpora of recipes/starter-ldm.sh (it builds them when missing) and models/starter/vocoder (the
# codec decodes its log-mels with the starter's neural vocoder, copied into the codec folder).
set -euo pipefail
cd "$(dirname "$0")/.."
source recipes/corpora.sh   # corpora (built when missing), FOLEY, PY, DATA

# 1. the mel-domain RVQ codec (about 20 min at 1 thread) -> runs/codec-mel/codec/final
$FOLEY train codec $DATA --recipe recipes/starter-codec-mel.toml --run runs/codec-mel
# 2. tokenise the corpora with it, train the decoder (about 80 min at 2 threads), assemble the model folder
$FOLEY train lm $DATA --recipe recipes/starter-lm.toml --run runs/lm --stages tokens,lm
$FOLEY train lm $DATA --recipe recipes/starter-lm.toml --run runs/lm --stages export -o models/starter-lm
