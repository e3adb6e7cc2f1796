"""Build, save and strictly load the parts of a latent-diffusion model folder.

A model folder is an ordinary diffusers-style folder::

    model_index.json          which class loads which sub-folder
    foley.json                audio settings: mel config, channels, normalisation, defaults
    vae/   config.json + diffusion_pytorch_model.safetensors     (diffusers AutoencoderKL)
    unet/  config.json + diffusion_pytorch_model.safetensors     (diffusers UNet2DConditionModel)
    scheduler/scheduler_config.json                              (diffusers scheduler)
    vocoder/ config.json + diffusion_pytorch_model.safetensors   (optional; else Griffin-Lim)
"""

from __future__ import annotations

import json
from pathlib import Path

from ...errors import ModelError
from ...fsutil import write_json_atomic

WEIGHTS = "diffusion_pytorch_model.safetensors"

# Scheduler names accepted by --scheduler, mapped to diffusers classes (and solver options).
SCHEDULERS = {
    "ddim": ("DDIMScheduler", {}),
    "dpm++": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "dpm++sde": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++", "solver_order": 2}),
    "unipc": ("UniPCMultistepScheduler", {}),
    "euler": ("EulerDiscreteScheduler", {}),
    "heun": ("HeunDiscreteScheduler", {}),
    "pndm": ("PNDMScheduler", {"skip_prk_steps": True}),
}


def default_vae_config(channels: int, n_mels: int, recipe: dict | None = None) -> dict:
    r = recipe or {}
    blocks = list(r.get("block_out_channels", [32, 64, 64]))
    return {
        "in_channels": channels, "out_channels": channels,
        "down_block_types": ["DownEncoderBlock2D"] * len(blocks),
        "up_block_types": ["UpDecoderBlock2D"] * len(blocks),
        "block_out_channels": blocks,
        "layers_per_block": int(r.get("layers_per_block", 1)),
        "latent_channels": int(r.get("latent_channels", 8)),
        "norm_num_groups": int(r.get("norm_num_groups", 16)),
        "sample_size": n_mels,
        "mid_block_add_attention": bool(r.get("mid_block_attention", False)),
        "scaling_factor": 1.0,
    }


def default_unet_config(latent_channels: int, latent_height: int, text_dim: int,
                        recipe: dict | None = None, global_dim: int | None = None) -> dict:
    r = recipe or {}
    blocks = list(r.get("block_out_channels", [64, 128, 128]))
    down = ["DownBlock2D"] + ["CrossAttnDownBlock2D"] * (len(blocks) - 1)
    up = ["CrossAttnUpBlock2D"] * (len(blocks) - 1) + ["UpBlock2D"]
    return {
        "sample_size": [latent_height, int(r.get("latent_frames", 64))],
        "in_channels": latent_channels, "out_channels": latent_channels,
        "down_block_types": down, "up_block_types": up,
        "block_out_channels": blocks,
        "layers_per_block": int(r.get("layers_per_block", 1)),
        "cross_attention_dim": text_dim,
        "attention_head_dim": int(r.get("attention_head_dim", 32)),
        "norm_num_groups": int(r.get("norm_num_groups", 32)),
        # the pooled sentence vector (or its foley-clap embedding) is added to the timestep embedding
        "class_embed_type": "projection",
        "projection_class_embeddings_input_dim": global_dim or text_dim,
    }


def vae_downsample(vae_config: dict) -> int:
    return 2 ** (len(vae_config["block_out_channels"]) - 1)


def unet_downsample(unet_config: dict) -> int:
    return 2 ** (len(unet_config["block_out_channels"]) - 1)


def build(cls_name: str, config: dict):
    """Instantiate a diffusers (or foley) model class from a config dict at random init."""
    cls = _resolve(cls_name)
    return cls.from_config(config)


def _resolve(cls_name: str):
    if cls_name == "NeuralVocoder":
        from ...vocoder.neural import NeuralVocoder

        return NeuralVocoder
    import diffusers

    try:
        return getattr(diffusers, cls_name)
    except AttributeError:
        raise ModelError(f"unknown component class '{cls_name}'") from None


def save_component(model, folder: Path) -> None:
    """``save_pretrained`` into ``folder`` (config.json + safetensors)."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)


def load_component(cls_name: str, folder: Path):
    """Load a component strictly: any missing, unexpected or mis-shaped key fails and is named."""
    from safetensors.torch import load_file

    config_path, weights_path = folder / "config.json", folder / WEIGHTS
    for p in (config_path, weights_path):
        if not p.exists():
            raise ModelError(f"{folder}: missing {p.name}; the model folder is incomplete")
    cls = _resolve(cls_name)
    try:
        config = json.loads(config_path.read_text())
        model = cls.from_config(config)
    except (ValueError, TypeError, json.JSONDecodeError) as e:
        raise ModelError(f"{config_path}: invalid config ({e})") from None
    state = load_file(str(weights_path))
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or shapes:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes)):
            if keys:
                shown = ", ".join(keys[:4]) + (f" (+{len(keys) - 4} more)" if len(keys) > 4 else "")
                parts.append(f"{label}: {shown}")
        raise ModelError(f"{weights_path}: checkpoint does not match its config ({'; '.join(parts)})")
    model.load_state_dict(state, strict=True)
    return model.eval()


def scheduler_from(name: str, base_config: dict):
    """A diffusers scheduler by our short name, sharing the model's noise schedule."""
    import diffusers

    from ...errors import RequestError

    if name not in SCHEDULERS:
        raise RequestError(f"unknown scheduler '{name}'; choose one of {', '.join(SCHEDULERS)}")
    cls_name, extra = SCHEDULERS[name]
    cfg = {k: v for k, v in base_config.items() if not k.startswith("_")}
    cfg.update(extra)
    return getattr(diffusers, cls_name).from_config(cfg)


def write_model_index(folder: Path, components: dict[str, tuple[str, str]], foley_config: dict) -> None:
    import diffusers

    index = {"_class_name": "FoleyLDMPipeline", "_diffusers_version": diffusers.__version__}
    index.update({k: list(v) for k, v in components.items()})
    write_json_atomic(folder / "model_index.json", index)
    write_json_atomic(folder / "foley.json", foley_config)
