"""Format versions of foley's model folders: one constant per folder kind, and the one check that reads them.

Every folder's own JSON carries its version: ``foley.json`` of a latent-diffusion (``ldm``) or token-LM (``lm``)
model, ``foley_codec.json`` of a codec, ``config.json`` of the evaluation encoder (key ``version``: its
``format`` key names the kind, ``"foley-encoder"``). A missing version is 1 (folders written before versions
existed). A version newer than this foley reads is refused in one line that says to upgrade foley; raise a
constant here when a folder kind changes in a way older code cannot read. Importing this module is free.
"""

from __future__ import annotations

from pathlib import Path

from .errors import ModelError

FORMATS = {
    "ldm": 1,      # foley.json of a latent-diffusion folder (beside model_index.json)
    "lm": 1,       # foley.json of a token-LM folder
    "masked": 1,   # foley.json of a masked-token folder (beside transformer/ and codec/)
    "wavegan": 1,  # foley.json of a WaveGAN folder (beside generator.safetensors)
    "codec": 1,    # foley_codec.json of a codec folder (waveform EnCodec layout or mel codec)
    "encoder": 1,  # config.json of a foley-encoder folder (key "version")
}


def check_format(where: str | Path, kind: str, data: dict, key: str = "format") -> int:
    """The folder's version (missing: 1); a version newer than :data:`FORMATS` ``[kind]`` is a one-line ModelError.

    ``where`` names the folder (or file) in the message."""
    known = FORMATS[kind]
    version = data.get(key, 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ModelError(f"{where}: invalid {key} version {version!r} (expected a whole number from 1 to {known})")
    if version > known:
        raise ModelError(f"{where}: written by a newer foley (format {version}, this foley reads up to {known}): "
                         f"upgrade foley")
    return version
