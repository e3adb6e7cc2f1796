"""The control adapter of the latent-diffusion family at generation time: the curve planes it reads and the
residuals it adds to the UNet (training: :mod:`foley.families.ldm.control`, ``foley train control``).

The adapter is a ControlNet (diffusers ``ControlNetModel``) in ``<model folder>/control/`` with its card
``control.json``; :func:`has_adapter` tells whether a folder holds one trained for its own UNet.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ... import curves as cv
from ...errors import FoleyError
from ...hashing import CONTROL_DIR, CONTROL_JSON, base_hash

ENCODING = 1
# per curve: its value (foley.curves.input_space, 0 where undefined) and its strength; then the relative flags of
# pitch and brightness; then the frequency position along the latent's height (-1 .. 1)
RELATIVE_FLAGS = cv.RELATIVE_FLAGS
CHANNELS = 2 * len(cv.NAMES) + len(RELATIVE_FLAGS) + 1


def frame_seconds(model) -> float:
    """Seconds per latent frame of a :class:`~foley.families.ldm.model.LatentAudioModel`."""
    return model.f_vae * model.cfg.mel.hop_length / model.cfg.mel.sample_rate


def planes(values: np.ndarray, strength: np.ndarray, rel: np.ndarray, height: int) -> torch.Tensor:
    """The adapter's input [CHANNELS, height, width] from per-curve ``values`` and ``strength`` [5, width] (in the
    input space, undefined points at strength 0) and the relative flags [2] of pitch and brightness."""
    values = np.asarray(values, np.float64).copy()
    strength = np.clip(np.asarray(strength, np.float64), 0.0, 1.0)
    for i, name in enumerate(cv.NAMES):  # loudness always, pitch and brightness when flagged: the shape only
        if name in cv.ALWAYS_RELATIVE or (name in RELATIVE_FLAGS and rel[RELATIVE_FLAGS.index(name)]):
            values[i] = cv.centred(values[i], strength[i])
    values = np.where(strength > 0, values, 0.0)
    width = values.shape[-1]
    rows = [values, strength, np.repeat(np.asarray(rel, np.float64)[:, None], width, 1)]
    line = torch.from_numpy(np.concatenate(rows)).float()                       # [CHANNELS - 1, width]
    out = line[:, None, :].expand(-1, height, -1)
    pos = torch.linspace(-1.0, 1.0, height)[None, :, None].expand(1, height, width)
    return torch.cat([out, pos]).contiguous()


def target_planes(targets: dict[str, cv.Curve], duration: float, width: int, height: int,
                  seconds_per_frame: float) -> torch.Tensor:
    """A request's target curves (:class:`foley.curves.Targets` ``.curves``) -> the adapter's input; curves it does
    not name are absent (strength 0), as the curves dropped in training."""
    values, strength = np.zeros((len(cv.NAMES), width)), np.zeros((len(cv.NAMES), width))
    rel = np.zeros(len(RELATIVE_FLAGS))
    for i, name in enumerate(cv.NAMES):
        if name in targets:
            values[i], strength[i] = cv.on_grid(targets[name], duration, width, seconds_per_frame)
            if name in RELATIVE_FLAGS:
                rel[RELATIVE_FLAGS.index(name)] = float(targets[name].relative)
    return planes(values, strength, rel, height)


def control_text(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The adapter's text: one token per item, the mask-weighted mean of the token states [B, 1, D] (diffusers'
    ControlNet has no encoder attention mask, so padded token lists would read differently with the batch)."""
    m = mask.to(tokens.dtype)[..., None]
    return (tokens * m).sum(1, keepdim=True) / m.sum(1, keepdim=True).clamp(min=1.0)


def residuals(net, sample: torch.Tensor, t, tokens: torch.Tensor, mask: torch.Tensor, pooled, cond: torch.Tensor,
              scale: float = 1.0) -> dict:
    """The adapter's additions to the UNet (its ``down_block_additional_residuals`` and
    ``mid_block_additional_residual`` keyword arguments)."""
    down, mid = net(sample, t, encoder_hidden_states=control_text(tokens, mask), controlnet_cond=cond,
                    conditioning_scale=scale, class_labels=pooled, return_dict=False)
    return {"down_block_additional_residuals": down, "mid_block_additional_residual": mid}


# --- the adapter in a model folder -----------------------------------------------------------------------------------
def has_adapter(folder: Path) -> bool:
    """The folder holds a control adapter trained for its own UNet (a folder copied from another model, e.g. a full
    fine-tune of the starter, carries its base's adapter: not used, as it was trained for other weights)."""
    path = Path(folder) / CONTROL_DIR / CONTROL_JSON
    if not path.is_file():
        return False
    try:
        card = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return card.get("encoding") == ENCODING and card.get("base_weights") == base_hash(folder)


def load_adapter(folder: Path):
    """``(ControlNetModel in float32, eval, its control.json with its weights hash)`` of a model folder."""
    from ...hashing import folder_hash
    from .components import load_component

    d = Path(folder) / CONTROL_DIR
    try:
        card = json.loads((d / CONTROL_JSON).read_text())
    except (OSError, ValueError) as e:
        raise FoleyError(f"{d}: no readable {CONTROL_JSON} ({e}); train one with foley train control") from None
    net = load_component("ControlNetModel", d).float().eval().requires_grad_(False)
    return net, {**card, "weights": folder_hash(d)}
