"""Cold start and training throughput.

    python bench/startup_train.py [--threads 2] [--no-record]

Cold start: `foley --help` (must not import torch) and "first audio" (a fresh process that loads the
starter model and writes 1 s), medians of several runs. Training: optimizer steps per second of
each family's shipped configuration on random inputs of the real shapes (batch 16), the same
process, one after the other.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from common import record  # noqa: E402

FOLEY = [sys.executable, "-m", "foley"]


def _time(cmd: list[str], repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
        out.append(time.perf_counter() - t)
    return out


def _steps_per_s(step, n: int = 6) -> float:
    step()  # warm-up
    t = time.perf_counter()
    for _ in range(n):
        step()
    return n / (time.perf_counter() - t)


def training_rates(threads: int) -> list[tuple[str, str, float]]:
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel

    from foley.families.ldm.components import default_unet_config, default_vae_config
    from foley.train.loop import load_recipe

    torch.set_num_threads(threads)
    recipe = load_recipe(ROOT / "recipes" / "starter-ldm.toml")
    rows = []

    vae = AutoencoderKL.from_config(default_vae_config(2, 64, recipe["vae"]))
    opt = torch.optim.AdamW(vae.parameters())
    x = torch.randn(16, 2, 64, 64)

    def vae_step():
        post = vae.encode(x).latent_dist
        loss = (vae.decode(post.sample()).sample - x).abs().mean() + 1e-6 * post.kl().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    rows.append(("ldm", "VAE [32,64,128,128], 1.024 s stereo mel crops", _steps_per_s(vae_step)))

    unet = UNet2DConditionModel.from_config(default_unet_config(8, 8, 384, {**recipe["unet"], "latent_frames": 32}))
    opt = torch.optim.AdamW(unet.parameters())
    z, tok, pooled = torch.randn(16, 8, 8, 32), torch.randn(16, 24, 384), torch.randn(16, 384)

    def unet_step():
        t = torch.randint(0, 1000, (16,))
        loss = unet(z, t, encoder_hidden_states=tok, class_labels=pooled).sample.pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    rows.append(("ldm", "UNet [32,64,128], 4.1 s latents (8×8×32)", _steps_per_s(unet_step)))

    from foley.features import MelConfig, log_mel
    from foley.vocoder.neural import NeuralVocoder

    voc = NeuralVocoder(mel=MelConfig().to_dict())
    opt = torch.optim.AdamW(voc.parameters())
    wave = torch.randn(16, 16000) * 0.1

    def voc_step():
        loss = (voc(log_mel(wave, MelConfig())) - wave[:, : 16000 // 256 * 256]).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    rows.append(("vocoder", "iSTFT vocoder, 1 s segments", _steps_per_s(voc_step)))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--model", default="starter")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()

    help_times = _time([*FOLEY, "--help"], args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        first = _time([*FOLEY, "generate", "a short beep", "-d", "1", "--seed", "0", "-m", args.model,
                       "-o", str(Path(tmp) / "a.wav")], max(2, args.repeats // 2))
    probe = subprocess.run([sys.executable, "-c", "import sys, foley.cli; print('torch' in sys.modules)"],
                           capture_output=True, text=True, cwd=ROOT)
    rows = training_rates(args.threads)
    body = ["| measure | value |", "|---|---|",
            f"| `foley --help`, median of {len(help_times)} | {statistics.median(help_times):.2f} s |",
            f"| torch imported by the CLI module | {probe.stdout.strip()} |",
            f"| first audio: new process, load `{args.model}`, write 1 s, median of {len(first)} | "
            f"{statistics.median(first):.2f} s |", "",
            f"Training throughput, batch 16, {args.threads} torch threads, random inputs of the real shapes:", "",
            "| family | configuration | steps/s |", "|---|---|---|"]
    body += [f"| {fam} | {cfg} | {rate:.2f} |" for fam, cfg, rate in rows]
    text = "\n".join(body)
    if args.no_record:
        print(text)
    else:
        record("Cold start and training throughput", text)


if __name__ == "__main__":
    main()
