#!/usr/bin/env bash
# Reproduce models/starter-wavegan (WaveGAN one-shots) from this repository's corpora.
#   bash recipes/starter-wavegan.sh     (about 35 min on 2 idle CPU cores: a few minutes picking one-shots and
#                                        encoding captions, ~30 min of GAN; resumable: run it again after a kill)
# Needs: the corpora of recipes/corpora.sh with measured captions (built when missing: that takes longer).
set -euo pipefail
cd "$(dirname "$0")/.."
source recipes/corpora.sh   # corpora (built when missing), FOLEY, PY, DATA, CAPTIONED

# 1. the one-shots (filter rule: foley/families/wavegan/data.py) and their caption vectors, then the GAN
$FOLEY train wavegan $CAPTIONED --recipe recipes/starter-wavegan.toml --run runs/wavegan --stages clips,gan
# 2. the model folder with its card (measured CPU time, data, licences)
$FOLEY train wavegan $CAPTIONED --recipe recipes/starter-wavegan.toml --run runs/wavegan --stages export \
  -o models/starter-wavegan
# Figures side by side with the diffusion starter (speed, diversity, FD on held-out one-shots):
#   .venv/bin/python bench/wavegan_vs_ldm.py --run runs/wavegan
