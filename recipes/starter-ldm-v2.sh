#!/usr/bin/env bash
# Reproduce models/starter v2 from models/starter v1, models/foley-clap and the captioned corpora.
#   bash recipes/starter-ldm-v2.sh   (about 30 min on 2 CPU cores; resumable: run it again after a kill)
# It writes models/starter: keep v1 with `git checkout models/starter && rm -rf models/starter/clap_text`.
# The v1 folder is taken from git history (commit 5b2f29b) so that a re-run starts from the same weights.
set -euo pipefail
cd "$(dirname "$0")/.."
source recipes/corpora.sh   # corpora and captioned manifests (built when missing): FOLEY, PY, CAPTIONED
[ -f corpora/real_sfx/captioned_train.jsonl ] || \
  grep -v '"package": "redeclipse-data"' corpora/real_sfx/captioned.jsonl > corpora/real_sfx/captioned_train.jsonl
if [ ! -f runs/starter-v1/models/starter/foley.json ]; then
  mkdir -p runs/starter-v1 && git archive 5b2f29b models/starter | tar -x -C runs/starter-v1
fi
V2="--data corpora/synth/captioned.jsonl --data corpora/music/captioned.jsonl --data corpora/real_sfx/captioned_train.jsonl"
SETS="${EXTRA:-} --set vae.adopt=runs/starter-v1/models/starter --set unet.init=runs/starter-v1/models/starter"
SETS="$SETS --set vocoder.folder=runs/starter-v1/models/starter/vocoder"
$FOLEY train ldm $V2 --recipe recipes/starter-ldm-v2.toml --run runs/starter-v2 --stages vae,latents,unet $SETS
$FOLEY train ldm $V2 --recipe recipes/starter-ldm-v2.toml --run runs/starter-v2 --stages export $SETS -o models/starter
