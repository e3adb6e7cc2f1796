"""Our neural audio codec: an EnCodec/SoundStream-style residual-VQ autoencoder.

The trained codec is an ordinary transformers ``EncodecModel`` folder (config.json + model.safetensors)
plus ``foley_codec.json`` (training metadata), so MusicGen-style composition works unchanged. Modules:

- :mod:`.config` — our small ``EncodecConfig`` from a recipe, and the bandwidth ladder;
- :mod:`.storage` — strict save/load of transformers models (mismatched keys are named);
- :mod:`.protocol` — the :class:`Codec` protocol every codec follows (ours and the public wrappers);
- :mod:`.loaders` — the loader table (``foley_codec.json`` ``"kind"`` -> loader) and :func:`load_folder`;
- :mod:`.model` — :class:`~foley.codec.model.FoleyCodec` (encode/decode/chunked streaming decode);
- :mod:`.tokens` — the versioned token file (``foley codec encode/decode``);
- :mod:`.losses` — reconstruction losses, multi-scale STFT discriminators, adversarial + feature matching;
- :mod:`.train` — ``foley train codec``;
- :mod:`.melcodec` / :mod:`.train_mel` — the mel-domain RVQ codec (log-mel codes decoded by our neural
  vocoder; ``[codec] kind = "mel"``), same API as ``FoleyCodec``, loaded through the same table.

This package imports nothing above it (an LM folder's codec or a public codec is resolved by the caller:
``foley.cli.codec.load_codec``). Importing it does not import torch.
"""

from .loaders import LOADERS, load_folder, register_loader
from .protocol import CODEC_META, Codec, codec_kind

__all__ = ["CODEC_META", "LOADERS", "Codec", "codec_kind", "load_folder", "register_loader"]
