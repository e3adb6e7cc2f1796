"""Our latent-diffusion sampler vs diffusers' own AudioLDMPipeline: same weights, config and noise.

    python bench/ldm_vs_diffusers.py [--size starter|tiny] [--steps 25] [--duration 10] [--repeats 3]
                                     [--threads 2] [--guidance 3.0] [--scheduler dpm++] [--no-record]

One set of random-weight components in the AudioLDM 1 format, at the size of our starter model
(recipes/starter-ldm.toml: VAE and UNet widths, latent channels, mel settings, noise schedule), but mono
and conditioned only on the pooled text vector (the format ``AudioLDMPipeline`` runs):

- ``AutoencoderKL`` over log-mels laid out [B, 1, frames, n_mels] (time is the height, as AudioLDM);
- ``UNet2DConditionModel`` with ``class_embed_type="simple_projection"``, ``class_embeddings_concat=True``
  and per-block ``cross_attention_dim`` equal to the block widths (its attention blocks attend to
  themselves, since the pipeline passes ``encoder_hidden_states=None``);
- ``SpeechT5HifiGan`` whose upsampling product equals the mel hop;
- a tiny ``ClapTextModelWithProjection`` that the pipeline only asks for its dtype (the prompts enter as
  MiniLM pooled vectors through ``prompt_embeds`` / ``negative_prompt_embeds``).

Both sides get the same scheduler class and config (``components.scheduler_from``) and a generator with
the same seed, so they draw the same initial latents. Side A is ``AudioLDMPipeline.__call__``; side B is
our path, ``LatentAudioModel.denoise`` (``cross_attention=False``) + ``latent_to_mel`` + ``mel_to_wave``
on the same objects. The equivalence is checked first (final latents and waveforms), then the two are
timed interleaved in one process (A B B A ...: the order flips every repeat so drift in machine load
hits both). Prints and records median seconds per clip, the ratio ours/diffusers and peak RSS.

Differences that remain by construction (none changes the numbers here): ``mel_to_wave`` undoes our mel
normalisation (mean 0, std 1 here: exact no-ops) and clamps at ``log(log_floor)`` before the vocoder, which the
pipeline does not (random VAE outputs never reach that floor); our own generator rounds 10 s up to 640 mel
frames (a multiple of VAE x UNet downsampling), the pipeline to 632, so both sides get the pipeline's shape.
What this measures is the sampler and decoding on one format; the stereo starter's own speed is bench/ldm.py.
Time it on a quiet machine: with two torch threads and another busy process, thread waits dominate.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from common import peak_rss_mb, record  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "recipes" / "starter-ldm.toml"
PROMPT = "footsteps on gravel"

# --size tiny: a few-second equivalence check (tests/test_ldm_vs_diffusers.py); starter comes from RECIPE
TINY = {
    "audio": {"sample_rate": 16000},
    "mel": {"n_mels": 16},
    "vae": {"block_out_channels": [8, 16], "latent_channels": 4, "layers_per_block": 1, "norm_num_groups": 4},
    "unet": {"block_out_channels": [16, 32], "layers_per_block": 1, "attention_head_dim": 8, "norm_num_groups": 8},
    "diffusion": {"prediction_type": "v_prediction", "beta_start": 0.0015, "beta_end": 0.0195},
    "vocoder_channels": 16,
}
TOLERANCE = 1e-4  # max |difference| relative to the diffusers side's max |value| (the same ops give 0)
ONNX_TOLERANCE = 1e-2  # --onnx: relative max |difference| (other kernels' rounding through every step)
ONNX_DIFF: list[float] = []
VOCODER_CHANNELS = 64  # HiFi-GAN width for --size starter (same module on both sides, so it adds equally)


@dataclass
class Parts:
    """The shared components and both front ends: ``pipe`` (diffusers) and ``ours`` (LatentAudioModel)."""

    pipe: object
    ours: object
    cond: object      # Conditioning of PROMPT (MiniLM tokens [1, L, 384], mask, pooled [1, 384])
    uncond: object    # Conditioning of "" (the unconditional branch)
    scheduler_config: dict


def recipe_for(size: str) -> dict:
    if size == "tiny":
        return TINY
    return tomllib.loads(RECIPE.read_text())


def upsample_factors(hop: int) -> list[int]:
    """Split the mel hop into HiFi-GAN upsampling rates (largest first, product == hop)."""
    rates, rest = [], hop
    while rest > 1:
        f = next((f for f in (8, 5, 4, 3, 2) if rest % f == 0), rest)
        rates.append(f)
        rest //= f
    return sorted(rates, reverse=True)


def build(size: str = "starter", seed: int = 0) -> Parts:
    """Random-weight AudioLDM-format components at ``size``, wrapped by both pipelines."""
    import torch
    from diffusers import AudioLDMPipeline, AutoencoderKL, UNet2DConditionModel
    from diffusers.utils import logging as dlog
    from transformers import ClapTextConfig, ClapTextModelWithProjection, SpeechT5HifiGan, SpeechT5HifiGanConfig

    from foley.families.ldm.components import default_unet_config, default_vae_config, scheduler_from, vae_downsample
    from foley.families.ldm.model import Conditioning, FoleyConfig, LatentAudioModel
    from foley.families.ldm.train import noise_scheduler_config
    from foley.features import MelConfig
    from foley.text import MiniLMEncoder

    dlog.set_verbosity_error()  # AudioLDMPipeline is deprecated and says so on every construction
    recipe = recipe_for(size)
    mel = MelConfig(**{"sample_rate": recipe["audio"].get("sample_rate", 16000), **recipe.get("mel", {})})
    torch.manual_seed(seed)
    vae = AutoencoderKL.from_config(default_vae_config(1, mel.n_mels, recipe["vae"]))
    f = vae_downsample(vae.config)
    unet_cfg = default_unet_config(vae.config.latent_channels, mel.n_mels // f, MiniLMEncoder.dim, recipe["unet"])
    unet_cfg.update({  # AudioLDM 1: pooled text as a concatenated class embedding, no text in attention
        "sample_size": mel.frames_for(10.24) // f,
        "cross_attention_dim": list(unet_cfg["block_out_channels"]),
        "class_embed_type": "simple_projection", "class_embeddings_concat": True,
    })
    unet = UNet2DConditionModel.from_config(unet_cfg)
    rates = upsample_factors(mel.hop_length)
    vocoder = SpeechT5HifiGan(SpeechT5HifiGanConfig(
        model_in_dim=mel.n_mels, sampling_rate=mel.sample_rate,
        upsample_initial_channel=recipe.get("vocoder_channels", VOCODER_CHANNELS), upsample_rates=rates,
        upsample_kernel_sizes=[2 * r + r % 2 for r in rates], resblock_kernel_sizes=[3, 7],
        resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5]], normalize_before=False)).eval()
    text = ClapTextModelWithProjection(ClapTextConfig(
        vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=80, projection_dim=MiniLMEncoder.dim)).eval()
    sched_cfg = noise_scheduler_config(recipe)
    pipe = AudioLDMPipeline(vae=vae, text_encoder=text, tokenizer=None, unet=unet,
                            scheduler=scheduler_from("ddim", sched_cfg), vocoder=vocoder)
    pipe.set_progress_bar_config(disable=True)
    # log-mels go to the vocoder as the VAE gives them (mean 0, std 1: no normalisation to undo)
    cfg = FoleyConfig(mel=mel, channels=1, mel_mean=0.0, mel_std=1.0, window_seconds=10.24)
    ours = LatentAudioModel(vae, unet, sched_cfg, cfg, vocoder, name=f"audioldm-{size}", cross_attention=False)
    e = ours.encode_text([PROMPT, ""])
    cond = Conditioning(e.tokens[:1], e.mask[:1], e.pooled[:1])
    uncond = Conditioning(e.tokens[1:], e.mask[1:], e.pooled[1:])
    return Parts(pipe, ours, cond, uncond, sched_cfg)


def latent_shape(parts: Parts, seconds: float) -> tuple[int, int, int, int]:
    """The pipeline's own latent shape for ``seconds``: [1, C, frames / f, n_mels / f] (frames rounded up to f)."""
    import numpy as np

    pipe = parts.pipe
    f, voc = pipe.vae_scale_factor, pipe.vocoder.config
    frames = int(np.ceil(int(seconds / (np.prod(voc.upsample_rates) / voc.sampling_rate)) / f) * f)
    return 1, pipe.unet.config.in_channels, frames // f, pipe.vocoder.config.model_in_dim // f


def run_diffusers(parts: Parts, seconds: float, steps: int, guidance: float, scheduler: str, seed: int,
                  latents=None, callback=None):
    """Side A: ``AudioLDMPipeline.__call__`` -> waveform [1, seconds * sr] (numpy float32)."""
    import torch

    from foley.families.ldm.components import scheduler_from

    parts.pipe.scheduler = scheduler_from(scheduler, parts.scheduler_config)
    out = parts.pipe(prompt_embeds=parts.cond.pooled, negative_prompt_embeds=parts.uncond.pooled,
                     num_inference_steps=steps, guidance_scale=guidance, audio_length_in_s=seconds,
                     generator=torch.Generator().manual_seed(seed), latents=latents, callback=callback,
                     callback_steps=1, output_type="np")
    return out.audios


def run_ours(parts: Parts, seconds: float, steps: int, guidance: float, scheduler: str, seed: int,
             noise=None, latents_out: dict | None = None, model=None):
    """Side B: ``denoise`` + ``latent_to_mel`` + ``mel_to_wave`` -> waveform [1, seconds * sr] (numpy float32).

    The VAE's mel [1, 1, frames, n_mels] reaches ``mel_to_wave`` in AudioLDM's layout, whose reshape then
    hands the vocoder [1, frames, n_mels], the layout SpeechT5HifiGan takes.
    """
    import torch

    m = model or parts.ours
    if noise is None:
        noise = torch.randn(latent_shape(parts, seconds), generator=torch.Generator().manual_seed(seed))
    z = m.denoise(parts.cond, parts.uncond, noise, steps=steps, guidance=guidance, scheduler=scheduler)
    if latents_out is not None:
        latents_out["z"] = z
    with torch.no_grad():
        wave = m.mel_to_wave(m.latent_to_mel(z))[:, 0]
    return wave[:, :int(seconds * m.cfg.mel.sample_rate)].numpy()


def equivalence(parts: Parts, seconds: float, steps: int, guidance: float, scheduler: str, seed: int = 0) -> dict:
    """Run both sides from the same initial latents; max |difference| of final latents and waveforms,
    each relative to the magnitude of the diffusers result."""
    import numpy as np
    import torch

    noise = torch.randn(latent_shape(parts, seconds), generator=torch.Generator().manual_seed(seed))
    seen: dict = {}

    def grab(step, t, latents):
        seen["z"] = latents.clone()

    wave_a = run_diffusers(parts, seconds, steps, guidance, scheduler, seed, latents=noise.clone(), callback=grab)
    ours: dict = {}
    wave_b = run_ours(parts, seconds, steps, guidance, scheduler, seed, noise=noise.clone(), latents_out=ours)
    za, zb = seen["z"], ours["z"]
    same_shape = wave_a.shape == wave_b.shape
    return {"latent_max_abs": float((za - zb).abs().max()), "latent_scale": float(za.abs().max()),
            "wave_max_abs": float(np.abs(wave_a - wave_b).max()) if same_shape else float("inf"),
            "wave_scale": float(np.abs(wave_a).max()), "wave_shape": tuple(wave_a.shape), "same_shape": same_shape,
            "finite": bool(np.isfinite(wave_a).all() and np.isfinite(wave_b).all())}


def equivalent(eq: dict, tol: float = TOLERANCE) -> bool:
    """Same shapes, finite, and final latents and waveforms within ``tol`` of the diffusers result's scale."""
    return (eq["same_shape"] and eq["finite"] and eq["latent_max_abs"] <= tol * eq["latent_scale"]
            and eq["wave_max_abs"] <= tol * eq["wave_scale"])


def _status_kib(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak() -> bool:
    """Reset this process's peak RSS (VmHWM) to its current RSS (Linux /proc/self/clear_refs); False if unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@dataclass
class Run:
    """One timed call: wall seconds, process CPU seconds (all threads), and where /proc allows it the peak RSS
    during the call and its rise over the RSS just before (MB)."""

    wall: float
    cpu: float
    peak_mb: float | None
    rise_mb: float | None


def timed(fn) -> Run:
    before = _status_kib("VmRSS") if reset_peak() else None
    t, c = time.perf_counter(), time.process_time()
    fn()
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    hwm = _status_kib("VmHWM") if before is not None else None
    if hwm is None:
        return Run(wall, cpu, None, None)
    return Run(wall, cpu, hwm / 1024, (hwm - before) / 1024)


def with_onnx_unet(parts: Parts, folder: Path):
    """A second front end over the same components whose UNet runs in onnxruntime (``--backend onnx``)."""
    import copy

    from foley.families.ldm import accel

    m = copy.copy(parts.ours)  # shallow: the VAE, vocoder and text encoder are the same objects
    m.weights_hash = "bench-random"
    accel.export_onnx(m, folder / "onnx")
    return accel.use_onnx(m, folder / "onnx")


def interleaved(parts: Parts, d: float, steps: int, guidance: float, scheduler: str,
                repeats: int, onnx=None) -> dict[str, list[Run]]:
    """One warm-up each, then ``repeats`` rounds (A B, B A, ...), each checked to give the same audio (the onnx
    side: within :data:`ONNX_TOLERANCE`, its float rounding; its largest difference is kept in ``ONNX_DIFF``)."""
    import numpy as np

    sides = {"diffusers": lambda s: run_diffusers(parts, d, steps, guidance, scheduler, s),
             "ours": lambda s: run_ours(parts, d, steps, guidance, scheduler, s)}
    if onnx is not None:
        sides["ours-onnx"] = lambda s: run_ours(parts, d, steps, guidance, scheduler, s, model=onnx)
    for fn in sides.values():  # warm-up (allocator, thread pool, first-call caches)
        fn(0)
    runs: dict[str, list[Run]] = {k: [] for k in sides}
    for r in range(repeats):
        outs = {}
        for name in (list(sides) if r % 2 == 0 else list(sides)[::-1]):
            run = timed(lambda fn=sides[name], seed=r + 1, key=name, box=outs: box.__setitem__(key, fn(seed)))
            runs[name].append(run)
            print(f"repeat {r + 1} {name:9s} {run.wall:.3f} s (cpu {run.cpu:.3f} s)", flush=True)
        scale = max(float(np.abs(outs["diffusers"]).max()), 1e-12)
        diff = float(np.abs(outs["ours"] - outs["diffusers"]).max())
        if diff > TOLERANCE * scale:
            sys.exit(f"repeat {r + 1}: the two sides gave different audio (max |diff| {diff:.3g})")
        if onnx is not None:
            diff = float(np.abs(outs["ours-onnx"] - outs["diffusers"]).max()) / scale
            ONNX_DIFF.append(diff)
            if diff > ONNX_TOLERANCE:
                sys.exit(f"repeat {r + 1}: the onnx side differs by {diff:.3g} of the audio's peak")
    return runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", choices=["starter", "tiny"], default="starter")
    ap.add_argument("--steps", type=int)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--guidance", type=float)
    ap.add_argument("--scheduler")
    ap.add_argument("--onnx", action="store_true", help="add a third side: ours with the UNet in onnxruntime")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    defaults = recipe_for("starter").get("defaults", {})
    steps = args.steps or int(defaults.get("steps", 25))
    guidance = args.guidance if args.guidance is not None else float(defaults.get("guidance_scale", 3.0))
    scheduler = args.scheduler or defaults.get("scheduler", "dpm++")
    d = args.duration
    parts = build(args.size)
    eq = equivalence(parts, d, steps, guidance, scheduler)
    print(f"equivalence: final latents max |diff| {eq['latent_max_abs']:.3g} (scale {eq['latent_scale']:.3g}), "
          f"waveform max |diff| {eq['wave_max_abs']:.3g} (scale {eq['wave_scale']:.3g})", flush=True)
    if not equivalent(eq):
        sys.exit(f"not equivalent: {eq}")
    import tempfile

    tmp = tempfile.TemporaryDirectory()
    onnx = with_onnx_unet(parts, Path(tmp.name)) if args.onnx else None
    runs = interleaved(parts, d, steps, guidance, scheduler, args.repeats, onnx)
    body = report(args, parts, eq, runs, steps, guidance, scheduler)
    if args.no_record:
        print(body)
    else:
        record(f"Latent diffusion: ours vs diffusers AudioLDMPipeline ({args.size})", body)


def report(args, parts: Parts, eq: dict, runs: dict[str, list[Run]], steps: int, guidance: float,
           scheduler: str) -> str:
    """The Markdown section: setup, equivalence, per-side table, ratio with its run-to-run spread."""
    d = args.duration
    per_clip = {k: statistics.median(r.wall for r in v) * 10.0 / d for k, v in runs.items()}
    cpu = {k: statistics.median(r.cpu for r in v) * 10.0 / d for k, v in runs.items()}
    ratio = per_clip["ours"] / per_clip["diffusers"]
    pairs = [a.wall / b.wall for a, b in zip(runs["ours"], runs["diffusers"], strict=True)]
    if ratio <= 1.0:
        verdict = "not slower"
    elif max(pairs) > 1.0 > min(pairs):
        verdict = "slower in the median, but within the run-to-run spread"
    else:
        verdict = "SLOWER"
    counts = {k: sum(p.numel() for p in getattr(parts.pipe, k).parameters()) / 1e6 for k in ("unet", "vae", "vocoder")}

    def mem(v: list[Run]) -> str:
        if any(r.peak_mb is None for r in v):
            return "n/a (no /proc/self/clear_refs)"
        return f"{max(r.peak_mb for r in v):.0f} MB (+{max(r.rise_mb for r in v):.0f} MB)"

    label = {"diffusers": "diffusers AudioLDMPipeline", "ours": "ours (LatentAudioModel)",
             "ours-onnx": "ours, UNet in onnxruntime (`--backend onnx`)"}
    onnx = []
    if "ours-onnx" in runs:
        o_pairs = [b.wall / a.wall for a, b in zip(runs["ours-onnx"], runs["diffusers"], strict=True)]
        speed = per_clip["diffusers"] / per_clip["ours-onnx"]
        onnx = [f"Speed-up diffusers / ours with the UNet in onnxruntime: **{speed:.2f}x**"
                f" (per-round {min(o_pairs):.2f}-{max(o_pairs):.2f}); its audio differs from diffusers' by at most "
                f"{max(ONNX_DIFF):.2g} of the peak (float rounding of other kernels carried through the steps; "
                "the torch sides are bit-equal).", ""]
    return "\n".join([
        f"Same random-weight AudioLDM-format components at `--size {args.size}` (mono, float32): "
        f"UNet {counts['unet']:.2f} M, VAE {counts['vae']:.2f} M, SpeechT5HifiGan {counts['vocoder']:.2f} M "
        f"parameters; latents {list(latent_shape(parts, d))} for {d:g} s; {steps} {scheduler} steps, guidance "
        f"{guidance:g} (CFG batch of 2); {args.threads} thread(s); {args.repeats} interleaved repeats (order flipped "
        "every repeat) after one warm-up each. Both sides run the same operations, so the ratio measures the "
        "overhead of each loop around them.",
        "",
        f"Equivalence from the same initial latents: final latents max |diff| {eq['latent_max_abs']:.2g} (scale "
        f"{eq['latent_scale']:.2g}), waveforms max |diff| {eq['wave_max_abs']:.2g} (scale {eq['wave_scale']:.2g}); "
        "every timed pair gave the same audio.",
        "",
        "| side | median s per 10 s clip | median CPU s per 10 s clip | all runs (s) | peak RSS in a run (rise) |",
        "| --- | --- | --- | --- | --- |",
        *[f"| {label[k]} | {per_clip[k]:.3f} | {cpu[k]:.3f} | {', '.join(f'{r.wall:.3f}' for r in v)} | {mem(v)} |"
          for k, v in runs.items()],
        "",
        f"Ratio ours / diffusers: **{ratio:.3f}** ({verdict}; per-pair ratios {min(pairs):.3f}-{max(pairs):.3f}). "
        f"Process peak RSS {peak_rss_mb():.0f} MB (both sides, MiniLM and the components loaded once).",
        "",
        *onnx,
    ])


if __name__ == "__main__":
    main()
