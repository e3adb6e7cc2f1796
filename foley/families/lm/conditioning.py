"""The token LM's control adapter at inference: conditioning features, the :class:`Conditioner`, the additive frames in
the decoder, and finding and loading ``<model folder>/control/`` (training: :mod:`.control`).

Features per grid point (:data:`GRID` per second): per curve its value in :func:`foley.curves.input_space` and its
strength, the relative flags of pitch and brightness, the chroma (12, MusicGen-melody's one-hot strongest pitch class
averaged per bin) and its strength. The conditioner turns them into one addition per decoder position (the position's
time picks its grid point), added beside the position embedding: a forward hook for full forwards
(:func:`added_frames`), the fast loop's position table for single steps (:func:`control_step`).
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ... import curves as cv
from ...errors import ModelError
from ...hashing import CONTROL_DIR, CONTROL_JSON, NOT_BASE  # noqa: F401  (the folder layout every family's adapter shares)

CONDITIONER = "conditioner.safetensors"
LORA = "lora.safetensors"
LORA_CONFIG = "lora_config.json"
ENCODING = 1
GRID = 8.0  # conditioning points per second (curves and chroma)
# per grid point: per curve its value and strength, the relative flags of pitch and brightness, chroma, its strength
FEATURES = 2 * len(cv.NAMES) + len(cv.RELATIVE_FLAGS) + cv.CHROMA_BINS + 1
CHROMA = slice(2 * len(cv.NAMES) + len(cv.RELATIVE_FLAGS), FEATURES - 1)
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")  # self- and cross-attention, feed-forward


# --- the conditioning features ---------------------------------------------------------------------------------------
def grid_points(duration: float) -> int:
    return max(1, int(math.ceil(duration * GRID - 1e-9)))


def features(values: np.ndarray, strength: np.ndarray, rel: np.ndarray, chroma: np.ndarray | None,
             chroma_strength: np.ndarray | None) -> np.ndarray:
    """The adapter's input [FEATURES, G] from per-curve ``values`` and ``strength`` [5, G] (input space, absolute;
    undefined points at strength 0), the relative flags [2] of pitch and brightness, and ``chroma`` [12, G] with its
    strength [G] (None: no melody). Loudness always, and pitch/brightness when flagged, become shapes (centred)."""
    values = np.asarray(values, np.float64).copy()
    strength = np.clip(np.asarray(strength, np.float64), 0.0, 1.0)
    for i, name in enumerate(cv.NAMES):
        if name in cv.ALWAYS_RELATIVE or (name in cv.RELATIVE_FLAGS and rel[cv.RELATIVE_FLAGS.index(name)]):
            values[i] = cv.centred(values[i], strength[i])
    values = np.where(strength > 0, values, 0.0)
    g = values.shape[-1]
    if chroma is None:
        chroma, chroma_strength = np.zeros((cv.CHROMA_BINS, g)), np.zeros(g)
    cs = np.clip(np.asarray(chroma_strength, np.float64), 0.0, 1.0)
    rows = [values, strength, np.repeat(np.asarray(rel, np.float64)[:, None], g, 1),
            np.where(cs > 0, np.asarray(chroma, np.float64), 0.0), cs[None]]
    return np.concatenate(rows).astype(np.float32)


def target_features(targets: dict, duration: float, melody=None) -> np.ndarray:
    """A request's target curves (:class:`foley.curves.Targets` ``.curves``) and an optional melody reference (an
    :class:`~foley.audio.Audio`, read at its own time: past its end there is none) -> [FEATURES, G] over
    ``duration`` s; what is not given is absent (strength 0), as the parts dropped in training."""
    g = grid_points(duration)
    values, strength = np.zeros((len(cv.NAMES), g)), np.zeros((len(cv.NAMES), g))
    rel = np.zeros(len(cv.RELATIVE_FLAGS))
    for i, name in enumerate(cv.NAMES):
        if name in targets:
            values[i], strength[i] = cv.on_grid(targets[name], duration, g, 1.0 / GRID)
            if name in cv.RELATIVE_FLAGS:
                rel[cv.RELATIVE_FLAGS.index(name)] = float(targets[name].relative)
    chroma = cs = None
    if melody is not None:
        chroma, cs = cv.chroma(melody, g, 1.0 / GRID)
    return features(values, strength, rel, chroma, cs)


class Conditioner(torch.nn.Module):
    """Conditioning frames: features [B, FEATURES, G] on the grid -> additions [B, N, width] for decoder positions
    ``offset .. offset + N - 1`` (position p holds the input of the step that draws frame p: its time is p / frame
    rate). Two non-causal convolutions over the grid (±2 points: what comes next is seen), then a linear layer
    initialised at zero."""

    def __init__(self, width: int, frame_rate: float, hidden: int = 128, grid: float = GRID):
        super().__init__()
        self.frame_rate, self.grid = float(frame_rate), float(grid)
        self.net = torch.nn.Sequential(torch.nn.Conv1d(FEATURES, hidden, 3, padding=1), torch.nn.GELU(),
                                       torch.nn.Conv1d(hidden, hidden, 3, padding=1), torch.nn.GELU())
        self.out = torch.nn.Linear(hidden, width)
        torch.nn.init.zeros_(self.out.weight)
        torch.nn.init.zeros_(self.out.bias)

    def config(self) -> dict:
        return {"features": FEATURES, "hidden": self.out.in_features, "width": self.out.out_features,
                "frame_rate": self.frame_rate, "grid": self.grid}

    def forward(self, feats: torch.Tensor, positions: int, offset: int = 0) -> torch.Tensor:
        h = self.net(feats)                                                       # [B, H, G]
        t = (offset + torch.arange(positions, device=feats.device)) / self.frame_rate
        idx = torch.clamp((t * self.grid).floor().long(), 0, feats.shape[-1] - 1)
        return self.out(h[:, :, idx].transpose(1, 2))                            # [B, N, width]


# --- additive frames in the decoder -------------------------------------------------------------------------------
@contextlib.contextmanager
def added_frames(decoder, extra: torch.Tensor | None):
    """While active, ``extra`` [B, N, d] is added to the decoder's input at positions 0..N-1 (a forward hook on its
    position embedding: every full forward, cached or not, of a batch of B items)."""
    if extra is None:
        yield
        return
    module = decoder.model.decoder.embed_positions

    def hook(mod, args, kwargs, output):
        inp = args[0] if args else kwargs["input_ids"]
        start = int(args[1] if len(args) > 1 else kwargs.get("cache_length", kwargs.get("past_key_values_length", 0)))
        n = inp.shape[-1]
        if inp.shape[0] != extra.shape[0] or start + n > extra.shape[1]:
            raise ModelError(f"control frames [{extra.shape[0]}, {extra.shape[1]}] do not cover the decoder's batch "
                             f"of {inp.shape[0]} at positions {start}..{start + n - 1}")
        return output[None].to(extra.dtype) + extra[:, start:start + n]

    handle = module.register_forward_hook(hook, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


class _PlusFrames:
    """The fast loop's position table (``positions[t:t + 1]``) with the control frames of position t added."""

    def __init__(self, positions: torch.Tensor, extra: torch.Tensor):
        self.positions, self.extra = positions, extra

    def __getitem__(self, sl):
        return self.positions[sl][None] + self.extra[:, sl]


def control_step(extra: torch.Tensor, make_step):
    """A step constructor for :func:`foley.families.lm.decode.sample` whose steps add ``extra`` [B, N, d]."""

    def make(decoder, states, mask, length, cache=None):
        step = make_step(decoder, states, mask, length, cache)
        if extra.shape[1] < length:
            raise ModelError(f"control frames cover {extra.shape[1]} positions, the window needs {length}")
        step.positions = _PlusFrames(step.positions, extra)
        return step

    make.wraps = make_step  # the loop draws as for the step it wraps (decode.sample)
    return make


@dataclass
class Control:
    """A loaded adapter: the decoder with its LoRA merged, the conditioner, its card (with its weights hash)."""

    decoder: torch.nn.Module
    conditioner: Conditioner
    card: dict

    @torch.no_grad()
    def frames(self, feats: np.ndarray, positions: int, offset: int, guided: bool) -> torch.Tensor:
        """Additions [1 or 2, positions, d] for one window (the guidance's unconditional half: zeros)."""
        x = self.conditioner(torch.from_numpy(np.ascontiguousarray(feats))[None].float(), positions, offset)
        return torch.cat([x, torch.zeros_like(x)]) if guided else x


def has_adapter(folder) -> bool:
    """The folder holds a control adapter trained for its own decoder (a folder copied from another model, e.g. a
    full fine-tune of the starter, carries its base's adapter: not used, as it was trained for other weights)."""
    return adapter_state(folder) == "ok"


_STATE: dict = {}


def adapter_state(folder) -> str | None:
    """None (no adapter), ``"ok"``, or why it is not used (``"other weights"``, ``"unreadable"``); cached by the
    files' sizes and times, so asking again (capabilities) costs a few stat calls."""
    from ...hashing import base_hash

    folder = Path(folder)
    path = folder / CONTROL_DIR / CONTROL_JSON
    if not path.is_file():
        return None
    try:
        files = sorted(folder.rglob("*.safetensors"))
        key = (str(folder.resolve()), tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files),
               path.stat().st_mtime_ns)
    except OSError:
        return "unreadable"
    if key in _STATE:
        return _STATE[key]
    try:
        card = json.loads(path.read_text())
        ok = card.get("encoding") == ENCODING and card.get("base_weights") == base_hash(folder)
        state = "ok" if ok else "other weights"
    except (OSError, ValueError, AttributeError):
        state = "unreadable"
    _STATE[key] = state
    return state


def load_adapter(folder, decoder) -> Control:
    """The adapter of a model folder over a copy of its ``decoder`` (float32, eval, LoRA merged)."""
    from safetensors.torch import load_file

    from ... import adapters
    from ...hashing import folder_hash

    d = Path(folder) / CONTROL_DIR
    try:
        card = json.loads((d / CONTROL_JSON).read_text())
        cfg = card["conditioner"]
        cond = Conditioner(int(cfg["width"]), float(cfg["frame_rate"]), int(cfg["hidden"]), float(cfg["grid"]))
        state = load_file(str(d / CONDITIONER))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ModelError(f"{d}: no readable control adapter ({type(e).__name__}: {e}); train one with foley train "
                         "control") from None
    if int(cfg.get("features", -1)) != FEATURES:
        raise ModelError(f"{d}: the adapter reads {cfg.get('features')} features, this foley {FEATURES}")
    missing, unexpected = cond.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    if missing or unexpected:
        raise ModelError(f"{d / CONDITIONER}: keys do not match ({(missing or unexpected)[0]})")
    dec = copy.deepcopy(decoder).float()
    if (d / LORA).is_file():
        adapters.merge(dec, [{"folder": str(d), "scale": 1.0}], weights=LORA, config=LORA_CONFIG)
    return Control(dec.eval().requires_grad_(False), cond.eval().requires_grad_(False),
                   {**card, "weights": folder_hash(d)})
