# Sourced by the starter recipes (recipes/starter-*.sh): builds the three training corpora when missing and
# sets FOLEY, PY and DATA (the --data arguments of every starter model). Run from the repository root.
export HF_HUB_OFFLINE=1
PY=.venv/bin/python
FOLEY=.venv/bin/foley
C=corpora
DATA="--data $C/synth/manifest.jsonl --data $C/music/manifest.jsonl --data $C/real_sfx/balanced.jsonl"

[ -f $C/synth/manifest.jsonl ] || $FOLEY data synth -n 6000 -o $C/synth --seed 0 --format wav
[ -f $C/music/manifest.jsonl ] || $FOLEY data music -n 800 -o $C/music --seed 0
[ -f $C/real_sfx/manifest.jsonl ] || $PY recipes/real_sfx.py -o $C/real_sfx
[ -f $C/real_sfx/balanced.jsonl ] || \
  $PY recipes/balance_manifest.py $C/real_sfx/manifest.jsonl -o $C/real_sfx/balanced.jsonl --cap voice=600
