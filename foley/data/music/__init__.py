"""Music renders: short captioned phrases played by General MIDI instruments through FluidSynth.

`plan_clip` decides what a clip plays (the ground truth), `phrase_notes` turns that into notes,
`render_spec` renders it with FluidSynth, `describe` captions it, and `render_corpus` does all of it for
N clips over all cores and writes the manifest.
"""

from .captions import describe, key_name, tempo_class
from .corpus import MANIFEST_NAME, clip_attributes, render_corpus
from .instruments import DRUM_STYLES, INSTRUMENTS, INSTRUMENTS_BY_KEY, Instrument
from .phrase import ClipSpec, Note, phrase_notes, plan_clip, plan_clips, register_window
from .render import find_fluidsynth, find_soundfont, render_spec, write_midi

__all__ = ["DRUM_STYLES", "INSTRUMENTS", "INSTRUMENTS_BY_KEY", "MANIFEST_NAME", "ClipSpec", "Instrument",
           "Note", "clip_attributes", "describe", "find_fluidsynth", "find_soundfont", "key_name",
           "phrase_notes", "plan_clip", "plan_clips", "register_window", "render_corpus", "render_spec",
           "tempo_class", "write_midi"]
