"""Codec and token-LM speed benchmark.

    python bench/codec_lm.py [--model starter-lm] [--threads 2] [--random] [--no-record]
    python bench/codec_lm.py --against REV [--rounds 5] [--threads 1] [--no-record]

Prints and records: codec encode/decode speed (x real time, 10 s of stereo, whole and chunked as the LM
decodes), LM real-time factor for 10 s at the folder's default sampling (guidance on), the same without
guidance, first streamed chunk latency, and peak RSS. ``--random`` measures a random model with the sizes of
recipes/starter-codec.toml + starter-lm.toml (speed only: its sounds are noise), for when no trained model
exists yet.

``--against REV`` compares this checkout with another revision side by side: two worker processes (this
checkout's ``foley``, and REV's package files from `git archive` on PYTHONPATH; same venv, same models/) each load
the model once and warm up, then every measurement runs on both, interleaved (A B, then B A in the next round), so a
busy machine slows both alike; every request has a text of its own (a repeated one would hit the text-state
cache). Measures: LM real-time factor for 10 s with guidance and without, first streamed
chunk (warm) and the whole 10 s stream; the ratio is old / new per pair (above 1: this checkout is faster), and
every pair's audio is compared by its sha256 (the same seed must give the same sound on both sides).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from common import peak_rss_mb, record  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = ["a deep drone slowly rising in pitch", "rapid high beeps moving from left to right",
           "heavy rain on a roof", "a fast four-on-the-floor beat on a jazz drum kit, 160 bpm"]


def random_model(folder: Path) -> Path:
    """A random LM folder sized by the starter recipes (speed measurements only)."""
    import torch
    from transformers import EncodecModel

    from foley.codec.config import codec_config
    from foley.codec.model import FoleyCodec
    from foley.families.lm.model import SAMPLING_DEFAULTS, LMConfig, TokenLM, new_decoder
    from foley.train.loop import load_recipe

    c = load_recipe(ROOT / "recipes" / "starter-codec.toml")
    lm = load_recipe(ROOT / "recipes" / "starter-lm.toml")
    r = lm["lm"]
    torch.manual_seed(0)
    net = EncodecModel(codec_config(c["codec"]))
    for layer in net.quantizer.layers:
        layer.codebook.embed.normal_()
    codec = FoleyCodec(net, meta={"licence": "random"})
    decoder = new_decoder(codec, int(r["channels"]), r)
    cfg = LMConfig(sample_rate=codec.sample_rate, channels=int(r["channels"]), frame_rate=codec.frame_rate,
                   window_seconds=float(r["window_seconds"]), max_duration=float(r["max_duration"]),
                   defaults={**SAMPLING_DEFAULTS, **lm.get("defaults", {})},
                   decode={k: int(r[k]) for k in ("chunk_frames", "max_chunk_frames", "context_frames")},
                   context_seconds=r.get("context_seconds"))
    return TokenLM(codec, decoder, torch.nn.Linear(384, decoder.config.hidden_size), cfg).save(folder)


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


# --- --against REV: two worker processes, interleaved ------------------------------------------------------------
CASES = {  # name -> worker request (one 10 s sound; prompts and seeds vary by round)
    "LM real-time factor, 10 s, guidance 3": {"op": "generate"},
    "LM real-time factor, 10 s, no guidance": {"op": "generate", "guidance_scale": 1.0},
    "first streamed chunk, warm (ms)": {"op": "stream"},
    "streamed 10 s, total (s)": None,  # read from the "stream" request's answer
}


def worker(args) -> None:
    """Answer JSON requests on stdin, one line each, with timings and the sha256 of the audio made."""
    import hashlib
    import json

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    import foley

    gen = foley.load(args.model)
    gen.generate(PROMPTS[0], duration=1.0, seed=0)
    list(gen.stream(PROMPTS[0], duration=1.0, seed=0))
    print(json.dumps({"ready": foley.__file__}), flush=True)
    for line in sys.stdin:
        q = json.loads(line)
        kw = {k: q[k] for k in ("guidance_scale",) if k in q}
        t = time.perf_counter()
        if q["op"] == "generate":
            audio = gen.generate(q["prompt"], duration=10.0, seed=q["seed"], **kw)[0].samples
            first = None
        else:
            parts, first = [], None
            for c in gen.stream(q["prompt"], duration=10.0, seed=q["seed"], **kw):
                first = time.perf_counter() - t if first is None else first
                parts.append(c.samples)
            audio = np.concatenate(parts, axis=-1)
        total = time.perf_counter() - t
        sha = hashlib.sha256(np.ascontiguousarray(audio, np.float32).tobytes()).hexdigest()
        print(json.dumps({"total": total, "first": first, "sha": sha}), flush=True)


def compare(args) -> None:
    import json
    import subprocess

    from startup import _tree

    tmp = tempfile.TemporaryDirectory()
    old_tree = _tree(args.against, Path(tmp.name))
    procs = {}
    for side, tree in (("new", None), ("old", old_tree)):
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "FOLEY_MODELS": str(ROOT / "models")}
        if tree is not None:
            env["PYTHONPATH"] = str(tree)
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--model", args.model,
               "--threads", str(args.threads)]
        procs[side] = subprocess.Popen(cmd, cwd=tree or ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       text=True)
    files = {side: json.loads(p.stdout.readline())["ready"] for side, p in procs.items()}
    if not files["old"].startswith(tmp.name) or files["new"].startswith(tmp.name):
        raise SystemExit(f"the workers imported {files}, not this checkout and {args.against}")

    def ask(side: str, q: dict) -> dict:
        procs[side].stdin.write(json.dumps(q) + "\n")
        procs[side].stdin.flush()
        return json.loads(procs[side].stdout.readline())

    results = {name: {"new": [], "old": []} for name in CASES}
    same, pairs = 0, 0
    for r in range(args.rounds):
        order = ("new", "old") if r % 2 == 0 else ("old", "new")
        for name, case in CASES.items():
            if case is None:
                continue
            # a new text every time: both sides keep recent text states, and a repeated prompt would skip encoding
            q = {**case, "prompt": f"{PROMPTS[r % len(PROMPTS)]}, take {pairs + 1}", "seed": r + 1}
            answers = {side: ask(side, q) for side in order}
            pairs += 1
            same += answers["new"]["sha"] == answers["old"]["sha"]
            for side, a in answers.items():
                if case["op"] == "stream":
                    results[name][side].append(a["first"] * 1000)
                    results["streamed 10 s, total (s)"][side].append(a["total"])
                else:
                    results[name][side].append(a["total"] / 10.0)
            print(f"round {r + 1}: {name}: new {answers['new']['total']:.2f} s, old {answers['old']['total']:.2f} s",
                  flush=True)
    for p in procs.values():
        p.stdin.close()
        p.wait(60)
    tmp.cleanup()
    rows = []
    for name, v in results.items():
        ratios = [o / n for n, o in zip(v["new"], v["old"], strict=True)]
        fmt = "{:.0f}" if "ms" in name else "{:.3f}" if "factor" in name else "{:.2f}"
        rows.append(f"| {name} | {fmt.format(statistics.median(v['new']))} | {fmt.format(statistics.median(v['old']))} "
                    f"| **{statistics.median(ratios):.2f}** ({min(ratios):.2f}-{max(ratios):.2f}) |")
    body = (f"Model {args.model}; torch threads {args.threads} in each worker; {args.rounds} rounds, each measure run "
            f"on both sides back to back (order alternating), prompts and seeds varying by round; medians.\n\n"
            f"| measure | this checkout | {args.against} | old / new, median of pairs (range) |\n|---|---|---|---|\n"
            + "\n".join(rows) + f"\n\nSame audio (sha256) on both sides in {same} of {pairs} pairs.\n")
    if args.no_record:
        print(body)
    else:
        record(f"Token LM speed: this checkout vs {args.against} ({args.model}, interleaved)", body)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="starter-lm")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--random", action="store_true", help="measure a random model of the starter's sizes")
    ap.add_argument("--against", metavar="REV", help="compare with this git revision, interleaved (see above)")
    ap.add_argument("--rounds", type=int, default=5, help="--against: measurements per side and measure")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    if args.against:
        return compare(args)

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    tmp = tempfile.TemporaryDirectory()
    model = str(random_model(Path(tmp.name) / "random-starter-lm")) if args.random else args.model
    t0 = time.perf_counter()
    import foley

    gen = foley.load(model)
    gen.generate(PROMPTS[0], duration=1.0, seed=0)
    cold = time.perf_counter() - t0
    lm, codec = gen.lm, gen.lm.codec

    # codec: 10 s of stereo, each channel a batch item as the LM decodes it
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((2, 1, 10 * codec.sample_rate)).astype(np.float32))
    x *= 0.1
    codes = codec.encode_tensor(x, lm.n_q)
    enc = timed(lambda: codec.encode_tensor(x, lm.n_q), args.repeats)
    dec = timed(lambda: codec.decode_tensor(codes), args.repeats)

    def chunked():
        d = lm.chunk_decoder(2)
        d.push(codes)
        d.flush()

    dec_chunked = timed(chunked, args.repeats)

    rtf = timed(lambda: gen.generate(PROMPTS[1], duration=10.0, seed=1), args.repeats) / 10.0
    rtf_plain = timed(lambda: gen.generate(PROMPTS[1], duration=10.0, seed=1, guidance_scale=1.0),
                      args.repeats) / 10.0
    firsts, totals = [], []
    for i in range(args.repeats):
        t = time.perf_counter()
        for j, _ in enumerate(gen.stream(PROMPTS[i % len(PROMPTS)], duration=10.0, seed=i)):
            if j == 0:
                firsts.append(time.perf_counter() - t)
        totals.append(time.perf_counter() - t)

    kind = "random weights of the starter's sizes (speed only)" if args.random else model
    n_dec = sum(p.numel() for p in lm.decoder.parameters()) / 1e6
    n_codec = sum(p.numel() for p in codec.net.parameters()) / 1e6
    d, rate = lm.cfg.decode, lm.cfg.frame_rate
    first, most = d["chunk_frames"] / rate, d.get("max_chunk_frames", d["chunk_frames"]) / rate
    rows = [
        ("codec encode, 10 s stereo", f"{enc * 1000:.0f} ms ({20 / enc:.0f} x real time per channel)"),
        ("codec decode, 10 s stereo, whole", f"{dec * 1000:.0f} ms"),
        (f"codec decode, 10 s stereo, chunked as generated ({first:.2f} s doubling to {most:.2f} s, "
         f"{d['context_frames']} frames of context)", f"{dec_chunked * 1000:.0f} ms"),
        (f"LM real-time factor, 10 s, guidance {gen.sampling['guidance_scale']:g} (median of {args.repeats})",
         f"{rtf:.3f}"),
        ("LM real-time factor, 10 s, no guidance", f"{rtf_plain:.3f}"),
        (f"first streamed chunk ({first:.2f} s of audio)", f"{statistics.median(firsts) * 1000:.0f} ms"),
        ("streamed 10 s, total", f"{statistics.median(totals):.2f} s"),
        ("cold start (load + 1 s)", f"{cold:.2f} s"),
        ("peak RSS", f"{peak_rss_mb():.0f} MB"),
    ]
    body = (f"Model: {kind}; decoder {n_dec:.1f} M parameters, codec {n_codec:.2f} M; {lm.cfg.channels} "
            f"channel(s), {lm.n_q} x {codec.codebook_size} codes at {rate:g} Hz; sampling {gen.sampling}; "
            f"torch threads {args.threads}.\n\n| measure | value |\n|---|---|\n"
            + "".join(f"| {k} | {v} |\n" for k, v in rows))
    if args.no_record:
        print(body)
    else:
        record(f"Codec and token LM speed ({'random starter-size' if args.random else model})", body)
    tmp.cleanup()


if __name__ == "__main__":
    main()
