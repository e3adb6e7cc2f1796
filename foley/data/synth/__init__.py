"""The procedural sound-design corpus: labelled stereo clips rendered from parametric recipes.

- :mod:`.recipes`: attribute vocabularies, the recipe registry and the render chain
- :mod:`.sources`: one sound source per recipe kind; :mod:`.dsp`: the signal primitives
- :mod:`.captions`: many phrasings of the same attributes
- :mod:`.presets`: the 22 thesis descriptions (seed 003, section 2.3.2) as named presets
- :mod:`.control`: minimal prompt pairs in held-out wording for the control test
- :mod:`.render`: clips, seeds, manifests and the parallel corpus writer (`foley data synth`)
"""

from __future__ import annotations

from .control import HELDOUT_PHRASES, TRAIN_PHRASES, MinimalPair, minimal_pairs
from .presets import PRESETS, Preset, render_preset
from .recipes import RECIPES, VOCABULARY, render_attributes, sample_attributes
from .render import LICENCE, SynthClip, clip_seed, render_clip, render_spec, write_corpus

__all__ = ["HELDOUT_PHRASES", "LICENCE", "PRESETS", "RECIPES", "TRAIN_PHRASES", "VOCABULARY", "MinimalPair",
           "Preset", "SynthClip", "clip_seed", "minimal_pairs", "render_attributes", "render_clip",
           "render_preset", "render_spec", "sample_attributes", "write_corpus"]
