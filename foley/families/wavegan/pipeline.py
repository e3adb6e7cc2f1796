"""The WaveGAN Generator: prompts to 1 s one-shots in one forward pass, and latent interpolation.

Every output's latent comes from its own seed (``torch.Generator().manual_seed(seed)``; variation j uses
seed + j), so a seed gives the same sound in any batch; all outputs of a call (every prompt, variation and
interpolation point) go through the network together, in chunks of ``chunk`` items.

Interpolation (``request.interpolate``, ``foley generate --interpolate A B -n N``): output i of N takes
t = i / (N - 1) and the slerp of both the latent (seed A's to seed B's) and the MiniLM sentence vector (prompt
A's to prompt B's) before the network's condition projection; so output 0 is exactly the plain generation of
(A, seed A) and output N-1 that of (B, seed B).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ...audio import Audio
from ...capabilities import INTERPOLATE, Capabilities, Setting
from ...editing import seed_of
from ...errors import RequestError
from ...generator import Generator, ModelCard, card_from_config, read_foley_json
from ...request import GenerationRequest
from .model import FolderConfig, GeneratorNet, load_folder, slerp

TASKS = ("generate",)
MAX_BATCH = 1024        # sounds per prompt in one request (one pass: ~10 ms of CPU each)
FADE_SECONDS = 0.01     # a sound cut shorter than the network's output fades out over its last 10 ms


class WaveGANGenerator(Generator):
    """Generator over a WaveGAN folder (``foley.json`` + ``generator.safetensors``)."""

    chunk = 256  # items per forward pass (bounds memory: 256 x 16384 samples x widest layer)

    def __init__(self, net: GeneratorNet, cfg: FolderConfig, card: ModelCard, folder: Path | None = None):
        self.net, self.cfg, self.card = net, cfg, card
        self._folder = folder
        self._hash: str | None = None
        self.on_step = None

    @classmethod
    def from_folder(cls, folder: str | Path, card: ModelCard | None = None, device: str | None = None
                    ) -> WaveGANGenerator:
        from ...device import cpu_only

        cpu_only("WaveGAN models", device)
        net, cfg = load_folder(folder)
        card = card or cls.read_card(folder)
        return cls(net, cfg, card, Path(folder))

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
    def _text(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        """Prompt -> its sentence vector [cond_dim] (each distinct prompt encoded once)."""
        from ...text import get_text_encoder

        unique = sorted(set(prompts))
        pooled = get_text_encoder(self.cfg.text_encoder)(unique).pooled.float()
        return dict(zip(unique, pooled, strict=True))

    def latent(self, seed: int) -> torch.Tensor:
        """The latent of ``seed`` (the same in any batch)."""
        g = torch.Generator().manual_seed(int(seed))
        return torch.randn(self.cfg.net.latent_dim, generator=g)

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

    @torch.no_grad()
    def waves(self, z: torch.Tensor, c: torch.Tensor) -> np.ndarray:
        """The network on latents [N, latent_dim] and sentence vectors [N, cond_dim] -> float32 [N, samples]."""
        out = []
        for s in range(0, z.shape[0], self.chunk):
            out.append(self.net(z[s:s + self.chunk], c[s:s + self.chunk])[:, 0])
            if self.on_step is not None:
                self.on_step(min(z.shape[0], s + self.chunk), z.shape[0])
        return torch.cat(out).numpy().astype(np.float32)

    def _generate(self, requests: list[GenerationRequest]) -> list[Audio]:
        plan = self._plan(requests)
        waves = self.waves(torch.stack([p["z"] for p in plan]), torch.stack([p["c"] for p in plan]))
        outs = []
        for p, w in zip(plan, waves, strict=True):
            redrawn = None
            if "interpolation" not in p:  # a silent draw is drawn again from a derived seed, as in every family
                w, used, redrawn = self._draw_audible(self._one(p["c"]), p["seed"], first=w[None])
                w, p["seed"] = w[0], used
            outs.append(self._finish(w, p, redrawn))
        return outs

    def _one(self, c: torch.Tensor):
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

