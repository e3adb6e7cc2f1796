"""One tiny latent-diffusion model per test session (every stage a few steps, ~20 s on 2 cores)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TINY = {
    "name": "tiny", "seed": 0,
    "audio": {"sample_rate": 16000, "channels": 2, "window_seconds": 1.024, "max_window_seconds": 2.048,
              "max_duration": 6.0, "valid_fraction": 0.2},
    "vae": {"block_out_channels": [8, 16, 16], "latent_channels": 4, "norm_num_groups": 4,
            "crop_seconds": 0.512, "batch_size": 4, "steps": 3},
    "unet": {"block_out_channels": [16, 32, 32], "attention_head_dim": 8, "norm_num_groups": 8,
             "batch_size": 4, "steps": 4, "warmup": 1},
    "train": {"threads": 1, "log_every": 1, "valid_every": 2, "save_every": 2},
    "defaults": {"steps": 3, "guidance_scale": 2.0, "scheduler": "dpm++"},
}


def tiny_corpus(folder: Path, n: int = 10) -> Path:
    """``n`` one-second stereo tones (panned, captioned) and their manifest."""
    from foley.audio import Audio
    from foley.data.manifest import write_manifest

    rows = []
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    for i in range(n):
        f0 = 110 * 2 ** (i % 5)
        x = 0.3 * np.sin(2 * np.pi * f0 * t) + 0.02 * rng.standard_normal(16000)
        Audio(np.stack([x * (1 - i / n), x * (i / n)]).astype(np.float32), 16000).save(folder / f"{i}.wav")
        rows.append({"path": f"{i}.wav", "duration": 1.0, "sample_rate": 16000, "channels": 2,
                     "description": f"a tone at {f0} hertz", "captions": [f"tone {f0}", "a steady tone"]})
    write_manifest(folder / "m.jsonl", rows)
    return folder / "m.jsonl"


@pytest.fixture(scope="session")
def tiny_ldm(tmp_path_factory) -> tuple[Path, Path]:
    """(work folder with the training run, finished model folder)."""
    from foley.families.ldm.train import train_ldm

    root = tmp_path_factory.mktemp("tiny_ldm")
    manifest = tiny_corpus(root)
    folder = train_ldm([manifest], TINY, root / "run", dest=root / "model")
    return root, folder
