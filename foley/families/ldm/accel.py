"""Faster inference of a :class:`~foley.families.ldm.model.LatentAudioModel`: dynamic int8 and ONNX Runtime.

- :func:`quantize` (``quantize="int8"``): ``torch.ao.quantization.quantize_dynamic`` on the UNet's and the VAE
  decoder's ``nn.Linear`` layers (weights int8, activations quantised per call); convolutions stay float32.
- :func:`export_runtime` adds what :mod:`.runtime` needs to run without torch (the decode graph, solver tables from
  :func:`record_schedule`, ``runtime.json``);
- :func:`export_onnx` writes ``unet.onnx`` (TorchScript exporter, dynamic batch, latent width and token count);
  :func:`use_onnx` puts an :class:`OnnxUNet` (onnxruntime) where the sampler loop calls the UNet, so schedulers,
  guidance, masks and callbacks are unchanged. The VAE decoder and vocoder stay in torch (a small share of the
  time: bench/onnx_int8.py). The exported graph was traced at one shape; :func:`export_onnx` checks it against torch at
  another batch, width and token count before it writes anything (a trace that baked a shape in fails there).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from ... import onnxrt
from ...errors import ModelError
from ...fsutil import atomic_path
from . import runtime
from .runtime import BACKENDS, UNET_FILE  # noqa: F401  (BACKENDS re-exported)

QUANTIZE = ("int8",)
ONNX_FILE, ONNX_META = UNET_FILE, "onnx.json"
CONTROL_FILE = "unet_control.onnx"  # the UNet with the control adapter's residuals as inputs (adapter: in torch)
INPUTS = ("sample", "timestep", "pooled", "tokens", "mask")
CHECK_TOLERANCE = 1e-3  # max abs difference of one UNet output (|out| ~ 1) between onnxruntime and torch


def quantize(model, mode: str | None):
    """Dynamic int8 of the UNet's and the VAE decoder's Linear layers, in place; ``model`` back."""
    if mode is None:
        return model
    if mode not in QUANTIZE:
        raise ModelError(f"unknown quantisation '{mode}'; choose {', '.join(QUANTIZE)}")
    import warnings

    from torch.ao.quantization import quantize_dynamic  # deprecated for torchao's quantize_, still works in 2.13

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
        model.unet = quantize_dynamic(model.unet, {torch.nn.Linear}, dtype=torch.qint8)
        model.vae.decoder = quantize_dynamic(model.vae.decoder, {torch.nn.Linear}, dtype=torch.qint8)
    model.quantized = mode
    return model


class _UNetCall(torch.nn.Module):
    """The UNet with positional tensors (what the exporter traces)."""

    def __init__(self, unet, cross_attention: bool):
        super().__init__()
        self.unet, self.cross_attention = unet, cross_attention

    def forward(self, sample, timestep, pooled, tokens, mask):
        text = ({"encoder_hidden_states": tokens, "encoder_attention_mask": mask} if self.cross_attention
                else {"encoder_hidden_states": None})
        return self.unet(sample, timestep, class_labels=pooled, **text).sample


class _UNetControlCall(torch.nn.Module):
    """The UNet with the control adapter's additions as positional inputs: ``mid``, then the down-block residuals."""

    def __init__(self, unet, cross_attention: bool):
        super().__init__()
        self.unet, self.cross_attention = unet, cross_attention

    def forward(self, sample, timestep, pooled, tokens, mask, mid, *down):
        text = ({"encoder_hidden_states": tokens, "encoder_attention_mask": mask} if self.cross_attention
                else {"encoder_hidden_states": None})
        return self.unet(sample, timestep, class_labels=pooled, **text, down_block_additional_residuals=list(down),
                         mid_block_additional_residual=mid).sample


def _control_example(model, batch: int, seconds: float, n_tokens: int, seed: int):
    """:func:`_example` plus residuals of the shapes the model's control adapter gives (random values)."""
    from .controlnet import residuals

    args = _example(model, batch, seconds, n_tokens, seed)
    sample, t, pooled, tokens, mask = args
    net = model.control_adapter()[0]
    planes = torch.zeros(batch, net.config.conditioning_channels, *sample.shape[2:])
    with torch.no_grad():
        extra = residuals(net, sample, t, tokens, mask, pooled, planes)
    g = torch.Generator().manual_seed(seed + 1)
    mid = torch.randn(extra["mid_block_additional_residual"].shape, generator=g)
    down = [torch.randn(d.shape, generator=g) for d in extra["down_block_additional_residuals"]]
    return (*args, mid, *down)


def export_control_onnx(model, out: str | Path, opset: int = 17) -> Path:
    """Write ``out/unet_control.onnx``: the UNet taking the control adapter's residuals, checked against torch at
    another batch, width and token count (the adapter itself runs in torch)."""
    onnxrt.need_onnx()
    if not model.has_control:
        raise ModelError(f"{model.name}: no control adapter, so no controlled UNet graph to export")
    unet = getattr(model.unet, "torch_unet", model.unet)
    net = _UNetControlCall(unet, model.cross_attention).eval()
    example = _control_example(model, 2, 4.0, 12, 0)
    n_down = len(example) - 6
    names = [*INPUTS, "mid", *(f"down_{i}" for i in range(n_down))]
    axes = {"sample": {0: "batch", 3: "frames"}, "pooled": {0: "batch"}, "tokens": {0: "batch", 1: "tokens"},
            "mask": {0: "batch", 1: "tokens"}, "noise_pred": {0: "batch", 3: "frames"},
            **{n: {0: "batch", 3: f"frames_{n}"} for n in names[5:]}}
    import warnings

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / CONTROL_FILE) as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, example, str(tmp), input_names=names, output_names=["noise_pred"], dynamic_axes=axes,
                          opset_version=opset, dynamo=False)
        session = _session(tmp)
        for batch, seconds, n_tokens, seed in ((4, 10.0, 20, 1), (1, 2.0, 5, 2)):
            args = _control_example(model, batch, seconds, n_tokens, seed)
            feed = {k: v.numpy() for k, v in zip(names, args, strict=True) if k in _input_names(session)}
            diff = float(np.abs(session.run(None, feed)[0] - net(*args).numpy()).max())
            if not diff <= CHECK_TOLERANCE:
                raise ModelError(f"ONNX export of {model.name}'s controlled UNet: output differs from torch by "
                                 f"{diff:.2g} at batch {batch}, {seconds:g} s (tolerance {CHECK_TOLERANCE:g})")
    return out / CONTROL_FILE


def _input_names(session) -> set[str]:
    return {i.name for i in session.get_inputs()}


def _example(model, batch: int, seconds: float, n_tokens: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    d = model.unet.config.cross_attention_dim or 384
    d = d if isinstance(d, int) else d[0]  # per-block widths (AudioLDM 1's layout, where text is not attended)
    pooled_dim = model.unet.config.projection_class_embeddings_input_dim or d
    mask = torch.ones(batch, n_tokens, dtype=torch.int64)
    mask[0, n_tokens // 2:] = 0  # padded prompts, as in a batch of prompts of different lengths
    sample = torch.randn(batch, model.unet.config.in_channels, model.latent_height, model.latent_frames(seconds),
                         generator=g)
    return (sample, torch.tensor(500.0), torch.randn(batch, pooled_dim, generator=g),
            torch.randn(batch, n_tokens, d, generator=g), mask)


def _session(path: Path, threads: int | None = None):
    return onnxrt.session(path, threads or torch.get_num_threads())


def _run(session, args) -> np.ndarray:
    names = _input_names(session)  # unused inputs (no cross-attention) are pruned on export
    feed = {k: v.detach().cpu().numpy() for k, v in zip(INPUTS, args, strict=True) if k in names}
    return session.run(None, feed)[0]


def export_onnx(model, out: str | Path, opset: int = 17) -> Path:
    """Write ``out/unet.onnx`` (+ ``onnx.json``: the weights hash it was made from); checked against torch."""
    onnxrt.need_onnx()
    if getattr(model, "quantized", None):
        raise ModelError("export the float model: int8 dynamic quantisation does not export to ONNX")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    net = _UNetCall(model.unet, model.cross_attention).eval()
    axes = {"sample": {0: "batch", 2: "height", 3: "frames"}, "pooled": {0: "batch"},
            "tokens": {0: "batch", 1: "tokens"}, "mask": {0: "batch", 1: "tokens"},
            "noise_pred": {0: "batch", 2: "height", 3: "frames"}}
    import warnings

    with atomic_path(out / ONNX_FILE) as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on Python control flow; the check below decides
        torch.onnx.export(net, _example(model, 2, 4.0, 12, 0), str(tmp), input_names=list(INPUTS),
                          output_names=["noise_pred"], dynamic_axes=axes, opset_version=opset, dynamo=False)
        session = _session(tmp)
        for batch, seconds, n_tokens, seed in ((4, 10.0, 20, 1), (1, 2.0, 5, 2)):
            args = _example(model, batch, seconds, n_tokens, seed)
            diff = float(np.abs(_run(session, args) - net(*args).numpy()).max())
            if not diff <= CHECK_TOLERANCE:
                raise ModelError(f"ONNX export of {model.name}: output differs from torch by {diff:.2g} at batch "
                                 f"{batch}, {seconds:g} s, {n_tokens} tokens (tolerance {CHECK_TOLERANCE:g})")
    meta = {"weights_hash": model.weights_hash, "opset": opset, "inputs": list(INPUTS),
            "torch": torch.__version__}
    (out / ONNX_META).write_text(json.dumps(meta, indent=2) + "\n")
    return out / ONNX_FILE


class OnnxUNet:
    """Stands where the sampler calls ``unet(x, t, class_labels=..., encoder_hidden_states=..., ...).sample``; with
    the control adapter's residuals (``down_block_additional_residuals``, ``mid_block_additional_residual``) it runs
    the controlled graph, ``control_graph()`` (exported on first need)."""

    def __init__(self, path: Path, unet, control_graph=None):
        self.session, self._control, self._control_graph = _session(path), None, control_graph
        self.config = unet.config  # the sampler reads sizes from it
        self.torch_unet = unet     # for a later export of the controlled graph (the weights are shared, not copied)
        self.dtype, self.device = torch.float32, torch.device("cpu")

    def __call__(self, sample, timestep, class_labels=None, encoder_hidden_states=None, encoder_attention_mask=None,
                 down_block_additional_residuals=None, mid_block_additional_residual=None):
        if torch.is_grad_enabled() and sample.requires_grad:
            raise ModelError("the onnx backend has no gradients: steering (--steer N > 0) needs --backend torch")
        t = torch.as_tensor(timestep, dtype=torch.float32).reshape(())
        b = sample.shape[0]
        tokens = encoder_hidden_states if encoder_hidden_states is not None else torch.zeros(b, 1, 1)
        mask = (encoder_attention_mask if encoder_attention_mask is not None
                else torch.ones(b, tokens.shape[1])).to(torch.int64)
        args = (sample.float(), t, class_labels, tokens, mask)
        if mid_block_additional_residual is None:
            return SimpleNamespace(sample=torch.from_numpy(_run(self.session, args)))
        if self._control is None:
            if self._control_graph is None:
                raise ModelError("this ONNX UNet takes no control adapter residuals")
            self._control = _session(self._control_graph())
        values = [*args, mid_block_additional_residual, *down_block_additional_residuals]
        names = [*INPUTS, "mid", *(f"down_{i}" for i in range(len(down_block_additional_residuals)))]
        used = _input_names(self._control)
        feed = {k: v.detach().float().numpy() if k != "mask" else v.numpy()
                for k, v in zip(names, values, strict=True) if k in used}
        return SimpleNamespace(sample=torch.from_numpy(self._control.run(None, feed)[0]))

    def eval(self):
        return self


def use_onnx(model, onnx_dir: str | Path | None = None):
    """Run ``model``'s UNet with onnxruntime from ``onnx_dir`` (default: exported once into the cache,
    ``$FOLEY_HOME/onnx/<weights hash>``); ``model`` back."""
    path = onnxrt.exported(onnx_dir, model.weights_hash, ONNX_FILE, ONNX_META, lambda f: export_onnx(model, f))
    control = None
    if model.has_control:
        def control():
            return onnxrt.exported(onnx_dir, model.weights_hash, CONTROL_FILE, ONNX_META,
                                   lambda f: export_control_onnx(model, f))
    model.unet = OnnxUNet(path, model.unet, control)
    model.backend = "onnx"
    return model


# --- the torch-free path's graphs and solver tables (run by foley/families/ldm/runtime.py) ----------------------
def record_schedule(scheduler_config: dict, solver: str, steps: int) -> dict:
    """The solver's timesteps and, per step i, the coefficients (a, b, c, d) of
    ``x_{i+1} = a x_i + b o_i + c x_{i-1} + d o_{i-1}`` (x: latent, o: guided model output), read from diffusers'
    scheduler with unit inputs and checked by replaying random ones. One-line :class:`ModelError` when the solver is
    not such a combination."""
    from .components import scheduler_from

    def fresh():
        s = scheduler_from(solver, scheduler_config)
        s.set_timesteps(steps)
        return s

    s = fresh()
    ts = [float(t) for t in s.timesteps]
    n = len(ts)
    one = torch.ones(2, 1, 1, 1)
    if float(s.init_noise_sigma) != 1.0 or any(not torch.equal(s.scale_model_input(one, t), one) for t in s.timesteps):
        raise ModelError(f"solver '{solver}' scales its inputs: it runs on --backend torch or the hybrid path only")
    s = fresh()
    coef = np.zeros((n, 4))
    for i, t in enumerate(s.timesteps):  # lane 2j: x_j = 1; lane 2j+1: o_j = 1 (all else 0)
        x, o = torch.zeros(2 * n, 1, 1, 1, dtype=torch.float64), torch.zeros(2 * n, 1, 1, 1, dtype=torch.float64)
        x[2 * i], o[2 * i + 1] = 1.0, 1.0
        prev = s.step(o, t, x).prev_sample.flatten().double().numpy()
        coef[i, :2] = prev[2 * i:2 * i + 2]
        if i:
            coef[i, 2:] = prev[2 * i - 2:2 * i]
        rest = np.delete(prev, range(max(0, 2 * i - 2), 2 * i + 2))
        if np.abs(rest).max(initial=0.0) > 1e-12:
            raise ModelError(f"solver '{solver}' uses more than the last step: it runs on the hybrid path only")
    table = {"solver": solver, "steps": int(steps), "timesteps": ts, "coef": coef.tolist()}
    rng = np.random.default_rng(0)  # replay: diffusers on random latents and outputs against the table
    s, x = fresh(), rng.standard_normal((3, 4, 8, 8))
    prev_x = prev_o = None
    for i, t in enumerate(s.timesteps):
        o = rng.standard_normal(x.shape)
        want = s.step(torch.from_numpy(o), t, torch.from_numpy(x)).prev_sample.numpy()
        got = runtime.step(table, i, x, o, prev_x, prev_o)
        if not np.allclose(got, want, atol=1e-4, rtol=1e-4):
            raise ModelError(f"solver '{solver}' is not a fixed linear step (replay differs by "
                             f"{np.abs(got - want).max():.2g}): it runs on the hybrid path only")
        prev_x, prev_o, x = x, o, want
    return table


def export_runtime(model, out: str | Path, weights_hash: str, defaults: dict) -> Path:
    """Write the torch-free runtime of a loaded :class:`~foley.families.ldm.model.LatentAudioModel` into ``out``:
    the UNet and decode graphs, the default solver's table and ``runtime.json``; each checked against torch."""
    import warnings

    from ... import onnxtext
    from ...fsutil import write_json_atomic

    onnxrt.need_onnx()
    if model.vocoder is None or not hasattr(model.vocoder, "magnitude_phase"):
        raise ModelError(f"{model.name}: the torch-free path needs the model's own neural vocoder (Griffin-Lim models "
                         "run on --backend torch)")
    if model.global_head is not None:
        raise ModelError(f"{model.name}: foley-clap conditioned models run on --backend torch")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not (out / ONNX_FILE).exists():
        export_onnx(model, out)
    net = _DecodeCall(model).eval()
    frames = model.latent_frames(4.0)
    z = torch.randn(2, model.vae.config.latent_channels, model.latent_height, frames,
                    generator=torch.Generator().manual_seed(0))
    with atomic_path(out / runtime.DECODE_FILE) as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (z,), str(tmp), input_names=["latents"], output_names=["real", "imag"],
                          dynamic_axes={"latents": {0: "batch", 3: "frames"}, "real": {0: "items", 2: "frames"},
                                        "imag": {0: "items", 2: "frames"}}, opset_version=17, dynamo=False)
        sess = onnxrt.session(tmp, 1)
        cfg = model.cfg.mel
        for batch, seconds in ((1, 2.0), (3, 6.0)):
            zz = torch.randn(batch, z.shape[1], z.shape[2], model.latent_frames(seconds),
                             generator=torch.Generator().manual_seed(batch))
            want = model.mel_to_wave(model.latent_to_mel(zz)).reshape(-1, zz.shape[-1] * model.f_vae * cfg.hop_length)
            re, im = sess.run(None, {"latents": zz.numpy()})
            got = runtime.istft(re + 1j * im, cfg.n_fft, cfg.hop_length, cfg.win_length, want.shape[-1])
            diff = float(np.abs(got - want.numpy()).max())
            if not diff <= CHECK_TOLERANCE:
                raise ModelError(f"the exported decoder differs from torch's by {diff:.2g} (tolerance "
                                 f"{CHECK_TOLERANCE:g}); not kept")
    solver = defaults.get("scheduler", "dpm++")
    if solver in runtime.LINEAR_SOLVERS:
        write_json_atomic(out / runtime.schedule_file(solver, int(defaults.get("steps", 25))),
                          record_schedule(model.scheduler_config, solver, int(defaults.get("steps", 25))))
    d = model.cross_attention and (model.unet.config.cross_attention_dim or 384)
    meta = {"weights_hash": weights_hash, "family": "ldm", "mel": cfg.to_dict(), "channels": model.cfg.channels,
            "latent_channels": int(model.vae.config.latent_channels), "latent_height": int(model.latent_height),
            "f_vae": int(model.f_vae), "frame_multiple": int(model.frame_multiple),
            "cross_attention": bool(d), "scheduler_config": model.scheduler_config, "defaults": defaults,
            "text_encoder": model.cfg.text_encoder, "window": float(model.cfg.extra.get("max_window_seconds", 12.0))}
    write_json_atomic(out / runtime.META_FILE, meta)
    onnxtext.ensure()
    return out / runtime.DECODE_FILE


class _DecodeCall(torch.nn.Module):
    """latents [B, C, H, W] -> the vocoder's STFT (real, imag) [B * channels, n_fft // 2 + 1, frames + 1]."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.vae, self.vocoder = model.vae, model.vocoder  # (registered: the exporter sees their weights)

    def forward(self, z):
        m = self.model
        mel = m.latent_to_mel(z)
        b, c, n_mels, n = mel.shape
        logmel = m.cfg.space.decode(mel).reshape(b * c, n_mels, n).clamp(min=math.log(m.cfg.mel.log_floor))
        mag, phase = self.vocoder.magnitude_phase(logmel.float())
        return mag * torch.cos(phase), mag * torch.sin(phase)
