"""Does a latent-diffusion VAE keep what the prompts ask for? Reconstruction of held-out clips.

    python bench/vae_recon.py --model models/starter --model runs/starter-v0/models/starter [-n 48]

For each model folder (foley.json + vae/): encode → decode (posterior mean) the log-mels of ``-n``
held-out synth clips (4.096 s, the valid split) and report the log-mel L1 error, and for the clips whose
caption says they move between the speakers, the left-right level-difference slope (dB/s, mean over
bands) of the input vs the reconstruction and their correlation (0 when the output does not move):
a VAE that collapses the stereo image gives slope 0. All models in one run, side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from common import record  # noqa: E402

MOVING = ("from left to right", "from right to left", "left-to-right", "right-to-left")


def _clips(manifest: Path, n: int) -> tuple[list, list]:
    from foley.data.dataset import select_split
    from foley.data.manifest import read_manifest

    rows = select_split(read_manifest(manifest), "valid", 0.03)
    moving = [r for r in rows if any(m in (r.description or "") for m in MOVING)]
    return rows[:n], moving[:n]


def measure(folder: Path, rows: list, moving: list, root: Path) -> dict:
    import torch

    from foley.audio import Audio
    from foley.families.ldm.components import load_component
    from foley.families.ldm.model import FoleyConfig
    from foley.features import log_mel

    cfg = FoleyConfig.load(folder / "foley.json")
    vae = load_component("AutoencoderKL", folder / "vae").float().eval()
    n = int(round(4.096 * cfg.mel.sample_rate))

    def rec(row):
        a = Audio.load(root / row.path).resample(cfg.mel.sample_rate).to_channels(2)
        x = torch.from_numpy(np.ascontiguousarray(a.samples[:, :n]))
        x = torch.nn.functional.pad(x, (0, n - x.shape[-1]))
        raw = log_mel(x, cfg.mel).unsqueeze(0)
        with torch.no_grad():
            out = cfg.space.decode(vae.decode(vae.encode(cfg.space.encode(raw)).latent_dist.mean).sample)
        return raw[0], out[0]

    def slope(d):
        t = np.arange(d.shape[-1]) * cfg.mel.hop_length / cfg.mel.sample_rate
        return float(np.polyfit(t, d.mean(0).numpy(), 1)[0])

    errors = [float((o - r).abs().mean()) for r, o in map(rec, rows)]
    s_in, s_out = [], []
    for r, o in map(rec, moving):
        s_in.append(slope(r[0] - r[1]))
        s_out.append(slope(o[0] - o[1]))
    # correlation only when the reconstruction moves at all (a collapsed image gives slopes ~1e-3: noise)
    moves = len(s_in) > 2 and np.mean(np.abs(s_out)) > 0.05 * np.mean(np.abs(s_in))
    corr = float(np.corrcoef(s_in, s_out)[0, 1]) if moves else 0.0
    return {"model": str(folder), "stereo": cfg.stereo, "mel_l1": float(np.mean(errors)), "n": len(errors),
            "moving": len(s_in), "ild_slope_in": float(np.mean(np.abs(s_in))) if s_in else 0.0,
            "ild_slope_out": float(np.mean(np.abs(s_out))) if s_out else 0.0, "ild_corr": corr}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", type=Path, required=True, help="model folder (repeatable)")
    ap.add_argument("--data", type=Path, default=Path("corpora/synth/manifest.jsonl"))
    ap.add_argument("-n", type=int, default=48)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    rows, moving = _clips(args.data, args.n)
    results = [measure(m, rows, moving, args.data.parent) for m in args.model]
    lines = [f"{len(rows)} held-out clips of {args.data} (valid split), {results[0]['moving']} of them moving "
             "between the speakers; encode → decode with the posterior mean.", "",
             "| model | stereo | log-mel L1 | mean abs ILD slope in → out (dB/s) | ILD slope correlation |",
             "|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['model']} | {r['stereo']} | {r['mel_l1']:.3f} | {r['ild_slope_in']:.2f} → "
                     f"{r['ild_slope_out']:.2f} | {r['ild_corr']:.2f} |")
    body = "\n".join(lines)
    print(json.dumps(results, indent=1))
    if args.no_record:
        print(body)
    else:
        record("VAE reconstruction and stereo image", body)


if __name__ == "__main__":
    main()
