"""Quality bar of our neural codec on held-out real audio, against mel + Griffin-Lim at the same data rate.

    .venv/bin/python bench/quality_codec.py [--codec models/starter-lm/codec | runs/codec/codec/final]
        [--data M.jsonl ...] [-n 48] [--seconds 4] [--threads 2] [--plots DIR] [--no-record]

Clips: the held-out ("valid") split of the manifests with the training rule (hash split, valid_fraction
0.03 as in recipes/starter-codec.toml; the split does not depend on the seed), clips of at least
``--min-seconds`` (manifest duration), ``-n`` of them spread evenly over the split (manifest order), mixed
to mono at the codec rate, the first ``--seconds`` of each (shorter clips are scored at their own length,
never padded with silence); digitally silent crops are dropped. Too few held-out clips: the first clips of
the manifests, said so in the output and the record.

Rows (metrics of foley.eval.paired against the original, mean over clips with a 95 % percentile-bootstrap CI
from foley.eval.stats):

- codec, n codebooks (n = 1..n_q): encode with n codebooks, decode; n * log2(codebook_size) * frame_rate bit/s.
- mel + GL at the same rate: log-mel with M bands (hop 256, FFT 1024, 0..sr/2), averaged down in time to F
  frames/s, each value quantised uniformly to b bits over [peak - 80 dB, peak] of the clip (the peak is one
  float of side information per clip, not counted), then linearly interpolated back to hop 256, mel -> linear
  by the filterbank's pseudo-inverse and fast Griffin-Lim (foley.vocoder.griffinlim). b = 4 and F = 25 by
  default, M = round(rate / (F * b)), and F is then adjusted to rate / (M * b) so M * F * b equals the codec's
  bit rate exactly (F stays 25 for the starter codec's 0.5 / 1 / 1.5 / 2 kbps: M = 5 / 10 / 15 / 20).
- mel64 + GL, unquantised: the full 64-band float log-mel at 62.5 frames/s and the same Griffin-Lim, the
  ceiling of any mel + Griffin-Lim scheme.

Griffin-Lim's phase is not the original's, so its SI-SDR is meaningless (near or below 0 dB); mel distance
and LSD are the fair comparison. Writes one spectrogram grid PNG per plotted clip into ``--plots`` and, unless
``--no-record``, appends the table to docs/benchmarks.md via bench/common.record().
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

DEFAULT_CODECS = ("models/starter-lm/codec", "runs/codec/codec/final")
DEFAULT_DATA = ("corpora/real_sfx/balanced.jsonl", "corpora/music/manifest.jsonl")
VALID_FRACTION = 0.03       # [audio] valid_fraction of recipes/starter-codec.toml
MIN_HELDOUT = 8             # fewer usable held-out clips than min(n, this): fall back to the first clips
SILENT_PEAK = 1e-3          # a crop whose peak is below -60 dBFS is dropped (SI-SDR of silence is undefined)
RANGE_DB = 80.0             # quantiser range of the baseline below each clip's log-mel peak
METRICS = ("mel_distance", "si_sdr", "lsd")
TITLE = "Codec quality vs mel + Griffin-Lim"


def default_codec(root: Path = ROOT) -> Path | None:
    """The first finished codec folder (it has foley_codec.json, written last) of DEFAULT_CODECS."""
    from foley.codec.model import CODEC_META

    for rel in DEFAULT_CODECS:
        if (root / rel / CODEC_META).is_file():
            return root / rel
    return None


# --- data ---------------------------------------------------------------------------------------------
def spread(n_items: int, n: int) -> list[int]:
    """``n`` indices spread evenly over ``range(n_items)`` (all of them when n >= n_items)."""
    if n >= n_items:
        return list(range(n_items))
    return sorted({int(round(i)) for i in np.linspace(0, n_items - 1, n)})


def load_clips(manifests, n: int, seconds: float, sample_rate: int, min_seconds: float = 0.5,
               valid_fraction: float = VALID_FRACTION) -> tuple[list[np.ndarray], list[str], str]:
    """Mono float32 crops [L <= seconds * sr] of held-out clips, their manifest paths, and a note on the choice."""
    from foley.audio import Audio
    from foley.data.dataset import select_split
    from foley.data.manifest import read_manifest

    everything = [c for m in manifests for c in read_manifest(m)]
    long_enough = [c for c in everything if c.duration >= min_seconds]
    held = [c for c in select_split(everything, "valid", valid_fraction) if c.duration >= min_seconds]
    if len(held) >= min(n, MIN_HELDOUT):
        chosen = [held[i] for i in spread(len(held), n)]
        note = (f"held-out (valid) split, valid_fraction {valid_fraction:g}: {len(held)} clips of >= "
                f"{min_seconds:g} s, {len(chosen)} spread evenly over them")
        if len(held) < n:
            note += f" (only {len(held)} held-out clips; {n} asked for)"
    else:
        chosen = long_enough[:n]
        note = (f"WARNING: only {len(held)} held-out (valid) clips of >= {min_seconds:g} s; scoring the FIRST "
                f"{len(chosen)} clips of the manifests instead, which the codec may have been trained on")
    frames = int(round(seconds * sample_rate))
    clips, names, silent = [], [], 0
    for c in chosen:
        x = Audio.load(c.resolved_path(), sample_rate=sample_rate, channels=1).samples[0, :frames]
        if np.abs(x).max() < SILENT_PEAK:
            silent += 1
            continue
        clips.append(np.ascontiguousarray(x, np.float32))
        names.append(c.path)
    if silent:
        note += f"; {silent} silent crop(s) dropped"
    return clips, names, note


# --- the two coders -----------------------------------------------------------------------------------
def codec_kbps(codec, n_q: int) -> float:
    return n_q * math.log2(codec.codebook_size) * codec.frame_rate / 1000


@dataclass(frozen=True)
class MelCoder:
    """Log-mel with ``n_mels`` bands at ``fps`` frames/s, ``bits`` per value (None: unquantised float)."""

    sample_rate: int
    n_mels: int
    fps: float | None = None   # None: the analysis rate (sample_rate / 256)
    bits: int | None = None
    gl_iters: int = 64

    @property
    def mel_config(self):
        from foley.features import MelConfig

        return MelConfig(sample_rate=self.sample_rate, n_mels=self.n_mels, f_max=self.sample_rate / 2)

    @property
    def kbps(self) -> float | None:
        return None if self.bits is None else self.n_mels * self.fps * self.bits / 1000

    @property
    def label(self) -> str:
        if self.bits is None:
            return f"mel{self.n_mels} + GL, unquantised"
        return f"mel + GL ({self.n_mels} bands x {self.fps:.4g} fps x {self.bits} bit)"

    def code(self, log_mel):
        """Log-mel [1, M, N] at hop 256 -> what is transmitted, dequantised, back at hop 256 [1, M, N]."""
        import torch.nn.functional as F

        if self.bits is None:
            return log_mel
        n = log_mel.shape[-1]
        k = max(1, math.ceil(n * self.fps / self.mel_config.frame_rate))
        coarse = F.interpolate(log_mel, size=k, mode="area")   # average over each 1 / fps window
        top = coarse.max()
        lo = top - RANGE_DB / 20 * math.log(10)                # 80 dB of magnitude in natural-log units
        step = (top - lo) / (2 ** self.bits - 1)
        q = ((coarse.clamp(min=lo) - lo) / step).round()       # integers 0 .. 2**bits - 1: the payload
        deq = lo + q * step
        return F.interpolate(deq, size=n, mode="linear", align_corners=False) if k > 1 else deq.expand(-1, -1, n)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Mono wave [L] -> resynthesised wave [L]."""
        import torch

        from foley.features import log_mel
        from foley.vocoder.griffinlim import griffin_lim

        cfg = self.mel_config
        n = len(x)
        padded = np.pad(x, (0, -n % cfg.hop_length))
        with torch.no_grad():
            mel = self.code(log_mel(torch.from_numpy(padded)[None], cfg))
            y = griffin_lim(mel, cfg, n_iter=self.gl_iters)[0].numpy()
        return np.pad(y[:n], (0, max(0, n - len(y))))


def baseline_for(kbps: float, sample_rate: int, bits: int = 4, fps: float = 25.0, gl_iters: int = 64) -> MelCoder:
    """The mel + GL coder with M * F * b = ``kbps`` (M rounded from the nominal ``fps``, then F adjusted)."""
    rate = kbps * 1000
    m = max(1, int(round(rate / (fps * bits))))
    return MelCoder(sample_rate, m, rate / (m * bits), bits, gl_iters)


def codec_coder(codec, n_q: int):
    """Mono wave [L] -> encode with ``n_q`` codebooks, decode, crop to [L]."""
    import torch

    def run(x: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(x)[None, None]
        with torch.no_grad():
            y = codec.decode_tensor(codec.encode_tensor(t, n_q))[0, 0, : len(x)].numpy()
        return np.pad(y, (0, len(x) - len(y)))

    return run


# --- measuring ----------------------------------------------------------------------------------------
@dataclass
class Row:
    method: str              # "codec", "mel+GL" or "mel64+GL"
    label: str
    kbps: float | None       # None: unquantised
    n_q: int | None = None   # the codec rung this row belongs to (baselines too)
    values: dict = field(default_factory=dict)   # metric -> per-clip list
    stats: dict = field(default_factory=dict)    # metric -> bootstrap_ci dict


@dataclass
class Result:
    rows: list[Row]
    comparisons: list[dict]  # per codec rung: paired codec - baseline differences
    waves: dict              # plotted clip index -> {label: wave}
    sample_rate: int


def measure(codec, clips: list[np.ndarray], bits: int = 4, fps: float = 25.0, gl_iters: int = 64,
            plot_clips=(0, 1), n_resamples: int = 2000, progress=None) -> Result:
    """Score every codec rung, the same-rate mel + GL baselines and the unquantised mel64 + GL ceiling."""
    from foley.audio import Audio
    from foley.eval import paired
    from foley.eval.stats import bootstrap_ci

    sr = codec.sample_rate
    coders: list[tuple[Row, object]] = []
    for n in range(1, codec.num_quantizers + 1):
        kbps = codec_kbps(codec, n)
        base = baseline_for(kbps, sr, bits, fps, gl_iters)
        coders.append((Row("codec", f"codec, {n} codebook{'s' * (n > 1)}", kbps, n), codec_coder(codec, n)))
        coders.append((Row("mel+GL", base.label, base.kbps, n), base))
    ceiling = MelCoder(sr, 64, gl_iters=gl_iters)
    coders.append((Row("mel64+GL", ceiling.label, None), ceiling))
    plot_clips = [i for i in plot_clips if 0 <= i < len(clips)]
    waves = {i: {"original": clips[i]} for i in plot_clips}
    for row, coder in coders:
        if progress:
            progress(row.label)
        row.values = {m: [] for m in METRICS}
        for i, x in enumerate(clips):
            y = coder(x)
            ref, out = Audio(x[None], sr), Audio(np.asarray(y, np.float32)[None], sr)
            for m in METRICS:
                row.values[m].append(paired.PAIRED_METRICS[m](out, ref))
            if i in waves:
                waves[i][row.label] = y
        row.stats = {m: bootstrap_ci(v, n_resamples=n_resamples) for m, v in row.values.items()}
    rows = [r for r, _ in coders]
    comparisons = []
    for n in range(1, codec.num_quantizers + 1):
        c, b = (r for r in rows if r.n_q == n)
        comparisons.append({"n_q": n, "kbps": c.kbps, **{
            m: bootstrap_ci(np.subtract(c.values[m], b.values[m]), n_resamples=n_resamples) for m in METRICS}})
    return Result(rows, comparisons, waves, sr)


# --- reporting ----------------------------------------------------------------------------------------
def _cell(s: dict, digits: int = 3) -> str:
    if s["mean"] is None:
        return "n/a"
    ci = s["ci95"]
    return f"{s['mean']:.{digits}f}" + (f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]" if ci else "")


def table(result: Result) -> str:
    lines = ["| method | kbps | mel distance ↓ | SI-SDR dB ↑ | LSD dB ↓ |", "|---|---|---|---|---|"]
    for r in result.rows:
        kbps = f"{r.kbps:.3g}" if r.kbps is not None else "unquantised"
        lines.append(f"| {r.label} | {kbps} | {_cell(r.stats['mel_distance'])} | {_cell(r.stats['si_sdr'], 2)} "
                     f"| {_cell(r.stats['lsd'], 2)} |")
    return "\n".join(lines)


def verdicts(result: Result) -> str:
    """Per rate: the paired codec - baseline difference of mel distance and LSD, and who wins."""
    out = []
    for c in result.comparisons:
        parts = []
        for m in ("mel_distance", "lsd"):
            s = c[m]
            lo, hi = s["ci95"] or (s["mean"], s["mean"])
            who = "codec better" if hi < 0 else "baseline better" if lo > 0 else "no clear difference"
            parts.append(f"{m.replace('_', ' ')} {_cell(s)} ({who})")
        out.append(f"- {c['kbps']:.3g} kbps, codec - mel+GL per clip: " + "; ".join(parts))
    return "\n".join(out)


def plot(result: Result, folder: Path, names: list[str]) -> list[Path]:
    """One PNG per plotted clip: original and mel64+GL on top, then codec | mel+GL per rate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from foley.audio import Audio
    from foley.fsutil import atomic_path
    from foley.plot import spectrogram_db

    folder.mkdir(parents=True, exist_ok=True)
    sr, paths = result.sample_rate, []
    for i, waves in result.waves.items():
        labels = list(waves)
        grid = [["original", labels[-1]]] + [[labels[k], labels[k + 1]] for k in range(1, len(labels) - 1, 2)]
        top = float(spectrogram_db(Audio(waves["original"][None], sr)).max())
        fig, axes = plt.subplots(len(grid), 2, figsize=(11, 1.9 * len(grid)), sharex=True, sharey=True,
                                 squeeze=False)
        for r, pair in enumerate(grid):
            for c, label in enumerate(pair):
                w = np.asarray(waves[label], np.float32)
                ax = axes[r][c]
                ax.imshow(spectrogram_db(Audio(w[None], sr))[0], origin="lower", aspect="auto", cmap="magma",
                          vmin=top - 80, vmax=top, extent=(0, len(w) / sr, 0, sr / 2000))
                ax.set_title(label, fontsize=8)
                if c == 0:
                    ax.set_ylabel("kHz")
        for ax in axes[-1]:
            ax.set_xlabel("seconds")
        fig.suptitle(Path(names[i]).name if i < len(names) else f"clip {i}", fontsize=9)
        fig.tight_layout()
        path = folder / f"clip{i}_spectrograms.png"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=72, format="png")
        plt.close(fig)
        paths.append(path)
    return paths


def _rel(path) -> str:
    p = Path(path).resolve()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--codec", type=Path, default=None,
                   help=f"codec folder (default: the first of {', '.join(DEFAULT_CODECS)} that exists)")
    p.add_argument("--data", action="append", default=None,
                   help=f"JSONL manifest, repeatable (default: {', '.join(DEFAULT_DATA)})")
    p.add_argument("-n", "--n", type=int, default=48, help="held-out clips to score")
    p.add_argument("--seconds", type=float, default=4.0, help="crop length (the first seconds of each clip)")
    p.add_argument("--min-seconds", type=float, default=0.5, help="skip clips shorter than this")
    p.add_argument("--threads", type=int, default=2, help="torch threads (1 on a busy machine: 2 spinning threads on 2 "
                   "shared cores ran 9x slower here)")
    p.add_argument("--bits", type=int, default=4, help="baseline: bits per quantised log-mel value")
    p.add_argument("--fps", type=float, default=25.0, help="baseline: nominal mel frames per second")
    p.add_argument("--gl-iters", type=int, default=64, help="Griffin-Lim iterations (fast GL, momentum 0.99)")
    p.add_argument("--plots", type=Path, default=ROOT / "runs" / "quality_codec", help="spectrogram PNG folder")
    p.add_argument("--no-record", action="store_true", help="do not append to docs/benchmarks.md")
    args = p.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    folder = args.codec or default_codec()
    if folder is None:
        sys.exit(f"no trained codec: none of {', '.join(DEFAULT_CODECS)} has a finished codec folder; "
                 "train one (foley train codec) or pass --codec")
    data = args.data or [str(ROOT / d) for d in DEFAULT_DATA]
    missing = [d for d in data if not Path(d).is_file()]
    if missing:
        sys.exit(f"manifest(s) not found: {', '.join(missing)}")

    import torch

    from foley.cli.codec import load_codec
    from foley.codec.model import FoleyCodec

    torch.set_num_threads(args.threads)
    codec = load_codec(str(folder))  # a codec folder or an LM model folder (its codec/)
    if not isinstance(codec, FoleyCodec):
        sys.exit(f"{folder}: not one of our codecs (a foley codec folder or a token-LM model folder)")
    clips, names, note = load_clips(data, args.n, args.seconds, codec.sample_rate, args.min_seconds)
    print(f"clips: {note}", flush=True)
    if len(clips) < 2:
        sys.exit(f"{len(clips)} usable clip(s) in {', '.join(data)}: need at least 2")
    result = measure(codec, clips, args.bits, args.fps, args.gl_iters,
                     plot_clips=(0, len(clips) - 1), progress=lambda s: print(f"  {s} ...", flush=True))
    pngs = plot(result, args.plots, names)

    lengths = np.array([len(x) for x in clips]) / codec.sample_rate
    body = "\n".join([
        f"- codec: {_rel(folder)} (weights {codec.weight_hash()}): {codec.sample_rate} Hz, "
        f"{codec.frame_rate:g} frames/s, "
        f"{codec.num_quantizers} codebooks x {codec.codebook_size} codes",
        f"- data: {', '.join(_rel(d) for d in data)}; {note}; mono at "
        f"{codec.sample_rate} Hz, the first {args.seconds:g} s of each ({len(clips)} clips, "
        f"{lengths.min():.2f}-{lengths.max():.2f} s, mean {lengths.mean():.2f} s, scored at their own length)",
        f"- mel + GL baseline: log-mel (FFT 1024, 0-{codec.sample_rate // 2} Hz) averaged to F frames/s, "
        f"{args.bits} bit per value over [clip peak - {RANGE_DB:g} dB, peak], M = round(rate / (F x {args.bits})) "
        f"bands at nominal F = {args.fps:g} (F then adjusted so M x F x b = the codec's rate), interpolated "
        f"back to hop 256, pseudo-inverse mel -> linear, fast Griffin-Lim {args.gl_iters} iterations",
        "- metrics (foley.eval.paired): multi-resolution mel distance (mean |Δ ln mel|, 16-128 ms windows), "
        "SI-SDR, LSD; mean over clips [95 % percentile bootstrap CI]. GL rows have arbitrary phase, so their "
        f"SI-SDR is not meaningful; torch threads {args.threads}",
        "", table(result), "", "Paired differences (negative = codec closer to the original):", verdicts(result),
        "", f"Spectrograms: {', '.join(_rel(q) for q in pngs)}"])
    if args.no_record:
        print("\n" + body)
    else:
        from common import record

        record(TITLE, body)


if __name__ == "__main__":
    main()
