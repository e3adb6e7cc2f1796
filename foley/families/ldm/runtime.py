"""Latent diffusion without torch: text to audio in onnxruntime and numpy (``--backend onnx``).

Three graphs and a table, made once from the torch model (:func:`~foley.families.ldm.accel.export_runtime`, into
``$FOLEY_HOME/onnx/<weights hash>/`` or a ``foley export onnx`` folder) and checked against it there:

- ``unet.onnx`` (:mod:`.accel`'s export: the same graph the hybrid onnx path runs);
- ``decode.onnx``: latents -> the VAE decoder -> the mel space's inverse -> the neural vocoder's magnitude and phase,
  as real and imaginary STFT parts; the inverse STFT is :func:`istft` (numpy);
- ``schedule-<solver>-<steps>.json``: the solver's steps as numbers. DDIM and DPM-Solver++(2M) update the latent by a
  fixed linear combination of the current latent and model output and the previous step's; those coefficients
  are read off diffusers' own scheduler (:func:`~foley.families.ldm.accel.record_schedule`: unit inputs through its
  ``step``, then checked by replaying random inputs), so no solver is re-implemented here. A step count not
  recorded yet is recorded on first use (the ``record`` the generator gives: that imports torch once); solvers that
  are not such a combination (SDE, Euler's input scaling) stay on the hybrid path;
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


def schedule_file(solver: str, steps: int) -> str:
    return f"schedule-{solver.replace('+', 'p')}-{int(steps)}.json"


def step(table: dict, i: int, x, o, prev_x, prev_o):
    """One recorded solver step (numpy)."""
    a, b, c, d = table["coef"][i]
    out = a * x + b * o
    if prev_x is not None and (c or d):
        out = out + c * prev_x + d * prev_o
    return out


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

    def __init__(self, folder: Path, threads: int, record=None):
        """``record(scheduler_config, solver, steps) -> table`` makes a table not exported yet (torch)."""
        from ... import onnxrt, onnxtext

        self.folder = Path(folder)
        self.meta = json.loads((self.folder / META_FILE).read_text())
        self.unet = onnxrt.session(self.folder / UNET_FILE, threads)
        self.unet_inputs = {i.name for i in self.unet.get_inputs()}
        self.decoder = onnxrt.session(self.folder / DECODE_FILE, threads)
        self.text = onnxtext.encoder(threads, self.meta["text_encoder"])
        self.tables: dict[tuple[str, int], dict] = {}
        self.record = record

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
                if self.record is None:
                    raise ModelError(f"{path.name} was not exported; export the model again")
                table = self.record(self.meta["scheduler_config"], solver, int(steps))
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
