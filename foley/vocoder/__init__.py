"""Vocoders: log-mel spectrogram -> waveform.

Two kinds share one interface (:class:`Vocoder`): the always-available fast Griffin-Lim
(``"griffin-lim"``, no weights) and trained neural vocoders saved as diffusers-style folders
(config.json + diffusion_pytorch_model.safetensors). Stereo is vocoded per channel, channels as
batch (:func:`vocode` does the reshaping). Torch is imported only when a vocoder is loaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ..errors import ModelError
from ..features import MelConfig

if TYPE_CHECKING:
    import torch

GRIFFIN_LIM = "griffin-lim"
# config.json "_class_name" -> (module, class) of the neural vocoder classes we can load
NEURAL_CLASSES = {"NeuralVocoder": ("foley.vocoder.neural", "NeuralVocoder")}


@runtime_checkable
class Vocoder(Protocol):
    """``vocoder(log_mel [B, n_mels, N]) -> wave [B, N * hop]`` at ``mel_config.sample_rate``."""

    mel_config: MelConfig

    def __call__(self, log_mel: torch.Tensor) -> torch.Tensor: ...


def load_vocoder(path_or_name: str | Path = GRIFFIN_LIM, *, mel_config: MelConfig | None = None,
                 n_iter: int = 32) -> Vocoder:
    """Load ``"griffin-lim"`` (with ``mel_config`` and ``n_iter``) or a saved neural vocoder folder.

    A neural vocoder is returned in eval mode with gradients off; its mel settings come from its
    config.json, and a ``mel_config`` that disagrees with them raises :class:`ModelError`.
    """
    if str(path_or_name) == GRIFFIN_LIM:
        from .griffinlim import GriffinLim

        return GriffinLim(mel_config, n_iter=n_iter)
    folder = Path(path_or_name)
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise ModelError(f"vocoder {path_or_name!s}: not '{GRIFFIN_LIM}' and no folder with a config.json; "
                         "pass a folder written by save_pretrained")
    try:
        class_name = json.loads(config_file.read_text(encoding="utf-8")).get("_class_name")
    except (OSError, json.JSONDecodeError) as e:
        raise ModelError(f"{config_file}: unreadable vocoder config ({e})") from e
    if class_name not in NEURAL_CLASSES:
        raise ModelError(f"{config_file}: unknown vocoder class {class_name!r}; "
                         f"known: {', '.join(sorted(NEURAL_CLASSES))}")
    import importlib

    module, name = NEURAL_CLASSES[class_name]
    model = getattr(importlib.import_module(module), name).from_pretrained(folder)
    if mel_config is not None and mel_config != model.mel_config:
        raise ModelError(f"{folder}: vocoder mel settings {model.mel_config} differ from the "
                         f"model's {mel_config}")
    model.requires_grad_(False)
    return model.eval()


def vocode(vocoder: Vocoder, log_mel: torch.Tensor) -> torch.Tensor:
    """Vocode log-mel [..., n_mels, N] (e.g. [B, C, n_mels, N] for stereo) -> wave [..., N * hop].

    Leading dimensions are flattened into one batch, so the channels of a pair are vocoded together.
    """
    import torch

    lead = log_mel.shape[:-2]
    with torch.no_grad():
        wave = vocoder(log_mel.reshape(-1, *log_mel.shape[-2:]))
    return wave.reshape(*lead, wave.shape[-1])


__all__ = ["GRIFFIN_LIM", "Vocoder", "load_vocoder", "vocode"]
