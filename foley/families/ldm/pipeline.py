"""The latent-diffusion Generator: text to audio, and AudioLDM-style zero-shot editing."""

from __future__ import annotations

from collections import defaultdict
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ...audio import Audio
from ...capabilities import Capabilities, Setting, steer_settings
from ...editing import (
    DIFFUSION_TASKS,
    band_split,
    estimate_cutoff,
    expand,
    extended_length,
    seed_of,
    splice,
    window_seed,
)
from ...errors import ModelError, RequestError
from ...generator import EXTEND_SECONDS, Generator, ModelCard, card_from_config, read_foley_json, record_used
from ...request import MAX_STEPS, GenerationRequest

if TYPE_CHECKING:  # torch and the model load only when a torch model is made (the onnx backend needs neither)
    import torch

    from .model import LatentAudioModel

# long-form joins (bench/seams.py, docs/benchmarks.md "Window seams"): a window's last second is not kept but sampled
# again by the next window (a window's edge frames are unlike its middle: the join showed there), and the second
# before it hands over through a linear ramp
OUTPAINT_DISCARD_SECONDS = 1.0
OUTPAINT_RAMP_SECONDS = 1.0


class LDMGenerator(Generator):
    """Generator over a :class:`LatentAudioModel` folder (ours or any compatible one)."""

    def __init__(self, model: LatentAudioModel, card: ModelCard):
        self.model, self.card = model, card

    @classmethod
    def from_folder(cls, folder: str | Path, card: ModelCard | None = None, vocoder: str = "auto",
                    device: str | None = None, quantize: str | None = None, backend: str = "torch",
                    onnx_dir: str | Path | None = None) -> LDMGenerator:
        """``quantize="int8"``: dynamic int8 Linear layers; ``backend="onnx"``: text to audio without torch
        (:class:`OnnxLDMGenerator`), else the UNet in onnxruntime, from ``onnx_dir`` or exported once into the cache
        (:mod:`foley.families.ldm.accel`, :mod:`foley.families.ldm.runtime`)."""
        from ...device import cpu_only
        from .runtime import BACKENDS

        cpu_only("latent-diffusion models of this family", device)  # FOLEY_DEVICE / --device: refused, not ignored
        if backend not in BACKENDS:
            raise ModelError(f"unknown backend '{backend}'; choose {', '.join(BACKENDS)}")
        if quantize is not None and backend == "onnx":
            raise ModelError("choose one of --quantize int8 and --backend onnx")
        if backend == "onnx":
            fast = OnnxLDMGenerator.open(folder, card, onnx_dir, vocoder)
            if fast is not None:
                return fast
        from . import accel
        from .model import LatentAudioModel

        model = accel.quantize(LatentAudioModel.from_folder(folder, vocoder=vocoder), quantize)
        if backend == "onnx":
            accel.use_onnx(model, onnx_dir)
        return cls.from_model(model, folder, card)

    @classmethod
    def from_model(cls, model: LatentAudioModel, folder: str | Path, card: ModelCard | None = None) -> LDMGenerator:
        """Over loaded components (e.g. a :class:`~foley.families.ldm.hf_pipeline.FoleyLDMPipeline`'s)."""
        cfg = model.cfg
        card = card or ModelCard(name=Path(folder).name, family="ldm", weights=str(folder),
                                 sample_rate=cfg.mel.sample_rate, channels=cfg.channels,
                                 max_duration=cfg.max_duration, tasks=DIFFUSION_TASKS, defaults=dict(cfg.defaults))
        return cls(model, card)

    def export_onnx(self, out: str | Path) -> Path:
        """``foley export onnx``: the graphs ``--backend onnx`` runs, checked against torch, written into ``out``:
        the UNet, and where the model allows it the rest of the torch-free path (:mod:`.runtime`)."""
        from . import accel

        path = accel.export_onnx(self.model, out)
        if self.model.has_control:  # the UNet taking the control adapter's residuals (the adapter runs in torch)
            accel.export_control_onnx(self.model, out)
        try:
            accel.export_runtime(self.model, out, self.model.weights_hash, dict(self.model.cfg.defaults))
        except ModelError:
            pass  # Griffin-Lim or foley-clap models: the hybrid path (UNet in onnxruntime) only
        return path

    def runtime(self) -> dict:
        rt = {"backend": getattr(self.model, "backend", "torch"), "quantize": getattr(self.model, "quantized", None)}
        return {k: v for k, v in rt.items() if v not in (None, "torch")}

    def weight_hash(self) -> str:
        from ...adapters import weight_tag

        return weight_tag(self.model.weights_hash, self.adapters)

    def lora_target(self):
        if getattr(self.model, "quantized", None) or getattr(self.model, "backend", "torch") != "torch":
            raise ModelError("LoRA adapters merge into float torch weights: drop --quantize / --backend onnx")
        return self.model.unet

    def vae_lora_target(self):
        """The network an adapter's VAE part changes (``foley train finetune --vae``): the VAE's decoder."""
        self.lora_target()  # the same refusals
        return self.model.vae.decoder

    @classmethod
    def capabilities_for(cls, card: ModelCard) -> Capabilities:
        from .components import SCHEDULERS

        d = card.defaults
        return Capabilities(
            tasks=tuple(card.tasks), max_duration=card.max_duration, progress="steps",
            settings=(Setting("steps", d.get("steps", 25), 1, MAX_STEPS, help="denoising steps"),
                      Setting("scheduler", d.get("scheduler", "dpm++"), choices=tuple(SCHEDULERS),
                              help="diffusers scheduler"),
                      Setting("guidance_scale", d.get("guidance_scale", 3.0), 0.0, 30.0,
                              help="classifier-free guidance"),
                      Setting("negative_prompt", help="what to avoid (the guidance's other branch)"),
                      *steer_settings()))

    @classmethod
    def read_card(cls, folder) -> ModelCard:
        cfg = read_foley_json(folder)
        return card_from_config(folder, cfg, "ldm", cfg["mel"]["sample_rate"], DIFFUSION_TASKS, max_duration=30.0)

    # --- settings ------------------------------------------------------------------------------
    def _defaults(self) -> dict:
        return self.model.cfg.defaults

    def _latent_frames(self, seconds: float) -> int:
        return self.model.latent_frames(seconds)

    def _settings(self, r: GenerationRequest) -> tuple[int, float, str]:
        from .components import SCHEDULERS

        d = self._defaults()
        steps = r.steps or int(d.get("steps", 25))
        guidance = r.guidance_scale if r.guidance_scale is not None else float(d.get("guidance_scale", 3.0))
        scheduler = r.scheduler or d.get("scheduler", "dpm++")
        if r.task != "generate" and r.scheduler is None:
            scheduler = "ddim"  # masked sampling is most faithful with a deterministic first-order solver
        if scheduler not in SCHEDULERS:  # the name, checked before any work
            raise RequestError(f"unknown scheduler '{scheduler}'; choose one of {', '.join(SCHEDULERS)}")
        if r.negative_prompt and (guidance is None or guidance == 1.0):
            # without guidance there is no unconditional branch for the negative prompt to replace
            raise RequestError(f"a negative prompt needs guidance: pass --guidance above 1 (this model samples "
                               f"with guidance {guidance} by default)")
        return steps, guidance, scheduler

    def _used(self, meta: dict, r: GenerationRequest) -> dict:
        """The provenance ``meta`` with the steps, guidance and scheduler this request was sampled with."""
        steps, guidance, scheduler = self._settings(r)
        return record_used(meta, {"steps": steps, "guidance_scale": guidance, "scheduler": scheduler})

    def _noise(self, seeds: list[int], width: int) -> torch.Tensor:
        """Initial noise, one generator per item, so a seed gives the same sample in any batch."""
        import torch

        shape = (self.model.vae.config.latent_channels, self.model.latent_height, width)
        return torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(s)) for s in seeds])

    # --- generation ----------------------------------------------------------------------------
    def _generate(self, requests: list[GenerationRequest]) -> list[Audio]:
        items = expand(requests)  # (request index, variation, request, seed)
        groups: dict[tuple, list] = defaultdict(list)
        results: dict[tuple[int, int], Audio] = {}
        for it in items:
            # control curves (explicit, or the prompt's shape words with a control adapter): one item at a time,
            # through the adapter and/or with its noise optimised (steer.py)
            if it[2].steering or self.prior_only(it[2]):
                from .steer import steered

                results[(it[0], it[1])] = steered(self, it[2], it[3], it[1])
                continue
            groups[(it[2].duration, *self._settings(it[2]))].append(it)
        window = self._window()
        for (duration, steps, guidance, scheduler), group in groups.items():
            if duration > window:
                for it in group:
                    results[(it[0], it[1])] = self._long_form(it[2], it[3], steps, guidance, scheduler, window,
                                                                  variation=it[1])
                continue
            width = self._latent_frames(duration)
            z = self._sample([it[2] for it in group], [it[3] for it in group], width, steps, guidance, scheduler)
            waves = self._decode(z, duration)
            for it, w in zip(group, waves, strict=True):
                draw = partial(self._draw_one, it[2], width, steps, guidance, scheduler, duration)
                w, seed, redrawn = self._draw_audible(draw, it[3], first=w)
                audio = self._finish(w, it[2], seed, it[1])
                if redrawn:
                    audio.meta["redrawn"] = redrawn
                results[(it[0], it[1])] = audio
        return [results[(i, j)] for i, j, _, _ in items]

    def uses_adapter(self, r: GenerationRequest) -> bool:
        """The request's target curves drive the model's control adapter (it has one and the request allows it; with
        ``--backend onnx`` the adapter runs in torch beside the controlled UNet graph, ``unet_control.onnx``)."""
        return bool(r.control_adapter) and self.model.has_control

    def prior_only(self, r: GenerationRequest) -> bool:
        """A text-only request whose prompt names a shape (the prior makes curves) on a model with a control adapter:
        sampled through :func:`~foley.families.ldm.steer.steered` with the adapter and no steering iterations. (The
        cheap checks first: the torch-free ONNX generator loads nothing for a prompt without shape words.)"""
        from ... import curves as cv

        return (r.task == "generate" and r.prior and not r.steering and bool(cv.prior(r.prompt))
                and self.uses_adapter(r))

    def _draw_one(self, r, width, steps, guidance, scheduler, duration, seed) -> np.ndarray:
        return self._decode(self._sample([r], [seed], width, steps, guidance, scheduler), duration)[0]

    def _sample(self, reqs, seeds, width, steps, guidance, scheduler, **kw) -> torch.Tensor:
        m = self.model
        texts = [r.prompt for r in reqs] + [r.negative_prompt or "" for r in reqs]
        emb = m.encode_text(texts)
        n = len(reqs)
        from .model import Conditioning

        cond = Conditioning(emb.tokens[:n], emb.mask[:n], emb.pooled[:n])
        uncond = Conditioning(emb.tokens[n:], emb.mask[n:], emb.pooled[n:])
        noise = self._noise(seeds, width)
        return m.denoise(cond, uncond, noise, steps=steps, guidance=guidance, scheduler=scheduler,
                         callback=self.on_step, **kw)

    def _decode(self, z: torch.Tensor, duration: float) -> list[np.ndarray]:
        import torch

        with torch.no_grad():
            wave = self.model.mel_to_wave(self.model.latent_to_mel(z))
        n = int(round(duration * self.sample_rate))
        wave = wave[..., :n]
        if wave.shape[-1] < n:
            wave = torch.nn.functional.pad(wave, (0, n - wave.shape[-1]))
        return [w.numpy() for w in wave]

    def _finish(self, samples: np.ndarray, r: GenerationRequest, seed: int, variation: int,
                post: bool = True) -> Audio:
        samples = np.nan_to_num(samples, nan=0.0, posinf=0.0, neginf=0.0)
        audio = Audio(samples, self.sample_rate)
        if post:  # remove DC, keep the true peak under -1 dBTP
            audio = Audio(samples - samples.mean(axis=-1, keepdims=True), self.sample_rate).limit(-1.0)
        audio.meta = self._used(self.provenance(r, seed, variation), r)
        return audio

    # --- long-form: windows joined by latent outpainting ----------------------------------------
    def _window(self) -> float:
        return float(self.model.cfg.extra.get("max_window_seconds", 12.0))

    def _outpaint_sizes(self, window: float) -> tuple[int, int, int, int]:
        """Latent frames of one long-form window, of its overlap with the previous one (outpainted), of the stretch
        where the kept latents hand over to the new ones (a linear ramp; card ``extra.outpaint_ramp_seconds``,
        default :data:`OUTPAINT_RAMP_SECONDS`; 0 = a hard join), and of the previous window's last frames that are
        not kept but sampled again (its edge; ``extra.outpaint_discard_seconds``, default
        :data:`OUTPAINT_DISCARD_SECONDS`)."""
        from .controlnet import frame_seconds

        m = self.model
        win = m.latent_frames(window)
        overlap = max(m.frame_multiple // m.f_vae, win // 4)
        frame = frame_seconds(m)
        seconds = float(m.cfg.extra.get("outpaint_discard_seconds", OUTPAINT_DISCARD_SECONDS))
        discard = min(overlap - 1, max(0, int(round(seconds / frame))))
        seconds = float(m.cfg.extra.get("outpaint_ramp_seconds", OUTPAINT_RAMP_SECONDS))
        return win, overlap, min(overlap - discard - 1, max(0, int(round(seconds / frame)))), discard

    def seams(self, duration: float) -> list[float]:
        """Seconds at which each long-form window takes over from the previous one (text to audio): the middle of
        its hand-over ramp, where the outpainting joins could show. None within one window."""
        if duration <= self._window():
            return []
        from .controlnet import frame_seconds

        m = self.model
        total = m.latent_frames(duration)
        win, overlap, ramp, discard = self._outpaint_sizes(self._window())
        return [(f - discard - ramp / 2) * frame_seconds(m) for f in range(win, total, win - overlap)]

    def _long_form(self, r, seed, steps, guidance, scheduler, window, planes=None, variation: int = 0) -> Audio:
        """Text to a sound longer than one window: windows joined by latent outpainting. ``planes`` [1, C, H, total]
        (the control adapter's input over the whole sound): each window reads its own stretch."""
        import torch

        m = self.model
        total = m.latent_frames(r.duration)
        win, overlap, ramp, discard = self._outpaint_sizes(window)
        keep = torch.zeros(1, 1, 1, win)
        kept = overlap - discard                   # the previous window's frames that stay (its edge is sampled again)
        keep[..., :kept - ramp] = 1.0
        if ramp:  # the kept stretch's last frames: kept less and less (1 -> 0), so the new window takes over softly
            keep[..., kept - ramp:kept] = torch.linspace(1.0, 0.0, ramp + 2)[1:-1]

        def control(start: int) -> dict:
            if planes is None:
                return {}
            part = planes[..., start:start + win]
            if part.shape[-1] < win:  # the last window reaches past the sound's end: no curve there
                part = torch.nn.functional.pad(part, (0, win - part.shape[-1]))
            return {"control": part}

        z = self._sample([r], [seed], win, steps, guidance, scheduler, **control(0))
        pos = 1
        while z.shape[-1] < total:
            known = torch.zeros(1, z.shape[1], z.shape[2], win)
            known[..., :overlap] = z[..., -overlap:]
            nxt = self._sample([r], [window_seed(seed, pos)], win, steps, guidance, "ddim", known=known, keep=keep,
                               **control(z.shape[-1] - overlap))
            # the ramp's frames come out as keep x kept + (1 - keep) x new (the last reimpose): they replace the old
            z = torch.cat([z[..., :z.shape[-1] - discard - ramp], nxt[..., kept - ramp:]], dim=-1)
            pos += 1
        return self._finish(self._decode(z[..., :total], r.duration)[0], r, seed, variation)

    # --- editing -------------------------------------------------------------------------------
    def _edit(self, audio: Audio, r: GenerationRequest) -> list[Audio]:
        src = audio.resample(self.sample_rate).to_channels(self.channels) if (
            audio.sample_rate != self.sample_rate or audio.channels != self.channels) else audio
        steps, guidance, scheduler = self._settings(r)
        outs = []
        base = seed_of(r)
        for j in range(r.num_variations):
            seed = base + j
            fn = {"style_transfer": self._style_transfer, "inpaint": self._inpaint, "extend": self._extend,
                  "continue": self._extend, "super_resolution": self._super_resolution}[r.task]
            if r.task == "style_transfer" and r.strength == 0.0:  # no change requested: the input as it is
                out = src.copy()
                out.meta = self._used(self.provenance(r, seed, j), r)
                outs.append(out)
                continue
            out = fn(src, r, seed, steps, guidance, scheduler)
            # masked edits keep the user's samples bit-exact outside the mask: no DC removal or limiting
            outs.append(self._finish(out.samples, r, seed, j, post=r.task not in ("inpaint", "extend", "continue")))
        return outs

    def _latent_of(self, audio: Audio, width: int) -> torch.Tensor:
        import torch

        m = self.model
        frames = width * m.f_vae * m.cfg.mel.hop_length
        x = torch.from_numpy(audio.pad_or_trim(frames).samples)[None]
        with torch.no_grad():
            return m.mel_to_latent(m.wave_to_mel(x))

    def _style_transfer(self, src: Audio, r, seed, steps, guidance, scheduler) -> Audio:
        strength = 0.5 if r.strength is None else r.strength
        width = self.model.latent_frames(src.duration)
        init = self._latent_of(src, width)
        z = self._sample([r], [seed], width, steps, guidance, scheduler, init=init, strength=strength)
        return Audio(self._decode(z, src.duration)[0], self.sample_rate)

    def _masked(self, src: Audio, r, seed, steps, guidance, scheduler, keep_fn, duration) -> Audio:
        width = self.model.latent_frames(duration)
        known = self._latent_of(src, width)
        keep = keep_fn(width, known)
        z = self._sample([r], [seed], width, steps, guidance, scheduler, known=known, keep=keep)
        return Audio(self._decode(z, duration)[0], self.sample_rate)

    def _time_index(self, seconds: float) -> int:
        m = self.model
        return int(round(seconds * m.cfg.mel.frame_rate / m.f_vae))

    def _inpaint(self, src: Audio, r, seed, steps, guidance, scheduler) -> Audio:
        import torch

        a, b = self._time_index(r.mask_start), self._time_index(r.mask_end)

        def keep_fn(width, known):
            keep = torch.ones(1, 1, 1, width)
            keep[..., a:max(b, a + 1)] = 0.0
            return keep

        gen = self._masked(src, r, seed, steps, guidance, scheduler, keep_fn, src.duration)
        return splice(src, gen, r.mask_start, r.mask_end)

    def _extend(self, src: Audio, r, seed, steps, guidance, scheduler) -> Audio:
        """Continue ``src`` to a total of ``r.duration`` seconds (default: 5 s more than the input)."""
        total = extended_length(src, r.duration, self.card.max_duration, EXTEND_SECONDS)
        import torch

        a = self._time_index(src.duration)

        def keep_fn(width, known):
            keep = torch.zeros(1, 1, 1, width)
            keep[..., :a] = 1.0
            return keep

        gen = self._masked(src, r, seed, steps, guidance, scheduler, keep_fn, total)
        return splice(src.pad_or_trim(gen.frames), gen, src.duration, total)

    def _super_resolution(self, src: Audio, r, seed, steps, guidance, scheduler) -> Audio:
        import torch

        m = self.model
        cutoff = r.cutoff_hz or estimate_cutoff(src)
        mel_freqs = _mel_centres(m.cfg.mel)
        keep_rows = int(np.searchsorted(mel_freqs, cutoff) // m.f_vae)

        def keep_fn(width, known):
            keep = torch.zeros(1, 1, m.latent_height, width)
            keep[:, :, :keep_rows] = 1.0
            return keep

        gen = self._masked(src, r, seed, steps, guidance, scheduler, keep_fn, src.duration)
        # keep the input's own band below the cut-off and take the generated band above it
        return Audio(band_split(src.samples, gen.samples, cutoff, self.sample_rate), self.sample_rate)


def _mel_centres(cfg) -> np.ndarray:
    import librosa

    return librosa.mel_frequencies(cfg.n_mels + 2, fmin=cfg.f_min, fmax=cfg.f_max)[1:-1]


class OnnxLDMGenerator(LDMGenerator):
    """``--backend onnx`` without torch where it can: text to audio within one window, with a solver recorded as
    linear steps (DDIM, DPM-Solver++), runs in onnxruntime and numpy (:mod:`.runtime`); any other request
    (editing, long-form, steering, other solvers) runs on the hybrid path (torch, the UNet in onnxruntime), loaded
    on first need. A process that only makes sounds from text never imports torch once the graphs are made."""

    def __init__(self, rt, card: ModelCard, folder: Path, onnx_dir, vocoder: str, model=None):
        self.rt, self.card, self._folder, self._onnx_dir, self._vocoder = rt, card, Path(folder), onnx_dir, vocoder
        self._model = model

    @classmethod
    def open(cls, folder, card: ModelCard | None, onnx_dir, vocoder: str = "auto") -> OnnxLDMGenerator | None:
        """The torch-free generator of ``folder`` (its graphs exported first when missing), or None when the model
        cannot run so (Griffin-Lim vocoder, foley-clap conditioning, an export folder with the UNet alone)."""
        from ... import threads
        from ...hashing import folder_hash
        from ...paths import home
        from . import runtime

        if vocoder != "auto":
            return None
        weights = folder_hash(folder)
        where = Path(onnx_dir) if onnx_dir else home() / "onnx" / weights
        meta, model = runtime.exported_meta(where), None
        if meta is not None and meta.get("weights_hash") != weights:
            raise ModelError(f"{where} was exported from other weights ({meta.get('weights_hash')}, this model "
                             f"{weights}); export it again")
        if meta is None:
            if onnx_dir:
                return None  # a folder with the UNet only (an older export): the hybrid path
            from .accel import export_runtime
            from .model import LatentAudioModel

            model = LatentAudioModel.from_folder(folder, vocoder=vocoder)
            try:
                export_runtime(model, where, weights, dict(model.cfg.defaults))
            except ModelError:
                return None
        card = card or cls.read_card(folder)
        gen = cls(runtime.Runtime(where, threads.current(), record=_record_schedule), card, folder, onnx_dir, vocoder)
        if model is not None:
            from . import accel

            gen._model = accel.use_onnx(model, where)
        return gen

    @property
    def model(self):
        """The hybrid torch model (the UNet in onnxruntime), loaded when a request needs it."""
        if self._model is None:
            from . import accel
            from .model import LatentAudioModel

            self._model = accel.use_onnx(LatentAudioModel.from_folder(self._folder, vocoder=self._vocoder),
                                         self._onnx_dir)
        return self._model

    def _defaults(self) -> dict:
        return self.rt.meta["defaults"]

    def _window(self) -> float:
        return float(self.rt.meta["window"])

    def _latent_frames(self, seconds: float) -> int:
        return self.rt.latent_frames(seconds)

    def runtime(self) -> dict:
        return {"backend": "onnx"}

    def weight_hash(self) -> str:
        return self.rt.meta["weights_hash"]

    def lora_target(self):
        raise ModelError("LoRA adapters merge into float torch weights: drop --quantize / --backend onnx")

    def uses_adapter(self, r: GenerationRequest) -> bool:
        """As the torch generator's, but a folder without a ``control/`` adapter answers without loading the hybrid
        torch model (a prompt's shape words reach here for every such prompt)."""
        from ...hashing import CONTROL_DIR, CONTROL_JSON

        if self._model is None and not (self._folder / CONTROL_DIR / CONTROL_JSON).is_file():
            return False
        return super().uses_adapter(r)

    def _sample(self, reqs, seeds, width, steps, guidance, scheduler, **kw):
        from .runtime import LINEAR_SOLVERS

        if kw or scheduler not in LINEAR_SOLVERS:
            return super()._sample(reqs, seeds, width, steps, guidance, scheduler, **kw)
        try:
            return self.rt.sample([r.prompt for r in reqs], [r.negative_prompt or "" for r in reqs], seeds, width,
                                  steps, guidance, scheduler, callback=self.on_step)
        except ModelError:  # a solver that is not a fixed linear step: the hybrid path
            return super()._sample(reqs, seeds, width, steps, guidance, scheduler, **kw)

    def _decode(self, z, duration: float) -> list[np.ndarray]:
        if isinstance(z, np.ndarray):
            return self.rt.decode(z, duration)
        return super()._decode(z, duration)


def _record_schedule(scheduler_config: dict, solver: str, steps: int) -> dict:
    """A solver table the export did not make (torch, once per step count)."""
    from .accel import record_schedule

    return record_schedule(scheduler_config, solver, steps)
