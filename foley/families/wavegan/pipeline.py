"""The WaveGAN Generator: prompts to 1 s one-shots in one forward pass, and latent interpolation.

Every output's latent comes from its own seed (``torch.Generator().manual_seed(seed)``; variation j uses
seed + j), so a seed gives the same sound in any batch; all outputs of a call (every prompt, variation and
interpolation point) go through the network together, in chunks of ``chunk`` items.

Interpolation (``request.interpolate``, ``foley generate --interpolate A B -n N``): output i of N takes
t = i / (N - 1) and the slerp of both the latent (seed A's to seed B's) and the MiniLM sentence vector (prompt
A's to prompt B's) before the network's condition projection; so output 0 is exactly the plain generation of
(A, seed A) and output N-1 that of (B, seed B).

``backend="onnx"`` (``foley generate -m starter-wavegan --backend onnx``) runs without torch: the generator network
as an onnxruntime graph (exported once into ``$FOLEY_HOME/onnx/<weights hash>/`` or given by ``onnx_dir``), MiniLM
through :mod:`foley.onnxtext` and each seed's latent from :func:`foley.rng.randn` (torch's draw within 1e-6), so a
process that makes one-shots never imports torch, transformers or diffusers. The sound equals torch's within float
rounding, not bit for bit, and the sidecar records the runtime.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...audio import Audio
from ...capabilities import INTERPOLATE, Capabilities, Setting
from ...editing import seed_of
from ...errors import RequestError
from ...generator import Generator, ModelCard, card_from_config, read_foley_json
from ...request import GenerationRequest
from .config import FolderConfig

BACKENDS = ("torch", "onnx")
ONNX_FILE, ONNX_META = "wavegan_generator.onnx", "wavegan_generator.json"

TASKS = ("generate",)
MAX_BATCH = 1024        # sounds per prompt in one request (one pass: ~10 ms of CPU each)
FADE_SECONDS = 0.01     # a sound cut shorter than the network's output fades out over its last 10 ms


class WaveGANGenerator(Generator):
    """Generator over a WaveGAN folder (``foley.json`` + ``generator.safetensors``)."""

    chunk = 256  # items per forward pass (bounds memory: 256 x 16384 samples x widest layer)

    def __init__(self, net, cfg: FolderConfig, card: ModelCard, folder: Path | None = None, session=None):
        self.net, self.cfg, self.card = net, cfg, card  # net: the torch GeneratorNet (None with a session)
        self.session = session                           # an onnxruntime session of the generator (onnx backend)
        self._folder = folder
        self._hash: str | None = None
        self.on_step = None

    @classmethod
    def from_folder(cls, folder: str | Path, card: ModelCard | None = None, device: str | None = None,
                    backend: str = "torch", onnx_dir: str | Path | None = None) -> WaveGANGenerator:
        from ...device import cpu_only

        cpu_only("WaveGAN models", device)
        if backend not in BACKENDS:
            raise RequestError(f"unknown backend '{backend}'; choose {', '.join(BACKENDS)}")
        if onnx_dir is not None and backend != "onnx":
            raise RequestError("--onnx-dir needs --backend onnx")
        card = card or cls.read_card(folder)
        if backend == "onnx":
            cfg = FolderConfig.read(folder)
            gen = cls(None, cfg, card, Path(folder))
            gen.session = gen._session(onnx_dir)
            return gen
        from .model import load_folder

        net, cfg = load_folder(folder)
        return cls(net, cfg, card, Path(folder))

    def _session(self, onnx_dir):
        from ... import onnxrt, threads

        path = onnxrt.exported(onnx_dir, self.weight_hash(), ONNX_FILE, ONNX_META, self.export_onnx)
        return onnxrt.session(path, threads.current())

    def export_onnx(self, out: str | Path) -> Path:
        """``foley export onnx``: the generator network as the graph ``--backend onnx`` runs (z and the sentence
        vector in, waves out, any batch), checked against torch, written into ``out``."""
        import torch

        from ... import onnxrt
        from ...fsutil import atomic_path, write_json_atomic
        from .model import load_folder

        onnxrt.need_onnx()
        net, cfg = (self.net, self.cfg) if self.net is not None else load_folder(self._folder)
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        z, c = torch.randn(3, cfg.net.latent_dim), torch.randn(3, cfg.net.cond_dim)
        with atomic_path(out / ONNX_FILE) as tmp:
            torch.onnx.export(net.eval(), (z, c), str(tmp), input_names=["z", "condition"], output_names=["wave"],
                              dynamic_axes={"z": {0: "batch"}, "condition": {0: "batch"}, "wave": {0: "batch"}},
                              opset_version=17, dynamo=False)
            with torch.no_grad():
                ref = net(z[:2], c[:2]).numpy()
            got = onnxrt.session(tmp, 1).run(None, {"z": z[:2].numpy(), "condition": c[:2].numpy()})[0]
            if not np.allclose(got, ref, atol=1e-4):
                raise RequestError(f"the exported generator differs from torch's by {np.abs(got - ref).max():.2g}")
        write_json_atomic(out / ONNX_META, {"weights_hash": self.weight_hash(), "family": "wavegan"})
        from ... import onnxtext

        onnxtext.ensure()  # the text encoder's graph too (in the cache): later runs need no torch at all
        return out / ONNX_FILE

    def runtime(self) -> dict:
        return {"backend": "onnx"} if self.session is not None else {}

    @classmethod
    def read_card(cls, folder) -> ModelCard:
        cfg = read_foley_json(folder)
        return card_from_config(folder, cfg, "wavegan", cfg.get("sample_rate", 16000), TASKS, max_duration=1.0)

    @classmethod
    def capabilities_for(cls, card: ModelCard) -> Capabilities:
        return Capabilities(tasks=tuple(card.tasks), max_duration=card.max_duration, max_variations=MAX_BATCH,
                            settings=(Setting(INTERPOLATE, help="outputs from (prompt, seed) to another prompt "
                                                               "and/or seed: slerp of latent and text vector"),))

    def weight_hash(self) -> str:
        if self._hash is None:
            from ...hashing import folder_hash

            self._hash = folder_hash(self._folder) if self._folder is not None else "unknown"
        return self._hash

    # --- generation ----------------------------------------------------------------------------------
    def _text(self, prompts: list[str]) -> dict[str, np.ndarray]:
        """Prompt -> its sentence vector [cond_dim] (each distinct prompt encoded once)."""
        unique = sorted(set(prompts))
        if self.session is not None:
            from ... import onnxtext, threads

            pooled = onnxtext.encoder(threads.current(), self.cfg.text_encoder)(unique).pooled
        else:
            from ...text import get_text_encoder

            pooled = get_text_encoder(self.cfg.text_encoder)(unique).pooled.float().numpy()
        return dict(zip(unique, pooled, strict=True))

    def latent(self, seed: int) -> np.ndarray:
        """The latent of ``seed`` (the same in any batch): torch's draw, or its numpy twin without torch."""
        if self.session is not None:
            from ...rng import randn

            return randn(int(seed), self.cfg.net.latent_dim)
        import torch

        g = torch.Generator().manual_seed(int(seed))
        return torch.randn(self.cfg.net.latent_dim, generator=g).numpy()

    def _plan(self, requests: list[GenerationRequest]) -> list[dict]:
        """One entry per output: request, variation, seed, latent and condition (before the network)."""
        prompts = [r.prompt for r in requests] + [r.interpolate.prompt for r in requests
                                                  if r.interpolate is not None and r.interpolate.prompt]
        vec = self._text(prompts)
        plan = []
        for r in requests:
            base = seed_of(r)
            if r.interpolate is None:
                for j in range(r.num_variations):
                    plan.append({"request": r, "variation": j, "seed": base + j, "z": self.latent(base + j),
                                 "c": vec[r.prompt]})
                continue
            end_prompt = r.interpolate.prompt or r.prompt
            end_seed = base if r.interpolate.seed is None else r.interpolate.seed
            za, zb, ca, cb = self.latent(base), self.latent(end_seed), vec[r.prompt], vec[end_prompt]
            n = r.num_variations
            for j in range(n):
                t = j / (n - 1)
                plan.append({"request": r, "variation": j, "seed": base if t < 1 else end_seed,
                             "z": slerp(za, zb, t), "c": slerp(ca, cb, t),
                             "interpolation": {"t": t, "from": {"prompt": r.prompt, "seed": base},
                                               "to": {"prompt": end_prompt, "seed": end_seed}}})
        return plan

    def _forward(self, z: np.ndarray, c: np.ndarray) -> np.ndarray:
        if self.session is not None:
            return self.session.run(None, {"z": z, "condition": c})[0][:, 0]
        import torch

        with torch.no_grad():
            return self.net(torch.from_numpy(z), torch.from_numpy(c))[:, 0].numpy()

    def waves(self, z: np.ndarray, c: np.ndarray) -> np.ndarray:
        """The network on latents [N, latent_dim] and sentence vectors [N, cond_dim] -> float32 [N, samples]."""
        z, c = np.ascontiguousarray(z, dtype=np.float32), np.ascontiguousarray(c, dtype=np.float32)
        out = []
        for s in range(0, z.shape[0], self.chunk):
            out.append(self._forward(z[s:s + self.chunk], c[s:s + self.chunk]))
            if self.on_step is not None:
                self.on_step(min(z.shape[0], s + self.chunk), z.shape[0])
        return np.concatenate(out).astype(np.float32)

    def _generate(self, requests: list[GenerationRequest]) -> list[Audio]:
        plan = self._plan(requests)
        waves = self.waves(np.stack([p["z"] for p in plan]), np.stack([p["c"] for p in plan]))
        outs = []
        for p, w in zip(plan, waves, strict=True):
            redrawn = None
            if "interpolation" not in p:  # a silent draw is drawn again from a derived seed, as in every family
                w, used, redrawn = self._draw_audible(self._one(p["c"]), p["seed"], first=w[None])
                w, p["seed"] = w[0], used
            outs.append(self._finish(w, p, redrawn))
        return outs

    def _one(self, c: np.ndarray):
        def draw(seed: int) -> np.ndarray:
            return self.waves(self.latent(seed)[None], c[None])
        return draw

    def _finish(self, wave: np.ndarray, p: dict, redrawn: dict | None) -> Audio:
        r = p["request"]
        n = min(wave.shape[-1], int(round(r.duration * self.sample_rate)))
        x = wave[:n].copy()
        if n < wave.shape[-1]:
            fade = min(n, int(FADE_SECONDS * self.sample_rate))
            x[n - fade:] *= np.cos(np.linspace(0, np.pi / 2, fade, dtype=np.float32))
        audio = Audio(x[None], self.sample_rate)
        audio.meta = self.provenance(r, p["seed"], p["variation"])
        if "interpolation" in p:
            audio.meta["interpolation"] = p["interpolation"]
        if redrawn:
            audio.meta["redrawn"] = redrawn
        return audio

    def _edit(self, audio: Audio, request: GenerationRequest) -> list[Audio]:
        raise RequestError(f"model '{self.card.name}' makes one-shots from text only; it does not edit audio")


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation between vectors ``a`` and ``b`` (the ends exactly at t = 0 and 1; linear when
    they are (anti)parallel); float32 in, float32 out."""
    if t <= 0:
        return a.copy()
    if t >= 1:
        return b.copy()
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    cos = float(np.clip(a64 @ b64 / max(float(np.linalg.norm(a64) * np.linalg.norm(b64)), 1e-12), -1, 1))
    omega = np.arccos(cos)
    if np.sin(omega) < 1e-6:
        return ((1 - t) * a64 + t * b64).astype(np.float32)
    return ((np.sin((1 - t) * omega) * a64 + np.sin(t * omega) * b64) / np.sin(omega)).astype(np.float32)
