"""The public foundation models (AudioLDM 1/2, MusicLDM, Stable Audio Open, MusicGen, EnCodec, DAC, CLAP)
behind the same :class:`~foley.generator.Generator` interface as our own families.

:mod:`.cards` holds their model cards (pure data, no torch); :mod:`.hub` finds, downloads and imports
their folders in the ``$FOLEY_HOME`` cache; the other modules wrap the diffusers/transformers classes.
"""

from ...family import Family

_P = "foley.families.public"
_CODEC = "a codec (use `foley codec` or .encode/.decode)"
FAMILIES = [
    Family("audioldm", f"{_P}.diffusion:AudioLDMGenerator", description="AudioLDM (diffusers)"),
    Family("audioldm2", f"{_P}.diffusion:AudioLDM2Generator", description="AudioLDM 2 (diffusers)"),
    Family("musicldm", f"{_P}.diffusion:MusicLDMGenerator", description="MusicLDM (diffusers)"),
    Family("stable-audio", f"{_P}.stable_audio:StableAudioGenerator", description="Stable Audio Open (diffusers)"),
    Family("musicgen", f"{_P}.musicgen:MusicGenGenerator", description="MusicGen (transformers)"),
    Family("musicgen-melody", f"{_P}.musicgen:MusicGenMelodyGenerator", description="MusicGen melody (transformers)"),
    Family("encodec", f"{_P}.codecs:EncodecCodec", not_generator=_CODEC),
    Family("dac", f"{_P}.codecs:DacCodec", not_generator=_CODEC),
    Family("clap", f"{_P}.clap:ClapEmbedder", not_generator="a text-audio embedding model (used by `foley eval`)"),
]
