"""Window seams of long-form generation: is the spectral change at a window boundary above the clip's other frames?

    python bench/seams.py --model starter-lm [--durations 4,10] [--seeds 1,2,3] [--threads 1]
        [--variant NAME:key=value,key=value ...] [--baseline NAME=old.json] [--json out.json] [--no-record]
    python bench/seams.py --model starter --durations 20,30

For every prompt of a fixed, varied list x seed x duration: generate, take the log-mel (64 bands, 16 ms hop,
both channels; floored at the clip's peak - 80 dB so the noise of near-silence does not count as change),
and the frame-to-frame change d[t] = || mel[t+1] - mel[t] ||_2 for every frame. The window boundaries come
from the pipeline (``generator.seams(duration)``: seconds where a window starts sampling after the previous
window), never from a constant. A boundary's change is the largest d within +-1 frame of it; it *exceeds*
when that is above the clip's 95th-percentile d. Reported per (model, variant, duration):

- clean clips: the share of clips with no boundary above their 95th percentile (goal >= 95 %);
- the share of boundaries above it, and the boundary change's median percentile rank among the clip's frames;
- chance: the same test at as many positions drawn at random (fixed per clip) from the same stretch of the clip
  (0.5 s before the first boundary to the end) at least 0.1 s from every boundary, i.e. what a join that is
  indistinguishable from the frames around it scores. With +-1 frame tolerance and b
  boundaries per clip a seamless joining scores about (1 - 0.1)^b, not 100 %.

``--variant`` runs the same clips with the card's long-form settings changed (token LM: ``ctx2:context_seconds=2.0``;
latent diffusion: ``hard:outpaint_ramp_seconds=0``),
side by side with the card as it is ("card"); ``--baseline old=old.json`` adds the clips of an earlier run
(``--json``, e.g. of an older commit checked out elsewhere). Appends a "Window seams (MODEL)" section to
docs/benchmarks.md unless ``--no-record``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from common import commit, record  # noqa: E402

PROMPTS = ["a dog barking", "birds chirping", "rain on a roof", "wind howling", "footsteps on gravel",
           "an electric motor spinning up", "church bells", "a car engine revving", "a door slam",
           "a crowd murmuring", "a piano melody", "thunder"]
FLOOR_DB = 80.0  # log-mel floor below the clip's peak
TOLERANCE = 1    # frames either side of a boundary
LONG_FORM_KEYS = ("context_seconds", "discard_frames")  # token-LM card settings a --variant may change
LDM_LONG_FORM_KEYS = ("outpaint_ramp_seconds", "outpaint_discard_seconds")  # the latent diffusion card's (``extra``)
EDGE = 2         # frames at each end of a clip left out (reflect padding of the STFT)
CONTROL_GAP = 0.1   # seconds between a control position and any boundary (6 frames: outside the STFT window)
CONTROL_LEAD = 0.5  # control positions start this long before the first boundary


def frame_changes(samples: np.ndarray, sample_rate: int) -> tuple[np.ndarray, int]:
    """Frame-to-frame log-mel change d [N - 1] of ``samples`` [C, T] and the hop in samples."""
    from foley.features import MelConfig, log_mel_np

    cfg = MelConfig(sample_rate=sample_rate, n_fft=1024, hop_length=256, win_length=1024, n_mels=64,
                    f_max=sample_rate / 2)
    m = log_mel_np(samples, cfg)                                      # [C, n_mels, N]
    m = np.maximum(m, m.max() - FLOOR_DB / 20 * np.log(10))           # natural log of magnitude
    d = np.sqrt(((m[..., 1:] - m[..., :-1]) ** 2).sum(axis=(0, 1)))
    return d, cfg.hop_length


def transition(seconds: float, hop: int, sample_rate: int) -> int:
    """The transition nearest ``seconds`` (transition t lies between frames t and t + 1)."""
    return int(round(seconds * sample_rate / hop - 0.5))


def boundary_change(d: np.ndarray, hop: int, sample_rate: int, seconds: float) -> float:
    """The largest change within +-TOLERANCE frames of the transition nearest ``seconds``."""
    t0 = transition(seconds, hop, sample_rate)
    lo, hi = max(EDGE, t0 - TOLERANCE), min(len(d) - EDGE, t0 + TOLERANCE + 1)
    return float(d[lo:hi].max())


def clip_figures(samples: np.ndarray, sample_rate: int, seams: list[float], rng: np.random.Generator) -> dict:
    d, hop = frame_changes(samples, sample_rate)
    inner = d[EDGE:len(d) - EDGE]
    p95 = float(np.percentile(inner, 95))
    duration = samples.shape[-1] / sample_rate

    def test(times):
        values = [boundary_change(d, hop, sample_rate, t) for t in times]
        return values, [v > p95 for v in values], [float((inner < v).mean() * 100) for v in values]

    seams = [t for t in seams if EDGE <= transition(t, hop, sample_rate) < len(d) - EDGE]  # measurable ones
    values, above, ranks = test(seams)
    # control positions: in the same stretch of the clip as the boundaries (from CONTROL_LEAD before the first),
    # CONTROL_GAP away from every boundary (beyond the STFT window and the tolerance) and from the end
    start = min(seams) - CONTROL_LEAD if seams else 0.0
    free = [t for t in np.arange(max(start, CONTROL_GAP), duration - CONTROL_GAP, hop / sample_rate)
            if all(abs(t - s) >= CONTROL_GAP for s in seams)]
    control = list(rng.choice(free, size=min(len(seams), len(free)), replace=False)) if seams and free else []
    _, control_above, _ = test(control)
    return {"p95": p95, "seams": seams, "changes": values, "above": above, "ranks": ranks,
            "control_above": control_above}


def apply_variant(gen, settings: dict) -> None:
    """Set long-form card fields on a loaded generator: the token LM's (context_seconds, discard_frames) or the
    latent diffusion model's ``extra`` (outpaint_ramp_seconds)."""
    if hasattr(gen, "lm"):
        cfg = gen.lm.cfg
        for k, v in settings.items():
            if not hasattr(cfg, k):
                raise SystemExit(f"--variant: {k} is not a setting of this model's card")
            setattr(cfg, k, v)
        return
    extra = gen.model.cfg.extra
    for k, v in settings.items():
        if k not in LDM_LONG_FORM_KEYS:
            raise SystemExit(f"--variant: {k} is not a long-form setting of this model "
                             f"({', '.join(LDM_LONG_FORM_KEYS)})")
        extra[k] = v


def parse_variant(text: str) -> tuple[str, dict]:
    name, _, rest = text.partition(":")
    settings = {}
    for item in filter(None, rest.split(",")):
        k, _, v = item.partition("=")
        settings[k.strip()] = json.loads(v)
    return name, settings


def positions(gen, duration: float, edges: bool) -> list[float]:
    """The boundaries to test: ``gen.seams(duration)``; with ``edges``, for a latent diffusion model whose windows
    hand over through a ramp, the ramp's first and last frame beside its middle (a soft join could show at either
    end instead)."""
    seams = gen.seams(duration)
    if not edges or hasattr(gen, "lm"):
        return seams
    from foley.families.ldm.controlnet import frame_seconds

    _, _, ramp, _ = gen._outpaint_sizes(gen._window())
    half = ramp / 2 * frame_seconds(gen.model)
    return sorted(t + d for t in seams for d in ((-half, 0.0, half) if ramp else (0.0,)))


def run(gen, durations, seeds, prompts, edges: bool = False) -> list[dict]:
    rows = []
    for duration in durations:
        seams = positions(gen, duration, edges)
        for p in prompts:
            for s in seeds:
                a = gen.generate(p, duration=duration, seed=s)[0]
                rng = np.random.default_rng([s, int(duration * 1000), prompts.index(p)])
                fig = clip_figures(a.samples, a.sample_rate, seams, rng)
                rows.append({"prompt": p, "seed": s, "duration": duration, **fig})
    return rows


def summary(rows: list[dict]) -> dict:
    with_seams = [r for r in rows if r["seams"]]
    above = [x for r in with_seams for x in r["above"]]
    control = [x for r in with_seams for x in r["control_above"]]
    ranks = [x for r in with_seams for x in r["ranks"]]
    return {"clips": len(with_seams), "seams": len(with_seams[0]["seams"]) if with_seams else 0,
            "clean": 100 * statistics.fmean(not any(r["above"]) for r in with_seams) if with_seams else float("nan"),
            "chance": 100 * statistics.fmean(not any(r["control_above"]) for r in with_seams) if with_seams
            else float("nan"),
            "above": 100 * statistics.fmean(above) if above else float("nan"),
            "control_above": 100 * statistics.fmean(control) if control else float("nan"),
            "rank": statistics.median(ranks) if ranks else float("nan")}


def per_boundary(rows: list[dict]) -> list[tuple[float, float, float]]:
    """(seconds, share above p95 %, median rank) for every boundary position."""
    return [(t, 100 * statistics.fmean(r["above"][i] for r in rows), statistics.median(r["ranks"][i] for r in rows))
            for i, t in enumerate(rows[0]["seams"])]


def tables(results: dict, durations: list[float]) -> str:
    lines = ["| variant | duration | boundaries (s) | clips | clean clips (goal >= 95 %) | chance (same test off the "
             "boundaries) | boundaries above p95 | control positions above p95 | median rank of boundary change |",
             "|---|---|---|---|---|---|---|---|---|"]
    detail = ["| variant | duration | boundary (s) | above p95 | median rank |", "|---|---|---|---|---|"]
    for name, res in results.items():
        for d in durations:
            rows = [r for r in res["rows"] if r["duration"] == d]
            s = summary(rows)
            if not s["clips"]:
                lines.append(f"| {name} | {d:g} s | none (one window) | {len(rows)} | — | — | — | — | — |")
                continue
            seams_txt = ", ".join(f"{x:.2f}" for x in rows[0]["seams"])
            lines.append(f"| {name} | {d:g} s | {seams_txt} | {s['clips']} | **{s['clean']:.0f} %** | "
                         f"{s['chance']:.0f} % | {s['above']:.0f} % | {s['control_above']:.0f} % | {s['rank']:.0f} |")
            detail += [f"| {name} | {d:g} s | {t:.2f} | {share:.0f} % | {rank:.0f} |"
                       for t, share, rank in per_boundary(rows)]
    return "\n".join(lines) + "\n\nPer boundary:\n\n" + "\n".join(detail)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="starter-lm")
    ap.add_argument("--durations", default=None, help="seconds, comma-separated (LM: 4,10; LDM: 20,30)")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--prompts", type=int, default=len(PROMPTS), help="the first N prompts of the list")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--edges", action="store_true",
                    help="latent diffusion: also test each hand-over ramp's first and last frame")
    ap.add_argument("--variant", action="append", default=[], help="NAME:key=value,... (long-form card settings)")
    ap.add_argument("--baseline", action="append", default=[],
                    help="NAME=PATH: a --json file of an earlier run (e.g. an older commit), shown first")
    ap.add_argument("--json", type=Path, help="write every clip's figures here")
    ap.add_argument("--no-record", action="store_true")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    import foley

    gen = foley.load(a.model)
    if not hasattr(gen, "seams"):
        raise SystemExit(f"{a.model}: its generator reports no window boundaries (no seams())")
    is_lm = hasattr(gen, "lm")
    durations = [float(x) for x in (a.durations or ("4,10" if is_lm else "20,30")).split(",")]
    seeds = [int(x) for x in a.seeds.split(",")]
    prompts = PROMPTS[: a.prompts]
    variants = [parse_variant(v) for v in a.variant] + [("card", {})]
    if is_lm:
        base = {k: getattr(gen.lm.cfg, k) for k in LONG_FORM_KEYS if hasattr(gen.lm.cfg, k)}
    else:
        from foley.families.ldm.pipeline import OUTPAINT_DISCARD_SECONDS, OUTPAINT_RAMP_SECONDS

        base = {"outpaint_ramp_seconds": gen.model.cfg.extra.get("outpaint_ramp_seconds", OUTPAINT_RAMP_SECONDS),
                "outpaint_discard_seconds": gen.model.cfg.extra.get("outpaint_discard_seconds",
                                                                   OUTPAINT_DISCARD_SECONDS)}

    results = {}
    for item in a.baseline:
        name, _, path = item.partition("=")
        results[name] = json.loads(Path(path).read_text())["card"]
    t0 = time.perf_counter()
    for name, settings in variants:
        apply_variant(gen, {**base, **settings})
        rows = run(gen, durations, seeds, prompts, a.edges)
        results[name] = {"settings": {**base, **settings}, "commit": commit(), "rows": rows}
        print(f"[{name}] {len(rows)} clips, {time.perf_counter() - t0:.0f} s", flush=True)
    elapsed = time.perf_counter() - t0

    settings_txt = "; ".join(f"{name} (commit {res.get('commit', '?')}): {json.dumps(res['settings'])}"
                             for name, res in results.items())
    body = (f"Model {a.model} ({gen.weight_hash()[:8]}), {len(prompts)} prompts x seeds {a.seeds}, durations "
            f"{', '.join(f'{d:g} s' for d in durations)}; torch threads {a.threads}; {elapsed:.0f} s in all. "
            f"Long-form settings per variant: {settings_txt}.\n\n"
            "Frame-to-frame change: L2 distance between consecutive log-mel frames (64 bands, 16 ms hop, both "
            "channels, floored at peak - 80 dB). A boundary's change is the largest within +-1 frame of it; "
            "it is *above* when over the clip's 95th-percentile change. Clean clips: no boundary above. Chance: "
            "the same test at as many random positions of the same stretch of the clip, >= 0.1 s from every "
            "boundary (what a join indistinguishable from the frames around it scores). Boundaries are read from "
            "the pipeline (`seams(duration)`).\n\n" + tables(results, durations))
    if a.json:
        a.json.write_text(json.dumps(results, indent=1, default=float))
    if a.no_record:
        print(body)
    else:
        record(f"Window seams ({a.model})", body)


if __name__ == "__main__":
    main()
