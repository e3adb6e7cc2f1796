"""The loaded parts of a latent-diffusion model and the operations between audio, mel and latents.

Shapes: waves are [B, C, T] at ``mel.sample_rate``; log-mels [B, C, n_mels, N] with N = T // hop;
latents [B, latent_channels, n_mels / f, N / f] where f is the VAE's downsampling factor.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ...editing import reimpose
from ...errors import ModelError
from ...features import MelConfig, log_mel
from ...formats import FORMATS, check_format
from ...text import get_text_encoder
from .components import scheduler_from, unet_downsample, vae_downsample
from .stereo import MelSpace


@dataclass
class Conditioning:
    """Text conditioning for a batch: token states [B, L, D], mask [B, L], pooled [B, D]."""

    tokens: torch.Tensor
    mask: torch.Tensor
    pooled: torch.Tensor

    def cat(self, other: Conditioning) -> Conditioning:
        return Conditioning(torch.cat([self.tokens, other.tokens]), torch.cat([self.mask, other.mask]),
                            torch.cat([self.pooled, other.pooled]))


@dataclass
class FoleyConfig:
    """Audio-side settings stored in foley.json beside the diffusers components."""

    mel: MelConfig
    channels: int
    mel_mean: float
    mel_std: float
    window_seconds: float
    max_duration: float = 30.0
    text_encoder: str = "all-MiniLM-L6-v2"
    defaults: dict = field(default_factory=lambda: {"steps": 25, "guidance_scale": 3.0, "scheduler": "dpm++"})
    extra: dict = field(default_factory=dict)
    stereo: str = "lr"
    ild_std: float = 1.0
    # global conditioning added to the timestep embedding: {} = the MiniLM sentence vector (v1);
    # {"global": "clap", ...} = foley-clap text embeddings (trained on its audio embeddings too; head in clap_text/)
    conditioning: dict = field(default_factory=dict)

    @property
    def space(self) -> MelSpace:
        return MelSpace(self.mel_mean, self.mel_std, self.stereo, self.ild_std)

    @classmethod
    def load(cls, path: Path) -> FoleyConfig:
        d = json.loads(path.read_text())
        check_format(path.parent, "ldm", d)
        return cls(mel=MelConfig.from_dict(d["mel"]), channels=d["channels"], mel_mean=d["mel_mean"],
                   mel_std=d["mel_std"], window_seconds=d["window_seconds"],
                   max_duration=d.get("max_duration", 30.0), text_encoder=d.get("text_encoder", "all-MiniLM-L6-v2"),
                   defaults=d.get("defaults", {}), extra=d.get("extra", {}), stereo=d.get("stereo", "lr"),
                   ild_std=d.get("ild_std", 1.0), conditioning=d.get("conditioning", {}))

    def to_dict(self) -> dict:
        return {"family": "ldm", "format": FORMATS["ldm"], "mel": self.mel.to_dict(), "channels": self.channels,
                "mel_mean": self.mel_mean, "mel_std": self.mel_std, "window_seconds": self.window_seconds,
                "max_duration": self.max_duration, "text_encoder": self.text_encoder, "defaults": self.defaults,
                "extra": self.extra, "stereo": self.stereo, "ild_std": self.ild_std,
                **({"conditioning": self.conditioning} if self.conditioning else {})}


def global_vectors(head, pooled: torch.Tensor, prompts) -> torch.Tensor:
    """The UNet's global condition: the sentence vector itself, or its foley-clap text embedding with the empty
    prompt (the unconditional branch, caption dropout in training) as the zero vector."""
    if head is None:
        return pooled
    with torch.no_grad():
        g = head(pooled.float())
    keep = torch.tensor([bool(str(p).strip()) for p in prompts], dtype=g.dtype)[:, None]
    return g * keep


class LatentAudioModel:
    """VAE + UNet + scheduler config + vocoder + text encoder, loaded from a model folder."""

    def __init__(self, vae, unet, scheduler_config: dict, cfg: FoleyConfig, vocoder=None, name: str = "ldm",
                 weights_hash: str = "unknown", cross_attention: bool = True, global_head=None):
        """``cross_attention=False`` runs a pooled-only UNet (AudioLDM 1 layout: ``class_embed_type=
        "simple_projection"``, attention blocks without text): the UNet gets ``encoder_hidden_states=None``
        and the text only as ``class_labels`` (the pooled vector)."""
        self.vae, self.unet, self.cfg = vae.eval(), unet.eval(), cfg
        self.cross_attention = cross_attention
        self.scheduler_config = scheduler_config
        self.vocoder = vocoder
        self.name, self.weights_hash = name, weights_hash
        self.text = get_text_encoder(cfg.text_encoder)
        self.global_head = global_head  # foley-clap text head when cfg.conditioning["global"] == "clap"
        self.f_vae = vae_downsample(vae.config)
        self.frame_multiple = self.f_vae * unet_downsample(unet.config)
        self.folder: Path | None = None  # the model folder (where an optional control adapter lives)
        self._control = None
        self._has_control: bool | None = None

    # --- the control adapter (foley/families/ldm/controlnet.py) -----------------------------------
    @property
    def has_control(self) -> bool:
        if self._has_control is None:
            from .controlnet import has_adapter

            self._has_control = self.folder is not None and has_adapter(self.folder)
        return self._has_control

    def control_adapter(self):
        """``(ControlNetModel, its card)`` of the folder's ``control/``, loaded once; None without one."""
        if self._control is None and self.has_control:
            from .controlnet import load_adapter

            self._control = load_adapter(self.folder)
        return self._control

    # --- loading -------------------------------------------------------------------------------
    @classmethod
    def from_folder(cls, folder: str | Path, vocoder: str = "auto") -> LatentAudioModel:
        folder = Path(folder)
        if vocoder not in ("auto", "griffin-lim", "neural"):
            raise ModelError(f"unknown vocoder '{vocoder}'; choose auto (the model's own) or griffin-lim")
        from .hf_pipeline import FoleyLDMPipeline  # the folder's components, loaded strictly

        pipe = FoleyLDMPipeline.from_pretrained(folder, vocoder=vocoder)
        return pipe.audio_model()

    # --- text ----------------------------------------------------------------------------------
    def encode_text(self, prompts: list[str]) -> Conditioning:
        e = self.text(prompts)
        return Conditioning(e.tokens, e.mask, global_vectors(self.global_head, e.pooled, prompts))

    # --- audio <-> mel <-> latent ----------------------------------------------------------------
    def wave_to_mel(self, wave: torch.Tensor) -> torch.Tensor:
        """[B, C, T] -> normalised log-mel [B, C, n_mels, T // hop]."""
        b, c, t = wave.shape
        m = log_mel(wave.reshape(b * c, t), self.cfg.mel)
        return self.cfg.space.encode(m.reshape(b, c, *m.shape[1:]))

    def mel_to_latent(self, mel: torch.Tensor, sample: bool = False, generator=None) -> torch.Tensor:
        dist = self.vae.encode(mel).latent_dist
        z = dist.sample(generator) if sample else dist.mean
        return z * self.vae.config.scaling_factor

    def latent_to_mel(self, z: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(z / self.vae.config.scaling_factor).sample

    def mel_to_wave(self, mel: torch.Tensor) -> torch.Tensor:
        """Normalised log-mel [B, C, n_mels, N] -> wave [B, C, N * hop] (channels vocoded as a batch)."""
        b, c, m, n = mel.shape
        logmel = self.cfg.space.decode(mel).reshape(b * c, m, n)
        logmel = logmel.clamp(min=float(torch.log(torch.tensor(self.cfg.mel.log_floor))))
        if self.vocoder is not None:
            wave = self.vocoder(logmel)
        else:
            from ...vocoder.griffinlim import griffin_lim

            wave = griffin_lim(logmel, self.cfg.mel)
        return wave.reshape(b, c, -1)

    def latent_frames(self, seconds: float) -> int:
        """Latent width covering ``seconds`` (rounded up so the UNet's downsampling divides it)."""
        return self.cfg.mel.frames_for(seconds, self.frame_multiple) // self.f_vae

    @property
    def latent_height(self) -> int:
        return self.cfg.mel.n_mels // self.f_vae

    # --- sampling ------------------------------------------------------------------------------
    def scheduler(self, name: str | None):
        return scheduler_from(name or self.cfg.defaults.get("scheduler", "dpm++"), self.scheduler_config)

    def denoise(self, cond: Conditioning, uncond: Conditioning, noise: torch.Tensor, *, steps: int,
                guidance: float, scheduler: str | None = None, init: torch.Tensor | None = None,
                strength: float = 1.0, known: torch.Tensor | None = None, keep: torch.Tensor | None = None,
                callback=None, grad: bool = False, trace: list | None = None, control: torch.Tensor | None = None,
                control_scale: float = 1.0) -> torch.Tensor:
        """Run the reverse diffusion from ``noise`` [B, C, H, W].

        ``init``+``strength`` start from a noised latent (style transfer, SDEdit); ``known``+``keep``
        (1 where the latent is kept) re-impose the known latent at every step (inpainting, outpainting,
        super-resolution in latent space). ``grad=True`` keeps the graph (steering differentiates the
        result with respect to ``noise``). ``trace``: a list that receives the latent after every step (the
        teacher's trajectory in distillation). ``control``: the control adapter's input planes [B, CHANNELS, H, W]
        (:func:`foley.families.ldm.control.target_planes`), its residuals scaled by ``control_scale``.
        """
        with torch.set_grad_enabled(grad):
            return self._denoise(cond, uncond, noise, steps=steps, guidance=guidance, scheduler=scheduler,
                                 init=init, strength=strength, known=known, keep=keep, callback=callback,
                                 trace=trace, control=control, control_scale=control_scale)

    def _denoise(self, cond, uncond, noise, *, steps, guidance, scheduler, init, strength, known, keep,
                 callback, trace=None, control=None, control_scale=1.0) -> torch.Tensor:
        sched = self.scheduler(scheduler)
        sched.set_timesteps(steps)
        timesteps = sched.timesteps
        if init is not None and strength < 1.0:
            start = int(round(len(timesteps) * (1.0 - strength)))
            timesteps = timesteps[start:]
            if hasattr(sched, "set_begin_index"):
                sched.set_begin_index(start * getattr(sched, "order", 1))
            if len(timesteps) == 0:
                return init
            x = sched.add_noise(init, noise, timesteps[:1])
        else:
            x = noise * sched.init_noise_sigma
        use_cfg = guidance is not None and guidance != 1.0
        both = uncond.cat(cond) if use_cfg else cond
        text = ({"encoder_hidden_states": both.tokens, "encoder_attention_mask": both.mask}
                if self.cross_attention else {"encoder_hidden_states": None})
        net = None
        if control is not None:
            from .controlnet import residuals

            net = self.control_adapter()[0]
            control = torch.cat([control, control]) if use_cfg else control
        for i, t in enumerate(timesteps):
            inp = torch.cat([x, x]) if use_cfg else x
            inp = sched.scale_model_input(inp, t)
            extra = {} if net is None else residuals(net, inp, t, both.tokens, both.mask, both.pooled, control,
                                                     control_scale)
            out = self.unet(inp, t, class_labels=both.pooled, **text, **extra).sample
            if use_cfg:
                out_u, out_c = out.chunk(2)
                out = out_u + guidance * (out_c - out_u)
            x = sched.step(out, t, x).prev_sample
            if known is not None:
                x = reimpose(x, known, noise, keep, sched, timesteps, i)
            if trace is not None:
                trace.append(x.detach().clone())
            if callback is not None:
                callback(i + 1, len(timesteps))
        return x
