"""The distilled few-step model against its teacher, side by side in one run (issue 19, item 1).

    python bench/distill.py [--teacher starter] [--fast models/starter-fast] [--threads 2] [-n 48] [--no-record]

Prints and records:
- the steps-vs-quality curve of both: mean log-mel L1 distance to the teacher's 100-step DDIM samples (guidance as
  its default) of 8 prompts x 4 s, seed 7, for the teacher's DPM-Solver++ at 4/8/20 steps and the student's DDIM at
  1/2/4/8 steps, with seconds per clip;
- 10 s of stereo at each model's defaults (alternated, median of ``--repeats``): seconds, RTF, and their ratio;
- `foley eval control` of both (3 seeds) and the held-out Fréchet distances (log-mel and foley-encoder) of ``-n``
  sounds generated from held-out captions of the training corpora (the split no model trained on), with the
  student/teacher ratios (goal: within 5 %).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from common import record  # noqa: E402
from finetune import _generate_and_fd  # noqa: E402
from ldm import PROMPTS  # noqa: E402

HELDOUT = ["corpora/synth/manifest.jsonl", "corpora/music/manifest.jsonl", "corpora/real_sfx/balanced.jsonl"]


def _held_out(n: int):
    from foley.data.dataset import select_split
    from foley.data.manifest import clip_captions, read_manifest

    clips = []
    for m in HELDOUT:
        base = Path(m).parent
        for c in select_split(read_manifest(m), "valid", 0.03):
            c = c.model_copy()
            c.path = str(c.resolved_path(base).resolve())
            c.description = clip_captions(c)[0]
            clips.append(c)
    step = max(1, len(clips) // n)
    return clips[::step][:n]


def _control(model: str, out: Path, threads: int) -> dict:
    subprocess.run([sys.executable, "-m", "foley", "eval", "control", "--model", model, "-o", str(out),
                    "--threads", str(threads)], check=True, stdout=subprocess.DEVNULL)
    return json.loads((out / "control.json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--teacher", default="starter")
    ap.add_argument("--fast", default="models/starter-fast")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("-n", type=int, default=48, help="held-out sounds per model for the Fréchet distances")
    ap.add_argument("-o", "--out", type=Path, default=Path("runs/bench-distill"))
    ap.add_argument("--skip-eval", action="store_true", help="only the sweep and the speed")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    import foley
    from foley.features import log_mel_np

    teacher, fast = foley.load(args.teacher), foley.load(args.fast)
    td, fd = teacher.model.cfg.defaults, fast.model.cfg.defaults
    cfg = teacher.model.cfg.mel
    ref = teacher.generate(PROMPTS, duration=4.0, seed=7, scheduler="ddim", steps=100)
    ref_mels = [log_mel_np(a.samples, cfg) for a in ref]

    def dist(outs) -> float:
        return float(np.mean([np.abs(log_mel_np(o.samples, cfg) - r).mean() for o, r in zip(outs, ref_mels,
                                                                                           strict=True)]))

    rows = []
    for name, gen, sched, steps_list in (("teacher", teacher, td.get("scheduler", "dpm++"), (4, 8, 20)),
                                          ("student", fast, fd.get("scheduler", "ddim"), (1, 2, 4, 8))):
        for steps in steps_list:
            t = time.perf_counter()
            outs = gen.generate(PROMPTS, duration=4.0, seed=7, scheduler=sched, steps=steps)
            dt = (time.perf_counter() - t) / len(PROMPTS)
            rows.append((name, sched, steps, dist(outs), dt))
            print(f"{name} {sched} {steps:3d} steps: log-mel L1 to DDIM-100 {rows[-1][3]:.3f}, {dt:.2f} s/clip",
                  flush=True)

    times = {"teacher": [], "student": []}
    for i in range(args.repeats):  # alternated, so both see the same machine
        for name, gen in (("teacher", teacher), ("student", fast)):
            t = time.perf_counter()
            gen.generate(PROMPTS[i % len(PROMPTS)], duration=10.0, seed=i)
            times[name].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}

    body = [f"Teacher `{args.teacher}` (weights {teacher.weight_hash()}, defaults {td}); student `{args.fast}` "
            f"(weights {fast.weight_hash()}, defaults {fd}); torch threads {args.threads}.", "",
            "Steps vs quality (8 prompts x 4 s, seed 7): mean log-mel L1 distance to the teacher's 100-step DDIM "
            "samples (guidance {}).".format(td.get("guidance_scale")), "",
            "| model | sampler | steps | log-mel L1 to DDIM-100 | s per 4 s clip |", "|---|---|---|---|---|"]
    body += [f"| {n} | {s} | {k} | {d:.3f} | {dt:.2f} |" for n, s, k, d, dt in rows]
    body += ["", "| 10 s stereo at defaults | teacher | student | student/teacher |", "|---|---|---|---|",
             f"| median of {args.repeats} (alternated) | {med['teacher']:.2f} s (RTF {med['teacher'] / 10:.3f}) | "
             f"{med['student']:.2f} s (RTF {med['student'] / 10:.3f}) | {med['student'] / med['teacher']:.2f} "
             f"({med['teacher'] / med['student']:.1f}x faster) |",
             f"| all runs | {', '.join(f'{x:.2f}' for x in times['teacher'])} | "
             f"{', '.join(f'{x:.2f}' for x in times['student'])} | |"]

    if not args.skip_eval:
        clips = _held_out(args.n)
        res = {}
        for name, model in (("teacher", args.teacher), ("student", args.fast)):
            fds, _ = _generate_and_fd(model, clips, args.out / name, 4.0)
            ctrl = _control(model, args.out / name / "control", args.threads)
            res[name] = (fds, ctrl)
        ft, ct = res["teacher"]
        fs, cs = res["student"]
        keys = sorted(k for k in ft if not k.startswith("fd_inf") and k in fs)
        acc_t, acc_s = ct["overall"]["share"], cs["overall"]["share"]
        body += ["", f"Held-out evaluation: {len(clips)} sounds from held-out captions of {', '.join(HELDOUT)} "
                 "(4 s, seed = index), `foley eval` against the held-out clips; `foley eval control` (3 seeds).", "",
                 "| measure | teacher | student | student/teacher |", "|---|---|---|---|"]
        body += [f"| {k} | {ft[k]:.2f} | {fs[k]:.2f} | {fs[k] / ft[k]:.2f} |" for k in keys]
        body.append(f"| control: pairs right | {acc_t:.1%} | {acc_s:.1%} | {acc_s / acc_t:.2f} |")
        body.append(f"| control: mean AUC | {ct['overall']['auc_mean']:.3f} | {cs['overall']['auc_mean']:.3f} | "
                    f"{cs['overall']['auc_mean'] / ct['overall']['auc_mean']:.2f} |")
    text = "\n".join(body)
    if args.no_record:
        print(text)
    else:
        record("Distilled few-step sampler vs its teacher", text)


if __name__ == "__main__":
    main()
