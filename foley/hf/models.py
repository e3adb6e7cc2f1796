"""transformers config and model classes over our own folders, so ``AutoConfig``/``AutoModel`` load them.

Each model class builds foley's own network from its config and takes over its sub-modules, so the parameter
names are those already in the folders' ``model.safetensors`` (no weights are rewritten); ``.net`` is that
network (:class:`~foley.codec.melcodec.MelCodecNet`, :class:`~foley.eval.encoder.model.FoleyEncoder`) with the
loaded weights. foley itself loads these folders with its strict loaders (a mismatched checkpoint names its keys);
these classes are the standard way in for other code. Registered by :func:`foley.hf.register_transformers`.
"""

from __future__ import annotations

from dataclasses import field

import torch
from torch import nn
from transformers import PreTrainedConfig, PreTrainedModel

TEXT_PROJECTION = "foley_text_projection"
MEL_CODEC = "foley_mel_codec"
ENCODER = "foley_encoder"


class _Model(PreTrainedModel):
    """Weights come from the folder, or stay as foley's own modules initialised them."""

    base_model_prefix = "foley"
    main_input_name = "inputs"

    def _init_weights(self, module):
        pass

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        # our folders store float16 to stay small; transformers 5 would then compute in float16 ("auto"), while
        # foley's own loaders compute in float32: same numbers either way in, unless the caller asks otherwise
        if kwargs.get("dtype") is None and kwargs.get("torch_dtype") is None:
            kwargs["dtype"] = torch.float32
        return super().from_pretrained(*args, **kwargs)


# --- the token LM's text projection (MusicGen's enc_to_dec_proj) ------------------------------------------------
class TextProjectionConfig(PreTrainedConfig):
    model_type = TEXT_PROJECTION

    in_features: int = 384
    out_features: int = 256


class TextProjectionModel(_Model):
    """``Linear(in_features -> out_features)`` over text-encoder states (parameters ``weight`` and ``bias``)."""

    config_class = TextProjectionConfig

    def __init__(self, config: TextProjectionConfig):
        super().__init__(config)
        linear = nn.Linear(int(config.in_features), int(config.out_features))
        self.weight, self.bias = linear.weight, linear.bias
        self.post_init()

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(inputs, self.weight, self.bias)


# --- the mel codec (log-mel RVQ autoencoder; its vocoder/ sub-folder is a diffusers model) ------------------------
class MelCodecConfig(PreTrainedConfig):
    model_type = MEL_CODEC

    stride: int = 2
    hidden: int = 128
    latent_dim: int = 64
    blocks: int = 3
    kernel_size: int = 3
    codebook_size: int = 1024
    n_q: int = 4
    codebook_decay: float = 0.99
    kmeans_iters: int = 10
    dead_code_threshold: float = 0.05
    mean: float = 0.0
    std: float = 1.0
    lookahead_frames: int = 6
    mel: dict = field(default_factory=dict)

    def net_settings(self) -> dict:
        from ..codec.melcodec import NET_DEFAULTS

        return {"mel": dict(self.mel) or None, **{k: getattr(self, k) for k in NET_DEFAULTS}}


class MelCodecModel(_Model):
    """The mel codec's network: ``encode(normalised log-mel [B, M, N], n_q)`` -> codes, ``decode(codes)`` -> log-mel."""

    config_class = MelCodecConfig

    def __init__(self, config: MelCodecConfig):
        super().__init__(config)
        from ..codec.melcodec import MelCodecNet

        net = MelCodecNet(**config.net_settings())
        self.encoder, self.decoder, self.rvq = net.encoder, net.decoder, net.rvq
        self._net = [net]  # shares the modules above; a list, so it is not a second copy in the state dict
        self.post_init()

    @property
    def net(self):
        return self._net[0]

    def encode(self, mel: torch.Tensor, n_q: int | None = None) -> torch.Tensor:
        return self.net.codes(mel, n_q or int(self.config.n_q))

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.net.mel(codes)

    def forward(self, inputs: torch.Tensor):
        return self.net(inputs)


# --- the evaluation encoder (models/foley-encoder) --------------------------------------------------------------
class FoleyEncoderConfig(PreTrainedConfig):
    model_type = ENCODER

    format: str = "foley-encoder"
    version: int = 1
    labels: list = field(default_factory=list)
    aux: dict = field(default_factory=dict)
    mel: dict = field(default_factory=dict)
    channels: list = field(default_factory=lambda: [16, 64, 128, 256, 256])
    embed_dim: int = 128
    dropout: float = 0.2
    info: dict = field(default_factory=dict)

    def encoder_config(self):
        from ..eval.encoder.model import EncoderConfig

        keys = ("format", "version", "labels", "aux", "mel", "channels", "embed_dim", "dropout", "info")
        return EncoderConfig.from_dict({k: getattr(self, k) for k in keys}, f"{ENCODER} config")


class FoleyEncoderModel(_Model):
    """``forward(log-mel [B, n_mels, T])`` -> ``{"embedding": [B, D], "main": logits, <aux head>: logits}``."""

    config_class = FoleyEncoderConfig

    def __init__(self, config: FoleyEncoderConfig):
        super().__init__(config)
        from ..eval.encoder.model import FoleyEncoder

        net = FoleyEncoder(config.encoder_config())
        self.norm, self.blocks, self.embed, self.dropout, self.heads = (net.norm, net.blocks, net.embed, net.dropout,
                                                                        net.heads)
        self._net = [net]
        self.post_init()

    @property
    def net(self):
        return self._net[0]

    def forward(self, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.net(inputs)


def _register() -> None:
    from . import register_transformers

    register_transformers()


_register()  # importing this module registers our model types with the Auto classes
