"""Training the latent-diffusion family: VAE, latent pre-encoding, UNet, export to a model folder.

Each stage writes to ``<run>/<stage>/``, checkpoints every ``save_every`` steps and resumes from its
last checkpoint after a kill. ``foley train ldm --data M.jsonl --recipe recipes/starter-ldm.toml``.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch

from ...features import MelConfig, log_mel
from ...fsutil import atomic_path, write_json_atomic
from ...train.loop import Checkpointer, progress, set_threads
from .components import default_unet_config, save_component, vae_downsample

STAGES = ("vae", "latents", "unet", "export")


# the architecture keys of each section, with the defaults of components.default_*_config
_ARCH = {"vae": {"block_out_channels": [32, 64, 64], "norm_num_groups": 16, "latent_channels": 8,
                 "layers_per_block": 1},
         "unet": {"block_out_channels": [64, 128, 128], "norm_num_groups": 32, "attention_head_dim": 32,
                  "layers_per_block": 1}}


def check_recipe(recipe: dict) -> None:
    """The [vae] and [unet] architecture numbers can build a model: one line naming the key, before any work."""
    from ...errors import FoleyError

    for section, defaults in _ARCH.items():
        r = recipe.get(section, {})
        if not isinstance(r, dict):
            raise FoleyError(f"recipe [{section}] must be a table of settings, got {type(r).__name__}")
        cfg = {**defaults, **{k: r[k] for k in defaults if k in r}}
        blocks = cfg["block_out_channels"]
        if (not isinstance(blocks, list) or not blocks
                or not all(isinstance(b, int) and not isinstance(b, bool) and b > 0 for b in blocks)):
            raise FoleyError(f"recipe [{section}] block_out_channels must be a non-empty list of positive "
                             f"integers, got {blocks!r}")
        for key in ("norm_num_groups", "latent_channels", "layers_per_block", "attention_head_dim"):
            v = cfg.get(key, 1)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise FoleyError(f"recipe [{section}] {key} must be a positive integer, got {v!r}")
        groups = cfg["norm_num_groups"]
        bad = [b for b in blocks if b % groups]
        if bad:
            raise FoleyError(f"recipe [{section}] block_out_channels = {blocks}: {bad[0]} is not divisible by "
                             f"norm_num_groups = {groups} (group normalisation needs whole groups); use "
                             f"multiples of {groups} or set norm_num_groups in [{section}]")


def _build(section: str, cls, config: dict):
    """``cls.from_config(config)``; a config the library refuses is one line naming the recipe section."""
    from ...errors import FoleyError

    try:
        return cls.from_config(config)
    except (ValueError, TypeError, IndexError, KeyError, RuntimeError) as e:
        raise FoleyError(f"recipe [{section}]: cannot build the model ({' '.join(str(e).split())[:200]})") from None


def _mel_config(recipe: dict) -> MelConfig:
    a = recipe.get("audio", {})
    return MelConfig(**{"sample_rate": a.get("sample_rate", 16000), **recipe.get("mel", {})})


def _dataset(manifests, recipe, seconds, split, out: Path, cache: bool = True):
    from ...data.dataset import ClipDataset

    a = recipe.get("audio", {})
    return ClipDataset(manifests, sample_rate=a.get("sample_rate", 16000), channels=a.get("channels", 2),
                       clip_seconds=seconds, split=split, valid_fraction=a.get("valid_fraction", 0.03),
                       cache_dir=out / "cache" if cache else None, seed=recipe.get("seed", 0))


def _loader(ds, batch_size, shuffle=True, workers=0):
    if len(ds) == 0:
        from ...errors import FoleyError

        raise FoleyError("the training split is empty: the manifests hold too few clips")
    return torch.utils.data.DataLoader(ds, batch_size=min(batch_size, len(ds)), shuffle=shuffle,
                                       drop_last=shuffle, num_workers=workers)


def _mels(batch_audio: torch.Tensor, mel: MelConfig) -> torch.Tensor:
    """[B, C, T] -> raw log-mel [B, C, n_mels, T // hop]."""
    b, c, t = batch_audio.shape
    m = log_mel(batch_audio.reshape(b * c, t), mel)
    return m.reshape(b, c, *m.shape[1:])


# --- stage 1: VAE -------------------------------------------------------------------------------
def train_vae(manifests, recipe: dict, out: Path) -> Path:
    """The ``vae`` stage (resumable, multi-process): :class:`foley.families.ldm.solvers.VAESolver`; with
    ``[vae] adopt = MODEL_FOLDER`` that model's VAE and mel statistics are taken as they are (no training), so a
    new UNet can be trained in an existing model's latent space."""
    adopt = (recipe.get("vae") or {}).get("adopt")
    if adopt:
        return adopt_vae(Path(adopt), out / "vae")
    from .solvers import VAESolver

    return VAESolver(manifests, recipe, out).run()


def adopt_vae(model: Path, stage: Path) -> Path:
    import shutil

    from ...errors import FoleyError
    from .model import FoleyConfig

    final = stage / "final"
    if (final / "config.json").exists() and (stage / "stats.json").exists():
        return final
    try:
        cfg = FoleyConfig.load(model / "foley.json")
    except (OSError, KeyError, ValueError, FoleyError) as e:
        raise FoleyError(f"[vae] adopt = {model}: not a foley latent-diffusion model folder ({e})") from None
    shutil.copytree(model / "vae", final, dirs_exist_ok=True)
    write_json_atomic(stage / "stats.json", {"mean": cfg.mel_mean, "std": cfg.mel_std, "stereo": cfg.stereo,
                                             "ild_std": cfg.ild_std, "adopted_from": str(model)})
    return final


@torch.no_grad()
def _warm_start_vae(model, folder: Path, stats: dict) -> None:
    """Start from a model folder's VAE (same architecture), re-expressed in this run's mel space.

    The input and output convolutions are rewritten so the network computes the same function in the
    new space (new normalisation, and "lr" -> "mid_ild": mid = (L + R) / 2, ild = L - R); every other
    weight is copied. Hand-written: a change of basis of two layers, which no library does.
    """
    from ...errors import FoleyError
    from .components import load_component
    from .model import FoleyConfig

    try:
        old = FoleyConfig.load(folder / "foley.json")
        src = load_component("AutoencoderKL", folder / "vae")
    except (OSError, KeyError, ValueError, FoleyError) as e:
        raise FoleyError(f"[vae] init = {folder}: not a foley latent-diffusion model folder ({e})") from e
    state = {k: v.float() for k, v in src.state_dict().items()}
    own = model.state_dict()
    bad = [k for k in own if k not in state or state[k].shape != own[k].shape]
    if bad:
        raise FoleyError(f"[vae] init = {folder}: architecture differs from the recipe's [vae] ({bad[:3]} ...)")
    m0, s0, m1, s1 = old.mel_mean, old.mel_std, stats["mean"], stats["std"]
    ild = stats.get("ild_std", 1.0)
    if old.stereo == "lr" and stats.get("stereo", "lr") == "mid_ild" and own["encoder.conv_in.weight"].shape[1] == 2:
        w, b = state["encoder.conv_in.weight"], state["encoder.conv_in.bias"]
        wl, wr = w[:, 0], w[:, 1]
        # old input x_c = (c - m0) / s0 with L = s1 a + m1 + ild b / 2, R = s1 a + m1 - ild b / 2
        state["encoder.conv_in.weight"] = torch.stack([(wl + wr) * s1 / s0, (wl - wr) * ild / (2 * s0)], 1)
        state["encoder.conv_in.bias"] = b + (wl + wr).sum(dim=(1, 2)) * (m1 - m0) / s0
        w, b = state["decoder.conv_out.weight"], state["decoder.conv_out.bias"]
        # new outputs a = (mid - m1) / s1, b = (L - R) / ild from old outputs y_c = (c - m0) / s0
        state["decoder.conv_out.weight"] = torch.stack([(w[0] + w[1]) * s0 / (2 * s1), (w[0] - w[1]) * s0 / ild])
        state["decoder.conv_out.bias"] = torch.stack([(b[0] + b[1]) * s0 / (2 * s1) + (m0 - m1) / s1,
                                                      (b[0] - b[1]) * s0 / ild])
    elif old.stereo != stats.get("stereo", "lr"):
        raise FoleyError(f"[vae] init = {folder}: cannot convert stereo '{old.stereo}' to '{stats.get('stereo')}'")
    model.load_state_dict(state, strict=True)


def _warm_start(model, cls_name: str, folder: Path, section: str, skip: tuple[str, ...] = ()) -> None:
    """Copy a model folder component's weights (same architecture) into ``model``, strictly; keys starting with a
    ``skip`` prefix keep their fresh initialisation."""
    from ...errors import FoleyError
    from .components import load_component

    try:
        src = load_component(cls_name, folder)
        state = {k: v.float() for k, v in src.state_dict().items()}
        own = model.state_dict()
        state.update({k: v for k, v in own.items() if k.startswith(skip)} if skip else {})
        model.load_state_dict(state, strict=True)
    except (OSError, RuntimeError, FoleyError) as e:
        raise FoleyError(f"[{section}] init = {folder.parent}: cannot start from it ({str(e).splitlines()[0]})") from e


def _mel_stats(ds, mel: MelConfig, path: Path, stereo: str = "lr", batches: int = 40) -> dict:
    """Log-mel statistics over a sample of the training data (computed once, then reused)."""
    from .stereo import measure

    if path.exists():
        return json.loads(path.read_text())
    raw = []
    for i, b in enumerate(_loader(ds, 16, shuffle=False)):
        raw.append(_mels(b["audio"], mel))
        if i + 1 >= batches:
            break
    stats = measure(raw, stereo)
    write_json_atomic(path, stats)
    return stats


def _space(stats: dict):
    from .stereo import MelSpace

    return MelSpace(stats["mean"], stats["std"], stats.get("stereo", "lr"), stats.get("ild_std", 1.0))


# --- stage 2: pre-encode latents ------------------------------------------------------------------
@torch.no_grad()
def encode_latents(manifests, recipe: dict, out: Path, stage: str = "latents",
                   splits: tuple[str, ...] = ("valid", "train"), cache: bool = True) -> Path:
    """Encode every clip's window(s) once: posterior mean/std [N, C, H, W] (fp16) + all captions, one file per split
    in ``<out>/<stage>/`` (fine-tuning's replay: ``stage="replay", splits=("all",)``, one window per clip, no cache of
    decoded clips)."""
    from diffusers import AutoencoderKL

    from ...data.manifest import clip_captions

    name, stage = stage, out / stage
    if all((stage / f"{s}.pt").exists() for s in splits):
        return stage
    set_threads(recipe.get("train", {}).get("threads"))
    mel = _mel_config(recipe)
    space = _space(json.loads((out / "vae" / "stats.json").read_text()))
    vae = AutoencoderKL.from_pretrained(out / "vae" / "final").eval()
    window = recipe.get("audio", {}).get("window_seconds", 4.096)
    crops = int(recipe.get("latents", {}).get("crops_per_clip", 1))
    clap = conditioning_clap(recipe)
    all_means = []
    for split in splits:
        ds = _dataset(manifests, recipe, window, split, out, cache=cache)
        means, stds, caps, clap_audio = [], [], [], []
        order = [i for i in range(len(ds)) for _ in range(crops if split == "train" else 1)]
        bar = progress(len(order), 0, f"encode {split}" if name == "latents" else f"encode {name}")
        for s in range(0, len(order), 32):
            idx = order[s:s + 32]
            items = [ds[i] for i in idx]
            x = space.encode(_mels(torch.stack([it["audio"] for it in items]), mel))
            post = vae.encode(x).latent_dist
            means.append(post.mean.half())
            stds.append(post.std.half())
            caps += [clip_captions(ds.clips[it["index"]]) for it in items]
            if clap is not None:  # the window's own foley-clap audio embedding (AudioLDM's training condition)
                from ...audio import Audio

                rate = recipe.get("audio", {}).get("sample_rate", 16000)
                clap_audio.append(torch.from_numpy(clap.embed([Audio(it["audio"].numpy(), rate) for it in items])))
            bar.update(len(idx))
        bar.close()
        mean = torch.cat(means)
        all_means.append(mean)
        with atomic_path(stage / f"{split}.pt") as tmp:
            extra = {"clap_audio": torch.cat(clap_audio).half(), "clap": clap.sha256} if clap is not None else {}
            torch.save({"mean": mean, "std": torch.cat(stds), "captions": caps, **extra}, tmp)
    if "train" not in splits:
        return stage
    scale = 1.0 / float(torch.cat(all_means).float().std())
    if (recipe.get("vae") or {}).get("adopt"):  # an adopted latent space keeps its model's scaling
        scale = float(vae.config.scaling_factor)
    write_json_atomic(stage / "scale.json", {"scaling_factor": scale})
    return stage


def conditioning_clap(recipe: dict):
    """The foley-clap of ``[conditioning] global = "clap"`` (folder ``[conditioning] clap``), else None."""
    from ...errors import FoleyError

    c = recipe.get("conditioning") or {}
    kind = c.get("global", "text")
    if kind == "text":
        return None
    if kind != "clap":
        raise FoleyError(f"[conditioning] global = {kind!r}: use 'text' (the sentence vector) or 'clap'")
    from ...clap import load_clap

    return load_clap(c.get("clap"))


# --- stage 3: UNet --------------------------------------------------------------------------------
def noise_scheduler_config(recipe: dict) -> dict:
    d = recipe.get("diffusion", {})
    return {"num_train_timesteps": 1000, "beta_schedule": "scaled_linear",
            "beta_start": d.get("beta_start", 0.0015), "beta_end": d.get("beta_end", 0.0195),
            "prediction_type": d.get("prediction_type", "v_prediction"), "clip_sample": False,
            "timestep_spacing": "trailing", "steps_offset": 0, "set_alpha_to_one": False}


def train_unet(recipe: dict, out: Path, manifests=()) -> Path:
    """The ``unet`` stage (resumable, multi-process): :class:`foley.families.ldm.solvers.UNetSolver`."""
    from .solvers import UNetSolver

    return UNetSolver(manifests, recipe, out).run()


def _diffusion_loss(model, noise_sched, text, z, caps, alphas, gamma, generator=None, timesteps=None,
                    global_fn=None, teacher=None, taught=None):
    """v-prediction loss with min-SNR weighting; ``global_fn(emb) -> [B, D]`` gives the global condition (default:
    the sentence vector). ``teacher`` (a frozen UNet) with ``taught`` ([B] bool): those items' target is the
    teacher's own prediction for the same noisy input and condition, not the clip's velocity."""
    bs = z.shape[0]
    noise = torch.randn(z.shape, generator=generator)
    ts = timesteps if timesteps is not None else torch.randint(0, noise_sched.config.num_train_timesteps, (bs,),
                                                               generator=generator)
    noisy = noise_sched.add_noise(z, noise, ts)
    target = noise_sched.get_velocity(z, noise, ts)
    emb = text(caps)
    cond = emb.pooled if global_fn is None else global_fn(emb)
    pred = model(noisy, ts, encoder_hidden_states=emb.tokens, class_labels=cond,
                 encoder_attention_mask=emb.mask).sample
    if teacher is not None and taught is not None:
        k = taught.to(noisy.device)
        with torch.no_grad():
            target = target.clone()
            target[k] = teacher(noisy[k], ts[k.cpu()], encoder_hidden_states=emb.tokens[k],
                                class_labels=None if cond is None else cond[k],
                                encoder_attention_mask=None if emb.mask is None else emb.mask[k]
                                ).sample.to(target.dtype)
    snr = alphas[ts] / (1 - alphas[ts])
    weight = torch.clamp(snr, max=gamma) / (snr + 1)  # min-SNR weighting for v-prediction
    return (weight * ((pred - target) ** 2).mean(dim=(1, 2, 3))).mean()


def _preview(recipe, out, model, ema, step):
    """Write a few sample wavs with the current EMA weights (Griffin-Lim) for ears and eyes."""
    prompts = recipe.get("train", {}).get("preview_prompts", [])
    if not prompts:
        return
    ema.store(model.parameters())
    ema.copy_to(model.parameters())
    model.eval()
    try:
        folder = export(recipe, out, out / "unet" / "preview_model", unet=model, vocoder=False)
        from .pipeline import LDMGenerator

        gen = LDMGenerator.from_folder(folder, vocoder="griffin-lim")
        for i, a in enumerate(gen.generate(prompts, duration=4.0, seed=0)):
            a.save(out / "unet" / "previews" / f"step{step:06d}_{i}.wav")
    finally:
        ema.restore(model.parameters())
        model.train()


# --- stage 4: export ------------------------------------------------------------------------------
def export(recipe: dict, out: Path, dest: Path, unet=None, vocoder: bool | Path = True) -> Path:
    """Assemble a model folder (diffusers layout + foley.json) from the stages' final weights."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel

    from .model import FoleyConfig

    dest = Path(dest)
    vae = AutoencoderKL.from_pretrained(out / "vae" / "final")
    scale = json.loads((out / "latents" / "scale.json").read_text())["scaling_factor"]
    vae.register_to_config(scaling_factor=scale)
    if unet is None:
        unet = (UNet2DConditionModel.from_pretrained(out / "unet" / "final") if (out / "unet" / "final").exists()
                else _ema_unet_from_checkpoint(out))
    # weights are stored in float16 (half the size; loading casts back to the model's float32)
    save_component(copy.deepcopy(vae).half(), dest / "vae")
    save_component(copy.deepcopy(unet).half(), dest / "unet")
    DDIMScheduler.from_config(noise_scheduler_config(recipe)).save_pretrained(dest / "scheduler")
    components = {"vae": ("diffusers", "AutoencoderKL"), "unet": ("diffusers", "UNet2DConditionModel"),
                  "scheduler": ("diffusers", "DDIMScheduler")}
    voc_src = Path(vocoder) if isinstance(vocoder, (str, Path)) else Path(
        recipe.get("vocoder", {}).get("folder", out / "vocoder" / "final"))
    if vocoder and (voc_src / "config.json").exists():
        import shutil

        shutil.copytree(voc_src, dest / "vocoder", dirs_exist_ok=True)
        components["vocoder"] = ("foley.vocoder.neural", "NeuralVocoder")
    a = recipe.get("audio", {})
    conditioning = {}
    clap = conditioning_clap(recipe)
    if clap is not None:
        from ...clap.model import save_text_head

        save_text_head(clap.net, dest / "clap_text", clap.sha256)
        conditioning = {"global": "clap", "clap": clap.name, "clap_sha256": clap.sha256,
                        "audio_embedding_p": float((recipe.get("conditioning") or {}).get("audio_p", 0.5))}
    stats = json.loads((out / "vae" / "stats.json").read_text())
    cfg = FoleyConfig(mel=_mel_config(recipe), channels=a.get("channels", 2), mel_mean=stats["mean"],
                      mel_std=stats["std"], stereo=stats.get("stereo", "lr"), ild_std=stats.get("ild_std", 1.0),
                      window_seconds=a.get("window_seconds", 4.096),
                      max_duration=a.get("max_duration", 30.0),
                      defaults=recipe.get("defaults", {"steps": 25, "guidance_scale": 3.0, "scheduler": "dpm++"}),
                      extra={"max_window_seconds": a.get("max_window_seconds", 12.0),
                             "vae_downsample": vae_downsample(vae.config), "recipe": recipe.get("name")},
                      conditioning=conditioning)
    from .components import write_model_index

    write_model_index(dest, components, cfg.to_dict())
    return dest


def _ema_unet_from_checkpoint(out: Path):
    """The EMA weights of an unfinished UNet run (export a model before the last step)."""
    from diffusers import UNet2DConditionModel
    from diffusers.training_utils import EMAModel

    from ...errors import FoleyError

    ckpt = Checkpointer(out / "unet" / "ckpt")
    if not ckpt.exists():
        raise FoleyError(f"{out / 'unet'}: no finished UNet and no checkpoint to export; run the unet stage")
    state = ckpt.read()
    recipe = json.loads((out / "recipe.json").read_text())
    lat = torch.load(out / "latents" / "valid.pt", weights_only=True)
    c, h, w = lat["mean"].shape[1:]
    from ...text import MiniLMEncoder

    model = UNet2DConditionModel.from_config(default_unet_config(c, h, MiniLMEncoder.dim,
                                                                 {**recipe.get("unet", {}), "latent_frames": w}))
    ema = EMAModel(model.parameters())
    ema.load_state_dict(state["ema"])
    ema.copy_to(model.parameters())
    print(f"exporting the EMA weights of step {state['step']} (run not finished)")
    return model.eval()


def train_ldm(manifests: list[Path], recipe: dict, out: Path, stages=STAGES, dest: Path | None = None) -> Path | None:
    """Run the requested stages in order; each resumes or is skipped when already finished."""
    out = Path(out)
    check_recipe(recipe)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "recipe.json", recipe)
    if "vae" in stages:
        train_vae(manifests, recipe, out)
    if "latents" in stages:
        encode_latents(manifests, recipe, out)
    if "unet" in stages:
        train_unet(recipe, out)
    if "vocoder" in stages:
        from ...vocoder.train import train_vocoder

        train_vocoder(manifests, recipe, out)
    if "export" in stages:
        return export(recipe, out, dest or out / "model")
    return None
