"""Compare Griffin-Lim (32 and 64 iterations) with a trained neural vocoder on held-out clips.

    .venv/bin/python bench/vocoder.py --vocoder models/starter/vocoder --data corpora/synth/manifest.jsonl

Quality: multi-resolution STFT distance (auraloss defaults) and L1 log-mel distance to the original
audio, over ``--n`` held-out (split "valid") mono clips of ``--seconds`` at the mel's sample rate.
Speed: seconds to vocode 10 s of stereo audio (two channels as a batch), median of ``--repeats``,
all vocoders in the same process. Prints a markdown table, appends it (with the command, machine,
date and git commit) under "## Vocoder" in docs/benchmarks.md, and saves a spectrogram PNG.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "bench"))
from common import commit, machine  # noqa: E402

SECTION = "## Vocoder"


def _seconds_per_10s(vocoder, mel_cfg, repeats: int) -> float:
    """Median wall time to vocode 10 s of stereo (2 x log-mel [64, N]) from a fixed random log-mel."""
    import torch

    from foley.features import log_mel

    gen = torch.Generator().manual_seed(0)
    wave = 0.1 * torch.randn(2, int(10 * mel_cfg.sample_rate), generator=gen)
    mel = log_mel(wave, mel_cfg)
    times = []
    with torch.no_grad():
        vocoder(mel)  # warm-up
        for _ in range(repeats):
            t0 = time.perf_counter()
            vocoder(mel)
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _plot(path: Path, rows: dict, mel_cfg, clips: list[int]) -> None:
    """Linear-frequency STFT magnitude (dB) of ``clips`` (columns) for each vocoder (rows)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from foley.features import stft
    from foley.fsutil import atomic_path

    fig, axes = plt.subplots(len(rows), len(clips), figsize=(5 * len(clips), 2.0 * len(rows)),
                             sharex=True, sharey=True, squeeze=False)
    for r, (name, wave) in enumerate(rows.items()):
        for c, i in enumerate(clips):
            db = 20 * torch.log10(stft(wave[i: i + 1].float(), mel_cfg)[0].abs() + 1e-5).numpy()
            ax = axes[r][c]
            ax.imshow(db, origin="lower", aspect="auto", vmin=-80, vmax=max(0.0, float(db.max())), cmap="magma",
                      extent=(0, wave.shape[-1] / mel_cfg.sample_rate, 0, mel_cfg.sample_rate / 2000))
            ax.set_title(f"{name} (clip {i})", fontsize=9)
            if c == 0:
                ax.set_ylabel("kHz")
    for ax in axes[-1]:
        ax.set_xlabel("seconds")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=64)
    plt.close(fig)


def append_section(doc: Path, text: str) -> None:
    """Append ``text`` at the end of the "## Vocoder" section of ``doc`` (created if missing)."""
    from foley.fsutil import write_text_atomic

    old = doc.read_text(encoding="utf-8") if doc.exists() else "# Benchmarks\n"
    lines = old.rstrip("\n").split("\n")
    if SECTION not in lines:
        write_text_atomic(doc, old.rstrip("\n") + f"\n\n{SECTION}\n\n{text.rstrip()}\n")
        return
    start = lines.index(SECTION)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    before = "\n".join(lines[:end]).rstrip("\n")
    after = "\n".join(lines[end:])
    write_text_atomic(doc, before + f"\n\n{text.rstrip()}\n" + (f"\n{after}\n" if after else ""))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--vocoder", required=True, help="neural vocoder folder (save_pretrained)")
    p.add_argument("--data", action="append", required=True, help="JSONL manifest (repeatable)")
    p.add_argument("--n", type=int, default=32, help="held-out clips to score")
    p.add_argument("--seconds", type=float, default=2.0, help="length of each scored clip")
    p.add_argument("--repeats", type=int, default=5, help="timing repeats (median)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads")
    p.add_argument("--png", type=Path, default=ROOT / "docs" / "img" / "vocoder_spectrograms.png")
    p.add_argument("--doc", type=Path, default=ROOT / "docs" / "benchmarks.md")
    p.add_argument("--cache-dir", type=Path, default=None, help="decoded-clip cache of ClipDataset")
    args = p.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from foley.data.dataset import ClipDataset
    from foley.features import log_mel
    from foley.vocoder import load_vocoder
    from foley.vocoder.griffinlim import GriffinLim
    from foley.vocoder.train import crop_to_hop, spectral_distance, spread_indices

    torch.set_num_threads(args.threads)
    neural = load_vocoder(args.vocoder)
    cfg = neural.mel_config
    ds = ClipDataset([Path(d) for d in args.data], sample_rate=cfg.sample_rate, channels=1,
                     clip_seconds=args.seconds, split="valid", cache_dir=args.cache_dir)
    n = min(args.n, len(ds))
    if n == 0:
        sys.exit(f"{', '.join(args.data)}: no held-out (valid) clips to score")
    target = crop_to_hop(torch.stack([ds[i]["audio"][0] for i in spread_indices(len(ds), n)]), cfg)
    mel = log_mel(target, cfg)

    vocoders = {"Griffin-Lim 32 it.": GriffinLim(cfg, n_iter=32),
                "Griffin-Lim 64 it.": GriffinLim(cfg, n_iter=64),
                f"neural ({Path(args.vocoder).name})": neural}
    rows, waves = [], {"original": target}
    with torch.no_grad():
        for name, voc in vocoders.items():
            out = torch.cat([voc(mel[i: i + 8]) for i in range(0, n, 8)])
            d = spectral_distance(out, target, cfg)
            speed = _seconds_per_10s(voc, cfg, args.repeats)
            rows.append((name, d.mrstft, d.mel_l1, speed))
            waves[name] = out
    base = rows[0][3]
    params = sum(p.numel() for p in neural.parameters())
    table = ["| vocoder | MR-STFT distance ↓ | L1 log-mel ↓ | s per 10 s stereo | speed vs GL-32 |",
             "|---|---|---|---|---|"]
    table += [f"| {name} | {mr:.4f} | {ml:.4f} | {sp:.4f} | {base / sp:.2f}× |" for name, mr, ml, sp in rows]
    _plot(args.png, waves, cfg, clips=sorted({0, n // 2, n - 1}))
    print("\n".join(table))
    print(f"spectrograms: {args.png}")

    cmd = " ".join(shlex.quote(a) for a in [".venv/bin/python", "bench/vocoder.py", *(argv or sys.argv[1:])])
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    png = os.path.relpath(args.png, args.doc.parent)
    record = "\n".join([
        f"### Vocoder comparison, {now}", "",
        f"- command: `{cmd}`",
        f"- machine: {machine()}, torch {torch.__version__}, {args.threads} torch thread(s)",
        f"- git commit: {commit()}",
        f"- data: {n} held-out clips of {args.seconds:g} s (split \"valid\") from {', '.join(args.data)}, "
        f"mono, {cfg.sample_rate} Hz, log-mel {cfg.n_mels} bands, n_fft {cfg.n_fft}, hop {cfg.hop_length}",
        f"- neural vocoder: {args.vocoder} ({params / 1e6:.2f} M parameters)",
        "- MR-STFT: auraloss MultiResolutionSTFTLoss defaults (FFT 1024/2048/512); speed: median of "
        f"{args.repeats} runs on 10 s of stereo", "",
        *table, "", f"Spectrograms: ![original / Griffin-Lim / neural]({png})", ""])
    append_section(args.doc, record)
    print(f"appended to {args.doc}")


if __name__ == "__main__":
    main()
