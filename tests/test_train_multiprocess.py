"""`accelerate launch` with 2 CPU processes running the real `foley train ldm` command on the tiny recipe:
both ranks trained, their weights stayed identical (gradients all-reduced), one log and one checkpoint."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")

from tests.conftest import free_port  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _toml(recipe: dict) -> str:
    """The tiny recipe as TOML (tables of scalars and lists; tomllib reads, nothing in the venv writes)."""
    top = [f"{k} = {json.dumps(v)}" for k, v in recipe.items() if not isinstance(v, dict)]
    tables = [f"[{k}]\n" + "\n".join(f"{kk} = {json.dumps(vv)}" for kk, vv in v.items())
              for k, v in recipe.items() if isinstance(v, dict)]
    return "\n".join(top) + "\n\n" + "\n\n".join(tables) + "\n"


def test_two_cpu_processes_train_the_unet_in_sync(tiny_ldm, tmp_path):
    from tests.ldm_tiny import TINY

    root, _ = tiny_ldm
    run = tmp_path / "run"
    shutil.copytree(root / "run", run)
    shutil.rmtree(run / "unet")  # the VAE and latents stay; the UNet stage trains again on 2 processes
    recipe = json.loads(json.dumps(TINY))
    recipe["unet"].update(steps=4, batch_size=4)
    recipe["train"].update(save_every=2, valid_every=4)
    (tmp_path / "tiny.toml").write_text(_toml(recipe))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    cmd = [str(Path(sys.executable).with_name("accelerate")), "launch", "--multi_gpu",
           "--num_processes", "2", "--num_machines", "1", "--main_process_port", str(free_port()),
           "--mixed_precision", "no", "--dynamo_backend", "no",
           "-m", "foley", "train", "ldm", "--data", str(root / "m.jsonl"), "--recipe", str(tmp_path / "tiny.toml"),
           "--run", str(run), "--stages", "unet"]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    records = [json.loads(x) for x in (run / "unet" / "log.jsonl").read_text().splitlines()]
    losses = [r["step"] for r in records if "loss" in r]
    assert losses == [1, 2, 3, 4]  # one log, written by the main process only
    sync = [r for r in records if "weights_sha256" in r]
    assert [r["step"] for r in sync] == [2, 4]
    for r in sync:
        assert r["processes"] == 2 and len(set(r["ranks"])) == 2  # two processes really ran
        assert len(r["weights_sha256"]) == 2 and r["in_sync"]
        assert r["weights_sha256"][0] == r["weights_sha256"][1]  # identical weights on both ranks
    assert sync[0]["weights_sha256"][0] != sync[1]["weights_sha256"][0]  # and they did change between saves

    assert sorted(p.name for p in (run / "unet" / "ckpt").iterdir()) == ["last.pt"]  # no stray or per-rank files
    state = torch.load(run / "unet" / "ckpt" / "last.pt", weights_only=True)
    assert state["step"] == 4 and state["world"] == 2 and len(state["rngs"]) == 2
    assert (run / "unet" / "final").is_dir()
