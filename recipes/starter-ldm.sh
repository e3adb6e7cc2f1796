#!/usr/bin/env bash
# Reproduce models/starter from nothing but Debian packages and this repository.
#   bash recipes/starter-ldm.sh            (about 2 hours on 2 CPU cores; resumable: run it again after a kill)
# Needs: make's .venv, `fluidsynth fluid-soundfont-gm`, and the game data packages listed in docs/data.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
PY=.venv/bin/python
FOLEY=.venv/bin/foley
C=corpora

[ -f $C/synth/manifest.jsonl ] || $FOLEY data synth -n 6000 -o $C/synth --seed 0
[ -f $C/music/manifest.jsonl ] || $FOLEY data music -n 800 -o $C/music --seed 0
[ -f $C/real_sfx/manifest.jsonl ] || $PY recipes/real_sfx.py -o $C/real_sfx

# the vocoder trains on one core while the VAE/UNet train on the other (1 thread each)
[ -f runs/vocoder/vocoder/config.json ] || \
  OMP_NUM_THREADS=1 $PY -m foley.vocoder.train --data $C/synth/manifest.jsonl --data $C/music/manifest.jsonl \
    --data $C/real_sfx/manifest.jsonl --out runs/vocoder --steps 5000 --num-threads 1 > runs/vocoder.log 2>&1 &

$FOLEY train ldm --data $C/synth/manifest.jsonl --data $C/music/manifest.jsonl --data $C/real_sfx/manifest.jsonl \
  --recipe recipes/starter-ldm.toml --run runs/starter --stages vae,latents,unet
wait
$FOLEY train ldm --data $C/synth/manifest.jsonl --recipe recipes/starter-ldm.toml --run runs/starter \
  --stages export -o models/starter
