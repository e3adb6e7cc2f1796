"""Few-step distillation of the latent-diffusion family (issue 19) on the tiny model: the student's targets are the
exact DDIM step between the teacher's states, trajectories resume by chunk, the student folder loads and generates
with its own defaults, bad settings fail in one line, and the CLI writes the folder whole or not at all."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")

from foley.errors import FoleyError, RequestError  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

RECIPE = {
    "name": "tiny-fast", "seed": 0,
    "teacher": {"student_steps": 2, "teacher_steps": 4, "teacher_scheduler": "dpm++", "guidance": 2.0,
                "trajectories": 8, "valid": 4, "seconds": 1.0, "chunk": 4},
    "distill": {"steps": 6, "batch_size": 4, "warmup": 1, "lr": 1e-4},
    "train": {"threads": 1, "log_every": 1, "valid_every": 3, "save_every": 3},
}


@pytest.fixture(scope="module")
def distilled(tiny_ldm, tmp_path_factory):
    from foley.families.ldm.distill import distill_ldm

    root, teacher = tiny_ldm
    out = tmp_path_factory.mktemp("distill")
    dest = distill_ldm(teacher, "tiny", [root / "m.jsonl"], copy.deepcopy(RECIPE), out / "run", out / "fast")
    return teacher, out, dest


def test_targets_are_the_teachers_own_ddim_step(tiny_ldm, tmp_path):
    """A teacher that samples with the student's own DDIM grid and no guidance: the target v from each recorded state
    to the next is exactly the teacher's model output there (the maths of the targets and the boundaries)."""
    from foley.families.ldm.distill import DistillSolver, make_trajectories

    root, teacher = tiny_ldm
    r = copy.deepcopy(RECIPE)
    r["teacher"].update(teacher_steps=2, teacher_scheduler="ddim", guidance=1.0, trajectories=0, valid=4)
    make_trajectories(teacher, [root / "m.jsonl"], r, tmp_path)
    s = DistillSolver(teacher, r, tmp_path)
    import accelerate

    s.accelerator = accelerate.Accelerator(cpu=True)
    s.build()
    st, prompts = s.valid["states"], s.valid["prompts"]
    assert st.shape[1] == 3 and not torch.equal(st[:, 0], st[:, -1])
    emb = s.lm.encode_text(prompts)
    for k in range(2):
        x = st[:, k].float()
        with torch.no_grad():
            v = s.lm.unet(x, s.grid[k], encoder_hidden_states=emb.tokens, encoder_attention_mask=emb.mask,
                          class_labels=emb.pooled).sample
        kk = torch.full((4,), k)
        target = s.targets(x, st[:, k + 1].float(), kk)
        assert torch.allclose(s.landing(x, target, kk), st[:, k + 1].float(), atol=1e-4)  # the step lands there
        # states are stored in float16: agreement to its precision, not bit for bit
        assert torch.allclose(target, v, atol=2e-2, rtol=2e-2), float((target - v).abs().max())
    # the rollout objective: the teacher walking its own K steps lands on its recorded states (float16 error only);
    # a perturbed UNet's errors show, and they grow along its path
    with torch.no_grad():
        own = float(s.rollout_loss(s.lm.unet, st, prompts))
        other = copy.deepcopy(s.lm.unet)
        for p in other.parameters():
            p.add_(0.02 * torch.randn_like(p))
        off = float(s.rollout_loss(other, st, prompts))
    assert own < 1e-5 and off > 100 * max(own, 1e-9), (own, off)


def test_rollout_distillation_trains_on_whole_trajectories(tiny_ldm, tmp_path):
    from foley.families.ldm.distill import distill_ldm

    root, teacher = tiny_ldm
    r = copy.deepcopy(RECIPE)
    r["distill"].update(loss="rollout", steps=3)
    r["train"].update(valid_every=3, save_every=3)
    dest = distill_ldm(teacher, "tiny", [root / "m.jsonl"], r, tmp_path / "run", tmp_path / "fast")
    d = json.loads((dest / "foley.json").read_text())["extra"]["distilled"]
    assert d["loss"] == "rollout" and d["steps"] == 3 and d["valid_sample_mse"] is not None
    log = [json.loads(x) for x in (tmp_path / "run" / "distill" / "log.jsonl").read_text().splitlines()]
    assert all(r["loss"] > 0 for r in log if "loss" in r)


def test_student_folder_loads_and_generates_with_its_defaults(distilled):
    from foley.families.ldm.pipeline import LDMGenerator
    from foley.request import GenerationRequest

    teacher, out, dest = distilled
    cfg = json.loads((dest / "foley.json").read_text())
    assert cfg["defaults"] == {"steps": 2, "guidance_scale": 1.0, "scheduler": "ddim"}
    d = cfg["extra"]["distilled"]
    assert d["teacher"] == "tiny" and d["student_steps"] == 2 and d["steps"] == 6
    assert d["valid_sample_mse"] is not None and d["valid_sample_mse"] >= 0
    # the student's weights differ from the teacher's, everything else is the teacher's
    assert (dest / "unet" / "diffusion_pytorch_model.safetensors").read_bytes() != \
        (teacher / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()
    assert (dest / "vae" / "diffusion_pytorch_model.safetensors").read_bytes() == \
        (teacher / "vae" / "diffusion_pytorch_model.safetensors").read_bytes()
    assert "distilled" in (dest / "README.md").read_text()
    gen = LDMGenerator.from_folder(dest)
    steps_seen = []
    gen.on_step = lambda i, n: steps_seen.append(n)
    [a] = gen.generate(GenerationRequest(prompt="a steady tone", duration=1.0, seed=3))
    used = a.meta["settings"]
    assert used["steps"] == 2 and used["guidance_scale"] == 1.0 and a.samples.shape == (2, 16000)
    assert steps_seen and set(steps_seen) == {2}
    [b] = gen.generate(GenerationRequest(prompt="a steady tone", duration=1.0, seed=3, steps=5))  # honoured
    assert b.meta["settings"]["steps"] == 5
    with pytest.raises(RequestError, match="negative prompt needs guidance"):
        gen.generate(GenerationRequest(prompt="a tone", duration=1.0, negative_prompt="noise"))
    log = [json.loads(x) for x in (out / "run" / "distill" / "log.jsonl").read_text().splitlines()]
    assert any("valid_loss_1" in r for r in log)


def test_trajectories_resume_by_chunk(distilled, tiny_ldm):
    from foley.families.ldm.distill import make_trajectories

    _, out, _ = distilled
    d = out / "run" / "teacher"
    chunks = sorted(d.glob("chunk-*.pt"))
    assert len(chunks) == 3  # (8 + 4) / 4
    before = torch.load(chunks[1], weights_only=True)
    chunks[1].unlink()
    (d / "done.json").unlink()
    stamps = {p: p.stat().st_mtime_ns for p in chunks if p.exists()}
    make_trajectories(tiny_ldm[1], [tiny_ldm[0] / "m.jsonl"], copy.deepcopy(RECIPE), out / "run")
    again = torch.load(chunks[1], weights_only=True)
    assert again["prompts"] == before["prompts"] and torch.equal(again["states"], before["states"])
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())  # finished chunks were kept


def test_bad_settings_fail_in_one_line(tiny_ldm, tmp_path):
    from foley.families.ldm.distill import distill_ldm

    root, teacher = tiny_ldm
    r = copy.deepcopy(RECIPE)
    r["teacher"]["teacher_steps"] = 3
    with pytest.raises(FoleyError, match="multiple of student_steps"):
        distill_ldm(teacher, "tiny", [root / "m.jsonl"], r, tmp_path / "run", tmp_path / "fast")
    assert not (tmp_path / "fast").exists()
    with pytest.raises(FoleyError, match="manifest not found"):
        distill_ldm(teacher, "tiny", [tmp_path / "nope.jsonl"], copy.deepcopy(RECIPE), tmp_path / "run2",
                    tmp_path / "fast")
    assert not (tmp_path / "fast").exists()


def test_cli_writes_the_folder_and_refuses_to_overwrite(tiny_ldm, tmp_path):
    root, teacher = tiny_ldm
    recipe = tmp_path / "r.json"  # recipes may be JSON too
    recipe.write_text(json.dumps(RECIPE))
    cmd = [sys.executable, "-m", "foley", "train", "distill", "--from", str(teacher), "--data", str(root / "m.jsonl"),
           "--recipe", str(recipe), "--run", str(tmp_path / "run"), "-o", str(tmp_path / "fast"), "--threads", "1"]
    p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert p.returncode == 0, p.stderr[-2000:]
    assert (tmp_path / "fast" / "unet" / "config.json").exists() and "model written to" in p.stdout
    p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert p.returncode != 0 and "already exists" in p.stderr and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
