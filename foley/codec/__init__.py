"""Our neural audio codec: an EnCodec/SoundStream-style residual-VQ autoencoder.

The trained codec is an ordinary transformers ``EncodecModel`` folder (config.json + model.safetensors)
plus ``foley_codec.json`` (training metadata), so MusicGen-style composition works unchanged. Modules:

- :mod:`.config` — our small ``EncodecConfig`` from a recipe, and the bandwidth ladder;
- :mod:`.storage` — strict save/load of transformers models (mismatched keys are named);
- :mod:`.model` — :class:`~foley.codec.model.FoleyCodec` (encode/decode/chunked streaming decode) and
  :func:`~foley.codec.model.load_codec` (ours, an LM folder's codec, or a public EnCodec/DAC);
- :mod:`.tokens` — the versioned token file (``foley codec encode/decode``);
- :mod:`.losses` — reconstruction losses, multi-scale STFT discriminators, adversarial + feature matching;
- :mod:`.train` — ``foley train codec``;
- :mod:`.melcodec` / :mod:`.train_mel` — the mel-domain RVQ codec (log-mel codes decoded by our neural
  vocoder; ``[codec] kind = "mel"``), same API as ``FoleyCodec``, loaded by the same ``load_codec``.

Importing this package does not import torch.
"""
