#!/usr/bin/env bash
# Reproduce models/foley-clap (our contrastive audio-text model) from Debian packages and this repository.
#   bash recipes/foley-clap.sh        (about 1 h on 2 CPU cores; resumable: run it again after a kill)
# Needs: make's .venv, `fluidsynth fluid-soundfont-gm` and the game data packages listed in docs/data.md.
# redeclipse-data is left out of training: bench/control_curves.py takes its held-out targets from it.
set -euo pipefail
cd "$(dirname "$0")/.."
source recipes/corpora.sh   # corpora and their captioned manifests (built when missing): FOLEY, PY, CAPTIONED
[ -f corpora/real_sfx/captioned_train.jsonl ] || \
  grep -v '"package": "redeclipse-data"' corpora/real_sfx/captioned.jsonl > corpora/real_sfx/captioned_train.jsonl
$FOLEY train clap --data corpora/synth/captioned.jsonl --data corpora/music/captioned.jsonl \
  --data corpora/real_sfx/captioned_train.jsonl --recipe recipes/foley-clap.toml --run runs/clap \
  -o models/foley-clap
sha256sum models/foley-clap/model.safetensors
