# Sourced by the starter recipes (recipes/starter-*.sh): builds the three training corpora when missing and
# sets FOLEY, PY, DATA (the --data arguments of every starter model) and CAPTIONED (the same three corpora
# with measured attribute words in their captions, `foley data caption`; for the CLAP model and new
# recipes). Run from the repository root.
export HF_HUB_OFFLINE=1
PY=.venv/bin/python
FOLEY=.venv/bin/foley
C=corpora
DATA="--data $C/synth/manifest.jsonl --data $C/music/manifest.jsonl --data $C/real_sfx/balanced.jsonl"
CAPTIONED="--data $C/synth/captioned.jsonl --data $C/music/captioned.jsonl --data $C/real_sfx/captioned.jsonl"

[ -f $C/synth/manifest.jsonl ] || $FOLEY data synth -n 6000 -o $C/synth --seed 0 --format wav
[ -f $C/music/manifest.jsonl ] || $FOLEY data music -n 800 -o $C/music --seed 0
[ -f $C/real_sfx/manifest.jsonl ] || $PY recipes/real_sfx.py -o $C/real_sfx
[ -f $C/real_sfx/balanced.jsonl ] || \
  $PY recipes/balance_manifest.py $C/real_sfx/manifest.jsonl -o $C/real_sfx/balanced.jsonl --cap voice=600
# measured captions: ~4 + 2 + 6 min on two cores
[ -f $C/synth/captioned.jsonl ] || $FOLEY data caption $C/synth/manifest.jsonl -o $C/synth/captioned.jsonl -j 2 -q
[ -f $C/music/captioned.jsonl ] || $FOLEY data caption $C/music/manifest.jsonl -o $C/music/captioned.jsonl -j 2 -q
[ -f $C/real_sfx/captioned.jsonl ] || \
  $FOLEY data caption $C/real_sfx/balanced.jsonl -o $C/real_sfx/captioned.jsonl -j 2 -q
