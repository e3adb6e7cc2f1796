"""The control adapter of the token LM: ``foley train control --from starter-lm --data M.jsonl``.

Curves and melody enter the decoder as **conditioning frames**: the five control curves of :mod:`foley.curves`
(per curve its value in the adapter input space of :func:`foley.curves.input_space` and its strength; pitch and
brightness absolute or a shape only, flagged) and a chroma sequence (MusicGen-melody's one-hot strongest pitch class,
averaged per bin, with its own strength) on a grid of :data:`GRID` points per second go through a small non-causal
convolution (:class:`Conditioner`) and a zero-initialised linear layer to the decoder's width; the result is added to
the decoder's input at every position (beside its sinusoidal position embedding), the position's time picking its
grid point. So the time alignment is given, not learnt, and an untrained adapter adds exactly zero. The decoder reads
them through LoRA matrices (peft) on its attention and feed-forward projections; it is trained on the next-code loss
of windows of the base's corpora given their captions and their **own measured curves and chroma** (no labels), each
curve and the chroma dropped at random (so any subset works), with a share of items given nothing, learnt as the
frozen base's own prediction (so the adapted decoder without conditioning stays the base).

At sampling time (:mod:`.conditioning`, the half of this that inference imports) nothing changes in the loop
(:meth:`TokenLM.sample` takes a :class:`Control`): the additive frames go through a forward hook on the position
embedding (full forwards: prompt prefill, transformers' ``generate``) and through the fast loop's position table
(:class:`ControlStep`); the guidance's unconditional half gets no conditioning.
Requests without curves sample with the base decoder, untouched.

Stages in ``<run>/``: ``windows`` (training windows of the base's corpora: codec codes, the five curves and the chroma
of the same audio on the grid, the captions; resumable chunks) and ``control`` (:class:`LMControlSolver`). The result
is ``<model folder>/control/``: ``conditioner.safetensors`` + ``lora.safetensors`` (peft layout, float16) +
``control.json`` (encoding, the base's weight hash without ``control/``, windows, steps, held-out losses).
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import torch

from ... import curves as cv
from ...errors import FoleyError
from ...fsutil import atomic_path, write_json_atomic
from ...train.chunks import load_chunks, write_chunks
from ...train.control import window_order
from ...train.loop import warmup_cosine
from ...train.solver import Solver
from .conditioning import (  # noqa: F401  (re-exported: the adapter's names with its training)
    CONDITIONER,
    CONTROL_DIR,
    CONTROL_JSON,
    ENCODING,
    FEATURES,
    GRID,
    LORA,
    LORA_CONFIG,
    LORA_TARGETS,
    NOT_BASE,
    Conditioner,
    added_frames,
    features,
    grid_points,
)

# --- stage 1: training windows ---------------------------------------------------------------------------------------
DEFAULTS = {"windows": 4000, "valid": 128, "chunk": 64, "seconds": None, "cache_dir": None}


def _settings(recipe: dict) -> dict:
    return {**DEFAULTS, **(recipe.get("windows") or {})}


def window_features(audio, seconds: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A window's measured curves (values [5, G] in the input space, absolute; strength [5, G]) and chroma
    ([12, G], strength [G]) on the grid."""
    g = grid_points(seconds)
    measured = cv.measure(audio)
    vals, strs = np.zeros((len(cv.NAMES), g)), np.zeros((len(cv.NAMES), g))
    for i, name in enumerate(cv.NAMES):
        vals[i], strs[i] = cv.on_grid(measured[name], seconds, g, 1.0 / GRID)
    chroma, cs = cv.chroma(audio, g, 1.0 / GRID)
    return vals, strs, chroma, cs


@torch.no_grad()
def make_windows(base: Path, manifests: list[Path], recipe: dict, out: Path, say=print) -> Path:
    """Stage ``windows``: ``<out>/windows/chunk-NNNNN.pt`` with codes [B, K, F] (int16), curve values and strengths
    [B, 5, G], chroma [B, 12, G] and its strength [B, G] (float32), captions. The windows are spread over the
    manifests (each one's share in proportion to the square root of its size); the first ``valid`` are held out.
    Resumable by chunk."""
    from ...audio import Audio
    from ...data.dataset import ClipDataset
    from ...data.manifest import clip_captions
    from .model import TokenLM

    s = _settings(recipe)
    d = Path(out) / "windows"
    if (d / "done.json").exists():
        return d
    for m in manifests:
        if not Path(m).exists():
            raise FoleyError(f"{m}: manifest not found")
    d.mkdir(parents=True, exist_ok=True)
    lm = TokenLM.from_folder(base)
    seconds = float(s["seconds"] or lm.cfg.window_seconds)
    rate, channels = lm.cfg.sample_rate, lm.cfg.channels
    frames = lm.frames(seconds)
    sets = [ClipDataset([m], sample_rate=rate, channels=channels, clip_seconds=seconds, split="all",
                        cache_dir=s["cache_dir"], seed=int(recipe.get("seed", 0))) for m in manifests]
    total, chunk = int(s["windows"]) + int(s["valid"]), int(s["chunk"])
    order, shares = window_order([len(x) for x in sets], total, int(recipe.get("seed", 0)))

    def make(c: int) -> dict:
        items = [(sets[k], sets[k][i]) for k, i in order[c * chunk:(c + 1) * chunk]]
        audio = torch.stack([it["audio"] for _, it in items])                     # [B, C, T]
        b = audio.shape[0]
        codes = lm.codec.encode_tensor(audio.reshape(b * channels, 1, -1), lm.n_q)  # [B*C, n_q, F]
        codes = codes.reshape(b, channels, lm.n_q, -1).transpose(1, 2).reshape(b, lm.num_codebooks, -1)
        codes = codes[..., :frames]
        if codes.shape[-1] < frames:
            raise FoleyError(f"the codec gave {codes.shape[-1]} frames for a {seconds:g} s window, expected {frames}")
        g = grid_points(seconds)
        vals, strs = np.zeros((b, len(cv.NAMES), g)), np.zeros((b, len(cv.NAMES), g))
        chroma, cs = np.zeros((b, cv.CHROMA_BINS, g)), np.zeros((b, g))
        for j, (_, it) in enumerate(items):
            vals[j], strs[j], chroma[j], cs[j] = window_features(Audio(it["audio"].numpy(), rate), seconds)
        caps = [clip_captions(ds.clips[it["index"]]) for ds, it in items]
        return {"codes": codes.to(torch.int16), "values": torch.from_numpy(vals).float(),
                "strength": torch.from_numpy(strs).float(), "chroma": torch.from_numpy(chroma).float(),
                "chroma_strength": torch.from_numpy(cs).float(), "captions": caps}

    minutes = write_chunks(d, math.ceil(total / chunk), make, "control windows", total, say=say, every=5)
    write_json_atomic(d / "done.json", {"windows": total, "valid": int(s["valid"]), "seconds": seconds,
                                        "minutes": minutes, "frames": frames, "grid": GRID, "base": str(base),
                                        "manifests": [str(m) for m in manifests],
                                        "shares": {str(m): int(n) for m, n in zip(manifests, shares, strict=True)}})
    return d


def _load_windows(d: Path) -> dict:
    return load_chunks(d, "training windows; run the windows stage first")


# --- stage 2: the adapter ---------------------------------------------------------------------------------------------
class ControlModule(torch.nn.ModuleDict):
    """``{"decoder" (the base's, with LoRA), "projection" (frozen), "conditioner"}``."""


class LMControlSolver(Solver):
    """Stage ``control``: the conditioner and LoRA matrices of the base's decoder, trained on the next-code loss of
    the windows given their captions (dropped with ``cfg_dropout``) and their own curves and chroma (each kept with
    ``keep``, pitch and brightness relative with ``relative``); a share ``none`` of items gets no conditioning and
    learns the frozen base's own next-code distribution (``teacher = true``) or its codes."""

    stage = section = "control"
    defaults = {"lr": 1e-3, "weight_decay": 0.0, "steps": 2000, "warmup": 50, "ema_decay": 0.995, "batch_size": 16,
                "keep": 0.5, "keep_chroma": 0.5, "relative": 0.5, "none": 0.2, "teacher": True, "cfg_dropout": 0.1,
                "rank": 16, "hidden": 128}

    def __init__(self, base: Path, recipe: dict, out: Path):
        super().__init__([], recipe, out)
        self.base = Path(base)

    def finished(self) -> bool:
        return (self.final / CONDITIONER).exists()

    def build(self) -> None:
        from peft import LoraConfig, inject_adapter_in_model

        from .model import TokenLM

        r = self.settings
        lm = TokenLM.from_folder(self.base)
        self.text, self.channels = lm.text, lm.cfg.channels
        decoder, projection = lm.decoder.float(), lm.projection.float().requires_grad_(False)
        self.teacher = None
        if r["teacher"]:
            self.teacher = torch.nn.ModuleDict({"decoder": copy.deepcopy(decoder),
                                                "projection": projection}).eval().requires_grad_(False)
        decoder.requires_grad_(False)
        self.lora_config = LoraConfig(r=int(r["rank"]), lora_alpha=int(r["rank"]), lora_dropout=0.0,
                                      target_modules=list(LORA_TARGETS))
        inject_adapter_in_model(self.lora_config, decoder)
        cond = Conditioner(decoder.config.hidden_size, lm.cfg.frame_rate, int(r["hidden"]))
        self.model = ControlModule({"decoder": decoder, "projection": projection, "conditioner": cond})
        w = _load_windows(self.out / "windows")
        nv = int(_settings(self.recipe)["valid"])
        self.valid = {k: v[:nv] for k, v in w.items()}
        self.train_set = {k: v[nv:] for k, v in w.items()}
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=float(r["lr"]), betas=(0.9, 0.95),
                                           weight_decay=float(r["weight_decay"]))
        self.scheduler = warmup_cosine(self.optimizer, int(r["warmup"]), self.steps)
        self.data = range(self.train_set["codes"].shape[0])

    def collate(self, items: list):
        return torch.tensor(items)

    def inputs(self, part: dict, idx: torch.Tensor, gen: np.random.Generator, keep: float | None = None,
               keep_chroma: float | None = None, rel: float | None = None, none: float | None = None):
        """(features [B, FEATURES, G], given [B] bool: the item has any conditioning) of windows ``idx``."""
        s = self.settings
        keep = float(s["keep"]) if keep is None else keep
        keep_chroma = float(s["keep_chroma"]) if keep_chroma is None else keep_chroma
        rel = float(s["relative"]) if rel is None else rel
        none = float(s["none"]) if none is None else none
        feats, given = [], []
        for i in idx.tolist():
            v, st = part["values"][i].numpy(), part["strength"][i].numpy()
            empty = gen.random() < none
            kept = (gen.random(len(cv.NAMES)) < keep) & (not empty)
            melody = (gen.random() < keep_chroma) and not empty
            flags = (gen.random(len(cv.RELATIVE_FLAGS)) < rel).astype(float)
            cs = part["chroma_strength"][i].numpy() * float(melody)
            feats.append(features(v, st * kept[:, None], flags, part["chroma"][i].numpy(), cs))
            given.append(bool(kept.any() or melody))
        return torch.from_numpy(np.stack(feats)), torch.tensor(given)

    def loss(self, net, part: dict, idx: torch.Tensor, feats: torch.Tensor, given: torch.Tensor, caps: list[str],
             drop: torch.Tensor, teach: bool) -> torch.Tensor:
        from .train import lm_loss

        codes = part["codes"][idx].long()
        positions = codes.shape[-1] + net["decoder"].config.num_codebooks // self.channels - 1
        extra = net["conditioner"](feats, positions) * given[:, None, None].float()
        taught = (~given) if (teach and self.teacher is not None) else None
        with added_frames(net["decoder"], extra):
            return lm_loss(net["decoder"], net["projection"], self.text, codes, caps, drop, self.channels,
                           teacher=self.teacher if taught is not None and bool(taught.any()) else None, taught=taught)

    def _captions(self, part: dict, idx: torch.Tensor, gen: np.random.Generator, p_drop: float):
        caps, drop = [], []
        for i in idx.tolist():
            options = part["captions"][i]
            d = not options or gen.random() < p_drop
            caps.append("" if d else options[int(gen.integers(len(options)))])
            drop.append(d)
        return caps, torch.tensor(drop)

    def train_step(self, idx: torch.Tensor) -> dict:
        idx = idx.cpu()
        gen = np.random.default_rng(self.seed * 1_000_003 + self.step)
        feats, given = self.inputs(self.train_set, idx, gen)
        caps, drop = self._captions(self.train_set, idx, gen, float(self.settings["cfg_dropout"]))
        return {"loss": self.loss(self.train_model, self.train_set, idx, feats, given, caps, drop, teach=True)}

    def validate(self) -> dict:
        """Held-out windows with their first captions: the next-code loss (on their codes) with the five curves and
        the chroma, with the curves alone, and with nothing (what the conditioning tells the model is the gap)."""
        n = self.valid["codes"].shape[0]
        caps = [(c or [""])[0] for c in self.valid["captions"]]
        drop = torch.tensor([not c for c in caps])
        out = {}
        for name, keep, chroma in (("valid_loss", 1.0, 1.0), ("valid_loss_curves", 1.0, 0.0),
                                   ("valid_loss_none", 0.0, 0.0)):
            total = 0.0
            for s in range(0, n, 16):
                idx = torch.arange(s, min(n, s + 16))
                feats, given = self.inputs(self.valid, idx, np.random.default_rng(7), keep=keep, keep_chroma=chroma,
                                           rel=0.0, none=0.0)
                total += float(self.loss(self.model, self.valid, idx, feats, given, caps[s:s + len(idx)],
                                         drop[s:s + len(idx)], teach=False)) * len(idx)
            out[name] = total / max(1, n)
        return out

    def export(self, dest: Path) -> Path:
        from peft import get_peft_model_state_dict
        from safetensors.torch import save_file

        if self.ema is not None:
            self.ema.copy_to(self.model.parameters())
        dest.mkdir(parents=True, exist_ok=True)
        cond = self.model["conditioner"]
        with atomic_path(dest / CONDITIONER) as tmp:
            save_file({k: v.detach().half().contiguous() for k, v in cond.state_dict().items()}, str(tmp))
        lora = {k: v.detach().half().contiguous() for k, v in get_peft_model_state_dict(self.model["decoder"]).items()}
        with atomic_path(dest / LORA) as tmp:
            save_file(lora, str(tmp), metadata={"format": "pt"})
        cfg = self.lora_config.to_dict()
        cfg["target_modules"] = sorted(cfg["target_modules"])
        write_json_atomic(dest / LORA_CONFIG, json.loads(json.dumps(cfg, default=str)))
        write_json_atomic(dest / "conditioner.json", cond.config())
        return dest


def train_control(base: Path, base_name: str, manifests: list[Path], recipe: dict, run: Path, dest: Path | None = None,
                  force: bool = False, say=print) -> Path:
    """Both stages; the adapter lands in ``dest`` (default ``<base>/control``), written whole or not at all."""
    from ...train.control import run_control

    def card(final: Path, last: dict, windows: dict) -> dict:
        return {"encoding": ENCODING, "kind": "conditioning frames + LoRA", "curves": list(cv.NAMES),
                "melody": "chroma", "grid_per_second": GRID, "features": FEATURES,
                "conditioner": json.loads((final / "conditioner.json").read_text()), "base": base_name,
                "window_seconds": windows["seconds"], "valid_loss": last.get("valid_loss"),
                "valid_loss_curves_only": last.get("valid_loss_curves"),
                "valid_loss_without_conditioning": last.get("valid_loss_none")}

    return run_control(base, manifests, recipe, run, dest, force, make_windows, LMControlSolver, card, say=say)
