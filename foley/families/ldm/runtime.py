"""Latent diffusion without torch: text to audio in onnxruntime and numpy (``--backend onnx``).

Three graphs and a table, made once from the torch model (:func:`export`, into ``$FOLEY_HOME/onnx/<weights hash>/``
or a ``foley export onnx`` folder) and checked against it there:

- ``unet.onnx`` (:mod:`.accel`'s export: the same graph the hybrid onnx path runs);
- ``decode.onnx``: latents -> the VAE decoder -> the mel space's inverse -> the neural vocoder's magnitude and phase,
  as real and imaginary STFT parts; the inverse STFT is :func:`istft` (numpy);
- ``schedule-<solver>-<steps>.json``: the solver's steps as numbers. DDIM and DPM-Solver++(2M) update the latent by a
  fixed linear combination of the current latent and model output and the previous step's; those coefficients
  are read off diffusers' own scheduler (:func:`record_schedule`: unit inputs through its ``step``, then checked by
  replaying random inputs), so no solver is re-implemented here. A step count not recorded yet is recorded on first
  use (that imports torch once); solvers that are not such a combination (SDE, Euler's input scaling) stay on the
  hybrid path;
- ``runtime.json``: the sizes and settings the loop needs (latent shape, mel, defaults), so nothing else is read.

:class:`Runtime` runs text -> audio for a batch of prompts and seeds: MiniLM through :mod:`foley.onnxtext`, each seed's
noise from :func:`foley.rng.randn` (torch's draw), classifier-free guidance as one batch. A sound equals the torch
model's within float rounding, not bit for bit. Importing this module imports neither torch nor onnxruntime.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ...errors import ModelError

BACKENDS = ("torch", "onnx")
UNET_FILE, DECODE_FILE, META_FILE = "unet.onnx", "decode.onnx", "runtime.json"
LINEAR_SOLVERS = ("ddim", "dpm++")  # recorded as linear steps (others are checked and refused by the replay)
CHECK_TOLERANCE = 1e-3


def schedule_file(solver: str, steps: int) -> str:
    return f"schedule-{solver.replace('+', 'p')}-{int(steps)}.json"


# --- made with torch -----------------------------------------------------------------------------------------------
def record_schedule(scheduler_config: dict, solver: str, steps: int) -> dict:
    """The solver's timesteps and, per step i, the coefficients (a, b, c, d) of
    ``x_{i+1} = a x_i + b o_i + c x_{i-1} + d o_{i-1}`` (x: latent, o: guided model output), read from diffusers'
    scheduler with unit inputs and checked by replaying random ones. One-line :class:`ModelError` when the solver is
    not such a combination."""
    import torch

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
        got = step(table, i, x, o, prev_x, prev_o)
        if not np.allclose(got, want, atol=1e-4, rtol=1e-4):
            raise ModelError(f"solver '{solver}' is not a fixed linear step (replay differs by "
                             f"{np.abs(got - want).max():.2g}): it runs on the hybrid path only")
        prev_x, prev_o, x = x, o, want
    return table


def step(table: dict, i: int, x, o, prev_x, prev_o):
    """One recorded solver step (numpy)."""
    a, b, c, d = table["coef"][i]
    out = a * x + b * o
    if prev_x is not None and (c or d):
        out = out + c * prev_x + d * prev_o
    return out


def export(model, out: str | Path, weights_hash: str, defaults: dict) -> Path:
    """Write the torch-free runtime of a loaded :class:`~foley.families.ldm.model.LatentAudioModel` into ``out``:
    the UNet and decode graphs, the default solver's table and ``runtime.json``; each checked against torch."""
    import warnings

    import torch

    from ... import onnxrt, onnxtext
    from ...fsutil import atomic_path, write_json_atomic
    from . import accel

    onnxrt.need_onnx()
    if model.vocoder is None or not hasattr(model.vocoder, "magnitude_phase"):
        raise ModelError(f"{model.name}: the torch-free path needs the model's own neural vocoder (Griffin-Lim models "
                         "run on --backend torch)")
    if model.global_head is not None:
        raise ModelError(f"{model.name}: foley-clap conditioned models run on --backend torch")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not (out / UNET_FILE).exists():
        accel.export_onnx(model, out)
    net = _Decode(model).eval()
    frames = model.latent_frames(4.0)
    z = torch.randn(2, model.vae.config.latent_channels, model.latent_height, frames,
                    generator=torch.Generator().manual_seed(0))
    with atomic_path(out / DECODE_FILE) as tmp, torch.no_grad(), warnings.catch_warnings():
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
            got = istft(re + 1j * im, cfg.n_fft, cfg.hop_length, cfg.win_length, want.shape[-1])
            diff = float(np.abs(got - want.numpy()).max())
            if not diff <= CHECK_TOLERANCE:
                raise ModelError(f"the exported decoder differs from torch's by {diff:.2g} (tolerance "
                                 f"{CHECK_TOLERANCE:g}); not kept")
    solver = defaults.get("scheduler", "dpm++")
    if solver in LINEAR_SOLVERS:
        write_json_atomic(out / schedule_file(solver, int(defaults.get("steps", 25))),
                          record_schedule(model.scheduler_config, solver, int(defaults.get("steps", 25))))
    d = model.cross_attention and (model.unet.config.cross_attention_dim or 384)
    meta = {"weights_hash": weights_hash, "family": "ldm", "mel": cfg.to_dict(), "channels": model.cfg.channels,
            "latent_channels": int(model.vae.config.latent_channels), "latent_height": int(model.latent_height),
            "f_vae": int(model.f_vae), "frame_multiple": int(model.frame_multiple),
            "cross_attention": bool(d), "scheduler_config": model.scheduler_config, "defaults": defaults,
            "text_encoder": model.cfg.text_encoder, "window": float(model.cfg.extra.get("max_window_seconds", 12.0))}
    write_json_atomic(out / META_FILE, meta)
    onnxtext.ensure()
    return out / DECODE_FILE


def _Decode(model):
    import torch

    class Decode(torch.nn.Module):
        """latents [B, C, H, W] -> the vocoder's STFT (real, imag) [B * channels, n_fft // 2 + 1, frames + 1]."""

        def __init__(self):
            super().__init__()
            self.vae, self.vocoder = model.vae, model.vocoder

        def forward(self, z):
            mel = model.latent_to_mel(z)
            b, c, m, n = mel.shape
            logmel = model.cfg.space.decode(mel).reshape(b * c, m, n)
            logmel = logmel.clamp(min=math.log(model.cfg.mel.log_floor))
            mag, phase = self.vocoder.magnitude_phase(logmel.float())
            return mag * torch.cos(phase), mag * torch.sin(phase)

    return Decode()


# --- run without torch ---------------------------------------------------------------------------------------------
def istft(spec: np.ndarray, n_fft: int, hop: int, win_length: int, length: int) -> np.ndarray:
    """``torch.istft(spec, n_fft, hop, win_length, hann_window(win_length), center=True, length=length)`` in numpy
    (hand-written: scipy's and librosa's differ in scaling or import slowly): [B, F, T] complex -> [B, length]."""
    b, _, t = spec.shape
    window = np.zeros(n_fft)
    left = (n_fft - win_length) // 2
    window[left:left + win_length] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win_length) / win_length)
    frames = np.fft.irfft(spec, n=n_fft, axis=1) * window[None, :, None]   # [B, n_fft, T]
    total = n_fft + hop * (t - 1)
    y, env = np.zeros((b, total)), np.zeros(total)
    for k in range(t):  # overlap-add
        y[:, k * hop:k * hop + n_fft] += frames[:, :, k]
        env[k * hop:k * hop + n_fft] += window ** 2
    start = n_fft // 2
    y, env = y[:, start:start + length], env[start:start + length]
    out = np.zeros((b, length))
    ok = env > 1e-11
    out[:, ok] = y[:, ok] / env[ok]
    return out.astype(np.float32)


class Runtime:
    """The graphs of one exported folder in onnxruntime sessions; :meth:`sample` and :meth:`decode`."""

    def __init__(self, folder: Path, threads: int):
        from ... import onnxrt, onnxtext

        self.folder = Path(folder)
        self.meta = json.loads((self.folder / META_FILE).read_text())
        self.unet = onnxrt.session(self.folder / UNET_FILE, threads)
        self.unet_inputs = {i.name for i in self.unet.get_inputs()}
        self.decoder = onnxrt.session(self.folder / DECODE_FILE, threads)
        self.text = onnxtext.encoder(threads, self.meta["text_encoder"])
        self.tables: dict[tuple[str, int], dict] = {}

    @property
    def mel(self) -> dict:
        return self.meta["mel"]

    def latent_frames(self, seconds: float) -> int:
        mel, mult = self.mel, self.meta["frame_multiple"]
        n = math.ceil(seconds * mel["sample_rate"] / mel["hop_length"])
        return math.ceil(n / mult) * mult // self.meta["f_vae"]

    def table(self, solver: str, steps: int) -> dict:
        """The recorded solver table (recorded and kept on first use of a step count: imports torch once)."""
        key = (solver, int(steps))
        if key not in self.tables:
            path = self.folder / schedule_file(solver, steps)
            if path.exists():
                self.tables[key] = json.loads(path.read_text())
            else:
                table = record_schedule(self.meta["scheduler_config"], solver, int(steps))
                try:
                    from ...fsutil import write_json_atomic

                    write_json_atomic(path, table)
                except OSError:
                    pass  # a read-only export folder: kept in memory for this process
                self.tables[key] = table
        return self.tables[key]

    def noise(self, seeds: list[int], width: int) -> np.ndarray:
        from ...rng import randn

        shape = (self.meta["latent_channels"], self.meta["latent_height"], width)
        return np.stack([randn(int(s), int(np.prod(shape))).reshape(shape) for s in seeds])

    def _unet(self, x, t, pooled, tokens, mask) -> np.ndarray:
        feed = {"sample": x.astype(np.float32), "timestep": np.asarray(t, dtype=np.float32),
                "pooled": pooled.astype(np.float32), "tokens": tokens.astype(np.float32), "mask": mask.astype(np.int64)}
        return self.unet.run(None, {k: v for k, v in feed.items() if k in self.unet_inputs})[0]

    def sample(self, prompts: list[str], negatives: list[str], seeds: list[int], width: int, steps: int,
               guidance: float, solver: str, callback=None) -> np.ndarray:
        """Latents [B, C, H, width] for the prompts (classifier-free guidance against ``negatives``)."""
        table = self.table(solver, steps)
        n = len(prompts)
        use_cfg = guidance is not None and guidance != 1.0
        emb = self.text(list(negatives) + list(prompts) if use_cfg else list(prompts))
        x = self.noise(seeds, width).astype(np.float64)
        prev_x = prev_o = None
        for i, t in enumerate(table["timesteps"]):
            inp = np.concatenate([x, x]) if use_cfg else x
            out = self._unet(inp, t, emb.pooled, emb.tokens, emb.mask).astype(np.float64)
            if use_cfg:
                out = out[:n] + guidance * (out[n:] - out[:n])
            x, prev_x, prev_o = step(table, i, x, out, prev_x, prev_o), x, out
            if callback is not None:
                callback(i + 1, len(table["timesteps"]))
        return x.astype(np.float32)

    def decode(self, z: np.ndarray, duration: float) -> list[np.ndarray]:
        """Latents -> waves [channels, duration * rate] per item."""
        mel = self.mel
        re, im = self.decoder.run(None, {"latents": z.astype(np.float32)})
        length = z.shape[-1] * self.meta["f_vae"] * mel["hop_length"]
        wave = istft(re + 1j * im, mel["n_fft"], mel["hop_length"], mel["win_length"], length)
        wave = wave.reshape(z.shape[0], self.meta["channels"], length)
        n = int(round(duration * mel["sample_rate"]))
        wave = wave[..., :n]
        if wave.shape[-1] < n:
            wave = np.pad(wave, ((0, 0), (0, 0), (0, n - wave.shape[-1])))
        return list(wave)


def exported_meta(folder: Path) -> dict | None:
    try:
        return json.loads((Path(folder) / META_FILE).read_text())
    except (OSError, ValueError):
        return None
