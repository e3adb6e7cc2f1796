"""The public foundation models (AudioLDM 1/2, MusicLDM, Stable Audio Open, MusicGen, EnCodec, DAC, CLAP)
behind the same :class:`~foley.generator.Generator` interface as our own families.

:mod:`.cards` holds their model cards (pure data, no torch); :mod:`.hub` finds, downloads and imports
their folders in the ``$FOLEY_HOME`` cache; the other modules wrap the diffusers/transformers classes.
"""
