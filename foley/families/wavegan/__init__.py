"""The waveform GAN family (WaveGAN): 1 s one-shots straight as waveforms, one forward pass for a whole batch.

- :mod:`.model` — the generator and discriminator networks (transposed / strided 1-D convolutions, phase shuffle,
  text vector by projection and FiLM), folders;
- :mod:`.pipeline` — :class:`~foley.families.wavegan.pipeline.WaveGANGenerator` (generate, latent interpolation);
- :mod:`.data` — the one-shot filter: which clips of the corpora are one-shots, and their onset-aligned second;
- :mod:`.train` — ``foley train wavegan``: stages ``clips`` (filter, decode, text vectors), ``gan``, ``export``.
"""

from ...family import Family

FAMILY = Family(
    name="wavegan", generator="foley.families.wavegan.pipeline:WaveGANGenerator",
    train="foley.families.wavegan.train:train_wavegan", stages=("clips", "gan", "export"),
    recipe="recipes/starter-wavegan.toml",
    description="waveform GAN for 1 s one-shots (WaveGAN); batches of 100 in one pass; latent interpolation")
