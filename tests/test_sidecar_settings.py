"""Sidecars record the steps, guidance and scheduler actually used, also when the user left them unset (the
model's defaults), and say which came from the defaults; batch resume still recognises finished items."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def gen(tiny_ldm):
    from foley.families.ldm.pipeline import LDMGenerator

    return LDMGenerator.from_folder(tiny_ldm[1])


def test_unset_settings_are_filled_from_the_model_defaults(gen):
    from tests.ldm_tiny import TINY

    meta = gen.generate("a tone", duration=1.0, seed=1)[0].meta
    d = TINY["defaults"]
    assert (meta["request"]["steps"], meta["request"]["guidance_scale"], meta["request"]["scheduler"]) == (
        d["steps"], d["guidance_scale"], d["scheduler"])
    assert meta["settings"] == {"steps": 3, "guidance_scale": 2.0, "scheduler": "dpm++"}
    assert sorted(meta["defaults_used"]) == ["guidance_scale", "scheduler", "steps"]


def test_given_settings_are_kept_and_not_listed_as_defaults(gen):
    meta = gen.generate("a tone", duration=1.0, seed=1, steps=2, scheduler="ddim")[0].meta
    assert meta["request"]["steps"] == 2 and meta["request"]["scheduler"] == "ddim"
    assert meta["defaults_used"] == ["guidance_scale"]


def test_an_edit_records_the_scheduler_it_really_used(gen):
    src = gen.generate("a tone", duration=1.0, seed=1)[0]
    for task, kw in (("inpaint", {"start": 0.2, "end": 0.6}), ("style_transfer", {"strength": 0.0})):
        kw = {"mask_start": kw["start"], "mask_end": kw["end"]} if task == "inpaint" else kw
        meta = gen.edit(src, "a steady tone", task=task, seed=2, **kw)[0].meta
        assert meta["request"]["scheduler"] == "ddim" and meta["request"]["steps"] == 3, task


def test_cli_sidecar_and_batch_resume_with_filled_defaults(tiny_ldm, foley_cli, tmp_path):
    batch = tmp_path / "p.txt"
    batch.write_text("a tone\n")
    args = ("generate", "--batch-file", batch, "-d", "1", "-m", tiny_ldm[1], "--seed", "3", "-o", tmp_path / "b.wav")
    assert foley_cli(*args).returncode == 0
    side = json.loads(next(tmp_path.glob("b*.json")).read_text())
    assert side["request"]["steps"] == 3 and side["request"]["scheduler"] == "dpm++"
    r = foley_cli(*args)
    assert r.returncode == 0 and "nothing to do" in r.stdout
    r = foley_cli(*args[:-2], "--steps", "2", "-o", tmp_path / "b.wav")  # a different request: not finished
    assert r.returncode == 0 and "wrote" in r.stdout


def test_token_lm_records_its_guidance(tmp_path):
    import foley

    meta = foley.load("starter-lm").generate("rain on a tin roof", duration=0.5, seed=1)[0].meta
    assert meta["request"]["guidance_scale"] == meta["settings"]["guidance_scale"] is not None
    assert meta["request"]["steps"] is None and meta["defaults_used"] == ["guidance_scale"]
