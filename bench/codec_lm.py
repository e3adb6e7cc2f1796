"""Codec and token-LM speed benchmark.

    python bench/codec_lm.py [--model starter-lm] [--threads 2] [--random] [--no-record]

Prints and records: codec encode/decode speed (x real time, 10 s of stereo, whole and chunked as the LM
decodes), LM real-time factor for 10 s at the folder's default sampling (guidance on), the same without
guidance, first streamed chunk latency, and peak RSS. ``--random`` measures a random model with the sizes of
recipes/starter-codec.toml + starter-lm.toml (speed only: its sounds are noise), for when no trained model
exists yet.
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="starter-lm")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--random", action="store_true", help="measure a random model of the starter's sizes")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()

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
